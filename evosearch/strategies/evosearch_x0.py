"""EvoSearch with x0-prediction fitness: the paper's selection, elitism and mutation on FK-steering's free proxy.

The population moves together. Generation g (``population[g]`` individuals) runs from s_{g−1} to s_g (s_{−1} = 0);
the x0 predictions its last step made anyway are decoded and scored, and the states at s_g are evolved: the top m pass
unchanged, the rest are tournament winners mutated at s_g (docs/method.md §4; ``redraw`` keeps the winner's x0
prediction, ``additive`` adds σ_step·ε). The last generation runs to the end and is scored on its clean samples.

Each individual costs one trajectory's steps: NFE = Σ_g k_g·c(s_{g−1}, s_g). The x0 scores are proxies: they steer
selection but never compete for the returned best, which is the best finished sample.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch

from ..mutation import Mutation
from ..pool import SelectionPool
from ..schedule import Schedule, default_evolution_steps
from .base import Batch, Scored, SearchContext, Segment, Strategy
from .evosearch_rollout import check_evolution_rules, evolve, pool_keep
from .registry import register_strategy

log = logging.getLogger(__name__)


def check_proxy_steps(schedule: Schedule) -> None:
    """x0-fitness generations are scored at s_g on step s_g − 1's prediction, so s_0 must be at least 1."""
    steps = schedule.evolution_steps
    if steps and steps[0] < 1:
        raise ValueError(
            "evolution/resample steps must be >= 1 with x0 fitness (the first x0 prediction is made at step 0 "
            f"and scored at step 1; at pure noise it says nothing), got {list(steps)}"
        )


def proxy_segments(schedule: Schedule) -> list[Segment]:
    """Generation g runs from s_{g−1} to s_g; the last one to the end."""
    bounds = [0, *schedule.evolution_steps]
    stops = [*schedule.evolution_steps, None]
    return [Segment(k, a, b) for k, a, b in zip(schedule.population, bounds, stops)]


class ProxyGenerations(Strategy):
    """Shared plumbing of strategies whose generations move together and are scored on x0 predictions."""

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        super().__init__(schedule, mutation, context)
        self.generation = 0
        self.pool: SelectionPool | None = None
        self.bounds = [0, *schedule.evolution_steps]

    def next_states(self, g: int):  # noqa: ANN201 - Tensor | InitialNoise
        raise NotImplementedError

    def pool_keep(self, g: int) -> int | None:
        return None

    def ask(self) -> Batch | None:
        g, evo = self.generation, self.schedule.evolution_steps
        if g > len(evo):
            return None
        states = self.context.initial_noise(self.schedule.population[0]) if g == 0 else self.next_states(g)
        stop = evo[g] if g < len(evo) else None
        self.pool = SelectionPool(self.pool_keep(g)) if stop is not None else None
        self.generation += 1
        record_step = self.context.steps if stop is None else stop
        return Batch(states, start=self.bounds[g], stop=stop, generation=g, record_step=record_step)

    def tell(self, scored: Scored) -> None:
        if self.pool is not None:
            assert scored.states is not None
            self.pool.add(scored.scores, scored.states, scored.denoised)

    @classmethod
    def segments(cls, schedule: Schedule, steps: int) -> list[Segment]:
        return proxy_segments(schedule)

    @classmethod
    def check(cls, schedule: Schedule) -> None:
        check_proxy_steps(schedule)

    @classmethod
    def pool_sizes(cls, schedule: Schedule) -> list[int]:
        return list(schedule.population[:-1])

    @classmethod
    def needs_stochastic_from(cls, schedule: Schedule) -> int | None:
        return next((s for s in schedule.evolution_steps if s > 0), None)

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: Mutation, steps: int, chunk: int) -> int:
        return 4 * max(schedule.population) + 4 * chunk  # a generation's states, x0 predictions, children, samples


