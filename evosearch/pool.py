"""Selection pools that keep only the states a selection can still choose.

A selection pool is every trajectory archived at one evolution step, each with its state there and the reward it was
scored with (EvoSearch's pool at s_g holds every trajectory evaluated so far: 42, 68, 94, 120 for the SD2.1 preset).
Its final size P and the selection's rules are known before the first member arrives, and they bound which members
can ever be chosen:

* an elite is one of the m best;
* a tournament winner is the best of b distinct contestants (ties to the first drawn), so it needs b − 1 others that
  are not better than it: a member with P − b + 1 or more strictly better members can never win.

So once K = max(m, P − b + 1) members are strictly better than some member, its state can be dropped: rewards only
accumulate, and nothing dropped is ever selected. With the paper's greedy tournament (b = ⌊0.9·P⌋) the pool keeps
about a tenth of its states. Every reward is kept, so selections run on the full pool and draw exactly the same random
numbers as an unpruned pool would (docs/architecture.md, "Memory").
"""

from __future__ import annotations

import torch

from .selection import rank_key

__all__ = ["SelectionPool", "keep_for"]


def keep_for(
    size: int, elites: int, tournament: int | None, tournaments: int, max_wins: int | None = None
) -> int | None:
    """How many members of a pool of ``size`` a selection can choose from: ``None`` for all (e.g. multinomial
    resampling, ``tournament=None``); else max(elites, size − tournament + 1) when there are tournaments, plus one
    per member that a ``max_wins`` cap can take out of the tournaments (then tournaments draw among fewer)."""
    if tournament is None:
        return None
    if tournaments <= 0:
        return min(size, max(elites, 0))
    capped = 0 if max_wins is None else -(-tournaments // max_wins)
    return min(size, max(elites, size - int(tournament) + 1) + capped)


class SelectionPool:
    """Members of one selection pool, in arrival order; states are kept only for members that may be selected.

    Args:
        keep: how many best members may still be chosen (:func:`keep_for`); ``None`` keeps every state.
    """

    def __init__(self, keep: int | None = None) -> None:
        self.keep = keep
        self._rewards: list[torch.Tensor] = []
        self._size = 0
        self._index = torch.empty(0, dtype=torch.long)  # pool positions of the kept states
        self._states: torch.Tensor | None = None
        self._denoised: torch.Tensor | None = None

    def __len__(self) -> int:
        return self._size

    @property
    def kept(self) -> int:
        return int(self._index.numel())

    @property
    def rewards(self) -> torch.Tensor:
        """Every member's reward, in arrival order (float32, CPU)."""
        return torch.cat(self._rewards) if self._rewards else torch.empty(0)

    def add(self, rewards: torch.Tensor, states: torch.Tensor, denoised: torch.Tensor | None = None) -> None:
        """Append members (their rewards, states and optional x0 predictions), then drop states never selectable."""
        n = int(rewards.numel())
        if states.shape[0] != n or (denoised is not None and denoised.shape[0] != n):
            raise ValueError(f"pool members: {n} rewards for {states.shape[0]} states")
        self._rewards.append(rewards.detach().to("cpu", torch.float32))
        index = torch.arange(self._size, self._size + n)
        self._size += n
        self._index = torch.cat([self._index, index])
        self._states = states if self._states is None else torch.cat([self._states, states])
        if denoised is not None:
            self._denoised = denoised if self._denoised is None else torch.cat([self._denoised, denoised])
        self._prune()

    def _prune(self) -> None:
        if self.keep is None or self.kept <= self.keep:
            return
        key = rank_key(self.rewards)
        threshold = torch.sort(key, descending=True).values[self.keep - 1] if self.keep > 0 else float("inf")
        keep = key[self._index] >= threshold  # ties with the K-th best stay: they may still win a tournament
        self._index = self._index[keep]
        assert self._states is not None
        self._states = self._states[keep.to(self._states.device)]
        if self._denoised is not None:
            self._denoised = self._denoised[keep.to(self._denoised.device)]

    def _rows(self, members: torch.Tensor) -> torch.Tensor:
        position = torch.full((self._size,), -1, dtype=torch.long)
        position[self._index] = torch.arange(self.kept)
        rows = position[members.to(torch.long)]
        if (rows < 0).any():
            raise RuntimeError("a selection chose a pool member whose state was pruned (pool rules violated)")
        return rows

    def states(self, members: torch.Tensor) -> torch.Tensor:
        """States of the given pool members (positions in arrival order)."""
        assert self._states is not None
        return self._states[self._rows(members).to(self._states.device)]

    def denoised(self, members: torch.Tensor) -> torch.Tensor | None:
        """x0 predictions of the given members, if the pool holds them."""
        if self._denoised is None:
            return None
        return self._denoised[self._rows(members).to(self._denoised.device)]
