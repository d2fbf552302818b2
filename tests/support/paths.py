"""Where the repository, the shared data and ComfyUI are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: ../shared/data beside the checkout (CI clones main with shared/ beside it), or EVOSEARCH_SHARED_DATA (.ci/run sets
#: it to this machine's copy); the tests that need it skip, saying where they looked, without it.
SHARED_DATA = Path(os.environ.get("EVOSEARCH_SHARED_DATA") or REPO.parent / "shared" / "data")
#: The one documented variable that locates ComfyUI's source tree for host and workflow tests.
COMFYUI_ENV = "COMFYUI_PATH"


def comfyui_path() -> tuple[Path | None, str]:
    """(path, "") when COMFYUI_PATH points at a ComfyUI checkout, else (None, reason to skip)."""
    value = os.environ.get(COMFYUI_ENV, "")
    if not value:
        return None, f"{COMFYUI_ENV} is not set (point it at a ComfyUI source tree to run the host tests)"
    path = Path(value).expanduser().resolve()
    if not (path / "comfy" / "model_management.py").is_file() or not (path / "nodes.py").is_file():
        return None, f"{COMFYUI_ENV}={value} is not a ComfyUI source tree (no comfy/model_management.py, nodes.py)"
    return path, ""