def island_sizes(n: int, islands: int) -> list[int]:
    """``n`` individuals split into ``islands`` blocks as evenly as possible (earlier blocks one larger)."""
    return [n // islands + (1 if i < n % islands else 0) for i in range(islands)]


class EvoSearchX0(ProxyGenerations):
    """EvoSearch's elitism, tournaments and mutation, generations scored on x0 predictions.

    With ``Mutation.islands`` > 1 the population is split into that many islands that never mix (each island
    selects and mutates within itself, its individuals in one block of every generation): each island is one lineage,
    so the final population holds that many distinct options (docs/method.md §12).
    """

    name = "evosearch"
    fitness = "x0"
    title = "EvoSearch (x0 fitness)"
    mutates = True

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        super().__init__(schedule, mutation, context)
        self.islands = mutation.islands_for(min(schedule.population))
        if mutation.islands > self.islands:
            log.warning("islands=%d asked for, but generations of %d individuals hold only %d islands of two or more",
                        mutation.islands, min(schedule.population), self.islands)  # fmt: skip
        self.island_pools: list[SelectionPool] = []

    def pool_keep(self, g: int) -> int | None:
        sizes = [self.tournament(i + 1) for i in range(len(self.schedule.evolution_steps))]
        tournaments = None if all(b is None for b in sizes) else [
            self.mutation.tournament_for(p) if b is None else b for b, p in zip(sizes, self.pool_sizes(self.schedule))
        ]  # fmt: skip
        return pool_keep(self.schedule, self.mutation, self.pool_sizes(self.schedule), tournaments)[g]

    def ask(self) -> Batch | None:
        batch = super().ask()
        if batch is not None and batch.stop is not None and self.islands > 1:
            self.island_pools = [SelectionPool(None) for _ in range(self.islands)]  # islands are small: keep all
        return batch

    def tell(self, scored: Scored) -> None:
        if self.islands == 1:
            return super().tell(scored)
        if self.pool is None:
            return
        assert scored.states is not None and scored.denoised is not None
        n = self.schedule.population[self.generation - 1]
        offset = 0
        for island, size in zip(self.island_pools, island_sizes(n, self.islands)):
            lo, hi = max(offset, scored.index.start), min(offset + size, scored.index.stop)
            if lo < hi:
                rows = slice(lo - scored.index.start, hi - scored.index.start)
                island.add(scored.scores[rows], scored.states[rows], scored.denoised[rows])
            offset += size

    def next_states(self, g: int):  # noqa: ANN201
        k, step = self.schedule.population[g], self.bounds[g]
        if self.islands == 1:
            assert self.pool is not None
            return evolve(
                self.pool, k, step, g, self.mutation, self.context, index=g - 1, tournament=self.tournament(g)
            )
        children, first = [], 0
        for i, (pool, k_i) in enumerate(zip(self.island_pools, island_sizes(k, self.islands))):
            size = self.tournament_for_pool(g, len(pool))
            children.append(evolve(pool, k_i, step, g, self.mutation, self.context, index=(g - 1) * 1_000 + i,
                                   tournament=size, first_index=first))  # fmt: skip
            first += k_i
        return torch.cat(children)

    def lineages(self) -> torch.Tensor | None:
        if self.islands == 1:
            return None
        sizes = island_sizes(self.schedule.population[-1], self.islands)
        return torch.repeat_interleave(torch.arange(self.islands), torch.tensor(sizes))

    def tournament(self, g: int) -> int | None:
        """The tournament size of the selection that makes generation ``g`` (``None``: the mutation's)."""
        return None

    def tournament_for_pool(self, g: int, pool: int) -> int | None:
        """The tournament size for a pool of ``pool`` members (an island) in the selection making generation ``g``."""
        return None

    @classmethod
    def validate(cls, schedule: Schedule, steps: int, mutation: Mutation | None = None) -> None:
        schedule.validate(steps)
        check_evolution_rules(schedule, mutation or Mutation(), cls.pool_sizes(schedule))

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: Mutation, steps: int, chunk: int) -> int:
        sizes = cls.pool_sizes(schedule)
        if mutation.islands_for(min(schedule.population)) > 1:
            pool = max(sizes, default=0)  # island pools are small and keep every member
        else:
            keeps = pool_keep(schedule, mutation, sizes, cls._tournaments(schedule, mutation, steps))
            pool = max((min(s, (s if k is None else k) + chunk) for s, k in zip(sizes, keeps)), default=0)
        return 2 * pool + 2 * max(schedule.population) + 4 * chunk

    @classmethod
    def _tournaments(cls, schedule: Schedule, mutation: Mutation, steps: int) -> list[int] | None:
        """Tournament sizes of the selections, for the pool bound (``None``: the mutation's own)."""
        return None

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        """Every individual runs one trajectory's steps, so n = ⌊budget / T⌋ in every generation."""
        evo = default_evolution_steps(steps) if evolution_steps is None else tuple(int(s) for s in evolution_steps)
        evo = tuple(s for s in evo if s > 0)
        n = int(budget_nfe) // int(steps)
        return Schedule(evolution_steps=evo, population=(n,) * (len(evo) + 1), fitness=cls.fitness)


register_strategy(EvoSearchX0)
