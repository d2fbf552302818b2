"""The example workflows: UI files equal their API twins, list their models, and run in ComfyUI's executor."""

from __future__ import annotations

import json

import pytest
from support.workflows import API_TWINS, LOADER_SWAPS, WORKFLOWS, InProcessComfy, load, tiny_graph, ui_to_api

NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
ARCH = {"evosearch_sd15_txt2img": "sd15", "evosearch_sdxl_txt2img": "sdxl", "evosearch_flux_dev_txt2img": "flux",
        "evosearch_wan21_t2v_1.3b": "wan21", "evosearch_wan22_t2v_a14b": "wan21",
        "evosearch_demo_digits": None, "evosearch_demo_shapes": None}  # fmt: skip
#: For the CPU the test shrinks images/videos and steps; node types, links and every other value stay as shipped.
SHRINK = {
    "EmptyLatentImage": {"width": 64, "height": 64},
    "EmptySD3LatentImage": {"width": 64, "height": 64},
    "EmptyHunyuanLatentVideo": {"width": 32, "height": 32, "length": 5},
    "EvoSearchKSampler": {"steps": 6},
    "BasicScheduler": {"steps": 6},
}


def shrunk(name: str) -> dict:
    api = load(API_TWINS / f"{name}.json")
    overrides = {(nid, k): v for nid, node in api.items() for k, v in SHRINK.get(node["class_type"], {}).items()}
    return tiny_graph(api, ARCH[name], overrides) if ARCH[name] else api


def test_the_four_example_workflows_exist():
    for required in ("evosearch_sd15_txt2img", "evosearch_sdxl_txt2img", "evosearch_flux_dev_txt2img",
                     "evosearch_wan21_t2v_1.3b"):  # fmt: skip
        assert required in NAMES
    assert sorted(p.stem for p in API_TWINS.glob("*.json")) == NAMES, "every workflow needs an API twin"


@pytest.mark.parametrize("name", NAMES)
def test_ui_file_equals_its_api_twin(pack, name):
    InProcessComfy.ensure_nodes()
    assert ui_to_api(load(WORKFLOWS / f"{name}.json")) == load(API_TWINS / f"{name}.json")


@pytest.mark.parametrize("name", NAMES)
def test_only_core_and_pack_nodes_and_models_listed(pack, name):
    import nodes

    InProcessComfy.ensure_nodes()
    ui = load(WORKFLOWS / f"{name}.json")
    for node in ui["nodes"]:
        if node["type"] in ("MarkdownNote", "Note"):
            continue
        cls = nodes.NODE_CLASS_MAPPINGS[node["type"]]
        module = getattr(cls, "RELATIVE_PYTHON_MODULE", "") or cls.__module__
        assert node["type"].startswith("EvoSearch") or not module.startswith("custom_nodes"), node["type"]
        if (
            node["type"] in LOADER_SWAPS
            and node["type"] != "EvoSearchLoadReward"
            or node["type"] == "EvoSearchLoadReward"
            and node["widgets_values"][0] not in ("colorfulness", "digits", "shapes")
        ):  # noqa: E501
            models = node["properties"].get("models", [])
            assert models, f"{node['type']} in {name} lists no model files in properties.models"
            for m in models:
                assert set(m) >= {"name", "url", "directory"} and m["url"].startswith("https://")
            names = {m["name"] for m in models}
            widget_files = {
                v for v in node["widgets_values"] if isinstance(v, str) and v.endswith((".safetensors", ".pt"))
            }
            assert widget_files <= names, f"{node['type']}: {widget_files - names} not in properties.models"


@pytest.mark.parametrize("name", NAMES)
def test_workflow_runs_in_the_real_executor(pack, tmp_path_factory, name):
    comfy = InProcessComfy(tmp_path_factory.mktemp("comfy"))
    graph = shrunk(name)
    history = comfy.run(graph)
    previews = [nid for nid, node in graph.items() if node["class_type"] == "PreviewAny"]
    reports = [json.loads(history["outputs"][nid]["text"][0]) for nid in previews if nid in history["outputs"]]
    assert reports, "the workflow shows its search report"
    report = reports[0]
    assert report["nfe"] > 0 and report["decodes"] == report["reward_calls"] > 0
    images = [img for v in history["outputs"].values() for img in v.get("images", [])]
    assert images, "the workflow saves or previews images"
