"""Share loaded reward models between reward objects while they are alive.

Two Load Reward nodes on the same file, or CLIPScore and the aesthetic head on the same CLIP ViT-L/14, get one
model: one copy in memory, one ModelPatcher on the ComfyUI side, and (inside a feature scope) one image forward.
Entries are weak: a model is freed when no reward uses it any more. A changed file (mtime or size) is a new entry.
"""

from __future__ import annotations

import json
import threading
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["shared_model"]

T = TypeVar("T")
_cache: weakref.WeakValueDictionary = weakref.WeakValueDictionary()
_lock = threading.RLock()


def _key(tag: str, path: Path, options: dict[str, Any]) -> tuple:
    stat = path.stat()
    return (tag, str(path.resolve()), stat.st_mtime_ns, stat.st_size, json.dumps(options, sort_keys=True, default=str))


def shared_model(tag: str, path: str | Path, options: dict[str, Any], build: Callable[[], T]) -> T:
    """The live model built for ``(tag, file, options)``, or ``build()`` stored for the next caller."""
    key = _key(tag, Path(path), options)
    with _lock:
        model = _cache.get(key)
        if model is None:
            model = build()
            _cache[key] = model
        return model
