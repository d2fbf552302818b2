"""Evolution schedules, their compute cost, presets and the budget planner.

A schedule says *when* generations happen (step indices s_0 < … < s_{G-1} of a T-step sampler) and *how many*
individuals each holds (K = [k_start, k_1, …, k_G]), plus which strategy runs them: EvoSearch, Best-of-N (no
generations) or particle sampling (selection-only resampling), each with its fitness mode. The strategy classes
(:mod:`evosearch.strategies`) own the compute formulas (docs/method.md §5); for the paper's EvoSearch

    NFE = k_start·T + Σ_g k_{g+1}·(T − s_g)

because every child born at s_g is rolled out once to the end and its states at later evolution steps are archived and
reused; x0-fitness strategies (FK-steering particles, EvoSearch with x0 fitness) cost n·T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .strategies import Strategy

__all__ = [
    "DEFAULT_EVOLUTION_FRACTIONS",
    "FITNESS",
    "PARTICLE_FITNESS",
    "POTENTIALS",
    "PRESETS",
    "SPEC_FITNESS",
    "SPEC_MODES",
    "STRATEGIES",
    "Schedule",
    "ScheduleSpec",
    "default_evolution_steps",
    "parse_int_list",
    "parse_step_list",
    "resolve_steps",
]

STRATEGIES = ("evosearch", "best_of_n", "particles")
#: FK-steering potentials (Singhal et al. 2025): weights exp(λ·max(r_t, r_prev)), exp(λ·(r_t − r_prev)), exp(λ·Σ r).
POTENTIALS = ("max", "diff", "add")
#: Particle fitness: "x0" scores the model's x0 prediction at the resampling step (FK-steering, no extra NFE);
#: "rollout" scores a full stochastic rollout like EvoSearch (the paper's selection-only special case).
PARTICLE_FITNESS = ("x0", "rollout")
#: How a generation's individuals are scored. "rollout": each is run to a clean sample and scored (the paper's
#: EvoSearch, docs/method.md §3; each child costs its remaining steps). "x0": the reward of the model's x0
#: prediction at the evolution step, made anyway by the step before it (FK-steering's proxy; no extra NFE, all
#: individuals move together). Default: rollout for EvoSearch, x0 for particle sampling (the paper's settings).
FITNESS = ("rollout", "x0")

#: The official code's settings (docs/method.md §6), all at T = 50 sampler steps.
PRESETS: dict[str, dict[str, object]] = {
    "sd21": {"steps": 50, "evolution_steps": (0, 20, 30, 40), "population": (42, 26, 26, 26, 30), "elites": 5},
    "flux": {"steps": 50, "evolution_steps": (5, 20, 30, 40), "population": (14, 7, 7, 7, 10), "elites": 3},
    "wan": {"steps": 50, "evolution_steps": (5, 20, 30, 45), "population": (10, 5, 5, 5, 5), "elites": 2},
}


def _int_tuple(name: str, values: Sequence[int] | int) -> tuple[int, ...]:
    if isinstance(values, int):
        values = (values,)
    if isinstance(values, str):  # "42, 26, 26" as typed in a node, not one character per entry
        values = [v for v in values.replace(",", " ").replace(";", " ").split() if v]
    try:
        out = tuple(int(v) for v in values)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{name} must be a list of integers, got {values!r}") from e
    if any(float(v) != o for v, o in zip(values, out)):
        raise ValueError(f"{name} must be a list of integers, got {list(values)!r}")
    return out


#: Where the default schedule places generations, as fractions of the T steps: x_T, then ever denser towards the end,
#: where children are cheap (a child born at step s costs T − s). Chosen by bench/sweep_defaults.py over the paper's
#: ring toy and a 64-D mixture, where the paper's 0, 40%, 60%, 80% pattern came out behind (bench/results/).
DEFAULT_EVOLUTION_FRACTIONS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


def default_evolution_steps(steps: int, fractions: Sequence[float] = DEFAULT_EVOLUTION_FRACTIONS) -> tuple[int, ...]:
    """Evolution steps at ``fractions`` of a ``steps``-step sampler (rounded, deduplicated, at most steps − 1)."""
    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps}")
    return tuple(sorted({min(steps - 1, round(f * steps)) for f in fractions}))


@dataclass(frozen=True)
class Schedule:
    """When generations happen and how big they are; which strategy runs them.

    Args:
        evolution_steps: step indices s_0 < s_1 < … (0 = the initial noise x_T) at which a generation is formed.
        population: ``len(evolution_steps) + 1`` sizes: k_start initial individuals, then the children of each
            generation. A population may grow or shrink between generations.
        strategy: the strategy family, ``"evosearch"``, ``"best_of_n"`` or ``"particles"`` (or any registered one).
        potential, lam: particle-sampling settings (see :data:`POTENTIALS`).
        fitness: how generations are scored, ``"rollout"`` or ``"x0"`` (see :data:`FITNESS`); ``None`` = the
            family's default (rollout for EvoSearch and Best-of-N, x0 for particles: the paper's choices). With x0
            fitness the population moves together: generation g holds ``population[g]`` individuals from step
            s_{g-1} to s_g (s_{-1} = 0), is scored on its x0 predictions at s_g and selects ``population[g+1]``
            children; evolution steps must be >= 1.

    The schedule says *when and how many*; :attr:`strategy_class` (looked up from ``strategy`` and ``fitness``)
    says *how*, and owns the NFE formula, the validation and the planner (docs/architecture.md).
    """

    evolution_steps: tuple[int, ...]
    population: tuple[int, ...]
    strategy: str = "evosearch"
    potential: str = "max"
    lam: float = 10.0
    fitness: str | None = None

    def __post_init__(self) -> None:
        from .strategies import default_fitness, get_strategy

        steps = _int_tuple("evolution_steps", self.evolution_steps)
        population = _int_tuple("population", self.population)
        object.__setattr__(self, "evolution_steps", steps)
        object.__setattr__(self, "population", population)
        object.__setattr__(self, "lam", float(self.lam))
        default = default_fitness(self.strategy)  # raises "strategy must be one of …" for unknown names
        if len(population) != len(steps) + 1:
            raise ValueError(
                f"population must have len(evolution_steps) + 1 = {len(steps) + 1} entries "
                f"(k_start, then one per generation), got {len(population)}: {list(population)}"
            )
        for i, k in enumerate(population):
            if k < 1:
                raise ValueError(f"population[{i}] must be >= 1 individual, got {k}")
        for i, s in enumerate(steps):
            if s < 0:
                raise ValueError(f"evolution_steps[{i}] must be >= 0, got {s}")
            if i and s <= steps[i - 1]:
                raise ValueError(
                    f"evolution_steps must be strictly increasing, got {list(steps)} "
                    f"({steps[i - 1]} then {s} at index {i})"
                )
        if self.fitness is None:
            object.__setattr__(self, "fitness", default)
        get_strategy(self.strategy, self.fitness).check(self)

    @property
    def strategy_class(self) -> type[Strategy]:
        """The strategy that runs this schedule (from ``strategy`` and ``fitness``)."""
        from .strategies import get_strategy

        return get_strategy(self.strategy, self.fitness)

    # ------------------------------------------------------------------ constructors
    @classmethod
    def best_of_n(cls, n: int) -> Schedule:
        """N independent full trajectories, keep the best (the paper's Best-of-N baseline)."""
        return cls(evolution_steps=(), population=(n,), strategy="best_of_n")

    @classmethod
    def particles(
        cls,
        n: int,
        resample_steps: Sequence[int],
        *,
        potential: str = "max",
        lam: float = 10.0,
        fitness: str = "x0",
    ) -> Schedule:
        """Particle sampling: n particles, selection-only resampling at ``resample_steps``, no mutation.

        ``fitness="x0"`` is FK-steering (Singhal et al. 2025; the paper's baseline): rewards of the x0 predictions,
        weights from ``potential`` with inverse temperature ``lam``, multinomial resampling, n·T NFE.
        ``fitness="rollout"`` scores full rollouts instead (EvoSearch without initial-noise search and mutation).
        """
        steps = _int_tuple("resample_steps", resample_steps)
        return cls(
            evolution_steps=steps,
            population=(int(n),) * (len(steps) + 1),
            strategy="particles",
            potential=potential,
            lam=float(lam),
            fitness=fitness,
        )

    @classmethod
    def preset(cls, name: str, steps: int | None = None) -> Schedule:
        """The official code's schedule for ``"sd21"``, ``"flux"`` or ``"wan"`` (docs/method.md §6), at 50 steps,
        with the paper's rollout fitness.

        With ``steps`` given, the evolution steps are rescaled to that many sampler steps (see :meth:`rescaled`).
        """
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        p = PRESETS[name]
        schedule = cls(evolution_steps=p["evolution_steps"], population=p["population"], fitness="rollout")  # type: ignore[arg-type]
        return schedule if steps is None else schedule.rescaled(steps, reference_steps=int(p["steps"]))  # type: ignore[arg-type]

    @classmethod
    def plan(
        cls,
        budget_nfe: int,
        steps: int,
        evolution_steps: Sequence[int] | None = None,
        *,
        strategy: str = "evosearch",
        potential: str = "max",
        lam: float = 10.0,
        fitness: str | None = None,
    ) -> Schedule:
        """The schedule with the most compute that fits ``budget_nfe`` model evaluations of a ``steps``-step sampler.

        The strategy plans itself (see each strategy's ``plan``). EvoSearch with rollout fitness follows the
        paper's rule of thumb, K = [2k, k, …, k], with the k that fits, then spends what is left one individual at a
        time on the cheapest generations first, so the plan ends within one rollout of the latest generation
        (T − s_{G-1} NFE) below the budget. Best-of-N and x0-fitness strategies get n = ⌊budget / T⌋.
        ``evolution_steps`` defaults to :func:`default_evolution_steps` (for rollout EvoSearch minus its earliest
        intermediate generations while the budget cannot give every generation two children; below 3 trajectories
        it is Best-of-N). ``fitness=None`` plans the family's planning default (docs/method.md, "Defaults").
        """
        from .strategies import get_strategy, planning_fitness

        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        budget = int(budget_nfe)
        if budget < steps:
            raise ValueError(
                f"budget_nfe={budget} is below one trajectory ({steps} NFE for {steps} steps); "
                f"the valid range is >= {steps}"
            )
        chosen = get_strategy(strategy, planning_fitness(strategy) if fitness is None else fitness)
        return chosen.plan(budget, steps, evolution_steps, potential=potential, lam=lam)

    # ------------------------------------------------------------------ accounting
    def validate(self, steps: int) -> None:
        """Check the schedule against a ``steps``-step sampler (evolution steps must lie in [0, steps-1])."""
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        for i, s in enumerate(self.evolution_steps):
            if s > steps - 1:
                raise ValueError(
                    f"evolution_steps[{i}]={s} is out of range for a {steps}-step sampler: "
                    f"valid range is [0, {steps - 1}]"
                )

    def nfe(self, steps: int, evals_per_step: object = 1) -> int:
        """Model evaluations of the whole search (docs/method.md §5); the engine's counted ``result.nfe`` equals it.

        ``evals_per_step``: evaluations per step (an int), the count of each step, or a process's measured
        :class:`~evosearch.SamplerFacts` (exact for samplers whose last step evaluates less, such as Heun).
        """
        self.validate(steps)
        return self.strategy_class.nfe(self, int(steps), evals_per_step)

    def reward_calls(self, steps: int | None = None) -> int:
        """Individuals scored by the reward (each also decoded once on the ComfyUI side)."""
        steps = int(steps) if steps is not None else max(self.evolution_steps, default=0) + 1
        return self.strategy_class.reward_calls(self, steps)

    def equal_budget_best_of_n(self, steps: int, evals_per_step: object = 1) -> int:
        """N of the Best-of-N that spends the same NFE (⌊NFE / one trajectory's NFE⌋)."""
        from .strategies import as_cost

        return self.nfe(steps, evals_per_step) // as_cost(evals_per_step, int(steps))(0, None)

    def budget_multiple(self, steps: int) -> float:
        """NFE as a multiple of one trajectory (the paper's "×100")."""
        return self.nfe(steps) / int(steps)

    @property
    def generations(self) -> int:
        return len(self.evolution_steps)

    def rescaled(self, steps: int, reference_steps: int = 50) -> Schedule:
        """The same schedule for a ``steps``-step sampler: evolution steps scaled by steps/reference_steps.

        Steps that collide after rounding are merged (their population entry is dropped).
        """
        steps, reference_steps = int(steps), int(reference_steps)
        if steps == reference_steps:
            return self
        new_steps: list[int] = []
        population = [self.population[0]]
        for s, k in zip(self.evolution_steps, self.population[1:]):
            scaled = min(steps - 1, round(s * steps / reference_steps))
            if new_steps and scaled <= new_steps[-1]:
                continue
            new_steps.append(scaled)
            population.append(k)
        return replace(self, evolution_steps=tuple(new_steps), population=tuple(population))

    def describe(self, steps: int, evals_per_step: object = 1) -> str:
        """One line for logs and node reports: the strategy, NFE, the equal-budget Best-of-N, reward calls."""
        from .strategies import as_cost

        nfe = self.nfe(steps, evals_per_step)
        trajectory = as_cost(evals_per_step, int(steps))(0, None)
        return (
            f"{self.strategy_class.describe(self)}: {nfe:,} NFE at {steps} steps (×{nfe / trajectory:.3g} one "
            f"trajectory; equal-budget Best-of-{nfe // trajectory}), {self.reward_calls(steps)} reward calls"
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description (for reports and workflow metadata)."""
        return {
            "strategy": self.strategy,
            "evolution_steps": list(self.evolution_steps),
            "population": list(self.population),
            **self.strategy_class.to_dict(self),
        }


def parse_int_list(text: str | Sequence[int], name: str) -> tuple[int, ...]:
    """Parse "0, 20, 30, 40" (commas and/or spaces) into integers, strictly: no expressions, no eval.

    Raises a ``ValueError`` that quotes the bad item and names ``name``.
    """
    if not isinstance(text, str):
        return _int_tuple(name, text)
    items = [t for t in text.replace(",", " ").replace(";", " ").split() if t]
    if not items:
        raise ValueError(f"{name} is empty: expected integers separated by commas, e.g. '0, 20, 30, 40'")
    values = []
    for item in items:
        try:
            values.append(int(item))
        except ValueError:
            raise ValueError(
                f"{name}: {item!r} in {text!r} is not a whole number; expected integers separated by commas, "
                "e.g. '0, 20, 30, 40'"
            ) from None
    return tuple(values)


def parse_step_list(text: str | Sequence[float], name: str, allow_empty: bool = False) -> tuple[float, ...]:
    """Parse evolution steps given as step indices ("0, 20, 30, 40") or fractions of the sampler's steps
    ("0, 0.4, 0.6, 0.8"), strictly: each item is a whole number ≥ 0 (a step index) or a number in [0, 1) (a fraction
    of T, resolved by :func:`resolve_steps`). Raises a ``ValueError`` that quotes the bad item and names ``name``.
    ``allow_empty``: an empty list is ``()`` (no generations: a Best-of-N schedule) instead of an error."""
    if not isinstance(text, str):
        items: list[object] = list(text)
    else:
        items = [t for t in text.replace(",", " ").replace(";", " ").split() if t]
    if not items and allow_empty:
        return ()
    if not items:
        raise ValueError(
            f"{name} is empty: expected step indices or fractions of the steps separated by commas, e.g. "
            "'0, 0.4, 0.6, 0.8' or '0, 20, 30, 40'"
        )
    values: list[float] = []
    for item in items:
        try:
            value = float(item)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            value = float("nan")
        if not (value >= 0) or (value >= 1 and value != int(value)) or not value < float("inf"):
            raise ValueError(
                f"{name}: {item!r} in {text!r} is not a whole number or a fraction of the steps in [0, 1); expected "
                "step indices ('0, 20, 30, 40') or fractions ('0, 0.4, 0.6, 0.8') separated by commas"
            )
        values.append(int(value) if value >= 1 or value == 0 else value)
    return tuple(values)


def resolve_steps(values: Sequence[float], steps: int, name: str = "evolution_steps") -> tuple[int, ...]:
    """Step indices for a ``steps``-step sampler: fractions f in (0, 1) become round(f·steps), indices stay; two
    values that land on one step are an error that says how many steps they need."""
    steps = int(steps)
    out = tuple(min(steps - 1, round(v * steps)) if 0 < v < 1 else int(v) for v in values)
    for i in range(1, len(out)):
        if out[i] <= out[i - 1] and any(0 < v < 1 for v in values):
            raise ValueError(
                f"{name} {list(values)} give steps {list(out)} with a {steps}-step sampler: {values[i - 1]!r} and "
                f"{values[i]!r} fall on the same step; use more sampler steps or fewer evolution steps"
            )
    return out


SPEC_MODES = ("budget_multiple", "budget_nfe", "custom", "preset_sd21", "preset_flux", "preset_wan")
#: Fitness choices of a spec: "auto" = the paper's per strategy (rollout for EvoSearch, x0 for particles).
SPEC_FITNESS = ("auto", *FITNESS)


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule described independently of the sampler's step count, resolved once T is known.

    This is what the ComfyUI schedule node hands to the samplers: the node cannot know T (it comes with the sigmas),
    so budgets are planned, presets rescaled and custom steps validated at sampling time by :meth:`resolve`.
    Switching ``strategy`` or ``fitness`` keeps the compute: every strategy gets the NFE the EvoSearch plan spends.

    Modes: ``budget_multiple`` (``budget`` × one trajectory), ``budget_nfe`` (``budget`` model evaluations),
    ``custom`` (``evolution_steps`` — step indices, or fractions of T such as 0.4 — and ``population`` as given),
    ``preset_sd21`` / ``preset_flux`` / ``preset_wan``
    (the official schedules, rescaled from 50 steps). ``fitness`` (``auto`` / ``rollout`` / ``x0``) picks how
    generations are scored (:data:`FITNESS`); ``auto`` is the planning default of the strategy family.
    """

    mode: str = "budget_multiple"
    strategy: str = "evosearch"
    budget: float = 10.0
    evolution_steps: tuple[float, ...] = ()
    population: tuple[int, ...] = ()
    potential: str = "max"
    lam: float = 10.0
    fitness: str = "auto"

    def __post_init__(self) -> None:
        from .strategies import fitness_names, strategy_names

        if self.fitness != "auto" and self.fitness not in fitness_names():
            raise ValueError(f"fitness must be one of {('auto', *fitness_names())}, got {self.fitness!r}")
        if self.mode not in SPEC_MODES:
            raise ValueError(f"mode must be one of {SPEC_MODES}, got {self.mode!r}")
        if self.strategy not in strategy_names():
            raise ValueError(f"strategy must be one of {strategy_names()}, got {self.strategy!r}")
        if self.mode.startswith("budget") and not self.budget > 0:
            raise ValueError(f"budget must be > 0, got {self.budget}")
        if self.mode == "custom":
            object.__setattr__(
                self, "evolution_steps", parse_step_list(self.evolution_steps, "evolution_steps", allow_empty=True)
            )
            object.__setattr__(self, "population", _int_tuple("population", self.population))
            self._custom(None)  # the structure (lengths, order) is checked now; the steps when T is known

    @property
    def target(self) -> type[Strategy]:
        """The strategy this spec runs. ``auto`` is the family's planning default (docs/method.md §14) for budget
        modes, and the paper's fitness for custom lists and presets (their populations mean what the paper's do)."""
        from .strategies import default_fitness, get_strategy, planning_fitness

        if self.fitness != "auto":
            return get_strategy(self.strategy, self.fitness)
        planned = self.mode.startswith("budget")
        return get_strategy(
            self.strategy, planning_fitness(self.strategy) if planned else default_fitness(self.strategy)
        )

    def _custom(self, steps: int | None) -> Schedule:
        """Custom lists are an EvoSearch schedule, read with the spec's EvoSearch fitness (NFE and step rules);
        fractions of the steps are resolved for ``steps`` (``None``: a fine nominal grid, to check the structure)."""
        target = self.target
        fitness = target.fitness if target.name == "evosearch" else "rollout"
        nominal = steps if steps is not None else 10_000
        evo = resolve_steps(self.evolution_steps, nominal)
        if steps is None:  # keep fractions apart on the nominal grid; indices as given
            evo = tuple(int(v * nominal) if 0 < v < 1 else int(v) for v in self.evolution_steps)
        return Schedule(evolution_steps=evo, population=self.population, fitness=fitness)

    def evosearch_schedule(self, steps: int) -> Schedule:
        """The EvoSearch schedule this spec describes for a ``steps``-step sampler (it fixes the compute)."""
        steps = int(steps)
        if self.mode == "custom":
            schedule = self._custom(steps)
            schedule.validate(steps)
            return schedule
        if self.mode.startswith("preset_"):
            return Schedule.preset(self.mode.removeprefix("preset_"), steps)
        budget = round(self.budget * steps) if self.mode == "budget_multiple" else int(self.budget)
        return Schedule.plan(budget, steps, fitness="rollout")

    def resolve(self, steps: int) -> Schedule:
        """The schedule to run with a ``steps``-step sampler, in this spec's strategy at the same compute."""
        evo = self.evosearch_schedule(steps)
        target = self.target
        if target is evo.strategy_class:
            return evo
        budget = max(evo.nfe(steps), int(steps))
        resample = [s for s in evo.evolution_steps if s > 0] or list(default_evolution_steps(steps)[1:])
        steps_for = None if target.own_steps and not self.mode.startswith("preset") else resample
        return target.plan(budget, int(steps), steps_for, potential=self.potential, lam=self.lam)

    def describe(self, steps: int, evals_per_step: object = 1) -> str:
        return self.resolve(steps).describe(steps, evals_per_step)
