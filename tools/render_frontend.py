"""Render the pack's pictures from ComfyUI's real frontend: template thumbnails and the README's screenshots.

    COMFYUI_PATH=/path/to/ComfyUI python tools/render_frontend.py            # both
    COMFYUI_PATH=/path/to/ComfyUI python tools/render_frontend.py --thumbnails

Needs a Chromium (Debian: ``apt-get install chromium``) and websocket-client, like the browser tests, whose
plumbing (tests/support/frontend.py) it uses: a ComfyUI server on loopback with this pack, headless Chromium on it.

* ``workflows/<name>.jpg``: the template browser's thumbnail of each workflow (at most 512×512: the whole graph as
  the frontend draws it).
* ``docs/images/``: the demo as it opens, the Schedule's planned cost, the Missing Models dialog of the SD1.5
  workflow, the template browser, and the digit and shapes demos after a run (it runs both: ~1 min on a CPU).
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO)]

from support.comfy import boot  # noqa: E402
from support.frontend import ComfyPage  # noqa: E402
from support.paths import comfyui_path  # noqa: E402
from support.workflows import WORKFLOWS  # noqa: E402

log = logging.getLogger("render_frontend")
THUMBNAIL = 512
IMAGES = REPO / "docs" / "images"
DEMO = "evosearch_demo_digits"
SHAPES_DEMO = "evosearch_demo_shapes"


def _save_jpeg(png: Path, out: Path, size: tuple[int, int] | None = None, crop: tuple | None = None) -> Path:
    from PIL import Image

    image = Image.open(png).convert("RGB")
    if crop:
        image = image.crop(crop)
    if size:
        image.thumbnail(size, Image.Resampling.LANCZOS)
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85, optimize=True, progressive=True)
    out.write_bytes(buffer.getvalue())
    log.info("wrote %s (%d×%d, %d kB)", out.relative_to(REPO), *image.size, len(buffer.getvalue()) // 1000)
    return out


def _fit(page: ComfyPage, zoom: float = 0.95) -> None:
    page.evaluate(
        "(() => { const t = LiteGraph.NODE_TITLE_HEIGHT; const ns = app.graph.nodes;"
        " const x0 = Math.min(...ns.map((n) => n.pos[0])), y0 = Math.min(...ns.map((n) => n.pos[1] - t));"
        " const x1 = Math.max(...ns.map((n) => n.pos[0] + n.size[0]));"
        " const y1 = Math.max(...ns.map((n) => n.pos[1] + n.size[1]));"
        f" app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0], {{ zoom: {zoom} }});"
        " app.canvas.setDirty(true, true); })()"
    )
    page.wait_idle(0.8)


def thumbnails(comfy_path: Path, tmp: Path) -> None:
    """One square thumbnail per workflow: the whole graph, drawn by the frontend in a 1800×1800 window."""
    with ComfyPage(comfy_path, tmp / "thumbs", width=1800, height=1800) as page:
        for path in sorted(WORKFLOWS.glob("*.json")):
            page.load(json.loads(path.read_text()), path.stem)
            time.sleep(1.0)
            page.close_dialogs()
            page.evaluate("document.querySelectorAll('.p-toast').forEach((t) => t.remove())")
            _fit(page)
            # the graph only: its bounding box on screen, a little margin around it
            x0, y0, x1, y1 = page.evaluate(
                "(() => { const t = LiteGraph.NODE_TITLE_HEIGHT; const ns = app.graph.nodes; const ds = app.canvas.ds;"
                " const r = app.canvas.canvas.getBoundingClientRect();"
                " const [ax, ay] = ds.convertOffsetToCanvas([Math.min(...ns.map((n) => n.pos[0])),"
                "                                              Math.min(...ns.map((n) => n.pos[1] - t))]);"
                " const [bx, by] = ds.convertOffsetToCanvas([Math.max(...ns.map((n) => n.pos[0] + n.size[0])),"
                "                                              Math.max(...ns.map((n) => n.pos[1] + n.size[1]))]);"
                " return [r.left + ax - 12, r.top + ay - 12, r.left + bx + 12, r.top + by + 12].map(Math.round); })()"
            )
            png = page.screenshot(tmp / f"{path.stem}.png")
            _save_jpeg(png, path.with_suffix(".jpg"), (THUMBNAIL, THUMBNAIL), (x0, y0, x1, y1))


def readme_images(comfy_path: Path, tmp: Path) -> None:
    """The README's screenshots (1600×1000 window, saved at most 1200 px wide)."""
    with ComfyPage(comfy_path, tmp / "readme") as page:
        demo = json.loads((WORKFLOWS / f"{DEMO}.json").read_text())
        page.load(demo, DEMO)
        _save_jpeg(page.screenshot(tmp / "demo.png"), IMAGES / "demo_workflow.jpg", (1200, 1200))

        schedule = next(n for n in demo["nodes"] if n["type"] == "EvoSearchSchedule")
        page.evaluate(
            f"app.canvas.ds.scale = 1.3; app.canvas.ds.offset = [40 - {schedule['pos'][0]}, 60 - {schedule['pos'][1]}];"
            " app.canvas.setDirty(true, true)"
        )
        page.wait_idle(0.8)
        _save_jpeg(page.screenshot(tmp / "plan.png"), IMAGES / "schedule_planned_cost.jpg", crop=(56, 70, 700, 640))

        sd15 = json.loads((WORKFLOWS / "evosearch_sd15_txt2img.json").read_text())
        page.load(sd15, "evosearch_sd15_txt2img")
        page.wait_dialog("Missing Models")
        x, y, w, h = page.evaluate(
            "(() => { const r = document.querySelector('.p-dialog').getBoundingClientRect();"
            " return [r.left, r.top, r.width, r.height].map(Math.round); })()"
        )
        _save_jpeg(page.screenshot(tmp / "missing.png"), IMAGES / "missing_models.jpg",
                   crop=(x - 10, y - 10, x + w + 10, y + h + 10))  # fmt: skip
        page.close_dialogs()

        page.evaluate("app.extensionManager.command.execute('Comfy.BrowseTemplates')")
        page.wait_dialog("Custom Nodes")
        page.evaluate(
            "[...document.querySelectorAll('.p-dialog li, .p-dialog [role=option], .p-dialog span')]"
            ".find((e) => e.textContent.trim() === 'ComfyUI-EvoSearch')?.click()"
        )
        time.sleep(2.0)
        _save_jpeg(page.screenshot(tmp / "templates.png"), IMAGES / "template_browser.jpg", (1200, 1200))
        page.close_dialogs()

        _run_and_capture(page, demo, DEMO, tmp / "after.png", IMAGES / "demo_after_run.jpg")
        shapes = json.loads((WORKFLOWS / f"{SHAPES_DEMO}.json").read_text())
        _run_and_capture(page, shapes, SHAPES_DEMO, tmp / "shapes.png", IMAGES / "shapes_after_run.jpg")


