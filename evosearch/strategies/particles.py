"""Particle sampling: selection-only resampling of intermediate states, no initial-noise search, no mutation.

* ``fitness="x0"`` — FK-steering (Singhal et al. 2025, "A General Framework for Inference-time Scaling and Steering of
  Diffusion Models"), the paper's particle baseline: n particles move together; at each resampling step s_g the
  rewards of their x0 predictions give potentials (``max``: exp(λ·max(r_t, r_prev)), …) and n particles are drawn
  multinomially. NFE = n·c(0, T).
* ``fitness="rollout"`` — EvoSearch's "selection only" special case (paper §4.8): each generation's particles are
  rolled out to the end and scored; at s_g the current particles are resampled by those rewards and continue.
  NFE = n·c(0, T) + Σ_g n·c(s_g, T).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..mutation import Mutation
from ..pool import SelectionPool
from ..schedule import POTENTIALS, Schedule, default_evolution_steps
from ..selection import fk_potential, multinomial_resample
from .base import Batch, Scored, SearchContext, Segment, Strategy
from .evosearch_x0 import ProxyGenerations, check_proxy_steps
from .registry import register_strategy


def check_particles(schedule: Schedule) -> None:
    if schedule.potential not in POTENTIALS:
        raise ValueError(f"potential must be one of {POTENTIALS}, got {schedule.potential!r}")
    if len(set(schedule.population)) != 1:
        raise ValueError(f"particle sampling keeps a constant number of particles, got {list(schedule.population)}")
    if not schedule.lam >= 0:
        raise ValueError(f"lam (λ, the potential's inverse temperature) must be >= 0, got {schedule.lam}")


class _Resampling:
    """FK potentials carried across resampling steps, and the multinomial draw."""

    def __init__(self, schedule: Schedule, context: SearchContext) -> None:
        self.schedule, self.context = schedule, context
        self.carried = None

    def resample(self, pool: SelectionPool, n: int, index: int):  # noqa: ANN201 - Tensor
        log_w, carried = fk_potential(pool.rewards, self.carried, self.schedule.potential, self.schedule.lam)
        picked = multinomial_resample(log_w, n, self.context.selector(index))
        self.carried = carried[picked]
        return pool.states(picked)


def _describe(schedule: Schedule) -> str:
    return (
        f"Particle sampling ({schedule.population[0]} particles, resampling at {list(schedule.evolution_steps)}, "
        f"{schedule.fitness} fitness, potential {schedule.potential}, λ={schedule.lam:g})"
    )


class FKParticles(ProxyGenerations):
    """FK-steering particles: resampled on x0-prediction rewards (the paper's baseline)."""

    name = "particles"
    fitness = "x0"
    title = "Particle sampling (FK-steering)"

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        super().__init__(schedule, mutation, context)
        self.resampling = _Resampling(schedule, context)

    def next_states(self, g: int):  # noqa: ANN201
        assert self.pool is not None
        return self.resampling.resample(self.pool, self.schedule.population[g], index=g - 1)

    @classmethod
    def check(cls, schedule: Schedule) -> None:
        check_proxy_steps(schedule)
        check_particles(schedule)

    @classmethod
    def describe(cls, schedule: Schedule) -> str:
        return _describe(schedule)

    @classmethod
    def to_dict(cls, schedule: Schedule) -> dict[str, object]:
        return {"fitness": schedule.fitness, "potential": schedule.potential, "lam": schedule.lam}

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        evo = default_evolution_steps(steps) if evolution_steps is None else tuple(int(s) for s in evolution_steps)
        return Schedule.particles(
            int(budget_nfe) // int(steps),
            [s for s in evo if s > 0],
            potential=str(options.get("potential", "max")),
            lam=float(options.get("lam", 10.0)),  # type: ignore[arg-type]
            fitness=cls.fitness,
        )


class RolloutParticles(Strategy):
    """Selection-only EvoSearch: the current particles are resampled on the rewards of their full rollouts."""

    name = "particles"
    fitness = "rollout"
    title = "Particle sampling (rollout fitness)"

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        super().__init__(schedule, mutation, context)
        self.generation = 0
        self.pool: SelectionPool | None = None
        self.batch: Batch | None = None
        self.resampling = _Resampling(schedule, context)

    def ask(self) -> Batch | None:
        g, evo, n = self.generation, self.schedule.evolution_steps, self.schedule.population[0]
        if g > len(evo):
            return None
        if g == 0:
            states, start = self.context.initial_noise(n), 0
        else:
            assert self.pool is not None
            states, start = self.resampling.resample(self.pool, n, index=g - 1), evo[g - 1]
        # this generation forms the pool of the next resampling step (earlier generations are superseded)
        self.level = evo[g] if g < len(evo) else None
        self.pool = SelectionPool(None) if self.level is not None else None
        capture = (self.level,) if self.level is not None and self.level > start else ()
        self.batch = Batch(states, start=start, stop=None, generation=g, record_step=start, capture=capture)
        self.generation += 1
        return self.batch

    def tell(self, scored: Scored) -> None:
        if self.pool is None or self.batch is None:
            return
        if self.level == self.batch.start:  # resampling at x_T: the unit noises themselves
            self.pool.add(scored.scores, self.batch.states[scored.index])
        else:
            self.pool.add(scored.scores, scored.captured[self.level][0])

    @classmethod
    def segments(cls, schedule: Schedule, steps: int) -> list[Segment]:
        n = schedule.population[0]
        return [Segment(n, 0), *(Segment(n, s) for s in schedule.evolution_steps)]

    @classmethod
    def check(cls, schedule: Schedule) -> None:
        check_particles(schedule)

    @classmethod
    def pool_sizes(cls, schedule: Schedule) -> list[int]:
        return list(schedule.population[:-1])

    @classmethod
    def needs_stochastic_from(cls, schedule: Schedule) -> int | None:
        return next((s for s in schedule.evolution_steps if s > 0), None)

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: Mutation, steps: int, chunk: int) -> int:
        return 3 * schedule.population[0] + 3 * chunk

    @classmethod
    def describe(cls, schedule: Schedule) -> str:
        return _describe(schedule)

    @classmethod
    def to_dict(cls, schedule: Schedule) -> dict[str, object]:
        return {"fitness": schedule.fitness, "potential": schedule.potential, "lam": schedule.lam}

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        """n = ⌊budget / (T + Σ_g (T − s_g))⌋: every particle is rolled out once per generation."""
        steps, budget = int(steps), int(budget_nfe)
        evo = default_evolution_steps(steps) if evolution_steps is None else tuple(int(s) for s in evolution_steps)
        cost = steps + sum(steps - s for s in evo)
        if budget < cost:
            raise ValueError(
                f"budget_nfe={budget} is below the {cost} NFE one particle needs with rollout fitness at "
                f"resample steps {list(evo)}; raise the budget or use fewer resample steps"
            )
        return Schedule.particles(
            budget // cost,
            evo,
            potential=str(options.get("potential", "max")),
            lam=float(options.get("lam", 10.0)),  # type: ignore[arg-type]
            fitness=cls.fitness,
        )


register_strategy(FKParticles)
register_strategy(RolloutParticles)
