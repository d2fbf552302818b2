"""Seeded randomness with one independent stream per individual.

Every random choice of a search is drawn from a ``torch.Generator`` whose seed is derived from the user's seed and a
label path (``derive_seed(seed, "sde", generation, index, step)``). No global RNG is touched, and because each
individual owns its streams, an individual's trajectory does not depend on which other individuals share its batch:
results are bit-identical for every chunk size (docs/method.md §9; ComfyUI's default noise samplers draw one tensor for
the whole batch, which breaks this).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch

__all__ = ["derive_seed", "normal_rows", "IndividualNoise"]

_MASK63 = (1 << 63) - 1
# Elements drawn per individual per refill of an IndividualNoise block: bounds memory (4 bytes each) while keeping the
# number of small generator calls low for tiny states. Fixed, so the draw pattern never depends on the batch.
_BLOCK_ELEMENTS = 1 << 16


def derive_seed(seed: int, *path: int | str) -> int:
    """A 63-bit seed for the stream named by ``path`` under ``seed`` (stable across runs, platforms and Pythons)."""
    text = ":".join([str(int(seed))] + [str(p) for p in path])
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little") & _MASK63


def _generator(seed: int) -> torch.Generator:
    generator = torch.Generator(device="cpu")
    generator.manual_seed(seed)
    return generator


def normal_rows(
    seeds: Sequence[int],
    shape: Sequence[int],
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """``Tensor[len(seeds), *shape]`` of standard normals, row ``i`` drawn from its own generator seeded ``seeds[i]``.

    Drawn on the CPU in float32 and then moved, so the values are the same on every device.
    """
    shape = tuple(int(s) for s in shape)
    if not seeds:
        return torch.empty((0, *shape), device=device, dtype=dtype)
    rows = [torch.randn(shape, generator=_generator(s)) for s in seeds]
    return torch.stack(rows).to(device=device, dtype=dtype)


class IndividualNoise:
    """A k-diffusion ``noise_sampler(sigma, sigma_next) -> Tensor[B, ...]`` with one stream per batch row.

    Row ``i`` of every call comes from the generator seeded ``seeds[i]``, consumed in call order. Normals are drawn in
    blocks of a size that depends only on the state's size, so the values an individual receives never depend on the
    batch it is in.
    """

    def __init__(
        self,
        seeds: Sequence[int],
        shape: Sequence[int],
        *,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        self.shape = tuple(int(s) for s in shape)
        numel = 1
        for s in self.shape:
            numel *= s
        self.block = max(1, min(64, _BLOCK_ELEMENTS // max(numel, 1)))
        self.device = torch.device(device)
        self.dtype = dtype
        self._generators = [_generator(s) for s in seeds]
        self._buffer: torch.Tensor | None = None
        self._cursor = self.block
        self.calls = 0

    def __len__(self) -> int:
        return len(self._generators)

    def _refill(self) -> None:
        rows = [torch.randn((self.block, *self.shape), generator=g) for g in self._generators]
        buffer = torch.stack(rows, dim=1) if rows else torch.empty((self.block, 0, *self.shape))
        self._buffer = buffer.to(device=self.device, dtype=self.dtype)
        self._cursor = 0

    def __call__(self, sigma: object = None, sigma_next: object = None) -> torch.Tensor:
        if self._cursor >= self.block:
            self._refill()
        assert self._buffer is not None
        out = self._buffer[self._cursor]
        self._cursor += 1
        self.calls += 1
        return out
