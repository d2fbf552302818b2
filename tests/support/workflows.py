"""Example-workflow plumbing for tests: UI → API conversion, tiny-loader swaps, in-process execution, a server.

The UI → API converter follows the frontend's rules (docs/comfyui.md §9): widget values are positional over a node's
widget inputs in ``INPUT_TYPES`` order (required, then optional), a widget with ``control_after_generate`` is
followed by its mode value, links become ``[source_id, slot]``, frontend-only nodes (notes, reroutes) and
muted/bypassed nodes are dropped.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

from .paths import REPO

WORKFLOWS = REPO / "workflows"
API_TWINS = REPO / "tests" / "workflows" / "api"
TINY_PACK = Path(__file__).resolve().parent / "tiny_pack"
PACK_FOLDER = "ComfyUI-EvoSearch"
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}

#: Model loaders and the test-only tiny loader that replaces each (tests/support/tiny_pack).
LOADER_SWAPS = {
    "CheckpointLoaderSimple": "EvoSearchTestCheckpointLoader",
    "UNETLoader": "EvoSearchTestUNETLoader",
    "CLIPLoader": "EvoSearchTestCLIPLoader",
    "DualCLIPLoader": "EvoSearchTestCLIPLoader",
    "VAELoader": "EvoSearchTestVAELoader",
    "EvoSearchLoadReward": "EvoSearchTestRewardLoader",  # a reward model is a model file too
}


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def _is_widget(spec: tuple | list) -> bool:
    kind = spec[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def widget_names(class_type: str) -> list[tuple[str, bool]]:
    """(name, has control_after_generate) of a node's widget inputs, in the order the frontend lays them out."""
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[class_type]
    types = cls.INPUT_TYPES()
    out = []
    for section in ("required", "optional"):
        for name, spec in types.get(section, {}).items():
            if _is_widget(spec):
                options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
                if options.get("forceInput"):
                    continue
                out.append((name, bool(options.get("control_after_generate"))))
    return out


def ui_to_api(ui: dict) -> dict:
    """Convert a UI-format workflow to the API format ``/prompt`` accepts."""
    links = {link[0]: link for link in ui["links"]}
    api: dict[str, dict] = {}
    for node in ui["nodes"]:
        if node["type"] in FRONTEND_ONLY or node.get("mode", 0) in (2, 4):
            continue
        inputs: dict[str, object] = {}
        linked = {}
        for inp in node.get("inputs", []):
            if inp.get("link") is not None:
                link = links[inp["link"]]
                linked[inp["name"]] = [str(link[1]), link[2]]
        values = list(node.get("widgets_values", []))
        position = 0
        for name, control in widget_names(node["type"]):
            if position < len(values):
                if name not in linked:
                    inputs[name] = values[position]
                position += 2 if control else 1
        inputs.update(linked)
        api[str(node["id"])] = {"class_type": node["type"], "inputs": inputs}
    return api


def tiny_graph(api: dict, arch: str, overrides: dict[tuple[str, str], object] | None = None) -> dict:
    """``api`` with every model loader swapped for its tiny test loader and the given widget values overridden."""
    graph = copy.deepcopy(api)
    for node in graph.values():
        if node["class_type"] in LOADER_SWAPS:
            node["class_type"] = LOADER_SWAPS[node["class_type"]]
            node["inputs"]["arch"] = arch
    for (node_id, name), value in (overrides or {}).items():
        assert name in graph[node_id]["inputs"], f"override of unknown input {node_id}.{name}"
        graph[node_id]["inputs"][name] = value
    return graph


def custom_nodes_dir(root: Path) -> Path:
    """A custom_nodes folder holding this pack (under its usual folder name) and the tiny test pack."""
    folder = root / "custom_nodes"
    folder.mkdir(parents=True, exist_ok=True)
    for name, target in ((PACK_FOLDER, REPO), ("evosearch_test_nodes", TINY_PACK)):
        link = folder / name
        if not link.exists():
            link.symlink_to(target, target_is_directory=True)
    return folder


class _StubServer:
    def __init__(self) -> None:
        self.client_id = None
        self.last_node_id = None
        self.last_prompt_id = None
        self.sockets_metadata: dict = {}
        self.messages: list[tuple[str, object]] = []

    def send_sync(self, event, data, sid=None):  # noqa: ANN001
        self.messages.append((event, data))

    def queue_updated(self) -> None:
        pass


