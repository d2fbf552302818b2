"""Errors for reward weight files: each one says what was expected, where it was looked for, and where to get it.

Three situations (issue 4, "Loading"):

* :class:`MissingRewardFile` — nothing with an expected name in the folders searched;
* :class:`BadRewardFile` — a file is there but cannot be read (truncated download, not a weight file, a pickle that
  ``weights_only=True`` refuses) or holds the wrong tensors (missing/unexpected keys, mismatched shapes).

Both derive from :class:`RewardFileError` so callers can catch one type.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

__all__ = ["RewardFileError", "MissingRewardFile", "BadRewardFile", "describe_mismatch", "human_size"]

#: How many keys of each kind a mismatch message lists before "… and N more".
MAX_LISTED = 8


class RewardFileError(Exception):
    """Base class of the reward weight-file errors."""


class MissingRewardFile(RewardFileError, FileNotFoundError):
    """No weight file with an expected name was found."""

    def __init__(self, what: str, expected: Sequence[str], searched: Sequence[Path | str], source: str) -> None:
        folders = ", ".join(str(p) for p in searched) or "(no folder: pass a file path)"
        names = ", ".join(expected)
        super().__init__(
            f"{what}: no weight file found. Expected one of: {names}; searched: {folders}. "
            f"Download the official file from {source} and put it in one of those folders "
            "(nothing is downloaded automatically)."
        )


class BadRewardFile(RewardFileError, ValueError):
    """A weight file exists but is unreadable, truncated, or holds the wrong tensors."""


def human_size(n: int) -> str:
    """``1234567`` → ``'1.2 MB'`` (decimal units, like download pages)."""
    size = float(n)
    for unit in ("bytes", "kB", "MB", "GB"):
        if size < 1000 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.1f} GB"  # pragma: no cover


def _listing(label: str, items: Sequence[str]) -> str:
    if not items:
        return ""
    shown = ", ".join(items[:MAX_LISTED])
    more = f" … and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else ""
    return f"{label} ({len(items)}): {shown}{more}"


def describe_mismatch(
    missing: Iterable[str],
    unexpected: Iterable[str],
    shapes: Iterable[tuple[str, tuple[int, ...], tuple[int, ...]]],
) -> str:
    """One paragraph naming the keys the model needs but the file lacks, the extra keys, and shape conflicts."""
    missing, unexpected = sorted(missing), sorted(unexpected)
    shape_lines = [f"{k} file {tuple(got)} vs model {tuple(want)}" for k, got, want in shapes]
    parts = [
        _listing("missing keys", missing),
        _listing("unexpected keys", unexpected),
        _listing("shape mismatches", shape_lines),
    ]
    return "; ".join(p for p in parts if p)
