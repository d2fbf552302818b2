"""Sampler facts, measured instead of listed: model evaluations per step, injected noise, stochasticity.

A search needs three facts about its sampler, and none of them can be read from a sampler's name reliably (samplers
are added to ComfyUI every month):

* **evaluations per step** — for the NFE formula, the progress total and for stopping a trajectory exactly before a
  step (2 for Heun-like and SDE-DPM samplers except on their last step, 3 for ``seeds_3``, …);
* **the std of the noise each step injects** — the σ_{s_g} of the paper's additive intermediate mutation
  (docs/method.md §4);
* **whether the sampler is stochastic** at all — copies of an intermediate state only diverge if it is.

:func:`measure_sampler` runs the process's own sampler call with a stand-in denoiser that predicts x0 = 0 (no model
evaluation), on a small state. With x0 ≡ 0 every k-diffusion update is affine in the state and in the noise draws,
so feeding the sampler *one-hot* noise draws (draw k is 1 at element k, 0 elsewhere) measures each draw's coefficient
exactly, at the state the next step sees. The runs cost microseconds to milliseconds and touch no random generator of
the search; the global RNG is forked around them. A sampler that draws randomness outside ``noise_sampler`` (so its
results cannot be reproduced per individual) is detected by running it twice under different global seeds.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .process import DenoisingProcess, StepInfo

__all__ = ["SamplerFacts", "measure_sampler", "NotAFixedStepSampler"]

log = logging.getLogger("evosearch")

#: Elements of the probe state beyond which one-hot draws are not needed (per draw one element).
_MIN_PROBE_ELEMENTS = 8
#: A noise coefficient below this (relative to σ_max) counts as no noise.
_NOISE_TOL = 1e-9


class NotAFixedStepSampler(ValueError):
    """The sampler does not take one step per σ interval (adaptive samplers): the engine cannot schedule it."""


@dataclass(frozen=True)
class SamplerFacts:
    """What :func:`measure_sampler` found.

    ``evals[start]`` lists the model evaluations of each step start, start+1, …, T−1 of a trajectory that starts at
    ``start``; ``noise_std[i]`` is the std of the fresh noise step ``i`` injects (0 for a deterministic step);
    ``global_rng`` says the sampler also draws from the global RNG (outside ``noise_sampler``).
    """

    steps: int
    evals: dict[int, tuple[int, ...]]
    noise_std: tuple[float, ...] | None = None
    global_rng: bool = False
    draws_per_step: tuple[int, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def unmeasured(cls, steps: int, reason: str) -> SamplerFacts:
        """Facts of a sampler that cannot be measured (an adaptive one): evaluations are only counted."""
        note = f"{reason.split(';')[0]}; its NFE is counted, not planned"
        return cls(steps=steps, evals={}, noise_std=None, notes=(note,))

    @property
    def measured(self) -> bool:
        """Whether evaluations per step were measured (``False`` for :meth:`unmeasured` facts)."""
        return bool(self.evals)

    @property
    def evals_per_step(self) -> tuple[int, ...]:
        """Model evaluations of each step of a trajectory from x_T."""
        return self.evals[0]

    def calls(self, start: int, stop: int | None = None) -> int:
        """Model evaluations a trajectory born at ``start`` makes before step ``stop``'s first one (``None``: to the
        end) — the cost c(start, stop) of every NFE formula."""
        stop = self.steps if stop is None else int(stop)
        if not 0 <= start <= stop <= self.steps:
            raise ValueError(f"cost asked for steps [{start}, {stop}) outside [0, {self.steps}]")
        if start == stop:
            return 0
        if not self.evals:
            raise ValueError("the evaluations of this sampler were not measured (adaptive step sizes)")
        per_step = self.evals.get(int(start))
        if per_step is None:  # not probed from this start: a restart costs what the uninterrupted run's steps cost
            per_step = self.evals[0][start:]
        return int(sum(per_step[: stop - start]))

    def is_stochastic(self, after: int = 0) -> bool:
        """Whether some step from ``after`` on injects noise (or the sampler uses randomness of its own)."""
        if self.global_rng:
            return True
        if self.noise_std is None:
            raise RuntimeError("these sampler facts were measured without noise (measure_sampler(..., noise=True))")
        return any(s > 0 for s in self.noise_std[after:])

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "evals_per_step": list(self.evals_per_step) if self.evals else None,
            "global_rng": self.global_rng,
        }
        if self.noise_std is not None:
            out.update(noise_std=[round(s, 6) for s in self.noise_std], stochastic=self.is_stochastic())
        return out


class _Recorder:
    """Monitor of a probe run: counts model calls, records the step callbacks' states, optionally stops early."""

    def __init__(self, stop_after_steps: int | None = None) -> None:
        self.calls = 0
        self.calls_at_step: list[int] = []
        self.steps: list[int] = []
        self.states: list[torch.Tensor] = []
        self.stop_after_steps = stop_after_steps

    def before_eval(self, x: torch.Tensor, sigma: torch.Tensor) -> None:
        if self.stop_after_steps is not None and len(self.steps) >= self.stop_after_steps:
            raise _ProbeDone

    def after_eval(self, batch: int) -> None:
        self.calls += 1

    def on_step(self, info: StepInfo) -> None:
        self.steps.append(int(info.step))
        self.calls_at_step.append(self.calls)
        self.states.append(info.x.detach().clone())


