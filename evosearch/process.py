"""Denoising processes the engine can advance in segments.

The engine needs little from a diffusion model: map unit noise to the first state, advance a batch of states from
step ``a`` to step ``b`` with given per-individual noise, and say how a state is parameterised (x = α·x0 + σ·ε) so
mutations respect it. :class:`DenoisingProcess` is that contract; :class:`KDiffusionProcess` implements it for any
denoiser in the k-diffusion convention and any sampler with the k-diffusion signature. ComfyUI's adapter (``nodes/``)
implements the same contract on a ComfyUI model.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass

import torch

from .steppers import BUILTIN_SAMPLERS, ancestral_step, ddpm_noise_std, euler_ancestral_noise_std

__all__ = ["DenoisingProcess", "KDiffusionProcess", "StepInfo", "check_sigmas"]

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
StepHook = Callable[["StepInfo"], None]


@dataclass
class StepInfo:
    """What a process reports after each model evaluation: the pre-step state at ``step`` and its x0 prediction."""

    step: int
    x: torch.Tensor
    denoised: torch.Tensor


def check_sigmas(sigmas: torch.Tensor) -> torch.Tensor:
    """Validate a noise schedule: 1-D, at least 2 entries, strictly descending, finite, last entry 0."""
    sigmas = torch.as_tensor(sigmas)
    if sigmas.dim() != 1 or sigmas.numel() < 2:
        raise ValueError(f"sigmas must be a 1-D tensor with at least 2 entries, got shape {tuple(sigmas.shape)}")
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


class DenoisingProcess(ABC):
    """A stochastic sampler over a fixed σ grid, advanced in segments by the search engine.

    Step ``i`` (0 ≤ i < T) consumes the state at ``sigmas[i]`` and produces the state at ``sigmas[i+1]``; the state
    at step T is the clean sample. Subclasses hold the model; the engine holds the population.
    """

    sigmas: torch.Tensor
    #: model evaluations per individual per step (2 for Heun-like samplers); NFE accounting multiplies by it.
    evals_per_step: int = 1
    #: whether intermediate states have a stochastic continuation (needed for evolution after step 0).
    stochastic: bool = True
    #: model evaluations made so far, counted per individual (a batch of B counts B); the engine reads the delta.
    evaluations: int = 0

    @property
    def steps(self) -> int:
        """T, the number of sampler steps."""
        return int(self.sigmas.numel()) - 1

    @property
    def device(self) -> torch.device:
        return self.sigmas.device

    dtype: torch.dtype = torch.float32

    def initial_state(self, noise: torch.Tensor) -> torch.Tensor:
        """Map unit Gaussian noise to the state at step 0 (k-diffusion: x_T = σ_max·noise)."""
        return noise * self.sigmas[0].to(noise.device, noise.dtype)

    def signal_scale(self, step: int) -> float:
        """α at ``step`` in x = α·x0 + σ·ε (1 in the k-diffusion/VE convention; 1 − σ for rectified flow)."""
        return 1.0

    def noise_scale(self, step: int) -> float:
        """σ at ``step`` in x = α·x0 + σ·ε."""
        return float(self.sigmas[step])

    @abstractmethod
    def step_noise_std(self, step: int) -> float:
        """Std of the fresh noise the sampler injects in step ``step`` (σ_{s_g} of method.md §3e)."""

    @abstractmethod
    def run(
        self,
        x: torch.Tensor,
        start: int,
        end: int,
        noise_sampler: Callable[..., torch.Tensor],
        on_step: StepHook | None = None,
    ) -> torch.Tensor:
        """Advance states ``x`` (at ``sigmas[start]``) through steps ``start … end-1``; return the states at ``end``.

        ``noise_sampler`` must be the only source of randomness. ``on_step`` is called after every step's (first)
        model evaluation with the global step index, the pre-step state and its x0 prediction. Implementations add
        the batch size to :attr:`evaluations` for every model evaluation (the engine's NFE counter).
        """

    def finalize(self, x: torch.Tensor) -> torch.Tensor:
        """Map the state at step T to the clean sample the reward scores (identity here)."""
        return x


class KDiffusionProcess(DenoisingProcess):
    """A k-diffusion stochastic sampler over ``sigmas`` with ``denoiser(x, sigma) -> x0``, x = x0 + σ·ε.

    ``sampler`` is ``"euler_ancestral"`` (with ``eta``, ``s_noise``), ``"ddpm"``, or any callable with the k-diffusion
    sampler signature ``fn(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, **kw)``
    (extra keyword arguments go to it as ``**sampler_options``). A custom callable must draw all of its randomness from
    ``noise_sampler``; its injected noise std is taken as the Euler-ancestral σ_up unless ``noise_std`` is given.
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
        dtype: torch.dtype = torch.float32,
        **sampler_options: object,
    ) -> None:
        if not callable(denoiser):
            raise TypeError(f"denoiser must be callable as denoiser(x, sigma) -> x0, got {type(denoiser).__name__}")
        self.sigmas = check_sigmas(sigmas)
        self._sigma_list = self.sigmas.tolist()
        self.denoiser = denoiser
        self.extra_args = dict(extra_args or {})
        self.dtype = dtype
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
            self.sampler_name = sampler
            self.sampler_fn = BUILTIN_SAMPLERS[sampler]
            options: dict[str, object] = (
                {"eta": self.eta, "s_noise": self.s_noise} if sampler == "euler_ancestral" else {}
            )
        elif callable(sampler):
            self.sampler_name = getattr(sampler, "__name__", "custom")
            self.sampler_fn = sampler
            accepted = inspect.signature(sampler).parameters
            options = {k: v for k, v in (("eta", self.eta), ("s_noise", self.s_noise)) if k in accepted}
            if "noise_sampler" not in accepted and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
                raise ValueError(
                    f"sampler {self.sampler_name!r} takes no noise_sampler argument, so its noise cannot come from "
                    "per-individual streams; wrap it or use 'euler_ancestral' / 'ddpm'"
                )
        else:
            raise TypeError(f"sampler must be a name or a callable, got {type(sampler).__name__}")
        options.update(sampler_options)
        self.sampler_options = options
        self._noise_std = noise_std
        self.stochastic = self.sampler_name == "ddpm" or self.eta > 0 or self._noise_std is not None

    def step_noise_std(self, step: int) -> float:
        sigma, sigma_next = self._sigma_list[step], self._sigma_list[step + 1]
        if self._noise_std is not None:
            return float(self._noise_std(sigma, sigma_next))
        if self.sampler_name == "ddpm":
            return ddpm_noise_std(sigma, sigma_next)
        if self.sampler_fn is BUILTIN_SAMPLERS["euler_ancestral"]:
            return euler_ancestral_noise_std(sigma, sigma_next, self.eta, self.s_noise)
        return ancestral_step(sigma, sigma_next, 1.0)[1]

    def run(
        self,
        x: torch.Tensor,
        start: int,
        end: int,
        noise_sampler: Callable[..., torch.Tensor],
        on_step: StepHook | None = None,
    ) -> torch.Tensor:
        if not 0 <= start <= end <= self.steps:
            raise ValueError(f"segment [{start}, {end}] is outside the schedule's steps [0, {self.steps}]")
        if start == end:
            return x
        denoiser = self.denoiser

        def model(x_in: torch.Tensor, sigma: torch.Tensor, **kwargs: object) -> torch.Tensor:
            self.evaluations += int(x_in.shape[0])
            return denoiser(x_in, sigma, **kwargs) if kwargs else denoiser(x_in, sigma)

        callback = None
        if on_step is not None:

            def callback(info: dict) -> None:
                on_step(StepInfo(step=start + int(info["i"]), x=info["x"], denoised=info["denoised"]))

        return self.sampler_fn(
            model,
            x,
            self.sigmas[start : end + 1],
            extra_args=self.extra_args,
            callback=callback,
            disable=True,
            noise_sampler=noise_sampler,
            **self.sampler_options,
        )
