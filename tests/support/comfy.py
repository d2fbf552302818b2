"""Boot ComfyUI in-process on the CPU and load this pack under a fixed package name (docs/comfyui.md §7–8).

Order matters: ComfyUI's root goes first on sys.path (so its top-level ``nodes`` module wins over this repo's
``nodes/`` package), ``args.cpu`` is set before ``comfy.model_management`` is imported, and ComfyUI's
``utils.extra_config`` is imported before ``nodes``, as main.py does.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from types import ModuleType

from tools.comfy_env import PACK_NAME, load_pack

from .paths import REPO, comfyui_path

__all__ = ["PACK_NAME", "boot", "load_pack"]

_booted: ModuleType | None = None


def boot() -> ModuleType:
    """Import ComfyUI (CPU mode) once and return this pack loaded as ``evosearch_pack``."""
    global _booted
    if _booted is not None:
        return _booted
    path, reason = comfyui_path()
    if path is None:
        raise RuntimeError(reason)
    root = str(path)
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    repo = str(REPO)
    # This repo's own `nodes/` must not shadow ComfyUI's nodes.py: keep the repo root behind ComfyUI's.
    if repo in sys.path:
        sys.path.remove(repo)
        sys.path.insert(1, repo)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = True
    args.disable_all_custom_nodes = False
    import comfy.model_management  # noqa: F401
    import utils.extra_config  # noqa: F401  (ComfyUI's own; main.py imports it before nodes)

    import nodes  # noqa: F401  (ComfyUI's nodes.py)

    assert Path(nodes.__file__).resolve().parent == path, f"wrong nodes module imported: {nodes.__file__}"
    # oneDNN compiles kernels for every new input shape (~10 s per tiny UNet on this CPU); the tiny models run as fast
    # without it, and searches meet many batch sizes.
    import torch

    torch.backends.mkldnn.enabled = False
    # The tiny models gain nothing from intra-op threads, and on a shared CPU every op then waits for the other thread
    # (~6 ms per op measured here, 10x a search's time). EVOSEARCH_TEST_THREADS overrides.
    torch.set_num_threads(int(os.environ.get("EVOSEARCH_TEST_THREADS", "1")))
    _booted = load_pack()
    return _booted
