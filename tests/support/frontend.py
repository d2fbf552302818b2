"""ComfyUI's real web frontend in headless Chromium: open the page, load workflows as a user does, read what it shows.

Built on :mod:`support.browser` (CDP) and :class:`support.workflows.ComfyServer`. Every read goes through the page's
own objects (``window.app``, ``LiteGraph``) or its DOM, never through guesses about the frontend's internals:

* :meth:`ComfyPage.load` calls ``app.loadGraphData(json, true, true, name)``, what dropping a file on the canvas does;
* :meth:`ComfyPage.nodes` gives each node's type, title, ``pos``/``size`` after the frontend sized it, its widgets
  and ``serialize().widgets_values``, and the text of the pack's info box;
* :meth:`ComfyPage.toasts`, :meth:`ComfyPage.dialogs` the text of PrimeVue toasts and dialogs;
* :meth:`ComfyPage.console` what the console showed (errors, warnings) since the page opened.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from .browser import CONSOLE_HOOK, Chromium
from .workflows import PACK_FOLDER, ComfyServer

log = logging.getLogger("evosearch.tests.frontend")

#: Settings of a returning user who closed the first-run template dialog and the minimap (clean screenshots).
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False}

_NODES_JS = r"""
(() => {
  const title = window.LiteGraph.NODE_TITLE_HEIGHT;
  return app.graph.nodes.map((n) => {
    const info = n.widgets?.find((w) => w.name === 'evosearch_info');
    const el = info?.element;
    const rect = el?.getBoundingClientRect();
    return {
      id: n.id, type: n.type, title: n.title, pos: [n.pos[0], n.pos[1]], size: [n.size[0], n.size[1]],
      computed: Array.from(n.computeSize()), titleHeight: title,
      widgets: (n.widgets || []).map((w) => ({ name: w.name, type: w.type,
        value: (typeof w.value === 'object' && w.value !== null) ? null : w.value,
        options: Array.isArray(w.options?.values) ? w.options.values : null })),
      widgets_values: n.serialize().widgets_values ?? [],
      info: el ? { text: el.textContent, connected: document.body.contains(el),
                   visible: !!(rect && rect.width > 0 && rect.height > 0 && el.offsetParent !== null
                               && rect.bottom > 0 && rect.right > 0
                               && rect.top < window.innerHeight && rect.left < window.innerWidth) } : null,
      images: (n.imgs || []).map((img) => ({ src: img.src, complete: img.complete, width: img.naturalWidth })),
    };
  });
})()
"""


class ComfyPage:
    """A ComfyUI server with this pack and a headless browser showing its frontend. Use as a context manager."""

    def __init__(
        self,
        comfy_path: Path,
        root: Path,
        width: int = 1600,
        height: int = 1000,
        model_paths: dict[str, Path] | None = None,
    ) -> None:
        self.root = Path(root)
        self.server = ComfyServer(comfy_path, self.root / "server", model_paths)
        self.browser: Chromium | None = None
        try:
            self.server.wait_ready()
            for key, value in SETTINGS.items():
                self._post_raw(f"/settings/{key}", json.dumps(value).encode())
            self.browser = Chromium(self.root / "browser", width=width, height=height)
            self.browser.add_init_script(CONSOLE_HOOK)
            self.browser.navigate(self.server.url + "/")
            self.browser.wait_for(
                "window.app && window.app.graph && window.app.canvas && window.LiteGraph"
                " && 'EvoSearchKSampler' in window.LiteGraph.registered_node_types",
                timeout=90,
            )
            self.wait_idle()
        except BaseException:
            self.close()
            raise

    # ------------------------------------------------------------------------------------------------ server
    @property
    def url(self) -> str:
        return self.server.url

    def _post_raw(self, path: str, data: bytes) -> bytes:
        request = urllib.request.Request(self.url + path, data=data, method="POST",
                                         headers={"Content-Type": "application/json"})  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read()

    def get_status(self, path: str) -> int:
        """HTTP status of ``GET path`` on the server."""
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status
        except urllib.error.HTTPError as e:
            return e.code

    # ------------------------------------------------------------------------------------------------ page
    @property
    def page(self) -> Chromium:
        assert self.browser is not None
        return self.browser

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        return self.page.evaluate(expression, timeout=timeout)

    def wait_idle(self, seconds: float = 0.5) -> None:
        """Let the page settle: two animation frames (a canvas redraw, DOM widgets placed), then ``seconds``."""
        self.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
        time.sleep(seconds)

    def load(self, workflow: dict, name: str) -> None:
        """Load a UI-format workflow as a user's drag and drop does, with the page's toasts and dialogs cleared."""
        self.close_dialogs()
        self.evaluate("document.querySelectorAll('.p-toast-message .p-toast-close-button').forEach((b) => b.click())")
        self.evaluate(f"app.loadGraphData({json.dumps(workflow)}, true, true, {json.dumps(name)})", timeout=60)
        self.wait_idle(1.0)

    def nodes(self) -> list[dict]:
        """Every node of the loaded graph as the frontend holds it (see module docstring)."""
        return self.evaluate(_NODES_JS)

    def toasts(self) -> list[str]:
        return self.evaluate("[...document.querySelectorAll('.p-toast-message')].map((e) => e.innerText)")

    def dialogs(self) -> list[str]:
        return self.evaluate("[...document.querySelectorAll('.p-dialog')].map((e) => e.innerText)")

    def wait_dialog(self, contains: str, timeout: float = 15.0) -> str:
        """Text of the first open dialog containing ``contains`` (raises on timeout with the dialogs' text)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for text in self.dialogs():
                if contains in text:
                    return text
            time.sleep(0.2)
        raise TimeoutError(f"no dialog with {contains!r} in {timeout}s; open dialogs: {self.dialogs()}")

    def close_dialogs(self) -> None:
        self.evaluate(
            "document.querySelectorAll('.p-dialog .p-dialog-close-button, .p-dialog [aria-label=Close]')"
            ".forEach((b) => b.click())"
        )
        self.wait_idle(0.3)

    def console(self) -> list[dict]:
        """``{level, text, stack}`` of every console error/warning and uncaught error since the page opened."""
        return self.evaluate("window.__evosearchConsole || []")

    def pack_errors(self) -> list[dict]:
        """Console errors that come from this pack: its extension's files, or naming one of its nodes."""
        marker = f"/extensions/{PACK_FOLDER}/"
        return [
            e
            for e in self.console()
            if e["level"] == "error" and (marker in e["text"] + e["stack"] or "evosearch" in e["text"].lower())
        ]

    def screenshot(self, path: Path) -> Path:
        self.wait_idle(0.3)
        return self.page.screenshot(path)

    def fit_view(self) -> None:
        """Fit the canvas to the whole graph (what the frontend does for a workflow without a saved view)."""
        self.evaluate(
            "(() => { const nodes = app.graph.nodes; if (!nodes.length) return;"
            " let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;"
            " for (const n of nodes) { const t = LiteGraph.NODE_TITLE_HEIGHT;"
            "   x0 = Math.min(x0, n.pos[0]); y0 = Math.min(y0, n.pos[1] - t);"
            "   x1 = Math.max(x1, n.pos[0] + n.size[0]); y1 = Math.max(y1, n.pos[1] + n.size[1]); }"
            " app.canvas.ds.fitToBounds([x0, y0, x1 - x0, y1 - y0]); app.canvas.setDirty(true, true); })()"
        )
        self.wait_idle(0.5)

    # ------------------------------------------------------------------------------------------------ shutdown
    def close(self) -> None:
        if self.browser is not None:
            self.browser.close()
            self.browser = None
        self.server.close()

    def __enter__(self) -> ComfyPage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
