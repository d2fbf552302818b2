"""A person's first hour in ComfyUI's real web frontend (headless Chromium, frontend 1.27) with this pack.

One ComfyUI server (CPU, loopback) and one browser serve the whole module. Every shipped workflow is loaded the way
a dropped file is (``app.loadGraphData``) and must load cleanly: no toast, no console error from the pack, the node
sizes tools/make_workflows.py wrote are the frontend's own and no two nodes overlap, every widget value survives,
the reward weights it needs are offered in the Missing Models dialog, and EvoSearch Schedule shows the planned cost.
Then the demo workflow is queued from the page (``app.queuePrompt``) and its outputs and spent cost must show.
Screenshots go to the test's temporary folder; the summary line of the browser group prints where.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from support.frontend import ComfyPage
from support.paths import REPO, comfyui_path
from support.workflows import API_TWINS, PACK_FOLDER, WORKFLOWS, load

NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
DEMO = "evosearch_demo_digits"
#: Every node of the pack; each needs a help page in web/docs (EvoSearchShapesModel and EvoSearchTwoExpertGuider are
#: arriving on other branches: their pages ship already).
PACK_NODES = ("EvoSearchKSampler", "EvoSearchSampler", "EvoSearchResults", "EvoSearchSchedule", "EvoSearchMutation",
              "EvoSearchLoadReward", "EvoSearchCombineRewards", "EvoSearchScoreImages", "EvoSearchSimpleReward",
              "EvoSearchDemoModel", "EvoSearchShapesModel", "EvoSearchTwoExpertGuider")  # fmt: skip
#: Nodes that show the text the server sends after a run (web/js/evosearch.js).
SUMMARY_NODES = ("EvoSearchKSampler", "EvoSearchResults", "EvoSearchSchedule")


@pytest.fixture(scope="module")
def comfy(request, pack, tmp_path_factory):
    """The server and the browser (``pack``: ComfyUI imported in-process too, where the test support reads the
    server's start flags from the pack)."""
    path, _ = comfyui_path()
    root = tmp_path_factory.mktemp("frontend")
    shots = root / "screenshots"
    request.config.evosearch_screenshots = str(shots)  # printed in the test-group summary (tests/conftest.py)
    print(f"\nbrowser screenshots: {shots}")
    with ComfyPage(path, root) as page:
        page.shots = shots
        yield page


# ------------------------------------------------------------------------------------------------ helpers


def planned_steps(api: dict, schedule_id: str) -> int:
    """The steps a Schedule plans for, read from the API twin: the sampler its output feeds (EvoSearch KSampler's
    steps; for EvoSearch Sampler, the scheduler feeding SamplerCustomAdvanced's sigmas), else its own steps."""

    def consumers(node_id: str, slot: int) -> list[dict]:
        return [n for n in api.values() if [node_id, slot] in n["inputs"].values()]

    for node in consumers(schedule_id, 0):
        if isinstance(node["inputs"].get("steps"), int):
            return node["inputs"]["steps"]
        if node["class_type"] == "EvoSearchSampler":
            sampler_id = next(k for k, v in api.items() if v is node)
            for user in consumers(sampler_id, 0):
                origin = user["inputs"].get("sigmas")
                if origin:
                    return api[origin[0]]["inputs"]["steps"]
    return api[schedule_id]["inputs"]["steps"]


def expected_plan(comfy: ComfyPage, inputs: dict, steps: int) -> str:
    answer = comfy.server.post("/evosearch/plan", {"inputs": inputs, "steps": steps})
    assert "text" in answer, f"the plan route refused the shipped Schedule: {answer}"
    return answer["text"]


def rect(node: dict) -> tuple[float, float, float, float]:
    """x0, y0, x1, y1 of a node on the canvas, title bar included (it sits above pos)."""
    x, y = node["pos"]
    w, h = node["size"]
    return x, y - node["titleHeight"], x + w, y + h


def overlapping(nodes: list[dict]) -> list[str]:
    out = []
    for i, a in enumerate(nodes):
        for b in nodes[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rect(a), rect(b)
            if ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1:
                out.append(f"{a['id']} {a['title']!r} and {b['id']} {b['title']!r}")
    return out


def show_node(comfy: ComfyPage, node_id: int, scale: float = 1.0) -> None:
    """Pan and zoom so the node's top-left is near the window's, as a user zooming in on it would."""
    comfy.evaluate(
        f"(() => {{ const n = app.graph.getNodeById({node_id}); app.canvas.ds.scale = {scale};"
        " app.canvas.ds.offset = [120 - n.pos[0], 120 - n.pos[1]]; app.canvas.setDirty(true, true); })()"
    )
    comfy.wait_idle(0.5)


def info_of(comfy: ComfyPage, node_id: int) -> dict:
    return next(n for n in comfy.nodes() if n["id"] == node_id)["info"]


def click_widget_arrow(comfy: ComfyPage, node_id: int, widget: str, right: bool = True) -> None:
    """Click a number widget's increment (or decrement) arrow with the mouse, through Chromium's input events."""
    x, y = comfy.evaluate(
        f"(() => {{ const n = app.graph.getNodeById({node_id}); const w = n.widgets.find((w) => w.name === '{widget}');"
        f" const local = [n.pos[0] + ({'n.size[0] - 20' if right else '20'}), n.pos[1] + w.y + 10];"
        " const [cx, cy] = app.canvas.ds.convertOffsetToCanvas(local);"
        " const r = app.canvas.canvas.getBoundingClientRect(); return [r.left + cx, r.top + cy]; })()"
    )
    for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
        comfy.page.send("Input.dispatchMouseEvent",
                        {"type": kind, "x": x, "y": y, "button": "left", "buttons": 1, "clickCount": 1})  # fmt: skip
        time.sleep(0.05)
    # the pointer rests on the side bar's empty middle: no tooltip or tab preview left in the screenshots
    comfy.page.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": 27, "y": 560})
    comfy.wait_idle(0.5)


def wait_info(comfy: ComfyPage, node_id: int, contains: str, timeout: float = 10.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        info = info_of(comfy, node_id)
        if contains in info["text"] or time.monotonic() > deadline:
            return info
        time.sleep(0.2)


# ------------------------------------------------------------------------------------------------ served files


def test_extension_and_node_help_pages_are_served(comfy):
    assert comfy.get_status(f"/extensions/{PACK_FOLDER}/js/evosearch.js") == 200
    # The help panel's URL as the frontend builds it (nodeHelpService: custom_nodes.<pack>.* → /extensions/<pack>/)
    urls = comfy.evaluate(
        "Object.fromEntries(Object.entries(LiteGraph.registered_node_types)"
        ".filter(([id]) => id.startsWith('EvoSearch') && !id.startsWith('EvoSearchTest'))"
        ".map(([id, cls]) => [id, cls.nodeData.python_module.split('.')[1].split('@')[0]])"
        ".map(([id, pack]) => [id, `/extensions/${pack}/docs/${id}.md`]))"
    )
    registered = set(urls)
    assert {"EvoSearchKSampler", "EvoSearchSchedule", "EvoSearchLoadReward", "EvoSearchDemoModel"} <= registered
    assert registered <= set(PACK_NODES), f"a node without a help page: {registered - set(PACK_NODES)}"
    for node in PACK_NODES:
        url = urls.get(node, f"/extensions/{PACK_FOLDER}/docs/{node}.md")
        assert comfy.get_status(url) == 200, f"help page of {node} not served at {url}"
        page = (REPO / "web" / "docs" / f"{node}.md").read_text()
        assert page.startswith("# ") and "## Inputs" in page and "## Outputs" in page, f"{node}.md lacks sections"


def test_template_browser_lists_every_workflow_with_a_thumbnail(comfy):
    templates = comfy.server.get("/api/workflow_templates")
    assert sorted(templates.get(PACK_FOLDER, [])) == NAMES
    for name in NAMES:
        assert comfy.get_status(f"/api/workflow_templates/{PACK_FOLDER}/{name}.json") == 200
        assert comfy.get_status(f"/api/workflow_templates/{PACK_FOLDER}/{name}.jpg") == 200, f"{name}.jpg missing"


# ------------------------------------------------------------------------------------------------ loading


@pytest.mark.parametrize("name", NAMES)
def test_shipped_workflow_loads_cleanly(comfy, name):
    ui = load(WORKFLOWS / f"{name}.json")
    api = load(API_TWINS / f"{name}.json")
    errors_before = len(comfy.pack_errors())
    comfy.load(ui, name)
    nodes = comfy.nodes()
    comfy.screenshot(comfy.shots / f"{name}.png")

    assert not comfy.toasts(), f"toasts after loading {name}: {comfy.toasts()}"  # e.g. the zod validation toast
    assert comfy.pack_errors()[errors_before:] == [], "console errors from the pack"

    saved = {n["id"]: n for n in ui["nodes"]}
    assert sorted(saved) == sorted(n["id"] for n in nodes)
    grown = [f"{n['id']} {n['type']}: saved {saved[n['id']]['size']}, frontend {n['size']}" for n in nodes
             if [round(v) for v in n["size"]] != saved[n["id"]]["size"]]  # fmt: skip
    assert not grown, "the frontend had to resize nodes (make_workflows' sizes are too small):\n" + "\n".join(grown)
    assert not overlapping(nodes), f"overlapping nodes in {name}: {overlapping(nodes)}"

    changed = [f"{n['id']} {n['type']}: {saved[n['id']]['widgets_values']} → {n['widgets_values']}" for n in nodes
               if n["widgets_values"] != saved[n["id"]]["widgets_values"]]  # fmt: skip
    assert not changed, "widget values did not round-trip:\n" + "\n".join(changed)

    rewards = [(m["directory"], m["name"]) for n in ui["nodes"] if n["type"] == "EvoSearchLoadReward"
               for m in n["properties"].get("models", [])]  # fmt: skip
    if rewards:
        dialog = comfy.wait_dialog("Missing Models")
        comfy.screenshot(comfy.shots / f"{name}-missing-models.png")
        for directory, file in rewards:
            assert f"{directory} / {file}" in dialog, f"{file} not offered in the Missing Models dialog:\n{dialog}"
        comfy.close_dialogs()

    for node in (n for n in nodes if n["type"] == "EvoSearchSchedule"):
        inputs = api[str(node["id"])]["inputs"]
        plan = expected_plan(comfy, inputs, planned_steps(api, str(node["id"])))
        info = wait_info(comfy, node["id"], plan)
        assert info["text"] == f"Planned: {plan}", "the Schedule does not show its planned cost"
        assert " NFE at " in plan and "equal-budget Best-of-" in plan and "reward calls" in plan
        show_node(comfy, node["id"])
        assert info_of(comfy, node["id"])["visible"], "the planned cost is not visible on the canvas"
        comfy.screenshot(comfy.shots / f"{name}-schedule.png")


def test_demo_plan_is_600_nfe_and_follows_the_sampler_steps(comfy):
    ui = load(WORKFLOWS / f"{DEMO}.json")
    comfy.load(ui, DEMO)
    schedule = next(n["id"] for n in ui["nodes"] if n["type"] == "EvoSearchSchedule")
    sampler = next(n["id"] for n in ui["nodes"] if n["type"] == "EvoSearchKSampler")
    info = wait_info(comfy, schedule, "600 NFE")
    assert "600 NFE at 20 steps" in info["text"] and "equal-budget Best-of-30" in info["text"], info["text"]

    show_node(comfy, sampler)
    click_widget_arrow(comfy, sampler, "steps")  # what a user's click on the steps arrow does
    steps = next(w["value"] for n in comfy.nodes() if n["id"] == sampler for w in n["widgets"] if w["name"] == "steps")
    assert steps != 20, "the click did not change the sampler's steps"
    api = load(API_TWINS / f"{DEMO}.json")
    plan = expected_plan(comfy, api[str(schedule)]["inputs"], steps)
    assert wait_info(comfy, schedule, plan)["text"] == f"Planned: {plan}", "the plan did not follow the new steps"
    assert f"at {steps} steps" in plan

    # A Schedule added from the node library, linked to nothing, plans for its own steps widget (default 20).
    added = comfy.evaluate(
        "(() => { const n = LiteGraph.createNode('EvoSearchSchedule'); n.pos = [3000, 0]; app.graph.add(n);"
        " return n.id; })()"
    )
    default_plan = expected_plan(comfy, {}, 20)
    assert wait_info(comfy, added, default_plan)["text"] == f"Planned: {default_plan}"
    comfy.evaluate(f"app.graph.remove(app.graph.getNodeById({added}))")

    # A bad value shows the Schedule's own error instead of a cost.
    comfy.evaluate(
        f"(() => {{ const n = app.graph.getNodeById({schedule});"
        " for (const [name, v] of [['mode', 'custom'], ['population', '42, x']]) {"
        "   const w = n.widgets.find((w) => w.name === name); w.value = v; w.callback?.(v); } })()"
    )
    info = wait_info(comfy, schedule, "⚠")
    assert info["text"].startswith("⚠ EvoSearch Schedule:") and "'x'" in info["text"], info["text"]


# ------------------------------------------------------------------------------------------------ running


@pytest.fixture(scope="module")
def demo_run(comfy):
    """The shipped demo queued from the page like the Run button; the /history entry once it finished."""
    comfy.load(load(WORKFLOWS / f"{DEMO}.json"), DEMO)
    comfy.close_dialogs()
    before = set(comfy.server.get("/history"))
    # The canvas stops redrawing while the server works (on a 2-core CPU the browser's software rendering of every
    # progress update competes with the sampler); messages, widgets and images are handled as usual.
    comfy.evaluate("app.canvas.pause_rendering = true")
    try:
        assert comfy.evaluate("app.queuePrompt(0, 1).then(() => true)", timeout=60)
        deadline = time.monotonic() + 300
        while True:
            new = [e for k, e in comfy.server.get("/history").items() if k not in before]
            if new and new[0].get("status", {}).get("completed") is not None:
                entry = new[0]
                break
            if time.monotonic() > deadline:
                raise TimeoutError("the demo did not finish in 300 s")
            time.sleep(0.5)
    finally:
        comfy.evaluate("app.canvas.pause_rendering = false; app.canvas.setDirty(true, true)")
    assert entry["status"]["status_str"] == "success", entry["status"]
    comfy.wait_idle(1.5)  # the last "executed" messages and the preview images reach the page
    return entry


def test_demo_run_from_the_page_shows_outputs_and_spent_cost(comfy, demo_run):
    ui = load(WORKFLOWS / f"{DEMO}.json")
    by_title = {n.get("title", n["type"]): n["id"] for n in ui["nodes"]}
    deadline = time.monotonic() + 15
    while True:
        nodes = {n["id"]: n for n in comfy.nodes()}
        previews = [n for n in nodes.values() if n["type"] == "PreviewImage"]
        if all(n["images"] and all(i["complete"] and i["width"] > 0 for i in n["images"]) for n in previews):
            break
        assert time.monotonic() < deadline, f"preview images not shown: {[(n['title'], n['images']) for n in previews]}"
        time.sleep(0.3)
    assert len(nodes[by_title["Final population, best first"]]["images"]) >= 1
    comfy.evaluate("app.canvas.ds.scale = 0.64; app.canvas.ds.offset = [-20, 0]; app.canvas.setDirty(true, true)")
    comfy.screenshot(comfy.shots / f"{DEMO}-after-run.png")
    assert not overlapping(list(nodes.values())), f"nodes overlap after the run: {overlapping(list(nodes.values()))}"

    # The spent cost on the page: the report's text box (PreviewAny) holds the run's JSON report.
    report_id = by_title["Search report"]
    shown = comfy.evaluate(
        f"app.graph.getNodeById({report_id}).widgets.find((w) => w.name === 'preview').element.value"
    )
    report = json.loads(shown)
    assert report["nfe"] == 600 and report["reward_calls"] > 30 and report["method"] == "evosearch", report
    assert json.loads(demo_run["outputs"][str(report_id)]["text"][0]) == report

    # EvoSearch Schedule sends its description when it runs; its box shows it (the "executed" path of the extension).
    schedule = next(n["id"] for n in ui["nodes"] if n["type"] == "EvoSearchSchedule")
    for text in demo_run["outputs"][str(schedule)]["text"]:
        assert text in nodes[schedule]["info"]["text"], "the Schedule's run text is not shown"


def test_sampler_nodes_show_their_run_summary(comfy, demo_run):
    """Contract with the sampler nodes: after a run EvoSearch KSampler / Results (and Schedule) send a short summary as
    ui text (``output.text``: a list of strings naming the spent NFE, decodes, reward calls, seconds and warnings); the
    extension shows exactly that text on the node."""
    ui = load(WORKFLOWS / f"{DEMO}.json")
    nodes = {n["id"]: n for n in comfy.nodes()}
    sampler = next(n["id"] for n in ui["nodes"] if n["type"] == "EvoSearchKSampler")
    sent = demo_run["outputs"].get(str(sampler), {}).get("text")
    if not sent:
        pytest.xfail("EvoSearch KSampler sends no ui text after a run yet (the sampler nodes' summary is pending)")
    for text in sent:
        assert text in nodes[sampler]["info"]["text"], f"{text!r} not shown on EvoSearch KSampler"
    summary = "\n".join(sent)
    assert "600" in summary and "NFE" in summary, f"the summary does not give the spent NFE (600): {summary!r}"
    for word in ("decodes", "reward calls"):
        assert word in summary, f"the summary does not mention {word}: {summary!r}"
    assert re.search(r"\d\s*s\b|second", summary), f"the summary does not give the seconds spent: {summary!r}"
    show_node(comfy, sampler)
    assert info_of(comfy, sampler)["visible"]
    comfy.screenshot(comfy.shots / f"{DEMO}-sampler-summary.png")
