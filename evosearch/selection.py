"""Selection operators: elitism, tournaments (EvoSearch, docs/method.md §3) and FK-steering resampling.

All take rewards as a 1-D tensor (NaN is treated as the worst value) and an explicit ``torch.Generator``.
"""

from __future__ import annotations

import torch

__all__ = ["rank_key", "elite_indices", "tournament_select", "fk_potential", "multinomial_resample"]


def rank_key(rewards: torch.Tensor) -> torch.Tensor:
    """Rewards as float64 with NaN mapped to −inf, for sorting and comparisons."""
    key = rewards.detach().to("cpu", torch.float64)
    return torch.where(torch.isnan(key), torch.full_like(key, float("-inf")), key)


def elite_indices(rewards: torch.Tensor, m: int) -> torch.Tensor:
    """Indices of the ``m`` best individuals, best first (ties keep pool order)."""
    if m < 0 or m > rewards.numel():
        raise ValueError(f"elites={m} must be in [0, {rewards.numel()}] for a pool of {rewards.numel()}")
    order = torch.sort(rank_key(rewards), descending=True, stable=True).indices
    return order[:m]


def tournament_select(
    rewards: torch.Tensor, n: int, size: int, generator: torch.Generator, *, max_wins: int | None = None
) -> torch.Tensor:
    """``n`` winners of independent tournaments, each among ``size`` distinct pool members drawn uniformly.

    Ties inside a tournament go to the contestant drawn first. ``max_wins`` caps how many tournaments one member may
    win (a diversity-preserving selection: no parent gets more than that many children); capped members stop
    entering tournaments, which are then drawn among the others (of ``size`` members while enough remain).
    """
    pool = rewards.numel()
    if not 1 <= size <= pool:
        raise ValueError(f"tournament size {size} must be in [1, {pool}] (the pool holds {pool} individuals)")
    if n <= 0:
        return torch.empty(0, dtype=torch.long)
    # A random permutation per tournament; its first `size` (eligible) entries are the contestants.
    orders = torch.rand((n, pool), generator=generator).argsort(dim=1)
    key = rank_key(rewards)
    if max_wins is None or max_wins >= n:
        contestants = orders[:, :size]
        winner_pos = key[contestants].argmax(dim=1)
        return contestants.gather(1, winner_pos[:, None])[:, 0]
    wins = torch.zeros(pool, dtype=torch.long)
    winners = []
    for order in orders:
        eligible = order[wins[order] < max_wins]
        if eligible.numel() == 0:  # every member at its cap: the cap cannot hold, draw from all
            eligible = order
        contestants = eligible[:size]
        winner = contestants[int(key[contestants].argmax())]
        wins[winner] += 1
        winners.append(winner)
    return torch.stack(winners)


def fk_potential(
    rewards: torch.Tensor, previous: torch.Tensor | None, potential: str, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """FK-steering log-weights and the per-particle statistic to carry forward (Singhal et al. 2025, §3).

    ``"max"``: λ·max(r_t, r_prev) carrying the running max; ``"diff"``: λ·(r_t − r_prev) carrying r_t;
    ``"add"``: λ·(r_t + Σ r_prev) carrying the running sum. ``previous`` is ``None`` at the first resampling.
    """
    r = rank_key(rewards)
    if potential == "max":
        carried = r if previous is None else torch.maximum(r, previous)
        log_w = lam * carried
    elif potential == "diff":
        carried = r
        log_w = lam * (r if previous is None else r - previous)
    elif potential == "add":
        carried = r if previous is None else r + previous
        log_w = lam * carried
    else:
        raise ValueError(f"potential must be 'max', 'diff' or 'add', got {potential!r}")
    return log_w, carried


def multinomial_resample(log_weights: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` indices drawn with replacement, proportionally to exp(log_weights); all −inf means uniform."""
    log_w = log_weights.to(torch.float64)
    finite = torch.isfinite(log_w)
    if not finite.any():
        probs = torch.ones_like(log_w)
    else:
        log_w = torch.where(finite, log_w, torch.full_like(log_w, float("-inf")))
        probs = torch.exp(log_w - log_w[finite].max())
    return torch.multinomial(probs, n, replacement=True, generator=generator)
