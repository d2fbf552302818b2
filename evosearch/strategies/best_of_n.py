"""Best-of-N: N independent trajectories from x_T, keep the best (the paper's baseline, §4.8)."""

from __future__ import annotations

from collections.abc import Sequence

from ..schedule import Schedule
from .base import Batch, Scored, Segment, Strategy
from .registry import register_strategy


class BestOfN(Strategy):
    """N trajectories, one batch, no selection: EvoSearch with no evolution steps. NFE = N·c(0, T)."""

    name = "best_of_n"
    fitness = "rollout"
    title = "Best-of-N"

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._asked = False

    def ask(self) -> Batch | None:
        if self._asked:
            return None
        self._asked = True
        n = self.schedule.population[0]
        return Batch(self.context.initial_noise(n), start=0, stop=None, generation=0, record_step=0)

    def tell(self, scored: Scored) -> None:
        pass  # nothing to learn: the runner keeps the best and the final population

    @classmethod
    def segments(cls, schedule: Schedule, steps: int) -> list[Segment]:
        return [Segment(schedule.population[0], 0)]

    @classmethod
    def check(cls, schedule: Schedule) -> None:
        if schedule.evolution_steps:
            raise ValueError(f"best_of_n has no evolution steps, got {list(schedule.evolution_steps)}")

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: object, steps: int, chunk: int) -> int:
        return schedule.population[0] + 3 * chunk

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        return Schedule.best_of_n(int(budget_nfe) // int(steps))

    @classmethod
    def describe(cls, schedule: Schedule) -> str:
        return f"Best-of-{schedule.population[0]}"

    @classmethod
    def to_dict(cls, schedule: Schedule) -> dict[str, object]:
        return {}


register_strategy(BestOfN)