def _run_and_capture(page: ComfyPage, workflow: dict, name: str, png: Path, out: Path) -> None:
    """Load ``workflow``, queue it from the page, wait until the server finished it, save a screenshot."""
    page.load(workflow, name)
    before = set(page.server.get("/history"))
    page.evaluate("app.queuePrompt(0, 1).then(() => true)", timeout=60)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        new = {k: v for k, v in page.server.get("/history").items() if k not in before}
        if any(v.get("status", {}).get("completed") is not None for v in new.values()):
            break
        time.sleep(0.5)
    page.wait_idle(2.0)
    _save_jpeg(page.screenshot(png), out, (1200, 1200))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--thumbnails", action="store_true", help="only the template thumbnails")
    parser.add_argument("--readme", action="store_true", help="only the README screenshots")
    args = parser.parse_args()
    comfy_path, reason = comfyui_path()
    if comfy_path is None:
        raise SystemExit(reason)
    boot()  # ComfyUI in-process: the server's start flags come from the pack's compat layer
    both = not (args.thumbnails or args.readme)
    with tempfile.TemporaryDirectory(prefix="evosearch-render-") as tmp:
        if args.thumbnails or both:
            thumbnails(comfy_path, Path(tmp))
        if args.readme or both:
            readme_images(comfy_path, Path(tmp))
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    raise SystemExit(main())
