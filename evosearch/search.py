"""The search loop: EvoSearch, Best-of-N and particle sampling through one set of code paths.

EvoSearch (He et al. 2025, arXiv 2505.17618, Alg. 1; clean form in method.md §3):

1. k_start unit noises are rolled out to clean samples and scored; on the way each trajectory's state at every
   evolution step is archived (the *pre-step* state, which the next step consumes) with its final reward.
2. At each evolution step s_g the pool is every trajectory archived at s_g. The top-m pass unchanged (elitism), the
   rest of the k_{g+1} children are tournament winners, mutated (unit noise at s_g = 0, the state otherwise), and
   rolled out to the end in turn, feeding the archive of later steps.
3. The best sample ever scored is returned, with the last generation as the final population.

Best-of-N is the same loop without generations; particle sampling is selection-only resampling (no mutation), either
on full-rollout fitness in the same loop or, FK-steering style, on x0-prediction rewards (``_x0_fitness``). EvoSearch
can use that cheap x0 fitness too (``fitness="x0"``: elitism, tournaments and mutation on x0-prediction rewards).
Every trajectory draws its sampler noise from its own seeded stream, so results do not depend on ``chunk_size``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import torch

from .mutation import Mutation, mutate_additive, mutate_initial, mutate_redraw
from .process import DenoisingProcess, StepInfo
from .result import GenerationRecord, SearchEvent, SearchResult, StopSearch
from .rng import IndividualNoise, derive_seed, normal_rows
from .schedule import Schedule
from .selection import elite_indices, fk_potential, multinomial_resample, rank_key, tournament_select

__all__ = ["search", "pool_sizes", "OUT_OF_MEMORY"]

log = logging.getLogger("evosearch")
T_out = TypeVar("T_out")
#: What counts as running out of device memory (torch.cuda.OutOfMemoryError is a subclass on torch >= 2.5).
OUT_OF_MEMORY: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

RewardFn = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[SearchEvent], None]


def pool_sizes(schedule: Schedule) -> list[int]:
    """Selection-pool size at each evolution step: every trajectory rolled out so far (42, 68, 94, 120 for SD2.1);
    with x0 fitness, the generation that reached the step."""
    if schedule.fitness == "x0":
        return list(schedule.population[:-1])
    sizes, total = [], schedule.population[0]
    for k in schedule.population[1:]:
        sizes.append(total)
        total += k
    return sizes


@dataclass
class _Level:
    """Archive of one evolution step: each trajectory's state there (unit noise at step 0), x0 prediction, reward."""

    states: list[torch.Tensor] = field(default_factory=list)
    denoised: list[torch.Tensor] = field(default_factory=list)
    rewards: list[torch.Tensor] = field(default_factory=list)

    def add(self, states: torch.Tensor, denoised: torch.Tensor | None, rewards: torch.Tensor) -> None:
        self.states.append(states)
        if denoised is not None:
            self.denoised.append(denoised)
        self.rewards.append(rewards)

    def cat(self) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        denoised = torch.cat(self.denoised) if self.denoised else None
        return torch.cat(self.states), denoised, torch.cat(self.rewards)


