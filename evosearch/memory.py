"""Memory a search will need, known before it runs, and the refusal of one that would not fit.

The population goes through the model chunk by chunk, so *device* memory follows the chunk. What the search keeps
between model calls — selection pools (pruned to the members a selection can still choose, :mod:`evosearch.pool`),
a generation's children, its finished samples, the best — lives on the storage device (ComfyUI's intermediate device,
normally the CPU) and follows the population. Each strategy bounds the number of state-sized tensors it holds at once
(``Strategy.stored_states``); times the bytes of one state that is the estimate. A schedule whose estimate exceeds
what the storage device has free is refused before any model call, with the numbers and the fix.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import torch

__all__ = ["MemoryEstimate", "SearchTooLarge", "available_bytes", "estimate_memory", "check_memory", "human_bytes"]


class SearchTooLarge(ValueError):
    """The schedule would hold more states than the storage device can take."""


def human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


@dataclass(frozen=True)
class MemoryEstimate:
    """Peak state-sized tensors on the storage device, their bytes, and the per-chunk device working set."""

    stored_states: int
    state_bytes: int
    chunk: int

    @property
    def storage_bytes(self) -> int:
        return self.stored_states * self.state_bytes

    @property
    def device_bytes(self) -> int:
        """States, x0 predictions, noise buffers and captures of one chunk in flight (the model's own is extra)."""
        return 6 * self.chunk * self.state_bytes

    def describe(self) -> str:
        return (
            f"up to {self.stored_states:,} stored states × {human_bytes(self.state_bytes)} = "
            f"{human_bytes(self.storage_bytes)} held between model calls"
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "stored_states": self.stored_states,
            "state_bytes": self.state_bytes,
            "storage_bytes": self.storage_bytes,
            "device_bytes_per_chunk": self.device_bytes,
        }


def estimate_memory(
    strategy: type, schedule: object, mutation: object, steps: int, shape: tuple[int, ...], dtype: torch.dtype,
    chunk: int, extra_states: int = 0,
) -> MemoryEstimate:  # fmt: skip
    """The peak memory of running ``schedule`` (see the module docstring); ``extra_states`` are what the runner keeps
    besides (the hall of fame of the best finished samples)."""
    element = torch.empty((), dtype=dtype).element_size()
    state = math.prod(int(s) for s in shape) * element
    stored = int(strategy.stored_states(schedule, mutation, int(steps), int(chunk))) + int(extra_states)
    return MemoryEstimate(stored_states=stored, state_bytes=state, chunk=int(chunk))


def available_bytes(device: torch.device) -> int | None:
    """Free memory of ``device``: CUDA's free memory, the host's MemAvailable (Linux) or free pages; ``None`` if
    it cannot be read."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(estimate: MemoryEstimate, storage: torch.device, limit: int | None = None) -> None:
    """Refuse a search whose stored states exceed ``limit`` bytes (default: 90 % of the storage device's free
    memory) with a :class:`SearchTooLarge` giving the estimate, the limit and the fix."""
    if limit is None:
        free = available_bytes(storage)
        if free is None:
            return
        limit = int(free * 0.9)
        where = f"90 % of the {human_bytes(free)} free on {storage}"
    else:
        where = f"the memory_limit of {human_bytes(limit)}"
    if estimate.storage_bytes > limit:
        raise SearchTooLarge(
            f"this schedule would hold {estimate.describe()}, more than {where}; lower the budget, use fewer "
            "evolution steps or a smaller population, a greedier tournament (fewer states stay selectable), or a "
            "smaller latent"
        )
