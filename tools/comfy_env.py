"""Import ComfyUI in-process on the CPU (or its default device) and this pack as ``evosearch_pack``, for tools/bench.

Same order as ComfyUI's main.py (and tests/support/comfy.py): ComfyUI's root first on ``sys.path`` so its ``nodes``
module wins over this repo's ``nodes/`` package, CLI args set before ``comfy.model_management`` is imported, and
``utils.extra_config`` imported before ``nodes``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
PACK_NAME = "evosearch_pack"
COMFYUI_ENV = "COMFYUI_PATH"


def find_comfyui(path: str | Path | None = None) -> Path:
    """``path`` or ``$COMFYUI_PATH`` as a checked ComfyUI source tree."""
    value = str(path) if path is not None else os.environ.get(COMFYUI_ENV, "")
    if not value:
        raise RuntimeError(f"ComfyUI not found: pass --comfyui PATH or set {COMFYUI_ENV} to a ComfyUI source tree")
    root = Path(value).expanduser().resolve()
    if not (root / "comfy" / "model_management.py").is_file() or not (root / "nodes.py").is_file():
        raise RuntimeError(f"{root} is not a ComfyUI source tree (no comfy/model_management.py or nodes.py)")
    return root


def boot_comfyui(path: str | Path | None = None, *, cpu: bool = True) -> ModuleType:
    """Import ComfyUI (``--cpu`` when ``cpu``) and return this repository loaded as the package ``evosearch_pack``."""
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    root = str(find_comfyui(path))
    if root in sys.path:
        sys.path.remove(root)
    sys.path.insert(0, root)
    import comfy.options

    comfy.options.enable_args_parsing(False)
    from comfy.cli_args import args

    args.cpu = cpu
    import comfy.model_management
    import utils.extra_config  # noqa: F401  (ComfyUI's own, before nodes)

    import nodes  # noqa: F401  (ComfyUI's nodes.py)

    return load_pack()


def load_pack() -> ModuleType:
    """Import the repository as the package ``evosearch_pack`` (what ComfyUI does with a custom-node folder).

    ComfyUI must be imported first (its ``nodes`` module has to win over this repo's ``nodes/`` package).
    """
    if PACK_NAME in sys.modules:
        return sys.modules[PACK_NAME]
    spec = importlib.util.spec_from_file_location(
        PACK_NAME, REPO / "__init__.py", submodule_search_locations=[str(REPO)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACK_NAME] = module
    spec.loader.exec_module(module)
    return module
