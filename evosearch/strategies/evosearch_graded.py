"""EvoSearch with graded selection pressure on x0-prediction fitness: the pack's default (docs/method.md §14).

The x0 prediction a step makes is a proxy whose reliability grows as the noise falls: at high σ it is a blurry mean
that says little about the finished sample, near the end it is almost the sample. EvoSearch with x0 fitness selects
with the same greedy tournaments (⌊0.9·|pool|⌋ contestants) at every generation, so early generations bet the whole
population on a noisy ranking, and it starts evolving late (half-way) for that reason. This strategy grades the
pressure instead: the tournament at evolution step s_g has

    b_g = max(2, round(b · s_g / T))

contestants (b = the mutation's tournament size, 0.9·|pool| by default): the better of two random parents early,
the paper's greedy tournament at the end. With gentle early selection it can afford generations from 30 % of the
steps on (default evolution steps 30, 40, 50, 70, 80, 90, 95 % of T), which find rare good modes early, while late
generations refine greedily. Everything else is EvoSearch with x0 fitness (:mod:`.evosearch_x0`): the population
moves together, elites pass unchanged, winners are mutated, NFE = Σ_g k_g·c(s_{g−1}, s_g) = n·T.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..mutation import Mutation
from ..schedule import Schedule, default_evolution_steps
from .evosearch_x0 import EvoSearchX0
from .registry import register_strategy

#: Where the graded strategy forms generations, as fractions of T (chosen by measurement: docs/method.md §14).
GRADED_FRACTIONS = (0.3, 0.4, 0.5, 0.7, 0.8, 0.9, 0.95)


def graded_tournament(size: int, pool: int, step: int, steps: int) -> int:
    """Contestants of a tournament at ``step`` of ``steps`` whose full (last-step) size is ``size``."""
    return max(1, min(pool, max(2, round(size * step / steps))))


class EvoSearchGraded(EvoSearchX0):
    """EvoSearch on x0 fitness with selection pressure rising with the step (the pack's planning default)."""

    name = "evosearch"
    fitness = "graded"
    title = "EvoSearch (x0 fitness, graded pressure)"
    mutates = True
    own_steps = True

    def tournament(self, g: int) -> int | None:
        return self.tournament_for_pool(g, self.schedule.population[g - 1])

    def tournament_for_pool(self, g: int, pool: int) -> int | None:
        return graded_tournament(self.mutation.tournament_for(pool), pool, self.bounds[g], self.context.steps)

    @classmethod
    def _tournaments(cls, schedule: Schedule, mutation: Mutation, steps: int) -> list[int]:
        pools = cls.pool_sizes(schedule)
        return [
            graded_tournament(mutation.tournament_for(p), p, s, steps) for p, s in zip(pools, schedule.evolution_steps)
        ]

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        """n = ⌊budget / T⌋ individuals in every generation, at :data:`GRADED_FRACTIONS` of the steps."""
        evo = (
            default_evolution_steps(steps, GRADED_FRACTIONS)
            if evolution_steps is None
            else tuple(int(s) for s in evolution_steps)
        )
        evo = tuple(s for s in evo if s > 0)
        n = int(budget_nfe) // int(steps)
        return Schedule(evolution_steps=evo, population=(n,) * (len(evo) + 1), fitness=cls.fitness)


register_strategy(EvoSearchGraded, planning=True)
