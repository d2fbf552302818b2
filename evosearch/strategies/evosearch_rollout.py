"""EvoSearch with rollout fitness: the paper's algorithm (He et al. 2025, arXiv 2505.17618, Alg. 1).

1. k_start unit noises are rolled out to clean samples and scored; on the way each trajectory's *pre-step* state at
   every evolution step (the state that step consumes) is archived with its x0 prediction and its final reward.
2. At evolution step s_g the pool is every trajectory archived there (42, 68, 94, 120 for the SD2.1 preset). The
   top m pass unchanged (elitism); the other children are tournament winners, mutated (unit noise at s_g = 0, the
   state otherwise), and rolled out to the end in turn, feeding the archive of later steps.
3. The best sample ever scored is returned (the runner keeps it), with the last generation as the final population.

Each child born at s_g costs its remaining steps: NFE = k_start·c(0, T) + Σ_g k_{g+1}·c(s_g, T) (docs/method.md §5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from ..mutation import Mutation
from ..pool import SelectionPool, keep_for
from ..schedule import Schedule, default_evolution_steps
from ..selection import elite_indices, tournament_select
from .base import Batch, Scored, SearchContext, Segment, Strategy
from .registry import register_strategy


def check_evolution_rules(schedule: Schedule, mutation: Mutation, pools: Sequence[int]) -> None:
    """Elites and tournament sizes must fit every generation and its pool (shared by both EvoSearch fitness modes)."""
    for g, (k, pool) in enumerate(zip(schedule.population[1:], pools)):
        m = mutation.elites_for(k)
        step = schedule.evolution_steps[g]
        if m > k:
            raise ValueError(
                f"population[{g + 1}]={k} is smaller than elites={m}: a generation must hold at least its elites; "
                f"lower elites to <= {k} or raise the population"
            )
        if m > pool:
            raise ValueError(
                f"elites={m} at generation {g + 1} (step {step}) exceed its selection pool of {pool}; lower elites to "
                f"<= {pool} or raise the earlier population"
            )
        if k > m and mutation.tournament_for(pool) > pool:
            raise ValueError(
                f"tournament={mutation.tournament} needs {mutation.tournament_for(pool)} contestants but generation "
                f"{g + 1} (step {step}) selects from a pool of {pool}; valid range is [1, {pool}] or a fraction in "
                "(0, 1)"
            )


def evolve(
    pool: SelectionPool,
    k: int,
    step: int,
    generation: int,
    mutation: Mutation,
    context: SearchContext,
    index: int,
    tournament: int | None = None,
    first_index: int = 0,
) -> torch.Tensor:
    """``k`` children from ``pool`` at ``step``: the m best unchanged, then mutated tournament winners (§3c–e).

    ``index`` numbers the selection (its random generator); ``generation`` names the children's mutation streams;
    ``tournament`` overrides the mutation's tournament size (a strategy that grades selection pressure);
    ``first_index`` is the first child's position in its generation (children's noise streams are per position).
    """
    rewards = pool.rewards
    m = mutation.elites_for(k)
    elites = elite_indices(rewards, m)
    size = mutation.tournament_for(len(pool)) if tournament is None else tournament
    parents = tournament_select(rewards, k - m, size, context.selector(index), max_wins=mutation.max_wins_for(k - m))
    mutated = context.mutate(mutation, step, pool.states(parents), pool.denoised(parents), generation, first_index + m)
    return torch.cat([pool.states(elites), mutated])


def pool_keep(
    schedule: Schedule, mutation: Mutation, pools: Sequence[int], tournaments: Sequence[int] | None = None
) -> list[int | None]:
    """How many states each pool must keep for its selection (see :mod:`evosearch.pool`); ``tournaments`` are the
    per-generation tournament sizes where a strategy sets its own."""
    out: list[int | None] = []
    for g, (k, size) in enumerate(zip(schedule.population[1:], pools)):
        m = mutation.elites_for(k)
        b = mutation.tournament_for(size) if tournaments is None else tournaments[g]
        out.append(keep_for(size, m, b, k - m, mutation.max_wins_for(k - m)))
    return out


class EvoSearchRollout(Strategy):
    """The paper's EvoSearch: generations scored by full rollouts, pools of every trajectory archived so far."""

    name = "evosearch"
    fitness = "rollout"
    title = "EvoSearch"
    mutates = True

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        super().__init__(schedule, mutation, context)
        keeps = pool_keep(schedule, mutation, self.pool_sizes(schedule))
        self.pools: list[SelectionPool | None] = [SelectionPool(keep) for keep in keeps]
        self.generation = 0
        self.batch: Batch | None = None
        self.levels: list[int] = []
        self.redraw = mutation.intermediate == "redraw"

    def ask(self) -> Batch | None:
        g, evo, population = self.generation, self.schedule.evolution_steps, self.schedule.population
        if g > len(evo):
            return None
        if g == 0:
            states, start = self.context.initial_noise(population[0]), 0
        else:
            pool, start = self.pools[g - 1], evo[g - 1]
            assert pool is not None
            states = evolve(pool, population[g], start, g, self.mutation, self.context, index=g - 1)
            self.pools[g - 1] = None  # never read again: free its states
        self.levels = [j for j in range(g, len(evo)) if evo[j] >= start]
        capture = tuple(evo[j] for j in self.levels if evo[j] > start)
        self.batch = Batch(states, start=start, stop=None, generation=g, record_step=start, capture=capture)
        self.generation += 1
        return self.batch

    def tell(self, scored: Scored) -> None:
        assert self.batch is not None
        for j in self.levels:
            step, pool = self.schedule.evolution_steps[j], self.pools[j]
            assert pool is not None
            if step == self.batch.start:  # x_T: the archived representation is the unit noise itself
                pool.add(scored.scores, self.batch.states[scored.index])
            else:
                states, denoised = scored.captured[step]
                pool.add(scored.scores, states, denoised if self.redraw else None)

    # ------------------------------------------------------------------ formulas and rules
    @classmethod
    def segments(cls, schedule: Schedule, steps: int) -> list[Segment]:
        births = zip(schedule.population[1:], schedule.evolution_steps)
        return [Segment(schedule.population[0], 0), *(Segment(k, s) for k, s in births)]

    @classmethod
    def pool_sizes(cls, schedule: Schedule) -> list[int]:
        sizes, total = [], schedule.population[0]
        for k in schedule.population[1:]:
            sizes.append(total)
            total += k
        return sizes

    @classmethod
    def validate(cls, schedule: Schedule, steps: int, mutation: Mutation | None = None) -> None:
        schedule.validate(steps)
        check_evolution_rules(schedule, mutation or Mutation(), cls.pool_sizes(schedule))

    @classmethod
    def needs_stochastic_from(cls, schedule: Schedule) -> int | None:
        return next((s for s in schedule.evolution_steps if s > 0), None)

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: Mutation, steps: int, chunk: int) -> int:
        per_member = 2 if mutation.intermediate == "redraw" else 1
        keeps = pool_keep(schedule, mutation, cls.pool_sizes(schedule))
        archive = sum(
            min(size, (size if keep is None else keep) + chunk) * (1 if s == 0 else per_member)
            for size, keep, s in zip(cls.pool_sizes(schedule), keeps, schedule.evolution_steps)
        )
        generation = max(schedule.population)  # a generation's children and its finished samples
        return archive + 2 * generation + (2 + len(schedule.evolution_steps)) * chunk

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        """K = [2k, k, …, k] with the k that fits (the paper's rule of thumb), then the remainder spent one
        individual at a time on the cheapest generations; the default evolution steps lose their earliest
        intermediate generations while the budget cannot give each two children; below that it is Best-of-N."""
        steps, budget = int(steps), int(budget_nfe)
        adaptive = evolution_steps is None
        evo = default_evolution_steps(steps) if adaptive else tuple(int(s) for s in evolution_steps)
        probe = Schedule(evolution_steps=evo, population=(1,) * (len(evo) + 1), fitness=cls.fitness)
        probe.validate(steps)
        if adaptive:
            while len(evo) > 1 and budget < 2 * (2 * steps + sum(steps - s for s in evo)):
                evo = evo[:1] + evo[2:]  # drop the earliest (most expensive) intermediate generation
            if budget < 2 * (2 * steps + sum(steps - s for s in evo)):
                return Schedule(evolution_steps=(), population=(budget // steps,))
        costs = [steps] + [steps - s for s in evo]
        minimum = sum(costs)
        if budget < minimum:
            raise ValueError(
                f"budget_nfe={budget} is below the {minimum} NFE that one individual per generation needs at "
                f"evolution steps {list(evo)} with {steps} steps; raise the budget, use fewer evolution steps, "
                "or use Best-of-N"
            )
        k = budget // (2 * costs[0] + sum(costs[1:]))
        population = [2 * k] + [k] * len(evo) if k >= 1 else [1] * (len(evo) + 1)
        left = budget - sum(n * c for n, c in zip(population, costs))
        cheapest_first = sorted(range(len(costs)), key=lambda g: (costs[g], -g))
        added = True
        while added:
            added = False
            for g in cheapest_first:
                if costs[g] <= left:
                    population[g] += 1
                    left -= costs[g]
                    added = True
        return Schedule(evolution_steps=evo, population=tuple(population), fitness=cls.fitness)


register_strategy(EvoSearchRollout)
