"""The real ComfyUI server on 127.0.0.1: /object_info, /prompt, /history and /interrupt with this pack loaded."""

from __future__ import annotations

import json
import time

import pytest
from support.paths import comfyui_path
from support.workflows import API_TWINS, ComfyServer, load, tiny_graph


@pytest.fixture(scope="module")
def server(pack, tmp_path_factory):
    path, _ = comfyui_path()
    srv = ComfyServer(path, tmp_path_factory.mktemp("server"))
    try:
        srv.wait_ready()
        yield srv
    finally:
        srv.close()


def sd15_graph(budget: float) -> dict:
    api = load(API_TWINS / "evosearch_sd15_txt2img.json")
    overrides = {("4", "width"): 64, ("4", "height"): 64, ("8", "steps"): 6, ("6", "budget"): budget}
    return tiny_graph(api, "sd15", overrides)


def test_nodes_are_served(server):
    info = server.get("/object_info/EvoSearchKSampler")["EvoSearchKSampler"]
    assert info["category"] == "sampling/evosearch" and "reward" in info["input"]["required"]
    for node in ("EvoSearchSampler", "EvoSearchSchedule", "EvoSearchMutation", "EvoSearchLoadReward"):
        assert node in server.get(f"/object_info/{node}")


def test_prompt_runs_and_history_holds_the_outputs(server):
    prompt_id = server.queue(sd15_graph(budget=4.0))
    entry = server.wait_history(prompt_id, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    outputs = entry["outputs"]
    assert outputs["10"]["images"][0]["filename"].startswith("sd15"), "SaveImage wrote the best image"
    report = json.loads(outputs["14"]["text"][0])
    assert report["method"] == "evosearch" and report["nfe"] > 0 and report["latents"] == 1


def test_demo_workflow_runs_end_to_end_on_the_server(server):
    """The shipped demo workflow as a user runs it: real demo weights, nothing swapped, nothing shrunk."""
    prompt_id = server.queue(load(API_TWINS / "evosearch_demo_digits.json"))
    entry = server.wait_history(prompt_id, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    outputs = entry["outputs"]
    report = json.loads(outputs["10"]["text"][0])
    assert report["method"] == "evosearch" and report["sampler"] == "dpmpp_2m_sde"
    assert report["nfe"] == 600, "×30 one 20-step trajectory"
    assert report["decodes"] == report["reward_calls"] > 30
    curve = report["searches"][0]["history"]
    bests = [g["best_reward"] for g in curve if g["best_reward"] is not None and g["best_reward"] > -1e300]
    assert bests == sorted(bests), "the best reward never gets worse"
    for node in ("6", "8", "9", "13"):  # best, population, reward plot, plain-sampler preview
        assert outputs[node]["images"], f"preview node {node} shows an image"
    assert len(outputs["8"]["images"]) >= 2, "the final population is previewed"


def test_shapes_demo_runs_end_to_end_on_the_server(server):
    """The text-to-image demo as shipped: the trained shapes model, CLIP Text Encode, the verifier reward, ×10 with
    the default strategy and 4 distinct options, beside a plain KSampler."""
    prompt_id = server.queue(load(API_TWINS / "evosearch_demo_shapes.json"))
    entry = server.wait_history(prompt_id, timeout=240)
    assert entry["status"]["status_str"] == "success", entry["status"]
    outputs = entry["outputs"]
    report = json.loads(outputs["15"]["text"][0])
    assert report["method"] == "evosearch" and report["fitness"] == "graded" and report["nfe"] == 200
    assert report["decodes"] == report["reward_calls"] > 10
    for node in ("10", "13", "14", "19"):  # best, options, reward plot, plain-sampler preview
        assert outputs[node]["images"], f"preview node {node} shows an image"
    assert len(outputs["13"]["images"]) == 4, "four options"


def test_interrupt_stops_a_long_search(server):
    prompt_id = server.queue(sd15_graph(budget=5000.0))  # 30,000 NFE: minutes of work on this CPU
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # wait until the search is running (the sampler node is executing)
        queue = server.get("/queue")
        running = [item[1] for item in queue.get("queue_running", [])]
        if prompt_id in running:
            break
        time.sleep(0.2)
    time.sleep(3.0)  # let it get into the search
    sent = time.monotonic()
    server.post("/interrupt")
    entry = server.wait_history(prompt_id, timeout=60)
    stopped_after = time.monotonic() - sent
    assert entry["status"]["status_str"] == "error"
    assert any(m[0] == "execution_interrupted" for m in entry["status"]["messages"]), entry["status"]["messages"]
    assert stopped_after < 5, f"the search took {stopped_after:.1f}s to stop"
