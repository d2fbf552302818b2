"""Evolution schedules, their compute cost, presets and the budget planner.

A schedule says *when* generations happen (step indices s_0 < … < s_{G-1} of a T-step sampler) and *how many*
individuals each holds (K = [k_start, k_1, …, k_G]), plus which strategy runs: EvoSearch, Best-of-N (no generations)
or particle sampling (selection-only resampling). Compute follows method.md §4:

    NFE = k_start·T + Σ_g k_{g+1}·(T − s_g)

because every child born at s_g is rolled out once to the end and its states at later evolution steps are archived and
reused. Particle sampling with x0-prediction rewards (FK-steering) costs n·T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

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
]

STRATEGIES = ("evosearch", "best_of_n", "particles")
#: FK-steering potentials (Singhal et al. 2025): weights exp(λ·max(r_t, r_prev)), exp(λ·(r_t − r_prev)), exp(λ·Σ r).
POTENTIALS = ("max", "diff", "add")
#: Particle fitness: "x0" scores the model's x0 prediction at the resampling step (FK-steering, no extra NFE);
#: "rollout" scores a full stochastic rollout like EvoSearch (the paper's selection-only special case).
PARTICLE_FITNESS = ("x0", "rollout")
#: How a generation's individuals are scored. "rollout": each is run to a clean sample and scored (the paper's
#: EvoSearch, method.md §3a; each child costs its remaining steps). "x0": the reward of the model's x0 prediction at the
#: evolution step, made anyway by the step before it (FK-steering's proxy; no extra NFE, all individuals move
#: together). Default: rollout for EvoSearch, x0 for particle sampling (the paper's settings).
FITNESS = ("rollout", "x0")

#: The official code's settings (method.md §5), all at T = 50 sampler steps.
PRESETS: dict[str, dict[str, object]] = {
    "sd21": {"steps": 50, "evolution_steps": (0, 20, 30, 40), "population": (42, 26, 26, 26, 30), "elites": 5},
    "flux": {"steps": 50, "evolution_steps": (5, 20, 30, 40), "population": (14, 7, 7, 7, 10), "elites": 3},
    "wan": {"steps": 50, "evolution_steps": (5, 20, 30, 45), "population": (10, 5, 5, 5, 5), "elites": 2},
}


def _int_tuple(name: str, values: Sequence[int] | int) -> tuple[int, ...]:
    if isinstance(values, int):
        values = (values,)
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
    """When generations happen and how big they are.

    Args:
        evolution_steps: step indices s_0 < s_1 < … (0 = the initial noise x_T) at which a generation is formed.
        population: ``len(evolution_steps) + 1`` sizes: k_start initial individuals, then the children of each
            generation. A population may grow or shrink between generations.
        strategy: ``"evosearch"``, ``"best_of_n"`` or ``"particles"``.
        potential, lam: particle-sampling settings (see :data:`POTENTIALS`).
        fitness: ``"rollout"`` or ``"x0"`` (see :data:`FITNESS`); ``None`` = the paper's choice for the strategy
            (rollout for EvoSearch, x0 for particles). With x0 fitness the population moves together: generation g
            holds ``population[g]`` individuals from step s_{g-1} to s_g (s_{-1} = 0), is scored on its x0
            predictions at s_g and selects ``population[g+1]`` children; evolution steps must be >= 1.
    """

    evolution_steps: tuple[int, ...]
    population: tuple[int, ...]
    strategy: str = "evosearch"
    potential: str = "max"
    lam: float = 10.0
    fitness: str | None = None

    def __post_init__(self) -> None:
        steps = _int_tuple("evolution_steps", self.evolution_steps)
        population = _int_tuple("population", self.population)
        object.__setattr__(self, "evolution_steps", steps)
        object.__setattr__(self, "population", population)
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
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
        if self.strategy == "best_of_n" and steps:
            raise ValueError(f"best_of_n has no evolution steps, got {list(steps)}")
        if self.fitness is None:
            object.__setattr__(self, "fitness", "x0" if self.strategy == "particles" else "rollout")
        if self.fitness not in FITNESS:
            raise ValueError(
                f"fitness must be one of {FITNESS} (or None for the strategy's default), got {self.fitness!r}"
            )
        if self.fitness == "x0" and steps and steps[0] < 1:
            raise ValueError(
                "evolution/resample steps must be >= 1 with x0 fitness (the first x0 prediction is made at step 0 "
                f"and scored at step 1; at pure noise it says nothing), got {list(steps)}"
            )
        if self.strategy == "particles":
            if self.potential not in POTENTIALS:
                raise ValueError(f"potential must be one of {POTENTIALS}, got {self.potential!r}")
            if len(set(population)) != 1:
                raise ValueError(f"particle sampling keeps a constant number of particles, got {list(population)}")
            if not self.lam >= 0:
                raise ValueError(f"lam (λ, the potential's inverse temperature) must be >= 0, got {self.lam}")

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
        """The official code's schedule for ``"sd21"``, ``"flux"`` or ``"wan"`` (method.md §5), at 50 steps.

        With ``steps`` given, the evolution steps are rescaled to that many sampler steps (see :meth:`rescaled`).
        """
        if name not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {name!r}")
        p = PRESETS[name]
        schedule = cls(evolution_steps=p["evolution_steps"], population=p["population"])  # type: ignore[arg-type]
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

        EvoSearch follows the paper's rule of thumb, K = [2k, k, …, k], with the k that fits, then spends what is
        left one individual at a time on the cheapest generations first, so the plan ends within one rollout of the
        latest generation (T − s_{G-1} NFE) below the budget. Best-of-N and particles get n = ⌊budget / T⌋.
        ``evolution_steps`` defaults to :func:`default_evolution_steps`, minus its earliest intermediate generations
        while the budget cannot give every generation two children (k ≥ 2); below 3 trajectories it is Best-of-N.
        """
        steps = int(steps)
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        budget = int(budget_nfe)
        if budget < steps:
            raise ValueError(
                f"budget_nfe={budget} is below one trajectory ({steps} NFE for {steps} steps); "
                f"the valid range is >= {steps}"
            )
        if strategy == "best_of_n":
            return cls.best_of_n(budget // steps)
        adaptive = evolution_steps is None
        evo = default_evolution_steps(steps) if adaptive else _int_tuple("evolution_steps", evolution_steps)
        if fitness is None:
            fitness = "x0" if strategy == "particles" else "rollout"
        if strategy == "evosearch" and fitness == "x0":
            # x0 fitness: every individual runs the whole trajectory once, so n = budget // T throughout.
            evo = tuple(s for s in evo if s > 0)
            n = budget // steps
            return cls(evolution_steps=evo, population=(n,) * (len(evo) + 1), fitness="x0")
        if strategy == "particles":
            if fitness == "x0":
                evo = tuple(s for s in evo if s > 0)
                return cls.particles(budget // steps, evo, potential=potential, lam=lam, fitness=fitness)
            cost = steps + sum(steps - s for s in evo)
            if budget < cost:
                raise ValueError(
                    f"budget_nfe={budget} is below the {cost} NFE one particle needs with rollout fitness at "
                    f"resample steps {list(evo)}; raise the budget or use fewer resample steps"
                )
            return cls.particles(budget // cost, evo, potential=potential, lam=lam, fitness=fitness)
        if strategy != "evosearch":
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {strategy!r}")
        probe = cls(evolution_steps=evo, population=(1,) * (len(evo) + 1))
        probe.validate(steps)
        if adaptive:
            while len(evo) > 1 and budget < 2 * (2 * steps + sum(steps - s for s in evo)):
                evo = evo[:1] + evo[2:]  # drop the earliest (most expensive) intermediate generation
            if budget < 2 * (2 * steps + sum(steps - s for s in evo)):
                return cls(evolution_steps=(), population=(budget // steps,))
        costs = [steps] + [steps - s for s in evo]
        minimum = sum(costs)
        if budget < minimum:
            raise ValueError(
                f"budget_nfe={budget} is below the {minimum} NFE that one individual per generation needs at "
                f"evolution steps {list(evo)} with {steps} steps; raise the budget, use fewer evolution steps, "
                "or use Best-of-N"
            )
        unit = 2 * costs[0] + sum(costs[1:])
        k = budget // unit
        population = [2 * k] + [k] * len(evo) if k >= 1 else [1] * (len(evo) + 1)
        left = budget - sum(n * c for n, c in zip(population, costs))
        cheapest_first = sorted(range(len(costs)), key=lambda g: (costs[g], -g))
        while True:
            added = False
            for g in cheapest_first:
                if costs[g] <= left:
                    population[g] += 1
                    left -= costs[g]
                    added = True
            if not added:
                break
        return cls(evolution_steps=evo, population=tuple(population))

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

    def nfe(self, steps: int, evals_per_step: int = 1) -> int:
        """Model evaluations of the whole search (method.md §4); the engine's counted ``result.nfe`` equals this."""
        self.validate(steps)
        if self.fitness == "x0":  # generation g runs from s_{g-1} to s_g (s_{-1} = 0, s_G = T)
            bounds = [0, *self.evolution_steps, int(steps)]
            return sum(k * (b - a) for k, a, b in zip(self.population, bounds[:-1], bounds[1:])) * evals_per_step
        total = self.population[0] * steps
        for s, k in zip(self.evolution_steps, self.population[1:]):
            total += k * (steps - s)
        return total * evals_per_step

    def reward_calls(self, steps: int | None = None) -> int:
        """Individuals scored by the reward (each also decoded once on the ComfyUI side)."""
        return sum(self.population)  # x0 fitness: each generation's x0 predictions, then the final samples

    def equal_budget_best_of_n(self, steps: int) -> int:
        """N of the Best-of-N that spends the same NFE (⌊NFE / T⌋)."""
        return self.nfe(steps) // int(steps)

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

    def describe(self, steps: int) -> str:
        """One line for logs and node reports."""
        nfe = self.nfe(steps)
        head = {
            "evosearch": (
                f"EvoSearch{' (x0 fitness)' if self.fitness == 'x0' else ''} at steps {list(self.evolution_steps)}, "
                f"population {list(self.population)}"
            ),
            "best_of_n": f"Best-of-{self.population[0]}",
            "particles": (
                f"Particle sampling ({self.population[0]} particles, resampling at {list(self.evolution_steps)}, "
                f"{self.fitness} fitness, potential {self.potential}, λ={self.lam:g})"
            ),
        }[self.strategy]
        return (
            f"{head}: {nfe:,} NFE at {steps} steps (×{nfe / steps:.3g} one trajectory; "
            f"equal-budget Best-of-{nfe // steps}), {self.reward_calls(steps)} reward calls"
        )

    def to_dict(self) -> dict[str, object]:
        """A JSON-friendly description (for reports and workflow metadata)."""
        out: dict[str, object] = {
            "strategy": self.strategy,
            "evolution_steps": list(self.evolution_steps),
            "population": list(self.population),
        }
        if self.strategy != "best_of_n":
            out["fitness"] = self.fitness
        if self.strategy == "particles":
            out.update(potential=self.potential, lam=self.lam)
        return out


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


SPEC_MODES = ("budget_multiple", "budget_nfe", "custom", "preset_sd21", "preset_flux", "preset_wan")
#: Fitness choices of a spec: "auto" = the paper's per strategy (rollout for EvoSearch, x0 for particles).
SPEC_FITNESS = ("auto", *FITNESS)


@dataclass(frozen=True)
class ScheduleSpec:
    """A schedule described independently of the sampler's step count, resolved once T is known.

    This is what the ComfyUI schedule node hands to the samplers: the node cannot know T (it comes with the sigmas),
    so budgets are planned, presets rescaled and custom steps validated at sampling time by :meth:`resolve`.
    Switching ``strategy`` keeps the compute: Best-of-N and particle sampling get the NFE the EvoSearch plan spends.

    Modes: ``budget_multiple`` (``budget`` × one trajectory), ``budget_nfe`` (``budget`` model evaluations),
    ``custom`` (``evolution_steps`` and ``population`` as given), ``preset_sd21`` / ``preset_flux`` / ``preset_wan``
    (the official schedules, rescaled from 50 steps). ``fitness`` (``auto`` / ``rollout`` / ``x0``) picks how
    generations are scored (:data:`FITNESS`); ``auto`` is the paper's choice per strategy.
    """

    mode: str = "budget_multiple"
    strategy: str = "evosearch"
    budget: float = 10.0
    evolution_steps: tuple[int, ...] = ()
    population: tuple[int, ...] = ()
    potential: str = "max"
    lam: float = 10.0
    fitness: str = "auto"

    def __post_init__(self) -> None:
        if self.fitness not in SPEC_FITNESS:
            raise ValueError(f"fitness must be one of {SPEC_FITNESS}, got {self.fitness!r}")
        if self.mode not in SPEC_MODES:
            raise ValueError(f"mode must be one of {SPEC_MODES}, got {self.mode!r}")
        if self.strategy not in STRATEGIES:
            raise ValueError(f"strategy must be one of {STRATEGIES}, got {self.strategy!r}")
        if self.mode.startswith("budget") and not self.budget > 0:
            raise ValueError(f"budget must be > 0, got {self.budget}")
        if self.mode == "custom":
            object.__setattr__(self, "evolution_steps", _int_tuple("evolution_steps", self.evolution_steps))
            object.__setattr__(self, "population", _int_tuple("population", self.population))
            Schedule(evolution_steps=self.evolution_steps, population=self.population, fitness=self._custom_fitness)

    @property
    def _custom_fitness(self) -> str | None:
        """Custom lists are an EvoSearch schedule; with x0 fitness they are read as one (NFE and step rules)."""
        return "x0" if self.strategy == "evosearch" and self.fitness == "x0" else None

    def evosearch_schedule(self, steps: int) -> Schedule:
        """The EvoSearch schedule this spec describes for a ``steps``-step sampler."""
        steps = int(steps)
        if self.mode == "custom":
            schedule = Schedule(
                evolution_steps=self.evolution_steps, population=self.population, fitness=self._custom_fitness
            )
            schedule.validate(steps)
            return schedule
        if self.mode.startswith("preset_"):
            return Schedule.preset(self.mode.removeprefix("preset_"), steps)
        budget = round(self.budget * steps) if self.mode == "budget_multiple" else int(self.budget)
        return Schedule.plan(budget, steps)

    def resolve(self, steps: int) -> Schedule:
        """The schedule to run with a ``steps``-step sampler, in this spec's strategy at the same compute."""
        evo = self.evosearch_schedule(steps)
        if self.strategy == "evosearch" and (self.fitness != "x0" or self.mode == "custom"):
            return evo
        n = max(1, evo.nfe(steps) // int(steps))
        if self.strategy == "best_of_n":
            return Schedule.best_of_n(n)
        resample = [s for s in evo.evolution_steps if s > 0] or list(default_evolution_steps(steps)[1:])
        if self.strategy == "evosearch":  # x0 fitness at the same compute
            return Schedule(evolution_steps=resample, population=(n,) * (len(resample) + 1), fitness="x0")
        if self.fitness == "rollout":
            return Schedule.plan(
                evo.nfe(steps), steps, resample, strategy="particles", potential=self.potential, lam=self.lam,
                fitness="rollout",
            )  # fmt: skip
        return Schedule.particles(n, resample, potential=self.potential, lam=self.lam)

    def describe(self, steps: int) -> str:
        return self.resolve(steps).describe(steps)
