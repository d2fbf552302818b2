"""The search loop: a strategy proposes trajectories, the runner evaluates them, the strategy learns.

EvoSearch (He et al., "Scaling Image and Video Generation via Test-Time Evolutionary Search", arXiv 2505.17618),
Best-of-N and particle sampling are strategies (:mod:`evosearch.strategies`) over one trajectory runner
(:mod:`evosearch.runner`), so they share the seeds, the noise streams and the NFE accounting. Before any model call
the search measures the sampler (:mod:`evosearch.facts`), swaps a deterministic sampler for a stochastic one where
the strategy needs random continuations, checks the schedule, and estimates its memory (:mod:`evosearch.memory`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import torch

from .facts import NotAFixedStepSampler, SamplerFacts
from .memory import check_memory, estimate_memory
from .mutation import Mutation
from .process import DenoisingProcess
from .result import SearchEvent, SearchResult, StopSearch
from .runner import OUT_OF_MEMORY, TrajectoryRunner
from .schedule import Schedule
from .selection import rank_key
from .strategies import SearchContext

__all__ = ["search", "pool_sizes", "prepare", "OUT_OF_MEMORY"]

log = logging.getLogger("evosearch")

RewardFn = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[SearchEvent], None]


def pool_sizes(schedule: Schedule) -> list[int]:
    """Selection-pool size at each evolution step (42, 68, 94, 120 for the SD2.1 preset; with x0 fitness, the
    generation that reached the step)."""
    return schedule.strategy_class.pool_sizes(schedule)


def _check_arguments(
    process: object, reward: object, shape: Sequence[int], schedule: object, seed: object, chunk_size: object
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
    return shape


def prepare(
    process: DenoisingProcess, schedule: Schedule, mutation: Mutation, shape: tuple[int, ...]
) -> tuple[DenoisingProcess, SamplerFacts, list[str]]:
    """Validate ``schedule`` for ``process`` and measure the sampler; swap it for a stochastic variant if the strategy
    needs random continuations and the sampler has none. Returns the process to run, its facts, and warnings."""
    strategy = schedule.strategy_class
    steps = process.steps
    strategy.validate(schedule, steps, mutation)
    births = strategy.births(schedule, steps)
    needs = strategy.needs_stochastic_from(schedule)
    noise = needs is not None or (strategy.mutates and mutation.intermediate == "additive")
    try:
        facts = process.facts(births, shape, noise=noise)
    except NotAFixedStepSampler as e:
        # An adaptive sampler can still run whole trajectories from x_T (Best-of-N, x_T-only evolution); only the
        # NFE cannot be planned: it is counted.
        segments = strategy.segments(schedule, steps)
        if needs is not None or any(s.start > 0 or s.stop is not None for s in segments):
            raise
        facts = SamplerFacts.unmeasured(steps, str(e))
    warnings = list(facts.notes)
    if needs is not None and not facts.is_stochastic(after=needs):
        variant = process.stochastic_variant(after=needs)
        if variant is None:
            raise ValueError(
                f"generations after step 0 need a stochastic sampler, but {process.name!r} injects no noise from "
                f"step {needs} on (measured): copies of an intermediate state would share one continuation; use "
                "eta > 0, a stochastic sampler, or evolution_steps=[0]"
            )
        process, why = variant
        facts = process.facts(births, shape, noise=True)
        if not facts.is_stochastic(after=needs):
            raise ValueError(f"{why}; but the replacement {process.name!r} injects no noise either")
        warnings = [why, *facts.notes]
        log.warning("%s", why)
    return process, facts, warnings


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
    memory_limit: int | None = None,
    keep_best: int = 32,
    **settings: object,
) -> SearchResult:
    """Run the schedule's strategy (EvoSearch, Best-of-N or particle sampling) and return the best sample.

    Args:
        process: the denoising process (e.g. :class:`~evosearch.KDiffusionProcess`).
        reward: ``reward(x0: Tensor[B, *shape]) -> Tensor[B]``, higher is better. NaN counts as the worst.
        shape: the shape of one individual, without the batch dimension.
        schedule: evolution steps, population sizes and strategy (:class:`~evosearch.Schedule`).
        seed: the only source of randomness; every draw comes from a stream derived from it.
        chunk_size: most individuals per model call (``None``: the whole batch). Results do not depend on it.
        mutation: mutation and selection settings (:class:`~evosearch.Mutation`); keyword ``settings`` such as
            ``beta=0.5, elites=2`` override single fields.
        callback: called with a :class:`~evosearch.SearchEvent` after every model step and generation. Raising
            :class:`~evosearch.StopSearch` ends the search and returns the best found so far; any other exception
            stops it and propagates.
        storage_device: where the archive and results live (default: the process's device).
        on_oom: called with the new chunk size after an out-of-memory error halved it (e.g. to empty caches).
        memory_limit: most bytes the search may hold between model calls (default: 90 % of the storage device's
            free memory); a schedule estimated above it is refused before it starts (:class:`SearchTooLarge`).
        keep_best: how many of the best finished samples of the whole search to keep (``result.fame_samples``),
            the candidates :meth:`SearchResult.options` picks distinct options from.
    """
    mutation = (mutation or Mutation()).with_overrides(**settings) if settings else (mutation or Mutation())
    shape = _check_arguments(process, reward, shape, schedule, seed, chunk_size)
    process, facts, warnings = prepare(process, schedule, mutation, shape)
    steps = process.steps
    strategy_cls = schedule.strategy_class
    storage = torch.device(storage_device) if storage_device is not None else process.device
    estimate = estimate_memory(strategy_cls, schedule, mutation, steps, shape, process.dtype,
                               chunk_size or max(schedule.population), extra_states=max(0, int(keep_best)))  # fmt: skip
    check_memory(estimate, storage, memory_limit)
    planned = strategy_cls.nfe(schedule, steps, facts) if facts.measured else None
    progress_total = planned if planned is not None else schedule.nfe(steps)
    runner = TrajectoryRunner(process, reward, shape, seed, chunk_size, storage, facts, progress_total, callback, on_oom,
                              keep_best=keep_best)  # fmt: skip
    strategy = strategy_cls(schedule, mutation, SearchContext(seed, steps, shape, storage, process))
    stopped = False
    with torch.no_grad():
        try:
            while (batch := strategy.ask()) is not None:
                runner.run(batch, strategy.tell)
        except StopSearch:
            if runner.best is None:
                raise
            log.info("search stopped early by its callback after %d NFE", runner.nfe)
            stopped = True
    lineages = None
    if stopped or runner.samples is None:
        best = runner.best_reward if runner.best_reward is not None else float("nan")
        samples, rewards = runner.best, torch.tensor([best])
    else:
        order = torch.sort(rank_key(runner.rewards), descending=True, stable=True).indices
        samples, rewards = runner.samples[order], runner.rewards[order]
        lineages = strategy.lineages()
        lineages = lineages[order] if lineages is not None and len(lineages) == len(order) else None
    assert runner.best is not None and samples is not None
    extras = {"oom_retries": runner.oom_retries, "final_chunk_size": runner.chunk_size} if runner.oom_retries else {}
    return SearchResult(
        best=runner.best,
        best_reward=runner.best_reward if runner.best_reward is not None else float("-inf"),
        samples=samples,
        rewards=rewards,
        nfe=runner.nfe,
        reward_calls=runner.reward_calls,
        history=runner.history,
        seconds=time.perf_counter() - runner.started,
        schedule=schedule,
        mutation=mutation,
        seed=seed,
        steps=steps,
        stopped=stopped,
        extras=extras,
        planned_nfe=planned,
        trajectory_nfe=facts.calls(0) if facts.measured else None,
        sampler=process.name,
        sampler_facts=facts.to_dict(),
        warnings=warnings,
        memory=estimate.to_dict(),
        reward_seconds=runner.reward_seconds,
        discarded_nfe=runner.discarded_nfe,
        fame_samples=runner.fame_samples,
        fame_rewards=runner.fame_rewards,
        lineages=lineages,
    )