class InProcessComfy:
    """ComfyUI's real executor in this process, with this pack and the tiny test pack loaded as custom nodes."""

    _nodes_loaded = False

    @classmethod
    def ensure_nodes(cls, root: Path | None = None) -> None:
        """Load ComfyUI's extra nodes, this pack and the tiny test pack into ``nodes.NODE_CLASS_MAPPINGS`` once."""
        import tempfile

        import folder_paths

        import nodes

        if cls._nodes_loaded:
            return
        root = root or Path(tempfile.mkdtemp(prefix="evosearch-nodes-"))
        folder_paths.add_model_folder_path("custom_nodes", str(custom_nodes_dir(root)))
        asyncio.run(nodes.init_extra_nodes(init_custom_nodes=True, init_api_nodes=False))
        cls._nodes_loaded = True
        for required in ("EvoSearchKSampler", "EvoSearchTestUNETLoader", "PreviewAny", "SamplerCustomAdvanced"):
            assert required in nodes.NODE_CLASS_MAPPINGS, f"{required} did not load"

    def __init__(self, root: Path) -> None:
        from .nodes import module

        self.ensure_nodes(root)
        self.server = _StubServer()
        self.executor = module("nodes.compat").make_prompt_executor(self.server, "CLASSIC")

    def validate(self, graph: dict) -> tuple[bool, object, list, dict]:
        import execution

        return asyncio.run(execution.validate_prompt(str(uuid.uuid4()), graph, None))

    def run(self, graph: dict) -> dict:
        """Validate and execute ``graph``; returns the executor's history result. Raises on any failure."""
        valid, error, outputs, node_errors = self.validate(graph)
        assert valid, f"invalid prompt: {error} {node_errors}"
        self.executor.execute(graph, str(uuid.uuid4()), {}, outputs)
        failures = [m for m in self.executor.status_messages if m[0] == "execution_error"]
        assert self.executor.success and not failures, f"execution failed: {failures}"
        return self.executor.history_result

    def output(self, node_id: str) -> object:
        """The cached outputs of a node after :meth:`run`."""
        from .nodes import module

        return module("nodes.compat").cached_node_outputs(self.executor, node_id)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ComfyServer:
    """The real ComfyUI server on 127.0.0.1 (CPU), with this pack and the tiny test pack as custom nodes."""

    def __init__(self, comfy_path: Path, root: Path, model_paths: dict[str, Path] | None = None) -> None:
        """``model_paths``: extra model folders by kind (e.g. ``{"rewards": path}``), as extra_model_paths.yaml adds."""
        self.port = free_port()
        for folder in (root, root / "user", root / "input"):
            folder.mkdir(parents=True, exist_ok=True)
        config = root / "extra_model_paths.yaml"
        extra = "".join(f"  {kind}: {path}\n" for kind, path in (model_paths or {}).items())
        config.write_text(f"evosearch_test:\n  custom_nodes: {custom_nodes_dir(root)}\n{extra}")
        self.log = (root / "server.log").open("w")
        cmd = [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
               "--extra-model-paths-config", str(config), "--output-directory", str(root / "output"),
               "--temp-directory", str(root / "temp"), "--user-directory", str(root / "user"),
               "--input-directory", str(root / "input"), "--database-url", "sqlite:///:memory:",
               "--disable-auto-launch", *self.compat_flags()]  # fmt: skip
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.process = subprocess.Popen(cmd, cwd=comfy_path, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self.url = f"http://127.0.0.1:{self.port}"
        self.root = root

    @staticmethod
    def compat_flags() -> list[str]:
        """Start flags only some ComfyUI releases have (``--disable-assets``), as the pack's compat layer reads them
        from ComfyUI's own argument parser."""
        from .nodes import module

        return module("nodes.compat").server_flags()

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ComfyUI exited early:\n{(self.root / 'server.log').read_text()[-3000:]}")
            try:
                self.get("/object_info/EvoSearchKSampler")
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError(f"ComfyUI did not answer in {timeout}s:\n{(self.root / 'server.log').read_text()[-3000:]}")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())

    def post(self, path: str, payload: dict | None = None) -> dict:
        data = json.dumps(payload or {}).encode()
        request = urllib.request.Request(self.url + path, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body.strip() else {}

    def queue(self, graph: dict) -> str:
        return self.post("/prompt", {"prompt": graph, "client_id": "evosearch-tests"})["prompt_id"]

    def wait_history(self, prompt_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            history = self.get(f"/history/{prompt_id}")
            if prompt_id in history and history[prompt_id].get("status", {}).get("completed") is not None:
                entry = history[prompt_id]
                if entry["status"].get("status_str") in ("success", "error"):
                    return entry
            time.sleep(0.25)
        raise TimeoutError(f"prompt {prompt_id} did not finish in {timeout}s")

    def close(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()
