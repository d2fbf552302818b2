"""Denoising processes: the engine's view of a diffusion model and its sampler.

The engine needs little from a diffusion model: map unit noise to the first state, run the sampler from any step to
the end with per-individual noise, report each step (pre-step state and x0 prediction) and every model evaluation,
and say how a state is parameterised (x = α·x0 + σ·ε) so mutations respect it. :class:`DenoisingProcess` is that
contract; :class:`KDiffusionProcess` implements it for any denoiser in the k-diffusion convention and any sampler with
the k-diffusion signature. ComfyUI's adapter (``nodes/comfy_process.py``) implements the same contract on a ComfyUI
model, guider and sampler.

A trajectory is always run by *one* sampler call, from the step where it starts to the end of the σ schedule; the
runner stops the call early (by raising from :meth:`Monitor.before_eval`) when a strategy wants the trajectory only up
to some step. The sampler therefore always sees the whole remaining schedule, and multistep samplers keep their
history (``old_denoised``, ``h_last``, …) for as long as the trajectory lives (docs/architecture.md, "Trajectories").
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import torch

from .steppers import BUILTIN_SAMPLERS

if TYPE_CHECKING:
    from .facts import SamplerFacts

__all__ = ["DenoisingProcess", "KDiffusionProcess", "Monitor", "StepInfo", "check_sigmas", "reconcile_output"]

Denoiser = Callable[..., torch.Tensor]


@dataclass
class StepInfo:
    """What a process reports once per sampler step: the pre-step state at ``step`` and its x0 prediction."""

    step: int
    x: torch.Tensor
    denoised: torch.Tensor


class Monitor(Protocol):
    """What a process calls while it samples (the runner's hooks; see :meth:`DenoisingProcess.sample`)."""

    def before_eval(self, x: torch.Tensor, sigma: torch.Tensor) -> None:
        """Called before every model evaluation with its input; may raise to stop the trajectory there."""

    def after_eval(self, batch: int) -> None:
        """Called after every model evaluation that returned (``batch`` individuals were evaluated)."""

    def on_step(self, info: StepInfo) -> None:
        """Called once per sampler step, after the step's first model evaluation."""


def check_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """Validate a noise schedule: 1-D, at least 2 entries, strictly descending, finite, last entry 0."""
    sigmas = torch.as_tensor(sigmas)
    if sigmas.dim() != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D tensor with at least 2 entries, got shape {tuple(sigmas.shape)}")
    if not sigmas.is_floating_point():
        raise TypeError(f"sigmas must be a floating-point tensor, got dtype {sigmas.dtype}")
    if not torch.isfinite(sigmas).all():
        raise ValueError("sigmas must be finite; got NaN or inf")
    if float(sigmas[-1]) != 0.0:
        raise ValueError(f"sigmas must end in 0 (a clean sample), got last entry {float(sigmas[-1]):g}")
    diffs = sigmas[1:] - sigmas[:-1]
    if (diffs >= 0).any():
        bad = int(torch.nonzero(diffs >= 0)[0])
        raise ValueError(
            f"sigmas must be strictly descending, but sigmas[{bad}]={float(sigmas[bad]):g} <= "
            f"sigmas[{bad + 1}]={float(sigmas[bad + 1]):g}"
        )
    return sigmas


def reconcile_output(out: object, x: torch.Tensor, who: str = "the denoiser") -> torch.Tensor:
    """A model output as a tensor of the state's shape and dtype; a mismatch that cannot be cast is a ``TypeError``."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{who} must return a torch.Tensor x0 prediction, got {type(out).__name__}")
    if tuple(out.shape) != tuple(x.shape):
        raise ValueError(f"{who} returned shape {tuple(out.shape)} for states of shape {tuple(x.shape)}")
    if out.dtype != x.dtype:
        if not (out.is_floating_point() and x.is_floating_point()):
            raise TypeError(
                f"{who} returned dtype {out.dtype} for states of dtype {x.dtype}; both must be floating point "
                "(pass dtype= to the process to choose the state dtype)"
            )
        out = out.to(x.dtype)
    return out


class DenoisingProcess(ABC):
    """A sampler over a fixed σ grid, run trajectory by trajectory by the search engine.

    Step ``i`` (0 ≤ i < T) consumes the state at ``sigmas[i]`` and produces the state at ``sigmas[i+1]``; the state
    at step T is the clean sample. Subclasses hold the model and the sampler; the engine holds the population.
    Facts about the sampler (model evaluations per step, the std of the noise it injects, whether it is stochastic
    at all) are measured by :meth:`facts`, not declared (docs/architecture.md, "Sampler facts").
    """

    sigmas: torch.Tensor
    dtype: torch.dtype = torch.float32
    #: a short name of the sampler, for reports
    name: str = "sampler"

    @property
    def steps(self) -> int:
        """T, the number of sampler steps."""
        return int(self.sigmas.numel()) - 1

    @property
    def device(self) -> torch.device:
        return self.sigmas.device

    def initial_state(self, noise: torch.Tensor) -> torch.Tensor:
        """Map unit Gaussian noise to the state at step 0 (k-diffusion: x_T = σ_max·noise)."""
        return noise * self.sigmas[0].to(noise.device, noise.dtype)

    def signal_scale(self, step: int) -> float:
        """α at ``step`` in x = α·x0 + σ·ε (1 in the k-diffusion/VE convention; 1 − σ for rectified flow)."""
        return 1.0

    def noise_scale(self, step: int) -> float:
        """σ at ``step`` in x = α·x0 + σ·ε."""
        return float(self.sigmas[step])

    def finalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map the state at step T to the clean sample the reward scores (identity here)."""
        return x

    @abstractmethod
    def sample(
        self,
        x: torch.Tensor,
        start: int,
        noise_sampler: Callable[..., torch.Tensor],
        monitor: Monitor,
        *,
        denoiser: Denoiser | None = None,
    ) -> torch.Tensor:
        """Run the sampler on states ``x`` (at ``sigmas[start]``) over ``sigmas[start:]``; return the final states.

        ``noise_sampler`` must be the sampler's only source of randomness. Around every model evaluation call
        ``monitor.before_eval(x_in, sigma)`` and, once it returned, ``monitor.after_eval(batch)``; after each step's
        first evaluation call ``monitor.on_step(StepInfo(global_step, x, denoised))``. ``denoiser`` (``(x, sigma) ->
        x0``) replaces the model when given: the engine uses that to measure the sampler without model calls.
        """

    # ------------------------------------------------------------------ measured facts
    def facts(
        self, starts: Sequence[int] = (0,), shape: Sequence[int] | None = None, noise: bool = True
    ) -> SamplerFacts:
        """The sampler's measured facts for trajectories starting at ``starts`` (see :mod:`evosearch.facts`).

        ``shape`` is one individual's shape (default :attr:`state_shape` if set, else a vector; only the number of
        dimensions matters); ``noise=False`` skips the noise measurement. Cached per starts and dimensions.
        """
        from .facts import measure_sampler

        shape = tuple(shape) if shape is not None else tuple(getattr(self, "state_shape", (1,)))
        key = (tuple(sorted({0, *(int(s) for s in starts)})), len(shape))
        cache = self.__dict__.setdefault("_facts_cache", {})
        found = cache.get(key)
        if found is None or (noise and found.noise_std is None):
            found = cache[key] = measure_sampler(self, key[0], shape, noise=noise)
        self.__dict__["_facts_last"] = found
        return found

    def _latest_facts(self, noise: bool = False) -> SamplerFacts:
        latest = self.__dict__.get("_facts_last")
        if latest is None or (noise and latest.noise_std is None):
            latest = self.facts(tuple(latest.evals) if latest is not None else (0,), noise=True)
        return latest

    def step_noise_std(self, step: int) -> float:
        """Std of the fresh noise the sampler injects in step ``step`` (σ_{s_g} of docs/method.md §4), measured."""
        noise_std = self._latest_facts(noise=True).noise_std
        assert noise_std is not None
        return noise_std[step]

    @property
    def evals_per_step(self) -> int:
        """Model evaluations of the sampler's busiest step (measured; the NFE formula uses the per-step counts)."""
        return max(self._latest_facts().evals_per_step)

    @property
    def stochastic(self) -> bool:
        """Whether the sampler injects fresh noise after its first step (measured)."""
        return self._latest_facts(noise=True).is_stochastic(after=1)

    def stochastic_variant(self, after: int = 1) -> tuple[DenoisingProcess, str] | None:
        """A stand-in sampler that injects noise from step ``after`` on, and why it was chosen; ``None`` if none.

        The engine asks for it when a strategy needs a random continuation from intermediate states and the measured
        sampler has none (docs/architecture.md). The plain k-diffusion process has no policy for that; ComfyUI's
        adapter swaps in a stochastic counterpart.
        """
        return None

    # ------------------------------------------------------------------ convenience
    def run(
        self,
        x: torch.Tensor,
        start: int,
        end: int,
        noise_sampler: Callable[..., torch.Tensor],
        on_step: Callable[[StepInfo], None] | None = None,
    ) -> torch.Tensor:
        """Advance ``x`` from ``start`` to ``end`` (the state before step ``end``'s first evaluation).

        A convenience for scripts: the engine itself never stops a trajectory it will continue. Running to ``end <
        T`` and then from ``end`` again restarts the sampler there, which drops a multistep sampler's history.
        """
        from .runner import run_to

        return run_to(self, x, start, end, noise_sampler, on_step)


class KDiffusionProcess(DenoisingProcess):
    """A k-diffusion sampler over ``sigmas`` with ``denoiser(x, sigma) -> x0``, x = x0 + σ·ε.

    ``sampler`` is ``"euler_ancestral"`` (with ``eta``, ``s_noise``), ``"ddpm"``, or any callable with the k-diffusion
    sampler signature ``fn(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, **kw)``
    (extra keyword arguments go to it as ``**sampler_options``). A custom callable must draw all of its randomness from
    ``noise_sampler``; the std of its injected noise is measured (or given by ``noise_std(sigma, sigma_next)``).

    States take ``dtype`` (default: the dtype of ``sigmas``); a denoiser computing in another floating dtype has its
    output cast to it.
    """

    def __init__(
        self,
        denoiser: Denoiser,
        sigmas: torch.Tensor,
        sampler: str | Callable[..., torch.Tensor] = "euler_ancestral",
        eta: float = 1.0,
        s_noise: float = 1.0,
        *,
        extra_args: dict | None = None,
        noise_std: Callable[[float, float], float] | None = None,
        dtype: torch.dtype | None = None,
        **sampler_options: object,
    ) -> None:
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma) -> x0, got {type(denoiser).__name__}")
        sigmas = check_sigmas(sigmas)
        if dtype is None:
            dtype = sigmas.dtype
        if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
            raise TypeError(f"dtype must be a floating-point torch.dtype (the states' dtype), got {dtype!r}")
        self.dtype = dtype
        self.sigmas = sigmas.to(dtype)
        self._sigma_list = self.sigmas.tolist()
        self.denoiser = denoiser
        self.extra_args = dict(extra_args or {})
        if eta < 0:
            raise ValueError(f"eta must be >= 0 (0 = deterministic, 1 = full ancestral noise), got {eta}")
        self.eta = float(eta)
        self.s_noise = float(s_noise)
        if isinstance(sampler, str):
            if sampler not in BUILTIN_SAMPLERS:
                raise ValueError(
                    f"sampler must be one of {sorted(BUILTIN_SAMPLERS)} or a k-diffusion sampler function, "
                    f"got {sampler!r}"
                )
            self.name = sampler
            self.sampler_fn = BUILTIN_SAMPLERS[sampler]
            options: dict[str, object] = (
                {"eta": self.eta, "s_noise": self.s_noise} if sampler == "euler_ancestral" else {}
            )
        elif callable(sampler):
            self.name = getattr(sampler, "__name__", "custom")
            self.sampler_fn = sampler
            accepted = inspect.signature(sampler).parameters
            options = {k: v for k, v in (("eta", self.eta), ("s_noise", self.s_noise)) if k in accepted}
            if "noise_sampler" not in accepted and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
                raise ValueError(
                    f"sampler {self.name!r} takes no noise_sampler argument, so its noise cannot come from "
                    "per-individual streams; wrap it or use 'euler_ancestral' / 'ddpm'"
                )
        else:
            raise TypeError(f"sampler must be a name or a callable, got {type(sampler).__name__}")
        options.update(sampler_options)
        self.sampler_options = options
        self._noise_std = noise_std

    @property
    def sampler_name(self) -> str:
        return self.name

    def step_noise_std(self, step: int) -> float:
        if self._noise_std is not None:
            return float(self._noise_std(self._sigma_list[step], self._sigma_list[step + 1]))
        return super().step_noise_std(step)

    def sample(
        self,
        x: torch.Tensor,
        start: int,
        noise_sampler: Callable[..., torch.Tensor],
        monitor: Monitor,
        *,
        denoiser: Denoiser | None = None,
    ) -> torch.Tensor:
        if not 0 <= start < self.steps:
            raise ValueError(f"start step {start} is outside the schedule's steps [0, {self.steps - 1}]")
        inner = denoiser if denoiser is not None else self.denoiser

        def model(x_in: torch.Tensor, sigma: torch.Tensor, **kwargs: object) -> torch.Tensor:
            monitor.before_eval(x_in, sigma)
            out = inner(x_in, sigma, **kwargs) if kwargs else inner(x_in, sigma)
            out = reconcile_output(out, x_in)
            monitor.after_eval(int(x_in.shape[0]))
            return out

        def callback(info: dict) -> None:
            monitor.on_step(StepInfo(step=start + int(info["i"]), x=info["x"], denoised=info["denoised"]))

        return self.sampler_fn(
            model,
            x,
            self.sigmas[start:],
            extra_args=self.extra_args,
            callback=callback,
            disable=True,
            noise_sampler=noise_sampler,
            **self.sampler_options,
        )
