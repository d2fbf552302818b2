"""The strategy contract: ask/tell over trajectories, in the shape of pycma and evotorch.

A strategy decides *how* a search proceeds; the :class:`~evosearch.Schedule` says *when and how many*; the runner
(:mod:`evosearch.runner`) owns evaluation. The loop (:func:`evosearch.search`) is::

    while (batch := strategy.ask()) is not None:
        for scored in runner.run(batch):      # chunk by chunk, in batch order
            strategy.tell(scored)

``ask`` proposes a :class:`Batch`: trajectories that start together at one step (unit noise at step 0, or states
it built by selection and mutation) and run to the end (scored on their clean samples), or stop before some step
(scored on the x0 prediction the step before made: a free proxy). ``tell`` receives their scores and, for the steps
the batch asked to ``capture``, each trajectory's pre-step state and x0 prediction there: the archive a later
selection draws from. A strategy also knows its own compute: :meth:`Strategy.segments` lists the trajectories a
schedule runs as (count, start, stop), from which the NFE formula, the reward calls and the memory estimate follow.
Adding a strategy is one file with one subclass and a :func:`~evosearch.strategies.register_strategy` call
(docs/architecture.md has a worked example).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, ClassVar

import torch

from ..mutation import Mutation, mutate_additive, mutate_initial, mutate_redraw
from ..rng import derive_seed, normal_rows

if TYPE_CHECKING:
    from ..process import DenoisingProcess
    from ..schedule import Schedule

__all__ = [
    "Batch",
    "Cost",
    "InitialNoise",
    "Scored",
    "SearchContext",
    "Segment",
    "Strategy",
    "as_cost",
]

#: c(start, stop): model evaluations of one trajectory born at ``start`` until it stops before step ``stop``
#: (``None``: at the clean sample).
Cost = Callable[[int, "int | None"], int]


def as_cost(cost: object, steps: int) -> Cost:
    """A cost function from an int (evaluations per step), per-step counts, or measured facts (``.calls``)."""
    steps = int(steps)
    calls = getattr(cost, "calls", None)
    if callable(calls):
        return calls  # type: ignore[return-value]
    if isinstance(cost, int) and not isinstance(cost, bool):
        if cost < 1:
            raise ValueError(f"evals_per_step must be >= 1, got {cost}")
        return lambda start, stop: cost * ((steps if stop is None else stop) - start)
    if isinstance(cost, Sequence):
        per_step = [int(c) for c in cost]
        if len(per_step) != steps:
            raise ValueError(
                f"per-step evaluation counts must have {steps} entries (one per step), got {len(per_step)}"
            )
        return lambda start, stop: sum(per_step[start : steps if stop is None else stop])
    raise TypeError(f"evals_per_step must be an int, per-step counts or SamplerFacts, got {type(cost).__name__}")


@dataclass(frozen=True)
class Segment:
    """``count`` trajectories that start at step ``start`` and stop before step ``stop`` (``None``: run to the end)."""

    count: int
    start: int
    stop: int | None = None


class InitialNoise:
    """``n`` unit noises, row ``i`` drawn from its own stream ``derive_seed(seed, "init", i)``, made per chunk."""

    def __init__(self, seed: int, n: int, shape: tuple[int, ...], device: torch.device) -> None:
        self.seed, self.n, self.shape, self.device = seed, int(n), tuple(shape), device

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: slice) -> torch.Tensor:
        rows = range(self.n)[index]
        return normal_rows([derive_seed(self.seed, "init", i) for i in rows], self.shape, device=self.device)


@dataclass(frozen=True)
class Batch:
    """Trajectories the runner advances together.

    Attributes:
        states: ``[n, *shape]`` states at ``start`` (unit noise when ``start == 0``), or :class:`InitialNoise`.
        start: the step where they begin.
        stop: ``None`` to run to the clean sample and score it; a step ``s`` to stop before step s's first model
            evaluation and score the x0 prediction step s − 1 made (then ``Scored.states`` holds the states at s).
        generation: names the trajectories' sampler-noise streams (``derive_seed(seed, "sde", generation, i)``).
        record_step: the step this generation is logged at in the history.
        capture: steps (> start, < stop) at which each trajectory's pre-step state and x0 prediction are archived.
    """

    states: torch.Tensor | InitialNoise
    start: int
    stop: int | None
    generation: int
    record_step: int
    capture: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.states)

    @property
    def proxy(self) -> bool:
        """Whether the scores are x0-prediction rewards (a proxy) rather than rewards of finished samples."""
        return self.stop is not None


@dataclass
class Scored:
    """What the runner tells a strategy about one chunk (``index``: positions in the batch) of a batch."""

    index: slice
    scores: torch.Tensor
    samples: torch.Tensor | None = None
    states: torch.Tensor | None = None
    denoised: torch.Tensor | None = None
    captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@dataclass(frozen=True)
class SearchContext:
    """What a strategy may use: the seed, the step count, the state shape, where states live, and the process's
    parameterisation (for mutations)."""

    seed: int
    steps: int
    shape: tuple[int, ...]
    storage: torch.device
    process: DenoisingProcess

    def initial_noise(self, n: int) -> InitialNoise:
        return InitialNoise(self.seed, n, self.shape, self.storage)

    def selector(self, index: int) -> torch.Generator:
        """The generator of the ``index``-th selection (elitism ties, tournaments, resampling)."""
        return torch.Generator().manual_seed(derive_seed(self.seed, "select", index))

    def mutate(
        self,
        mutation: Mutation,
        step: int,
        states: torch.Tensor,
        denoised: torch.Tensor | None,
        generation: int,
        first_index: int,
    ) -> torch.Tensor:
        """Mutate parents at ``step`` (docs/method.md §4): child ``first_index + i`` draws its noise from its own
        stream; at step 0 the unit noise mutates, later the state (re-drawn around the parent's x0 prediction, or
        the paper's additive σ_step·ε)."""
        seeds = [derive_seed(self.seed, "mutate", generation, first_index + i) for i in range(states.shape[0])]
        eps = normal_rows(seeds, self.shape, device=states.device, dtype=states.dtype)
        if step == 0:
            return mutate_initial(states, mutation.beta, eps)
        process = self.process
        if mutation.intermediate == "additive":
            return mutate_additive(states, process.step_noise_std(step), mutation.strength, eps)
        if denoised is None:
            raise RuntimeError("redraw mutation needs the parents' x0 predictions; the strategy did not archive them")
        return mutate_redraw(
            states,
            denoised.to(states.dtype),
            process.signal_scale(step),
            process.noise_scale(step),
            mutation.strength,
            eps,
        )


class Strategy(ABC):
    """One search strategy: proposes trajectories (:meth:`ask`), learns their scores (:meth:`tell`).

    Class attributes: ``name`` (the strategy family a schedule names: ``"evosearch"``, ``"best_of_n"``,
    ``"particles"``), ``fitness`` (how it scores generations: ``"rollout"``, ``"x0"``, …), ``title`` (for reports),
    ``mutates`` (whether :class:`~evosearch.Mutation` settings apply).
    """

    name: ClassVar[str]
    fitness: ClassVar[str]
    title: ClassVar[str]
    mutates: ClassVar[bool] = False
    #: whether :meth:`plan` places its own evolution steps (then a ScheduleSpec does not hand it another plan's)
    own_steps: ClassVar[bool] = False

    def __init__(self, schedule: Schedule, mutation: Mutation, context: SearchContext) -> None:
        self.schedule = schedule
        self.mutation = mutation
        self.context = context

    # ------------------------------------------------------------------ the loop
    @abstractmethod
    def ask(self) -> Batch | None:
        """The next batch of trajectories, or ``None`` when the search is done."""

    @abstractmethod
    def tell(self, scored: Scored) -> None:
        """Scores (and archived states) of one chunk of the batch last asked for, in batch order."""

    def lineages(self) -> torch.Tensor | None:
        """A label per member of the final population (batch order) naming the lineage it evolved in, for strategies
        whose lineages never mix (islands); ``None``: one population. Options are then taken one per lineage first."""
        return None

    # ------------------------------------------------------------------ what a schedule costs
    @classmethod
    @abstractmethod
    def segments(cls, schedule: Schedule, steps: int) -> list[Segment]:
        """The trajectories ``schedule`` runs with a ``steps``-step sampler: the strategy's compute formula."""

    @classmethod
    def nfe(cls, schedule: Schedule, steps: int, evals_per_step: object = 1) -> int:
        """NFE = Σ count · c(start, stop) over :meth:`segments` (docs/method.md §5)."""
        cost = as_cost(evals_per_step, steps)
        return sum(s.count * cost(s.start, s.stop) for s in cls.segments(schedule, steps))

    @classmethod
    def reward_calls(cls, schedule: Schedule, steps: int) -> int:
        """Individuals scored (each decoded once on the ComfyUI side): one per trajectory or proxy."""
        return sum(s.count for s in cls.segments(schedule, steps))

    @classmethod
    def births(cls, schedule: Schedule, steps: int) -> tuple[int, ...]:
        """Steps where trajectories start (a sampler restarts its history there)."""
        return tuple(sorted({s.start for s in cls.segments(schedule, steps)}))

    # ------------------------------------------------------------------ rules
    @classmethod
    def check(cls, schedule: Schedule) -> None:
        """Structural rules of the strategy's schedules (raised at construction)."""

    @classmethod
    def validate(cls, schedule: Schedule, steps: int, mutation: Mutation | None = None) -> None:
        """Rules that need the step count or the mutation settings (raised before a search starts)."""
        schedule.validate(steps)

    @classmethod
    def needs_stochastic_from(cls, schedule: Schedule) -> int | None:
        """The first step from which copies of one state must continue differently (a stochastic sampler), if any."""
        return None

    @classmethod
    def pool_sizes(cls, schedule: Schedule) -> list[int]:
        """Selection-pool size at each evolution step."""
        return []

    @classmethod
    def stored_states(cls, schedule: Schedule, mutation: Mutation, steps: int, chunk: int) -> int:
        """An upper bound on the state-sized tensors the search holds at once on its storage device."""
        population = max(schedule.population)
        return 3 * population + 4 * chunk

    @classmethod
    def plan(cls, budget_nfe: int, steps: int, evolution_steps: Sequence[int] | None = None, **options: object):
        """The schedule of this strategy with the most compute that fits ``budget_nfe`` (see Schedule.plan)."""
        raise NotImplementedError(f"{cls.__name__} has no budget planner")

    @classmethod
    def describe(cls, schedule: Schedule) -> str:
        """The head of :meth:`Schedule.describe`."""
        return f"{cls.title} at steps {list(schedule.evolution_steps)}, population {list(schedule.population)}"

    @classmethod
    def to_dict(cls, schedule: Schedule) -> dict[str, object]:
        return {"fitness": schedule.fitness}