class _Engine:
    """Tensor plumbing shared by all strategies: chunked segment runs, per-individual noise, scoring, bookkeeping."""

    def __init__(
        self,
        process: DenoisingProcess,
        reward: RewardFn,
        shape: tuple[int, ...],
        schedule: Schedule,
        seed: int,
        chunk_size: int | None,
        callback: Callback | None,
        storage_device: torch.device,
    ) -> None:
        self.process = process
        self.reward = reward
        self.shape = shape
        self.schedule = schedule
        self.seed = seed
        self.chunk_size = chunk_size
        self.callback = callback
        self.storage = storage_device
        self.steps = process.steps
        self.total_nfe = schedule.nfe(self.steps, process.evals_per_step)
        self.evaluations_at_start = process.evaluations
        self.reward_calls = 0
        self.best: torch.Tensor | None = None
        self.best_reward = float("-inf")
        self.generation = 0
        self.history: list[GenerationRecord] = []
        self.started = time.perf_counter()
        self.warned_nan = False
        self.oom_retries = 0
        self.on_oom: Callable[[int], None] | None = None

    @property
    def nfe(self) -> int:
        return self.process.evaluations - self.evaluations_at_start

    def chunks(self, n: int) -> list[slice]:
        size = n if self.chunk_size is None else self.chunk_size
        return [slice(i, min(i + size, n)) for i in range(0, n, max(size, 1))]

    def map_chunks(self, n: int, work: Callable[[slice], T_out]) -> list[T_out]:
        """Run ``work`` on consecutive chunks of ``n`` individuals.

        An out-of-memory error halves the chunk size and retries the failed chunk once at each size (its noise
        streams restart, so the result is unchanged); at size 1 it fails with a message saying so.
        """
        outputs: list[T_out] = []
        start = 0
        while start < n:
            size = n if self.chunk_size is None else self.chunk_size
            chunk = slice(start, min(start + size, n))
            try:
                outputs.append(work(chunk))
            except OUT_OF_MEMORY as e:
                failed = chunk.stop - chunk.start
                if failed <= 1:
                    raise type(e)(
                        f"out of memory with a single individual per model call (generation {self.generation}); "
                        "lower the resolution or frame count, free memory, or use a smaller model"
                    ) from e
                self.chunk_size = max(1, failed // 2)
                self.oom_retries += 1
                log.warning("out of memory with %d individuals per call: retrying with %d", failed, self.chunk_size)
                if self.on_oom is not None:
                    self.on_oom(self.chunk_size)
                continue
            start = chunk.stop
        return outputs

    def trajectory_noise(self, generation: int, indices: Sequence[int]) -> IndividualNoise:
        """The sampler-noise streams of trajectories ``indices`` born in ``generation``: one stream per trajectory,
        consumed across its segments, so a trajectory does not depend on where the schedule cuts it."""
        seeds = [derive_seed(self.seed, "sde", generation, i) for i in indices]
        return IndividualNoise(seeds, self.shape, device=self.process.device, dtype=self.process.dtype)

    # ------------------------------------------------------------------ running the sampler
    def run_segment(
        self,
        x: torch.Tensor,
        start: int,
        end: int,
        noise: IndividualNoise,
        capture: tuple[int, ...] = (),
    ) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
        """Advance one chunk from ``start`` to ``end``; return the states at ``end`` and the x0 predictions made at the
        steps listed in ``capture``."""
        process = self.process
        captured: dict[int, torch.Tensor] = {}

        def on_step(info: StepInfo) -> None:
            if info.step in capture:
                captured[info.step] = info.denoised.detach().to(self.storage)
            if self.callback is not None:
                self.callback(
                    SearchEvent(
                        kind="step",
                        step=info.step,
                        nfe=self.nfe,
                        total_nfe=self.total_nfe,
                        generation=self.generation,
                        best_reward=self.best_reward,
                        x=info.x,
                        denoised=info.denoised,
                        best=self.best,
                    )
                )

        out = process.run(x, start, end, noise, on_step)
        if tuple(out.shape) != tuple(x.shape):
            raise ValueError(
                f"the sampler returned states of shape {tuple(out.shape)} for input {tuple(x.shape)}; "
                "a sampler must keep the batch and state shape"
            )
        return out, captured

    def to_device(self, x: torch.Tensor) -> torch.Tensor:
        return x.to(device=self.process.device, dtype=self.process.dtype)

    # ------------------------------------------------------------------ scoring
    def score(self, x0: torch.Tensor, candidate: bool = True) -> torch.Tensor:
        """Score samples (one reward call per individual). Clean samples are ``candidate`` for the global best;
        x0 predictions scored as proxies are not."""
        scores = self.reward(x0)
        scores = torch.as_tensor(scores)
        if tuple(scores.shape) != (x0.shape[0],):
            raise ValueError(
                f"reward returned shape {tuple(scores.shape)} for a batch of {x0.shape[0]}; "
                f"it must return a 1-D tensor of shape ({x0.shape[0]},), one score per sample"
            )
        scores = scores.detach().to("cpu", torch.float32)
        self.reward_calls += x0.shape[0]
        nan = torch.isnan(scores)
        if nan.any() and not self.warned_nan:
            log.warning("reward returned NaN for %d of %d samples; they count as the worst", int(nan.sum()), len(nan))
            self.warned_nan = True
        key = rank_key(scores)
        i = int(key.argmax())
        if candidate and (float(key[i]) > self.best_reward or self.best is None):
            self.best_reward = float(key[i])
            self.best = x0[i : i + 1].detach().to(self.storage).clone()
        return scores

    def record(self, step: int, rewards: torch.Tensor) -> GenerationRecord:
        key = rank_key(rewards)
        finite = key[torch.isfinite(key)]
        record = GenerationRecord(
            generation=self.generation,
            step=step,
            individuals=int(rewards.numel()),
            nfe=self.nfe,
            reward_calls=self.reward_calls,
            best_reward=self.best_reward,
            generation_best=float(key.max()) if key.numel() else float("nan"),
            mean_reward=float(finite.mean()) if finite.numel() else float("nan"),
            seconds=time.perf_counter() - self.started,
        )
        self.history.append(record)
        log.info(
            "generation %d at step %d: %d individuals, best %.4f (this generation %.4f, mean %.4f), %d NFE, %.1fs",
            record.generation, step, record.individuals, record.best_reward, record.generation_best,
            record.mean_reward, record.nfe, record.seconds,
        )  # fmt: skip
        if self.callback is not None:
            self.callback(
                SearchEvent(
                    kind="generation",
                    step=step,
                    nfe=self.nfe,
                    total_nfe=self.total_nfe,
                    generation=self.generation,
                    best_reward=self.best_reward,
                    best=self.best,
                    record=record,
                )
            )
        return record

    # ------------------------------------------------------------------ full rollouts with archiving
    def rollout(
        self,
        states: torch.Tensor,
        start: int,
        generation: int,
        levels: list[_Level],
        first_level: int,
        want_denoised: bool,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Roll ``states`` (unit noise if ``start == 0``) out to clean samples, chunk by chunk, and score them.

        The state of each trajectory at every evolution step from level ``first_level`` on is archived (with the x0
        prediction the next step makes there, if ``want_denoised``) under the trajectory's final reward.
        """
        evo = self.schedule.evolution_steps
        marks = [j for j in range(first_level, len(evo)) if evo[j] >= start]
        bounds = [start] + [evo[j] for j in marks if evo[j] > start] + [self.steps]

        def work(chunk: slice) -> tuple[dict[int, torch.Tensor], dict[int, torch.Tensor], torch.Tensor, torch.Tensor]:
            x = self.to_device(states[chunk])
            at_step = {start: states[chunk].to(self.storage)}  # the level's representation: unit noise at step 0
            denoised_at: dict[int, torch.Tensor] = {}
            noise = self.trajectory_noise(generation, range(chunk.start, chunk.stop))
            if start == 0:
                x = self.process.initial_state(x)
            for a, b in zip(bounds[:-1], bounds[1:]):
                if a != start:
                    at_step[a] = x.detach().to(self.storage)
                capture = (a,) if want_denoised and a > 0 and any(evo[j] == a for j in marks) else ()
                x, captured = self.run_segment(x, a, b, noise, capture)
                denoised_at.update(captured)
            x0 = self.process.finalize(x).detach()
            return at_step, denoised_at, x0.to(self.storage), self.score(x0)

        parts = self.map_chunks(states.shape[0], work)
        x0_all, rewards = torch.cat([p[2] for p in parts]), torch.cat([p[3] for p in parts])
        for j in marks:
            step = evo[j]
            denoised = [p[1][step] for p in parts if step in p[1]]
            levels[j].add(torch.cat([p[0][step] for p in parts]), torch.cat(denoised) if denoised else None, rewards)
        return x0_all, rewards

    # ------------------------------------------------------------------ result
    def result(self, samples: torch.Tensor, rewards: torch.Tensor, mutation: Mutation, stopped: bool) -> SearchResult:
        order = torch.sort(rank_key(rewards), descending=True, stable=True).indices
        assert self.best is not None
        return SearchResult(
            best=self.best,
            best_reward=self.best_reward,
            samples=samples[order],
            rewards=rewards[order],
            nfe=self.nfe,
            reward_calls=self.reward_calls,
            history=self.history,
            seconds=time.perf_counter() - self.started,
            schedule=self.schedule,
            mutation=mutation,
            seed=self.seed,
            steps=self.steps,
            stopped=stopped,
            extras={"oom_retries": self.oom_retries, "final_chunk_size": self.chunk_size} if self.oom_retries else {},
        )


def _mutate(
    engine: _Engine,
    mutation: Mutation,
    step: int,
    states: torch.Tensor,
    denoised: torch.Tensor | None,
    generation: int,
    first_index: int,
) -> torch.Tensor:
    """Mutate parents at ``step`` (child ``first_index + i`` draws its noise from its own stream)."""
    seeds = [derive_seed(engine.seed, "mutate", generation, first_index + i) for i in range(states.shape[0])]
    eps = normal_rows(seeds, engine.shape, device=states.device, dtype=states.dtype)
    if step == 0:
        return mutate_initial(states, mutation.beta, eps)
    process = engine.process
    if mutation.intermediate == "additive":
        return mutate_additive(states, process.step_noise_std(step), mutation.strength, eps)
    assert denoised is not None
    return mutate_redraw(
        states, denoised.to(states.dtype), process.signal_scale(step), process.noise_scale(step), mutation.strength, eps
    )


def _evolve(engine: _Engine, mutation: Mutation) -> SearchResult:
    """EvoSearch, Best-of-N and rollout-fitness particle sampling (method.md §3)."""
    schedule = engine.schedule
    evo, population = schedule.evolution_steps, schedule.population
    levels = [_Level() for _ in evo]
    evolving = schedule.strategy == "evosearch"
    want_denoised = evolving and mutation.intermediate == "redraw"
    noise = normal_rows(
        [derive_seed(engine.seed, "init", i) for i in range(population[0])], engine.shape, device=engine.storage
    )
    samples, rewards = engine.rollout(noise, 0, 0, levels, 0, want_denoised)
    engine.record(0, rewards)
    carried: torch.Tensor | None = None
    for g, step in enumerate(evo):
        k = population[g + 1]
        pool_states, pool_denoised, pool_rewards = levels[g].cat()
        selector = torch.Generator().manual_seed(derive_seed(engine.seed, "select", g))
        if evolving:
            m = mutation.elites_for(k)
            elites = elite_indices(pool_rewards, m)
            parents = tournament_select(pool_rewards, k - m, mutation.tournament_for(len(pool_rewards)), selector)
            parent_denoised = pool_denoised[parents] if pool_denoised is not None else None
            mutated = _mutate(engine, mutation, step, pool_states[parents], parent_denoised, g + 1, m)
            children = torch.cat([pool_states[elites], mutated])
        else:  # particles, rollout fitness: resample the current particles only, no mutation
            current = slice(len(pool_rewards) - population[g], len(pool_rewards))
            log_w, carried_now = fk_potential(pool_rewards[current], carried, schedule.potential, schedule.lam)
            picked = multinomial_resample(log_w, k, selector)
            children, carried = pool_states[current][picked], carried_now[picked]
        levels[g] = _Level()  # this level is never read again: free its memory
        engine.generation = g + 1
        samples, rewards = engine.rollout(children, step, g + 1, levels, g + 1, want_denoised)
        engine.record(step, rewards)
    return engine.result(samples, rewards, mutation, stopped=False)


def _x0_fitness(engine: _Engine, mutation: Mutation) -> SearchResult:
    """Generations scored on x0 predictions: FK-steering particles, or EvoSearch with the same cheap fitness.

    The population moves together. Generation g (``population[g]`` individuals) runs from s_{g-1} to s_g; the x0
    predictions its last step made anyway are decoded and scored, and the states at s_g are then

    * resampled multinomially with the potential's weights (particles: FK-steering, Singhal et al. 2025, the paper's
      baseline), or
    * evolved (EvoSearch with x0 fitness): the top-m pass unchanged, the rest are tournament winners mutated at s_g
      (method.md §3c–e) with ``redraw`` keeping the winner's x0 prediction, ``additive`` adding σ_step·ε.

    Each individual costs one model call per step (Σ_g population[g]·(s_g − s_{g-1}) NFE). The x0 scores are proxies:
    they steer selection but never compete for the returned best, which is the best finished sample.
    """
    schedule = engine.schedule
    population = schedule.population
    process = engine.process
    evolving = schedule.strategy == "evosearch"
    x = normal_rows(
        [derive_seed(engine.seed, "init", i) for i in range(population[0])], engine.shape, device=engine.storage
    )
    bounds = [0, *schedule.evolution_steps, engine.steps]
    carried: torch.Tensor | None = None
    for g, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        engine.generation = g
        n = x.shape[0]

        def work(
            chunk: slice, a: int = a, b: int = b, g: int = g, x: torch.Tensor = x
        ) -> tuple[torch.Tensor, torch.Tensor]:
            xc = engine.to_device(x[chunk])
            if a == 0:
                xc = process.initial_state(xc)
            noise = engine.trajectory_noise(g, range(chunk.start, chunk.stop))
            xc, captured = engine.run_segment(xc, a, b, noise, (b - 1,))
            return xc.detach().to(engine.storage), captured[b - 1].detach().to(engine.storage)

        parts = engine.map_chunks(n, work)
        x = torch.cat([p[0] for p in parts])
        if b == engine.steps:
            break
        denoised = torch.cat([p[1] for p in parts])
        scores = torch.cat([engine.score(engine.to_device(denoised[c]), candidate=False) for c in engine.chunks(n)])
        k = population[g + 1]
        selector = torch.Generator().manual_seed(derive_seed(engine.seed, "select", g))
        if evolving:
            m = mutation.elites_for(k)
            elites = elite_indices(scores, m)
            parents = tournament_select(scores, k - m, mutation.tournament_for(n), selector)
            mutated = _mutate(engine, mutation, b, x[parents], denoised[parents], g + 1, m)
            x = torch.cat([x[elites], mutated])
        else:
            log_w, carried_now = fk_potential(scores, carried, schedule.potential, schedule.lam)
            picked = multinomial_resample(log_w, k, selector)
            x, carried = x[picked], carried_now[picked]
        engine.record(b, scores)

    def finish(chunk: slice) -> tuple[torch.Tensor, torch.Tensor]:
        x0 = process.finalize(engine.to_device(x[chunk])).detach()
        return x0.to(engine.storage), engine.score(x0)

    parts = engine.map_chunks(x.shape[0], finish)
    samples, rewards = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    engine.generation = len(schedule.evolution_steps)
    engine.record(engine.steps, rewards)
    return engine.result(samples, rewards, mutation, stopped=False)


def _validate(
    process: DenoisingProcess,
    reward: RewardFn,
    shape: Sequence[int],
    schedule: Schedule,
    seed: int,
    chunk_size: int | None,
    mutation: Mutation,
) -> tuple[int, ...]:
    if not isinstance(process, DenoisingProcess):
        raise TypeError(
            f"process must be an evosearch DenoisingProcess (e.g. KDiffusionProcess), got {type(process).__name__}"
        )
    if not callable(reward):
        raise TypeError(f"reward must be callable as reward(x0) -> Tensor[B], got {type(reward).__name__}")
    if not isinstance(schedule, Schedule):
        raise TypeError(f"schedule must be an evosearch.Schedule, got {type(schedule).__name__}")
    try:
        shape = tuple(int(s) for s in shape)
    except TypeError as e:
        raise ValueError(f"shape must be a tuple of positive ints (one individual, no batch dim), got {shape!r}") from e
    if not shape or any(s < 1 for s in shape):
        raise ValueError(
            f"shape must be a non-empty tuple of positive ints (one individual, no batch dim), got {shape}"
        )
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if chunk_size is not None and (not isinstance(chunk_size, int) or chunk_size < 1):
        raise ValueError(f"chunk_size must be None (whole population) or an int >= 1, got {chunk_size!r}")
    steps = process.steps
    schedule.validate(steps)
    if schedule.strategy != "best_of_n" and any(s > 0 for s in schedule.evolution_steps) and not process.stochastic:
        raise ValueError(
            "generations after step 0 need a stochastic sampler (with a deterministic one, resampled or mutated "
            "copies share one continuation); use eta > 0, a stochastic sampler, or evolution_steps=[0]"
        )
    if schedule.strategy == "evosearch":
        for g, (k, pool) in enumerate(zip(schedule.population[1:], pool_sizes(schedule))):
            m = mutation.elites_for(k)
            if m > k:
                raise ValueError(
                    f"population[{g + 1}]={k} is smaller than elites={m}: a generation must hold at least its elites; "
                    f"lower elites to <= {k} or raise the population"
                )
            if m > pool:
                raise ValueError(
                    f"elites={m} at generation {g + 1} (step {schedule.evolution_steps[g]}) exceed its selection pool "
                    f"of {pool}; lower elites to <= {pool} or raise the earlier population"
                )
            if k > m:
                size = mutation.tournament_for(pool)
                if size > pool:
                    raise ValueError(
                        f"tournament={mutation.tournament} needs {size} contestants but generation {g + 1} (step "
                        f"{schedule.evolution_steps[g]}) selects from a pool of {pool}; valid range is [1, {pool}] "
                        "or a fraction in (0, 1)"
                    )
    return shape


def search(
    process: DenoisingProcess,
    reward: RewardFn,
    shape: Sequence[int],
    schedule: Schedule,
    seed: int = 0,
    chunk_size: int | None = None,
    *,
    mutation: Mutation | None = None,
    callback: Callback | None = None,
    storage_device: torch.device | str | None = None,
    on_oom: Callable[[int], None] | None = None,
    **settings: object,
) -> SearchResult:
    """Run EvoSearch (or Best-of-N / particle sampling, per ``schedule.strategy``) and return the best sample.

    Args:
        process: the stochastic denoising process (e.g. :class:`~evosearch.KDiffusionProcess`).
        reward: ``reward(x0: Tensor[B, *shape]) -> Tensor[B]``, higher is better. NaN counts as the worst.
        shape: the shape of one individual, without the batch dimension.
        schedule: evolution steps and population sizes (:class:`~evosearch.Schedule`).
        seed: the only source of randomness; every draw comes from a stream derived from it.
        chunk_size: most individuals per model call (``None``: the whole population). Results do not depend on it.
        mutation: mutation and selection settings (:class:`~evosearch.Mutation`); keyword ``settings`` such as
            ``beta=0.5, elites=2`` override single fields.
        callback: called with a :class:`~evosearch.SearchEvent` after every model step and generation. Raising
            :class:`~evosearch.StopSearch` ends the search and returns the best found so far; any other exception
            stops it and propagates.
        storage_device: where the archive and results live (default: the process's device).
        on_oom: called with the new chunk size after an out-of-memory error halved it (e.g. to empty caches).
    """
    mutation = (mutation or Mutation()).with_overrides(**settings) if settings else (mutation or Mutation())
    shape = _validate(process, reward, shape, schedule, seed, chunk_size, mutation)
    storage = torch.device(storage_device) if storage_device is not None else process.device
    engine = _Engine(process, reward, shape, schedule, seed, chunk_size, callback, storage)
    engine.on_oom = on_oom
    run = _x0_fitness if schedule.fitness == "x0" and schedule.strategy != "best_of_n" else _evolve
    with torch.no_grad():
        try:
            return run(engine, mutation)
        except StopSearch:
            if engine.best is None:
                raise
            log.info("search stopped early by its callback after %d NFE", engine.nfe)
            best = engine.best
            return engine.result(best, torch.tensor([engine.best_reward]), mutation, stopped=True)
