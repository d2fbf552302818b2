"""The trajectory runner: evaluates a strategy's batches through the sampler, chunk by chunk.

It owns everything a strategy should not have to think about:

* **One sampler call per trajectory.** A chunk of a batch is one call of the process's sampler from the batch's start
  step over the whole remaining σ schedule. States a strategy wants archived are copied from the sampler's step
  callback; a batch that stops early (x0 fitness) is stopped by raising before the stop step's first model
  evaluation, which the measured evaluation counts locate exactly. No trajectory is cut and restarted, so multistep
  samplers keep their history and the first generation of EvoSearch is bit-identical to Best-of-k_start.
* **Per-individual noise.** Trajectory ``i`` of generation ``g`` draws its sampler noise from its own stream
  ``derive_seed(seed, "sde", g, i)``, so results do not depend on the chunk size.
* **Honest accounting.** Model evaluations are counted after they return, per individual; an attempt that runs out of
  memory is discarded (counted separately), halved and retried with the same streams.
* **Scores, the best and the history.** Rewards of finished samples compete for the returned best; x0-prediction
  rewards are proxies, reported as such and never returned.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

import torch

from .facts import SamplerFacts
from .process import DenoisingProcess, StepInfo
from .result import GenerationRecord, SearchEvent
from .rng import IndividualNoise, derive_seed
from .selection import rank_key
from .strategies.base import Batch, Scored

__all__ = ["OUT_OF_MEMORY", "TrajectoryRunner", "run_to"]

log = logging.getLogger("evosearch")
#: What counts as running out of device memory (torch.cuda.OutOfMemoryError is a subclass on torch >= 2.5).
OUT_OF_MEMORY: type[BaseException] = getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)

RewardFn = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[SearchEvent], None]


class _Stop(BaseException):
    """Raised inside a sampler call to end it before a step (a BaseException so no ``except Exception`` eats it)."""

    def __init__(self, state: torch.Tensor) -> None:
        super().__init__("trajectory stopped")
        self.state = state


class _ChunkMonitor:
    """The hooks of one sampler call: counts evaluations, archives captured steps, stops before ``stop``."""

    def __init__(self, runner: TrajectoryRunner, batch: Batch, stop_calls: int | None) -> None:
        self.runner = runner
        self.batch = batch
        self.stop_calls = stop_calls
        self.calls = 0
        self.evaluations = 0
        self.captured: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.proxy: torch.Tensor | None = None

    def before_eval(self, x: torch.Tensor, sigma: torch.Tensor) -> None:
        if self.stop_calls is not None and self.calls == self.stop_calls:
            stop = self.batch.stop
            assert stop is not None
            expected = float(self.runner.process.sigmas[stop])
            got = float(torch.as_tensor(sigma).reshape(-1)[0])
            if not math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
                raise RuntimeError(
                    f"sampler {self.runner.process.name!r} evaluated at σ={got:.6g} where step {stop} (σ={expected:.6g}) "
                    "was expected: its evaluations per step differ from the measured ones"
                )
            raise _Stop(x.detach().clone())

    def after_eval(self, batch: int) -> None:
        self.calls += 1
        self.evaluations += int(batch)

    def on_step(self, info: StepInfo) -> None:
        runner, batch = self.runner, self.batch
        if info.step in batch.capture:
            self.captured[info.step] = (runner.keep(info.x), runner.keep(info.denoised))
        if batch.stop is not None and info.step == batch.stop - 1:
            self.proxy = info.denoised.detach().clone()
        runner.step_event(info, self)


class TrajectoryRunner:
    """Runs batches for a strategy and keeps the search's accounting (see the module docstring)."""

    def __init__(
        self,
        process: DenoisingProcess,
        reward: RewardFn,
        shape: tuple[int, ...],
        seed: int,
        chunk_size: int | None,
        storage: torch.device,
        facts: SamplerFacts,
        planned_nfe: int,
        callback: Callback | None = None,
        on_oom: Callable[[int], None] | None = None,
        keep_best: int = 0,
    ) -> None:
        self.process = process
        self.reward = reward
        self.shape = shape
        self.seed = seed
        self.chunk_size = chunk_size
        self.storage = storage
        self.facts = facts
        self.planned_nfe = planned_nfe
        self.callback = callback
        self.on_oom = on_oom
        self.nfe = 0
        self.discarded_nfe = 0
        self.oom_retries = 0
        self.reward_calls = 0
        self.reward_seconds = 0.0
        self.best: torch.Tensor | None = None
        self.best_reward: float | None = None
        self.best_proxy: float | None = None
        self.history: list[GenerationRecord] = []
        self.samples: torch.Tensor | None = None
        self.rewards: torch.Tensor | None = None
        #: the best finished samples of the whole search (a hall of fame), best first, at most ``keep_best``
        self.keep_best = int(keep_best)
        self.fame_samples: torch.Tensor | None = None
        self.fame_rewards: torch.Tensor | None = None
        self.started = time.perf_counter()
        self.warned_nan = False
        self.generation = 0
        self._live = 0

    # ------------------------------------------------------------------ helpers
    def keep(self, x: torch.Tensor) -> torch.Tensor:
        """A copy of ``x`` on the storage device (a copy even where the device is the same: samplers reuse buffers)."""
        out = x.detach().to(self.storage)
        return out.clone() if out.data_ptr() == x.data_ptr() else out

    def best_so_far(self) -> tuple[float | None, bool]:
        """The best finished reward, else the best x0-proxy reward; and whether it is the proxy."""
        if self.best_reward is not None:
            return self.best_reward, False
        return self.best_proxy, self.best_proxy is not None

    def step_event(self, info: StepInfo, monitor: _ChunkMonitor) -> None:
        if self.callback is None:
            return
        best, proxy = self.best_so_far()
        self.callback(
            SearchEvent(
                kind="step",
                step=info.step,
                nfe=self.nfe + monitor.evaluations,
                total_nfe=self.planned_nfe,
                generation=monitor.batch.generation,
                best_reward=best,
                x=info.x,
                denoised=info.denoised,
                best=self.best,
                best_is_proxy=proxy,
            )
        )

    # ------------------------------------------------------------------ running a batch
    def run(self, batch: Batch, tell: Callable[[Scored], None]) -> None:
        """Run ``batch`` chunk by chunk (halving the chunk on out-of-memory), telling each chunk, then record it."""
        n = len(batch)
        self.generation = batch.generation
        scores: list[torch.Tensor] = []
        samples: list[torch.Tensor] = []
        start = 0
        while start < n:
            size = n if self.chunk_size is None else self.chunk_size
            chunk = slice(start, min(start + size, n))
            self._live = 0
            try:
                scored = self._run_chunk(batch, chunk)
            except OUT_OF_MEMORY as e:
                failed = chunk.stop - chunk.start
                self.discarded_nfe += self._live
                if failed <= 1:
                    raise type(e)(
                        f"out of memory with a single individual per model call (generation {batch.generation}); "
                        "lower the resolution or frame count, free memory, or use a smaller model"
                    ) from e
                self.chunk_size = max(1, failed // 2)
                self.oom_retries += 1
                log.warning("out of memory with %d individuals per call: retrying with %d", failed, self.chunk_size)
                if self.on_oom is not None:
                    self.on_oom(self.chunk_size)
                continue
            self.nfe += self._live
            self._live = 0
            scores.append(scored.scores)
            if scored.samples is not None:
                samples.append(scored.samples)
            tell(scored)
            start = chunk.stop
        batch_scores = torch.cat(scores) if scores else torch.empty(0)
        if not batch.proxy:
            self.samples, self.rewards = torch.cat(samples), batch_scores
        self.record(batch, batch_scores)

    def _run_chunk(self, batch: Batch, chunk: slice) -> Scored:
        process = self.process
        x = batch.states[chunk].to(device=process.device, dtype=process.dtype)
        if batch.start == 0:
            x = process.initial_state(x)
        seeds = [derive_seed(self.seed, "sde", batch.generation, i) for i in range(chunk.start, chunk.stop)]
        noise = IndividualNoise(seeds, self.shape, device=process.device, dtype=process.dtype)
        stop_calls = None if batch.stop is None else self.facts.calls(batch.start, batch.stop)
        monitor = _ChunkMonitor(self, batch, stop_calls)
        stopped: torch.Tensor | None = None
        try:
            out = process.sample(x, batch.start, noise, _Live(monitor, self))
        except _Stop as stop:
            stopped = stop.state
        if batch.stop is None:
            if stopped is not None:
                raise RuntimeError("a trajectory was stopped although its batch runs to the end")
            if tuple(out.shape) != tuple(x.shape):
                raise ValueError(
                    f"the sampler returned states of shape {tuple(out.shape)} for input {tuple(x.shape)}; "
                    "a sampler must keep the batch and state shape"
                )
            x0 = process.finalize(out).detach()
            return Scored(chunk, self.score(x0, candidate=True), samples=self.keep(x0), captured=monitor.captured)
        if stopped is None or monitor.proxy is None:
            raise RuntimeError(
                f"sampler {process.name!r} finished without reaching step {batch.stop}: its evaluations per step "
                "differ from the measured ones"
            )
        return Scored(
            chunk,
            self.score(monitor.proxy, candidate=False),
            states=self.keep(stopped),
            denoised=self.keep(monitor.proxy),
            captured=monitor.captured,
        )

    # ------------------------------------------------------------------ scoring and records
    def score(self, x0: torch.Tensor, candidate: bool) -> torch.Tensor:
        """Score samples (one reward call per individual). Finished samples are ``candidate`` for the global best;
        x0 predictions scored as proxies are not."""
        started = time.perf_counter()
        scores = torch.as_tensor(self.reward(x0))
        self.reward_seconds += time.perf_counter() - started
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
        value = float(key[i])
        better = math.isfinite(value) and (
            (self.best_reward if candidate else self.best_proxy) is None
            or value > (self.best_reward if candidate else self.best_proxy)
        )
        if candidate and (better or self.best is None):  # all-NaN rewards still leave a sample to return
            self.best = x0[i : i + 1].detach().to(self.storage).clone()
            self.best_reward = value if better else self.best_reward
        elif not candidate and better:
            self.best_proxy = value
        if candidate and self.keep_best > 0:
            self._remember(x0, scores)
        return scores

    def _remember(self, x0: torch.Tensor, scores: torch.Tensor) -> None:
        """Merge finished samples into the hall of fame (ties keep the earlier sample first)."""
        samples = self.keep(x0)
        if self.fame_samples is not None and self.fame_rewards is not None:
            samples = torch.cat([self.fame_samples, samples])
            scores = torch.cat([self.fame_rewards, scores])
        order = torch.sort(rank_key(scores), descending=True, stable=True).indices[: self.keep_best]
        self.fame_samples, self.fame_rewards = samples[order.to(samples.device)], scores[order]

    def record(self, batch: Batch, rewards: torch.Tensor) -> GenerationRecord:
        key = rank_key(rewards)
        finite = key[torch.isfinite(key)]
        best, proxy = self.best_so_far()
        record = GenerationRecord(
            generation=batch.generation,
            step=batch.record_step,
            individuals=int(rewards.numel()),
            nfe=self.nfe,
            reward_calls=self.reward_calls,
            best_reward=best,
            generation_best=float(finite.max()) if finite.numel() else None,
            mean_reward=float(finite.mean()) if finite.numel() else None,
            seconds=time.perf_counter() - self.started,
            proxy=batch.proxy,
            best_is_proxy=proxy,
        )
        self.history.append(record)
        log.info(
            "generation %d at step %d: %d individuals scored on %s, best so far %s%s (this generation %s, mean %s), "
            "%d NFE, %.1fs",
            record.generation, record.step, record.individuals, "x0 predictions" if batch.proxy else "finished samples",
            _fmt(best), " (x0 proxy)" if proxy else "", _fmt(record.generation_best), _fmt(record.mean_reward),
            record.nfe, record.seconds,
        )  # fmt: skip
        if self.callback is not None:
            self.callback(
                SearchEvent(
                    kind="generation",
                    step=batch.record_step,
                    nfe=self.nfe,
                    total_nfe=self.planned_nfe,
                    generation=batch.generation,
                    best_reward=best,
                    best=self.best,
                    record=record,
                    best_is_proxy=proxy,
                    scores=rewards,
                )
            )
        return record


class _Live:
    """Forwards a chunk's hooks and keeps the runner's in-flight evaluation count (discarded on out-of-memory)."""

    def __init__(self, monitor: _ChunkMonitor, runner: TrajectoryRunner) -> None:
        self.monitor, self.runner = monitor, runner

    def before_eval(self, x: torch.Tensor, sigma: torch.Tensor) -> None:
        self.monitor.before_eval(x, sigma)

    def after_eval(self, batch: int) -> None:
        self.monitor.after_eval(batch)
        self.runner._live = self.monitor.evaluations

    def on_step(self, info: StepInfo) -> None:
        self.monitor.on_step(info)


def _fmt(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


class _Hooks:
    """Monitor for :func:`run_to`: stops before ``end`` (counted from measured facts), forwards steps."""

    def __init__(self, stop_calls: int | None, on_step: Callable[[StepInfo], None] | None) -> None:
        self.stop_calls, self.on_step_fn, self.calls = stop_calls, on_step, 0

    def before_eval(self, x: torch.Tensor, sigma: torch.Tensor) -> None:
        if self.stop_calls is not None and self.calls == self.stop_calls:
            raise _Stop(x.detach().clone())

    def after_eval(self, batch: int) -> None:
        self.calls += 1

    def on_step(self, info: StepInfo) -> None:
        if self.on_step_fn is not None:
            self.on_step_fn(info)


def run_to(
    process: DenoisingProcess,
    x: torch.Tensor,
    start: int,
    end: int,
    noise_sampler: Callable[..., torch.Tensor],
    on_step: Callable[[StepInfo], None] | None = None,
) -> torch.Tensor:
    """Advance ``x`` from step ``start`` to the state before step ``end`` (``end == T``: the final state)."""
    if not 0 <= start <= end <= process.steps:
        raise ValueError(f"segment [{start}, {end}] is outside the schedule's steps [0, {process.steps}]")
    if start == end:
        return x
    stop_calls = None if end == process.steps else process.facts((start,)).calls(start, end)
    try:
        return process.sample(x, start, noise_sampler, _Hooks(stop_calls, on_step))
    except _Stop as stop:
        return stop.state