class _ProbeDone(BaseException):
    """Ends a probe run early (a BaseException, so samplers' own error handling cannot swallow it)."""


class _ProbeNoise:
    """Noise draws of a probe: zeros, or one-hot (draw k is 1 at flat element k) to read each draw's coefficient."""

    def __init__(self, like: torch.Tensor, one_hot: bool, recorder: _Recorder) -> None:
        self.like = like
        self.one_hot = one_hot
        self.recorder = recorder
        self.draw_steps: list[int] = []

    def __call__(self, sigma: object = None, sigma_next: object = None) -> torch.Tensor:
        k = len(self.draw_steps)
        self.draw_steps.append(self.recorder.steps[-1] if self.recorder.steps else -1)
        out = torch.zeros_like(self.like)
        if self.one_hot and k < out.numel():
            out.view(-1)[k] = 1.0
        return out


def _zero_denoiser(x: torch.Tensor, sigma: torch.Tensor, **kwargs: object) -> torch.Tensor:
    return torch.zeros_like(x)


def _probe(
    process: DenoisingProcess, start: int, state: torch.Tensor, one_hot: bool, steps: int | None = None
) -> tuple[_Recorder, _ProbeNoise, torch.Tensor | None]:
    """Run the process's sampler with x0 ≡ 0 from ``start`` (for ``steps`` steps, or to the end)."""
    recorder = _Recorder(steps)
    noise = _ProbeNoise(state[:1], one_hot, recorder)
    try:
        out = process.sample(state.clone(), start, noise, recorder, denoiser=_zero_denoiser).detach()
    except _ProbeDone:
        out = None
    return recorder, noise, out


def _evals_per_step(recorder: _Recorder, start: int, steps: int, name: str) -> tuple[int, ...]:
    expected = list(range(start, steps))
    if recorder.steps != expected:
        shown = recorder.steps[:6] + (["…"] if len(recorder.steps) > 6 else [])
        raise NotAFixedStepSampler(
            f"sampler {name!r} reported steps {shown} for a {steps - start}-step run from step {start} (expected one "
            f"callback per σ step, {start}…{steps - 1}); EvoSearch needs a fixed-step sampler: pick another one"
        )
    marks = recorder.calls_at_step + [recorder.calls + 1]
    return tuple(int(b - a) for a, b in zip(marks[:-1], marks[1:]))


