"""Rank agreement between two scorings of the same candidates (torch only): does a cheap decoder rank as the full one?

* :func:`spearman`: Spearman's ρ (Pearson correlation of average ranks, so ties are handled).
* :func:`top_k_overlap`: the share of the reference's top ``k`` that the other scoring also puts in its top ``k``.
* :func:`top1_hit`: whether the other scoring's best is the reference's best, and the reference rank it has.
"""

from __future__ import annotations

import math

import torch

__all__ = ["average_ranks", "spearman", "top1_hit", "top_k_overlap"]


def average_ranks(values: torch.Tensor) -> torch.Tensor:
    """Ranks 0…n−1 of a 1-D tensor (ascending), ties sharing their average rank."""
    v = values.detach().double().flatten()
    order = torch.argsort(v, stable=True)
    ranks = torch.empty_like(v)
    ranks[order] = torch.arange(len(v), dtype=torch.double)
    unique, inverse = torch.unique(v, return_inverse=True)
    if len(unique) < len(v):  # replace each tie group's ranks by their mean
        sums = torch.zeros(len(unique), dtype=torch.double).index_add_(0, inverse, ranks)
        counts = torch.zeros(len(unique), dtype=torch.double).index_add_(0, inverse, torch.ones_like(ranks))
        ranks = (sums / counts)[inverse]
    return ranks


def spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    """Spearman's rank correlation of two equally long score vectors (NaN when either is constant)."""
    if a.numel() != b.numel() or a.numel() < 2:
        raise ValueError(f"spearman: need two score vectors of the same length ≥ 2, got {a.numel()} and {b.numel()}")
    ra, rb = average_ranks(a), average_ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    denom = math.sqrt(float((ra * ra).sum()) * float((rb * rb).sum()))
    return float((ra * rb).sum()) / denom if denom > 0 else float("nan")


def top_k_overlap(reference: torch.Tensor, other: torch.Tensor, fraction: float) -> float:
    """Share of the ``reference`` top ``ceil(fraction·n)`` that ``other`` also puts in its top as many."""
    n = reference.numel()
    k = max(1, math.ceil(fraction * n))
    top_ref = set(torch.topk(reference.flatten().double(), k).indices.tolist())
    top_other = set(torch.topk(other.flatten().double(), k).indices.tolist())
    return len(top_ref & top_other) / k


def top1_hit(reference: torch.Tensor, other: torch.Tensor) -> tuple[bool, int]:
    """(``other``'s best is ``reference``'s best, that candidate's rank under ``reference``: 0 = its best)."""
    pick = int(torch.argmax(other.flatten()))
    rank = int((reference.flatten() > reference.flatten()[pick]).sum())
    return pick == int(torch.argmax(reference.flatten())), rank
