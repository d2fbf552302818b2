"""Nothing is downloaded (loaders run with the network blocked) and rewards/ never imports ComfyUI."""

from __future__ import annotations

import ast
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from support import reward_fixtures as rf
from support.paths import REPO

from rewards import get_kind, load_reward, reward_kinds

FORBIDDEN = ("comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "server", "nodes", "execution")


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise NetworkBlocked(f"network access attempted: {args[:2]}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(var, raising=False)


def test_network_block_works(no_network):
    with pytest.raises(NetworkBlocked):
        socket.create_connection(("huggingface.co", 443), timeout=1)


@pytest.mark.parametrize("kind", reward_kinds())
def test_every_kind_loads_and_scores_offline(kind, reward_root, tmp_path, no_network, gen):
    """A fresh copy of the tiny weights (so nothing comes from the in-memory cache), loaded with sockets refused."""
    if reason := rf.unavailable(kind):
        pytest.skip(reason)
    spec = get_kind(kind)
    if spec.needs_weights:
        shutil.copytree(reward_root / spec.folder, tmp_path / spec.folder)
        if kind == "aesthetic":
            shutil.copytree(reward_root / "clipscore", tmp_path / "clipscore")
    reward = load_reward(kind, roots=[tmp_path], prompt=rf.kind_prompt(kind, "a cat"), **rf.tiny_options(kind))
    shape = dict(b=2, h=40, w=56, t=4) if spec.accepts_video and spec.needs_weights else dict(b=2, h=40, w=56)
    assert torch.isfinite(reward.score(rf.images(gen, **shape))).all()


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_rewards_never_import_comfyui():
    for path in sorted((REPO / "rewards").rglob("*.py")):
        bad = _imports(path) & set(FORBIDDEN)
        assert not bad, f"{path.relative_to(REPO)} imports {sorted(bad)}: only nodes/ may import ComfyUI"


def test_importing_rewards_is_light():
    """``import rewards`` loads neither transformers nor open_clip (they come with the first model)."""
    code = (
        "import sys, rewards; rewards.reward_kinds(); "
        "print(sorted(m for m in ('transformers', 'open_clip') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