def _probe_state(process: DenoisingProcess, shape: Sequence[int], elements: int) -> torch.Tensor:
    """A zero state with the individual's number of dimensions and at least ``elements`` elements."""
    shape = [int(s) for s in shape]
    lead = math.prod(shape[:-1]) if len(shape) > 1 else 1
    last = max(1, -(-max(elements, _MIN_PROBE_ELEMENTS) // lead))
    probe_shape = (1, *shape[:-1], last) if shape else (1, last)
    return torch.zeros(probe_shape, device=process.device, dtype=process.dtype)


def _restart_evals(process: DenoisingProcess, start: int, state: torch.Tensor, full: tuple[int, ...], name: str):
    """Evaluations per step of a trajectory that starts at ``start``. A restart can only differ from the
    uninterrupted run in its first steps (a multistep sampler warming up), so two steps are probed; only if they
    differ is the whole tail probed."""
    head = _probe(process, start, state, one_hot=False, steps=2)[0]
    expected = full[start:]
    marks = head.calls_at_step
    if head.steps == list(range(start, start + len(marks))) and len(marks) >= min(2, len(expected)):
        counted = [b - a for a, b in zip(marks[:-1], marks[1:])]
        if tuple(counted) == expected[: len(counted)]:
            return expected
    return _evals_per_step(_probe(process, start, state, one_hot=False)[0], start, process.steps, name)


def measure_sampler(
    process: DenoisingProcess,
    starts: Sequence[int] = (0,),
    shape: Sequence[int] | None = None,
    *,
    noise: bool = True,
) -> SamplerFacts:
    """Measure the sampler of ``process`` for trajectories starting at each of ``starts`` (see the module docstring).

    ``shape`` is one individual's shape (only its number of dimensions matters); ``noise=False`` skips the noise
    measurement (``noise_std`` is then ``None``; Best-of-N needs none). Raises :class:`NotAFixedStepSampler` when the
    sampler does not step along the σ grid.
    """
    steps = process.steps
    name = getattr(process, "name", type(process).__name__)
    shape = tuple(shape) if shape is not None else (1,)
    devices = [process.device] if process.device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=devices):
        torch.manual_seed(1)
        # One run with one-hot noise serves both purposes: evaluations are counted the same whatever the noise, and
        # with x0 ≡ 0 and a zero start the state is the noise's own contribution (checked: untouched elements stay 0).
        state = _probe_state(process, shape, 4 * steps + 8)
        hot, hot_noise, hot_out = _probe(process, 0, state, one_hot=noise)
        evals = {0: _evals_per_step(hot, 0, steps, name)}
        draws = len(hot_noise.draw_steps)
        if noise and draws > state.numel():  # more draws than elements: once more, wide enough
            state = _probe_state(process, shape, draws)
            hot, hot_noise, hot_out = _probe(process, 0, state, one_hot=True)
        for start in sorted({int(s) for s in starts} - {0}):
            if 0 < start < steps:
                evals[start] = _restart_evals(process, start, state, evals[0], name)
        # randomness outside noise_sampler: the first steps again under another global seed
        torch.manual_seed(2)
        again = _probe(process, 0, state, one_hot=noise, steps=min(3, steps))[0]
        global_rng = any(not torch.equal(a, b) for a, b in zip(again.states, hot.states))
        noise_std: list[float] | None = None
        draws_per_step = [0] * steps
        if noise:
            assert hot_out is not None
            after = [*hot.states[1:], hot_out]
            untouched = hot_out.reshape(-1)[draws:]
            if untouched.numel() and untouched.abs().max() > 0:  # not affine in the noise: subtract a zero-noise run
                torch.manual_seed(1)
                base, _, base_out = _probe(process, 0, state, one_hot=False)
                assert base_out is not None
                after = [h - b for h, b in zip(after, [*base.states[1:], base_out])]
            squares = [0.0] * steps
            for k, drawn_in in enumerate(hot_noise.draw_steps):
                step = max(drawn_in, 0)
                coefficient = float(after[step].reshape(-1)[k])
                squares[step] += coefficient * coefficient
                draws_per_step[step] += 1
            scale = float(process.sigmas[0]) or 1.0
            noise_std = [math.sqrt(q) if math.sqrt(q) > _NOISE_TOL * scale else 0.0 for q in squares]
    notes: tuple[str, ...] = ()
    if global_rng:
        notes = (
            f"sampler {name!r} draws random numbers outside noise_sampler (from the global RNG): its results depend on "
            "the batch and cannot be reproduced per individual",
        )
        log.warning("%s", notes[0])
    return SamplerFacts(
        steps=steps,
        evals=evals,
        noise_std=None if noise_std is None else tuple(noise_std),
        global_rng=global_rng,
        draws_per_step=tuple(draws_per_step),
        notes=notes,
    )
