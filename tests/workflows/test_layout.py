"""The shipped workflows as the template browser and the canvas see them: stable UUID ids, thumbnails, a layout with
no overlaps and links running left to right, and files identical to what tools/make_workflows.py writes today.
(The browser group checks the same layout against the real frontend's node sizes.)"""

from __future__ import annotations

import json
import uuid

import pytest
from PIL import Image
from support.workflows import API_TWINS, WORKFLOWS, InProcessComfy, load

NAMES = sorted(p.stem for p in WORKFLOWS.glob("*.json"))
TITLE_HEIGHT = 30  # LiteGraph.NODE_TITLE_HEIGHT: the title bar is drawn above a node's pos


def rect(node: dict) -> tuple[float, float, float, float]:
    (x, y), (w, h) = node["pos"], node["size"]
    return x, y - TITLE_HEIGHT, x + w, y + h


@pytest.mark.parametrize("name", NAMES)
def test_id_is_a_stable_uuid_and_a_thumbnail_ships(name):
    ui = load(WORKFLOWS / f"{name}.json")
    assert uuid.UUID(ui["id"]).version == 5, "the frontend's schema wants a UUID id"
    again = uuid.uuid5(uuid.NAMESPACE_URL, f"https://github.com/evosearch/ComfyUI-EvoSearch/workflows/{name}")
    assert ui["id"] == str(again), "the id must not change when the workflows are regenerated"
    thumbnail = Image.open(WORKFLOWS / f"{name}.jpg")
    assert thumbnail.format == "JPEG" and max(thumbnail.size) <= 512 and min(thumbnail.size) >= 128


@pytest.mark.parametrize("name", NAMES)
def test_nodes_do_not_overlap_and_links_run_left_to_right(name):
    ui = load(WORKFLOWS / f"{name}.json")
    nodes = {n["id"]: n for n in ui["nodes"]}
    boxes = list(nodes.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            (ax0, ay0, ax1, ay1), (bx0, by0, bx1, by1) = rect(a), rect(b)
            assert not (ax0 < bx1 and bx0 < ax1 and ay0 < by1 and by0 < ay1), f"{a['id']} overlaps {b['id']}"
    for _, src, _, dst, _, kind in ui["links"]:
        assert rect(nodes[src])[2] < rect(nodes[dst])[0], f"link {src}→{dst} ({kind}) runs right to left"
    scale = ui["extra"]["ds"]["scale"]
    assert 0.6 < scale <= 1.0, "the saved view must be zoomed in enough for the canvas to draw text (≥ 0.6)"


def test_shipped_files_are_what_the_generator_writes(pack):
    from tools.make_workflows import build, workflows

    InProcessComfy.ensure_nodes()
    specs = workflows()
    assert sorted(specs) == NAMES
    for name, spec in specs.items():
        ui, api = build(name, spec)
        assert json.loads(json.dumps(ui)) == load(WORKFLOWS / f"{name}.json"), f"{name}: re-run make_workflows.py"
        assert api == load(API_TWINS / f"{name}.json"), name
