"""The pack's frontend contract on the Python side: POST /evosearch/plan and Load Reward's official file names."""

from __future__ import annotations

import asyncio
import importlib
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def routes(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.web_routes")


@pytest.fixture(scope="module")
def sampler_nodes(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.sampler_nodes")


DEMO_SCHEDULE = {"mode": "budget_multiple", "strategy": "evosearch", "budget": 30.0,
                 "evolution_steps": "0, 20, 30, 40", "population": "42, 26, 26, 26, 30", "steps": 20,
                 "potential": "max", "lam": 10.0, "fitness": "x0"}  # fmt: skip


def test_plan_is_the_schedule_nodes_own_text_at_the_given_steps(routes, sampler_nodes):
    for steps in (20, 25):
        answer = routes.plan(DEMO_SCHEDULE, steps)
        own = sampler_nodes.EvoSearchSchedule.execute(**{**DEMO_SCHEDULE, "steps": steps}).ui.as_dict()["text"]
        assert answer == {"text": "\n".join(own)}
    assert "600 NFE at 20 steps" in routes.plan(DEMO_SCHEDULE, 20)["text"]
    assert "750 NFE at 25 steps" in routes.plan(DEMO_SCHEDULE, 25)["text"]


def test_plan_fills_missing_widgets_with_defaults_and_ignores_unknown_ones(routes):
    answer = routes.plan({"budget": 10, "evosearch_info": "not a Schedule input", "steps": 999}, 20)
    assert answer["text"].startswith("EvoSearch") and "200 NFE at 20 steps" in answer["text"]


def test_plan_reports_bad_values_as_errors(routes):
    bad = routes.plan({**DEMO_SCHEDULE, "mode": "custom", "population": "42, x"}, 20)
    assert set(bad) == {"error"} and "population" in bad["error"] and "'x'" in bad["error"]
    assert "steps" in routes.plan(DEMO_SCHEDULE, 0)["error"]
    assert "steps" in routes.plan(DEMO_SCHEDULE, "20")["error"]
    assert "inputs" in routes.plan(["not", "a", "dict"], 20)["error"]


def test_register_needs_a_server_and_adds_the_route_once(routes):
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer

    assert routes.register(SimpleNamespace()) is False  # no routes table: not a PromptServer
    server = SimpleNamespace(routes=web.RouteTableDef())
    assert routes.register(server) is True
    assert routes.register(server) is True
    assert [r.path for r in server.routes] == [routes.PLAN_PATH]

    async def exchange() -> list[tuple[int, dict]]:
        app = web.Application()
        app.add_routes(server.routes)
        async with TestClient(TestServer(app)) as client:
            out = []
            for body in ({"inputs": DEMO_SCHEDULE, "steps": 20}, {"inputs": {"mode": "nope"}, "steps": 20}):
                response = await client.post(routes.PLAN_PATH, json=body)
                out.append((response.status, await response.json()))
            response = await client.post(routes.PLAN_PATH, data=b"not json")
            out.append((response.status, await response.json()))
            return out

    (ok_status, ok), (bad_status, bad), (raw_status, raw) = asyncio.run(exchange())
    assert ok_status == bad_status == raw_status == 200
    assert "600 NFE" in ok["text"]
    assert "mode" in bad["error"]
    assert "JSON" in raw["error"]


def test_without_a_running_server_nothing_is_registered(routes, monkeypatch):
    import sys

    monkeypatch.delitem(sys.modules, "server", raising=False)
    assert routes.register() is False


# ------------------------------------------------------------------------------------------------ official reward files


def test_model_choices_always_offer_each_kinds_official_file(pack):
    rt = importlib.import_module(f"{pack.__name__}.nodes.reward_runtime")
    registry = importlib.import_module(f"{pack.__name__}.rewards.registry")
    choices = rt.model_choices()
    assert choices[0] == "auto" and len(choices) == len(set(choices))
    for name in registry.reward_kinds():
        kind = registry.get_kind(name)
        if kind.needs_weights:
            assert f"{kind.folder}/{kind.files[0]}" in choices, name
            assert rt.official_choice(name) == f"{kind.folder}/{kind.files[0]}"
        else:
            assert rt.official_choice(name) is None
    assert "imagereward/ImageReward.pt" in choices and "clipscore/clip-vit-large-patch14" in choices
    assert rt.model_choices(["clipscore"]) == ["auto", *[c for c in choices if c.startswith("clipscore/")]]


def test_a_workflow_naming_a_missing_official_file_validates_then_fails_clearly(pack, tmp_path):
    from support.workflows import InProcessComfy

    rt = importlib.import_module(f"{pack.__name__}.nodes.reward_runtime")
    if any((Path(r) / "imagereward" / "ImageReward.pt").exists() for r in rt.reward_roots()):
        pytest.skip("ImageReward.pt is installed here: nothing is missing")
    comfy = InProcessComfy(tmp_path)
    graph = {
        "1": {"class_type": "EvoSearchLoadReward",
              "inputs": {"kind": "imagereward", "model": "imagereward/ImageReward.pt", "dtype": "auto", "prompt": "a"}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 8, "height": 8, "batch_size": 1, "color": 0}},
        "3": {"class_type": "EvoSearchScoreImages", "inputs": {"images": ["2", 0], "reward": ["1", 0], "top_k": 1}},
    }  # fmt: skip
    valid, error, outputs, node_errors = comfy.validate(graph)
    assert valid, f"the official name must pass validation: {error} {node_errors}"
    comfy.executor.execute(graph, str(uuid.uuid4()), {}, outputs)
    failures = [m[1] for m in comfy.executor.status_messages if m[0] == "execution_error"]
    assert failures and failures[0]["node_id"] == "1", comfy.executor.status_messages
    message = failures[0]["exception_message"]
    assert "EvoSearch Load Reward" in message and "no weight file found" in message and "ImageReward.pt" in message
    assert "huggingface.co/THUDM/ImageReward" in message, message
