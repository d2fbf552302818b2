"""Headless Chromium driven over the Chrome DevTools Protocol, for tests and tools that use ComfyUI's real frontend.

No Playwright/Puppeteer: the browser is the system's ``chromium`` (Debian's package), the protocol is spoken with
``websocket-client``. :func:`browser_unavailable` says why a browser cannot run here (the tests skip with it).

    with Chromium(tmp_path) as page:
        page.add_init_script(CONSOLE_HOOK)
        page.navigate("http://127.0.0.1:8188/")
        page.wait_for("window.app && window.app.graph")
        title = page.evaluate("document.title")
        page.screenshot(tmp_path / "page.png")
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

log = logging.getLogger("evosearch.tests.browser")

#: Where a browser is looked for: $EVOSEARCH_CHROMIUM, then these names on PATH.
BROWSER_ENV = "EVOSEARCH_CHROMIUM"
BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

#: Flags for a quiet, offline, deterministic headless browser.
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-sync",
    "--disable-translate",
    "--disable-features=Translate,MediaRouter,OptimizationHints",
    "--metrics-recording-only",
    "--mute-audio",
    "--no-first-run",
    "--no-default-browser-check",
    "--password-store=basic",
    "--use-mock-keychain",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)

#: Installed before any page script runs: keeps every console error/warning and uncaught error in
#: ``window.__evosearchConsole`` (``{level, text, stack}``), so a test can read what a user's console showed.
CONSOLE_HOOK = r"""
(() => {
  const log = (window.__evosearchConsole = []);
  const text = (args) => args.map((a) => {
    if (a instanceof Error) return `${a.name}: ${a.message}\n${a.stack || ''}`;
    if (typeof a === 'object') { try { return JSON.stringify(a); } catch (e) { return String(a); } }
    return String(a);
  }).join(' ');
  for (const level of ['error', 'warn']) {
    const original = console[level].bind(console);
    console[level] = (...args) => {
      log.push({ level, text: text(args), stack: new Error().stack || '' });
      original(...args);
    };
  }
  window.addEventListener('error', (e) => log.push({ level: 'error', text: `uncaught: ${e.message}`,
    stack: (e.error && e.error.stack) || `${e.filename}:${e.lineno}` }));
  window.addEventListener('unhandledrejection', (e) => log.push({ level: 'error',
    text: `unhandled rejection: ${e.reason && (e.reason.message || e.reason)}`,
    stack: (e.reason && e.reason.stack) || '' }));
})();
"""


def find_browser() -> str | None:
    """Path of a Chromium-family browser, or ``None``."""
    explicit = os.environ.get(BROWSER_ENV)
    if explicit:
        return explicit if Path(explicit).is_file() else None
    for name in BROWSER_NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


def browser_unavailable() -> str:
    """Why the browser tests cannot run here ("" when they can)."""
    try:
        import websocket  # noqa: F401
    except ImportError:
        return "websocket-client is not installed (pip install -r requirements-dev.txt)"
    explicit = os.environ.get(BROWSER_ENV)
    if explicit and not Path(explicit).is_file():
        return f"${BROWSER_ENV}={explicit} is not a file"
    if find_browser() is None:
        return (
            f"no Chromium found (looked for ${BROWSER_ENV} and {', '.join(BROWSER_NAMES)} on PATH; "
            "Debian/Ubuntu: apt-get install chromium)"
        )
    return ""


class BrowserError(RuntimeError):
    """A CDP command failed or a page expression threw."""


class Chromium:
    """One headless Chromium with one page, driven over CDP. Use as a context manager."""

    def __init__(self, workdir: Path, width: int = 1600, height: int = 1000, timeout: float = 30.0) -> None:
        import websocket

        executable = find_browser()
        if executable is None:
            raise RuntimeError(browser_unavailable())
        self.workdir = Path(workdir)
        profile = self.workdir / "chromium-profile"
        profile.mkdir(parents=True, exist_ok=True)
        (profile / "DevToolsActivePort").unlink(missing_ok=True)  # a reused profile keeps the last run's port
        self._log = (self.workdir / "chromium.log").open("w")
        cmd = [executable, *FLAGS, f"--user-data-dir={profile}", f"--window-size={width},{height}", "about:blank"]
        # Its own session: Debian's /usr/bin/chromium is a shell launcher, and close() ends the whole group.
        self.process = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        self._ws = None
        try:
            port = self._devtools_port(profile, timeout)
            target = self._page_target(port, timeout)
            self._ws = websocket.create_connection(target, timeout=timeout, suppress_origin=True)
        except BaseException:
            self.close()
            raise
        self._ids = itertools.count(1)
        self.events: list[dict] = []
        self.timeout = timeout
        self.send("Page.enable")
        self.send("Runtime.enable")
        self.send(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
        )

    # ------------------------------------------------------------------------------------------------ start-up
    def _devtools_port(self, profile: Path, timeout: float) -> int:
        marker = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Chromium exited with {self.process.returncode}; see {self.workdir}/chromium.log")
            if marker.is_file():
                lines = marker.read_text().split()
                if lines and lines[0].isdigit():
                    return int(lines[0])
            time.sleep(0.1)
        raise TimeoutError(f"Chromium did not open its DevTools port in {timeout}s")

    @staticmethod
    def _page_target(port: int, timeout: float) -> str:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    targets = json.loads(response.read())
                pages = [t for t in targets if t.get("type") == "page" and t.get("webSocketDebuggerUrl")]
                if pages:
                    return pages[0]["webSocketDebuggerUrl"]
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"no page target on DevTools port {port}")

    # ------------------------------------------------------------------------------------------------ protocol
    def send(self, method: str, params: dict | None = None, timeout: float | None = None) -> dict:
        """Send one CDP command and return its result (events received meanwhile go to :attr:`events`)."""
        message_id = next(self._ids)
        self._ws.send(json.dumps({"id": message_id, "method": method, "params": params or {}}))
        self._ws.settimeout(timeout or self.timeout)
        while True:
            message = json.loads(self._ws.recv())
            if message.get("id") == message_id:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return message.get("result", {})
            if "method" in message:
                self.events.append(message)
                del self.events[:-500]

    def evaluate(self, expression: str, timeout: float | None = None) -> Any:
        """Evaluate ``expression`` in the page (promises awaited) and return its JSON value."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "awaitPromise": True, "returnByValue": True, "userGesture": True},
            timeout=timeout,
        )
        if "exceptionDetails" in result:
            details = result["exceptionDetails"]
            text = details.get("exception", {}).get("description") or details.get("text")
            raise BrowserError(f"page expression failed: {text}\n--- expression ---\n{expression[:2000]}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 30.0, interval: float = 0.2) -> Any:
        """Poll ``expression`` until it is truthy; returns its value."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
                if value:
                    return value
            except BrowserError as e:
                last_error = e
            time.sleep(interval)
        raise TimeoutError(
            f"page condition not met in {timeout}s: {expression}" + (f" ({last_error})" if last_error else "")
        )

    def add_init_script(self, source: str) -> None:
        """Run ``source`` in every new document before the page's own scripts."""
        self.send("Page.addScriptToEvaluateOnNewDocument", {"source": source})

    def navigate(self, url: str) -> None:
        self.send("Page.navigate", {"url": url})

    def screenshot(self, path: Path) -> Path:
        """Save a PNG (or JPEG, by suffix) of the viewport."""
        path = Path(path)
        fmt = "jpeg" if path.suffix.lower() in (".jpg", ".jpeg") else "png"
        params: dict = {"format": fmt}
        if fmt == "jpeg":
            params["quality"] = 85
        data = self.send("Page.captureScreenshot", params, timeout=60)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    # ------------------------------------------------------------------------------------------------ shutdown
    def close(self) -> None:
        """Close the connection and end the browser with every process it started (its process group)."""
        if self._ws is not None:
            try:
                self._ws.close()
            except OSError:
                pass
        self._signal_group(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal_group(signal.SIGKILL)
            self.process.wait(timeout=10)
        time.sleep(0.2)
        self._signal_group(signal.SIGKILL)  # helpers (renderer, crash handler) that outlived the launcher
        self._log.close()

    def _signal_group(self, sig: signal.Signals) -> None:
        try:
            os.killpg(self.process.pid, sig)  # the group Popen(start_new_session=True) made: this browser only
        except (ProcessLookupError, PermissionError):
            pass

    def __enter__(self) -> Chromium:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
