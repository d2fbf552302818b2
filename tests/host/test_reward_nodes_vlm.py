"""The VQAScore, HPSv3 and aesthetic v2.5 kinds through EvoSearch Load Reward in a real (CPU) ComfyUI: the appended
optional inputs, their options reaching the reward, and scoring under model management."""

from __future__ import annotations

import importlib

import pytest
import torch
from support import reward_fixtures as rf

#: The Load Reward inputs before the VQAScore ones (their order and names are published and must not change).
EXISTING = [
    "kind",
    "model",
    "dtype",
    "prompt",
    "clip_model",
    "video_frames",
    "frame_policy",
    "video_aggregate",
    "std_weight",
    "source_fps",
]


@pytest.fixture(scope="module")
def rn(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.reward_nodes")


@pytest.fixture(scope="module")
def rt(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.reward_runtime")


@pytest.fixture(scope="module")
def vlm_dir(pack, tmp_path_factory):
    """Tiny official-layout VQAScore, HPSv3 and aesthetic v2.5 weights in an extra ``rewards`` folder."""
    if reason := rf.unavailable("vqascore"):
        pytest.skip(reason)
    import folder_paths
    from support import qwen_vl_fixtures as qf
    from support import siglip_fixtures as sf
    from utils.extra_config import load_extra_path_config

    root = tmp_path_factory.mktemp("vlm-models") / "rewards"
    g = torch.Generator().manual_seed(21)
    qf.write_instruct_folder(root / "vqascore" / "Qwen2-VL-2B-Instruct", g)
    qf.build_hpsv3(root, g)
    sf.build(root, g)
    yaml = root.parent / "extra_model_paths.yaml"
    yaml.write_text(f"tiny_vlm:\n    rewards: {root}\n")
    before = folder_paths.folder_names_and_paths.get("rewards")
    before = (list(before[0]), set(before[1])) if before else None
    load_extra_path_config(str(yaml))
    yield root
    if before is None:
        folder_paths.folder_names_and_paths.pop("rewards", None)
    else:
        folder_paths.folder_names_and_paths["rewards"] = before


def run(node, **inputs):
    return node.PREPARE_CLASS_CLONE({"unique_id": "1"}).execute(**inputs)


def test_vqa_inputs_are_appended_optional_inputs(rn):
    inputs = rn.EvoSearchLoadReward.GET_SCHEMA().inputs
    ids = [item.id for item in inputs]
    assert ids[: len(EXISTING)] == EXISTING, "existing inputs keep their order and names"
    assert ids[len(EXISTING) :] == ["vqa_template", "vqa_questions", "vqa_split"]
    for item in inputs[len(EXISTING) :]:
        assert item.optional and item.tooltip.startswith("vqascore only")
    kinds = inputs[0].options
    assert {"vqascore", "hpsv3", "aesthetic_v25"} <= set(kinds)


@pytest.mark.parametrize("kind", ["vqascore", "hpsv3", "aesthetic_v25"])
def test_load_and_score(rn, rt, vlm_dir, kind):
    import comfy.model_management as mm

    reward = run(rn.EvoSearchLoadReward, kind=kind, model="auto", dtype="auto", prompt="a red apple").args[0]
    images = rf.images(torch.Generator().manual_seed(0), b=2)
    scores = rt.score_images(reward, images)
    assert scores.shape == (2,) and torch.isfinite(scores).all()
    patchers = [rt.patcher_for(m) for m in reward.reward.modules()]
    assert all(any(p is q for q in mm.loaded_models()) for p in patchers), "loaded through model management"
    assert rt.score_images(reward, rf.images(torch.Generator().manual_seed(1), b=2, t=3, h=32, w=40)).shape == (2,)


def test_vqa_options_reach_the_reward(rn, rt, vlm_dir):
    reward = run(
        rn.EvoSearchLoadReward,
        kind="vqascore",
        model="auto",
        dtype="fp32",
        prompt="a red circle and a blue square",
        vqa_template='Is "{prompt}" shown? Answer Yes or No.',
        vqa_split="conjunctions",
    ).args[0]
    assert reward.reward.questions(reward.prompt) == [
        'Is "a red circle" shown? Answer Yes or No.',
        'Is "a blue square" shown? Answer Yes or No.',
    ]
    listed = run(
        rn.EvoSearchLoadReward,
        kind="vqascore",
        model="auto",
        dtype="fp32",
        prompt="",
        vqa_questions="a red circle\nIs the square blue?",
    ).args[0]
    assert listed.reward.questions("") == [
        'Does this figure show "a red circle"? Please answer Yes or No.',
        "Is the square blue?",
    ]
    with pytest.raises(ValueError, match=r"EvoSearch Load Reward: VQAScore: the question template"):
        run(rn.EvoSearchLoadReward, kind="vqascore", model="auto", dtype="fp32", prompt="", vqa_template="no slot")
