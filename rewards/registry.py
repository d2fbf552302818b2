"""The registry of reward kinds: what each expects on disk, where the official files come from, and how it loads.

Weights live under a ``rewards`` models folder with one sub-folder per kind (ComfyUI registers it with
``folder_paths``; outside ComfyUI pass plain folders as ``roots``)::

    models/rewards/
        imagereward/ImageReward.pt
        clipscore/clip-vit-large-patch14/        (HF folder)  or ViT-L-14.pt (OpenAI JIT) or an open_clip file
        hpsv2/HPS_v2.1_compressed.pt             (or HPS_v2_compressed.pt)
        pickscore/PickScore_v1/                  (HF folder)
        aesthetic/sac+logos+ava1-l14-linearMSE.pth   (+ the CLIP ViT-L/14 from clipscore/)
        videoreward/VideoReward/ + videoreward/Qwen2-VL-2B-Instruct/
        vqascore/Qwen2.5-VL-7B-Instruct/         (or another Qwen2-VL / Qwen2.5-VL instruct HF folder)
        hpsv3/HPSv3.safetensors + hpsv3/Qwen2-VL-7B-Instruct/ (config + tokenizer) + hpsv3/prompt_template.txt
        aesthetic_v25/aesthetic_predictor_v2_5.pth + aesthetic_v25/siglip-so400m-patch14-384/

:func:`load_reward` finds the file (an explicit path, a name inside a kind's folder, or the first expected name
found), then calls the kind's loader. Nothing is downloaded: a missing file raises
:class:`~rewards.errors.MissingRewardFile` naming the expected files, the folders searched and the official source.
:func:`register_kind` adds kinds (names must be unique).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .errors import BadRewardFile, MissingRewardFile
from .weights import parse_dtype

__all__ = [
    "RewardKind",
    "register_kind",
    "get_kind",
    "reward_kinds",
    "find_weights",
    "list_weights",
    "load_reward",
    "WEIGHT_SUFFIXES",
]

log = logging.getLogger("evosearch.rewards")

#: File types a weights listing shows (folders are listed too: Hugging Face model folders).
WEIGHT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt")

Loader = Callable[..., Any]


@dataclass(frozen=True)
class RewardKind:
    """One reward kind.

    ``files`` are the expected names inside ``<root>/<folder>/`` in order of preference (files or HF folders);
    ``loader(path, *, dtype, prompt, roots, **options)`` builds the reward (``path`` is ``None`` for kinds without
    weights). ``size`` is the official file's size for error messages.
    """

    name: str
    title: str
    folder: str
    files: tuple[str, ...]
    source: str
    licence: str
    loader: Loader
    description: str = ""
    size: str = ""
    accepts_video: bool = False
    needs_prompt: bool = True
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def needs_weights(self) -> bool:
        return bool(self.files)

    def expected(self) -> str:
        """ "Expected X (about N) from SOURCE" — the tail of every error about this kind's files."""
        if not self.files:
            return ""
        size = f" (about {self.size})" if self.size else ""
        return f"Expected {' or '.join(self.files)}{size} in models/rewards/{self.folder}/, from {self.source}."


_KINDS: dict[str, RewardKind] = {}


def register_kind(kind: RewardKind) -> RewardKind:
    """Add a reward kind; a name that is already taken is a ``ValueError``."""
    _ensure_builtins()
    if kind.name in _KINDS:
        raise ValueError(f"reward kind {kind.name!r} is already registered ({_KINDS[kind.name].title})")
    _KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> RewardKind:
    """The kind called ``name`` or a ``ValueError`` listing the known ones."""
    _ensure_builtins()
    try:
        return _KINDS[name]
    except KeyError:
        raise ValueError(f"unknown reward kind {name!r}; known kinds: {', '.join(_KINDS)}") from None


def reward_kinds() -> list[str]:
    """Names of all registered kinds, built-ins first."""
    _ensure_builtins()
    return list(_KINDS)


def _folders(kind: RewardKind, roots: Sequence[str | os.PathLike]) -> list[Path]:
    return [Path(r) / kind.folder for r in roots]


def list_weights(kind: str | RewardKind, roots: Sequence[str | os.PathLike]) -> list[Path]:
    """Weight files and model folders present in the kind's folder under each root (expected names first)."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    found: list[Path] = []
    for folder in _folders(kind, roots):
        if not folder.is_dir():
            continue
        entries = sorted(folder.iterdir(), key=lambda p: (p.name not in kind.files, p.name.lower()))
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.is_dir() or entry.suffix in WEIGHT_SUFFIXES:
                found.append(entry)
    return found


def find_weights(kind: str | RewardKind, roots: Sequence[str | os.PathLike], name: str | None = None) -> Path:
    """The weights to load: ``name`` in the kind's folders (or an existing path), else the first expected name found,
    else the only weight entry present; otherwise :class:`MissingRewardFile`."""
    kind = get_kind(kind) if isinstance(kind, str) else kind
    folders = _folders(kind, roots)
    if name:
        direct = Path(name).expanduser()
        if direct.is_absolute():
            if direct.exists():
                return direct
            raise MissingRewardFile(kind.title, [direct.name], [direct.parent], kind.source)
        for folder in folders:
            if (folder / name).exists():
                return folder / name
        if direct.exists():
            return direct
        raise MissingRewardFile(kind.title, [name], folders, kind.source)
    for expected in kind.files:
        for folder in folders:
            if (folder / expected).exists():
                return folder / expected
    present = list_weights(kind, roots)
    if len(present) == 1:
        log.info("%s: using %s (the only weights in its folder)", kind.title, present[0])
        return present[0]
    raise MissingRewardFile(kind.title, list(kind.files), folders, kind.source)


def load_reward(
    kind: str,
    path: str | os.PathLike | None = None,
    *,
    roots: Sequence[str | os.PathLike] = (),
    dtype: torch.dtype | str | None = torch.float32,
    prompt: str | None = None,
    **options: Any,
) -> Any:
    """Build a reward of ``kind`` from ``path`` (a file/folder, or a name inside ``<root>/<folder>/``) or, without
    one, from the first expected file under ``roots``. ``dtype`` is fp32/bf16/fp16; ``prompt`` is the text the reward
    scores against when called without prompts; ``options`` go to the kind's loader. The result is on the CPU."""
    spec = get_kind(kind)
    weights = find_weights(spec, roots, None if path is None else str(path)) if spec.needs_weights else None
    try:
        return spec.loader(weights, dtype=parse_dtype(dtype), prompt=prompt, roots=tuple(roots), **options)
    except BadRewardFile as e:
        if spec.expected() and spec.source.split()[0] not in str(e):
            raise BadRewardFile(f"{e} {spec.expected()}") from e
        raise


_builtins_loaded = False


def _ensure_builtins() -> None:
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        from . import builtin_kinds  # noqa: F401  (registers the built-in kinds)
