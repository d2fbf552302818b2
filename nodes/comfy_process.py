"""A ComfyUI model, guider and k-diffusion sampler as an :class:`evosearch.DenoisingProcess`.

Everything happens in ComfyUI's *model space* (comfyui.md §4): the states the engine evolves are what ComfyUI's
samplers step, the initial state is ``model_sampling.noise_scaling`` of unit noise (so the x_T mutation acts on the
unit noise, correct for EPS at σ_max, v-prediction and flow models alike), and the parameterisation used by the
re-draw mutation is x = x0 + σ·ε, or x = (1 − σ)·x0 + σ·ε for CONST (flow) models. Inpainting and img2img work as in
``comfy.samplers.KSAMPLER.sample``: ``KSamplerX0Inpaint`` keeps the unmasked region, ``noise_scaling`` adds the
latent.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable

import comfy.model_management
import comfy.model_sampling
import comfy.samplers
import torch

from ..evosearch import DenoisingProcess, StepInfo
from .compat import state_coefficients

log = logging.getLogger("evosearch.comfy")

__all__ = ["ComfyProcess", "StochasticChoice", "choose_stochastic_sampler", "is_flow"]

#: k-diffusion functions that draw fresh noise every step (through ``noise_sampler``) when eta/s_noise are not 0.
STOCHASTIC_FUNCTIONS = {
    "sample_euler_ancestral", "sample_euler_ancestral_RF", "sample_euler_ancestral_cfg_pp", "sample_dpm_2_ancestral",
    "sample_dpm_2_ancestral_RF", "sample_dpmpp_2s_ancestral", "sample_dpmpp_2s_ancestral_RF",
    "sample_dpmpp_2s_ancestral_cfg_pp", "sample_dpmpp_sde", "sample_dpmpp_sde_gpu", "sample_dpmpp_2m_sde",
    "sample_dpmpp_2m_sde_gpu", "sample_dpmpp_2m_sde_heun", "sample_dpmpp_2m_sde_heun_gpu", "sample_dpmpp_3m_sde",
    "sample_dpmpp_3m_sde_gpu", "sample_ddpm", "sample_lcm", "sample_res_multistep_ancestral",
    "sample_res_multistep_ancestral_cfg_pp", "sample_er_sde", "sample_seeds_2", "sample_seeds_3", "sample_sa_solver",
    "sample_sa_solver_pece",
}  # fmt: skip
#: Deterministic samplers and the stochastic counterpart they are swapped for when intermediate generations need one.
STOCHASTIC_COUNTERPART = {
    "sample_euler": "euler_ancestral",
    "sample_euler_cfg_pp": "euler_ancestral_cfg_pp",
    "sample_dpm_2": "dpm_2_ancestral",
    "sample_dpmpp_2m": "dpmpp_2m_sde",
    "sample_dpmpp_2m_cfg_pp": "dpmpp_2s_ancestral_cfg_pp",
    "sample_res_multistep": "res_multistep_ancestral",
    "sample_res_multistep_cfg_pp": "res_multistep_ancestral_cfg_pp",
}
#: Model evaluations per step of samplers that evaluate more than once (for progress totals; NFE are counted).
EVALS_PER_STEP = {
    "sample_heun": 2, "sample_dpm_2": 2, "sample_dpm_2_ancestral": 2, "sample_dpm_2_ancestral_RF": 2,
    "sample_dpmpp_2s_ancestral": 2, "sample_dpmpp_2s_ancestral_RF": 2, "sample_dpmpp_2s_ancestral_cfg_pp": 2,
    "sample_dpmpp_sde": 2, "sample_dpmpp_sde_gpu": 2, "sample_seeds_2": 2, "sample_seeds_3": 3, "sample_heunpp2": 3,
}  # fmt: skip


def is_flow(model_sampling: object) -> bool:
    """Whether states are x = (1 − σ)·x0 + σ·ε (CONST / rectified flow: SD3, Flux, Wan, HunyuanVideo)."""
    return isinstance(model_sampling, comfy.model_sampling.CONST)


def _function_name(sampler: comfy.samplers.KSAMPLER) -> str:
    return getattr(sampler.sampler_function, "__name__", type(sampler.sampler_function).__name__)


class StochasticChoice:
    """The inner sampler to run and, if it was swapped or adjusted, why."""

    def __init__(self, sampler: comfy.samplers.KSAMPLER, warning: str | None) -> None:
        self.sampler = sampler
        self.warning = warning
        self.name = _function_name(sampler).removeprefix("sample_")


def _accepts_noise_sampler(fn: Callable[..., object]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "noise_sampler" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


def choose_stochastic_sampler(sampler: comfy.samplers.KSAMPLER, needs_stochastic: bool) -> StochasticChoice:
    """Keep ``sampler`` if it can run the schedule; otherwise swap in a stochastic counterpart and say so.

    Intermediate generations need a sampler whose continuation from a state is random: with a deterministic one
    (plain Euler, DPM++ 2M, flow ODE samplers) every copy of a state would follow one path. Noise-only schedules
    (Best-of-N, evolution only at x_T) run any sampler as it is.
    """
    name = _function_name(sampler)
    options = dict(sampler.extra_options)
    if not needs_stochastic:
        return StochasticChoice(sampler, None)
    if name in STOCHASTIC_FUNCTIONS or (
        name not in STOCHASTIC_COUNTERPART and _accepts_noise_sampler(sampler.sampler_function)
    ):
        if options.get("eta", 1.0) == 0 or options.get("s_noise", 1.0) == 0:
            options.update({"eta": 1.0, "s_noise": 1.0})
            warning = (
                f"sampler {name.removeprefix('sample_')} was set to eta=0 / s_noise=0 (deterministic); intermediate "
                "generations need fresh noise, so eta and s_noise were set to 1"
            )
            return StochasticChoice(
                comfy.samplers.KSAMPLER(sampler.sampler_function, options, sampler.inpaint_options), warning
            )
        return StochasticChoice(sampler, None)
    replacement = STOCHASTIC_COUNTERPART.get(name, "euler_ancestral")
    keep = {k: v for k, v in options.items() if k in ("s_noise",)}
    swapped = comfy.samplers.ksampler(replacement, keep, sampler.inpaint_options)
    warning = (
        f"sampler {name.removeprefix('sample_')} is deterministic, so copies of an intermediate state would share one "
        f"continuation; intermediate generations ran with its stochastic counterpart {replacement} instead"
    )
    return StochasticChoice(swapped, warning)


class _CountingInpaintModel(comfy.samplers.KSamplerX0Inpaint):
    """``KSamplerX0Inpaint`` that counts evaluations and honours ComfyUI's interrupt before every model call."""

    def __init__(self, model_wrap: object, sigmas: torch.Tensor, count: Callable[[int], None]) -> None:
        super().__init__(model_wrap, sigmas)
        self._count = count

    def __call__(self, x, sigma, denoise_mask, model_options={}, seed=None):  # noqa: B006 - ComfyUI's signature
        comfy.model_management.throw_exception_if_processing_interrupted()
        self._count(int(x.shape[0]))
        return super().__call__(x, sigma, denoise_mask, model_options=model_options, seed=seed)


class ComfyProcess(DenoisingProcess):
    """One latent of a ComfyUI sampling call (``KSAMPLER.sample`` arguments), advanced in segments for the engine.

    Args:
        model_wrap: the guider ComfyUI passes to ``Sampler.sample`` (its ``inner_model`` is the BaseModel).
        sigmas: the full σ schedule (on the model's device).
        sampler: the inner ``KSAMPLER`` (its function and extra options are used as given).
        extra_args: ComfyUI's ``extra_args`` (model_options, seed); ``denoise_mask`` is set per chunk here.
        noise: this latent's unit noise ``[1, ...]`` from the NOISE input (used for the inpainting known region).
        latent_image: this latent ``[1, ...]`` in model space (zeros for text-to-image).
        denoise_mask: ``[1, ...]`` prepared mask or ``None``.
        max_denoise: whether sigmas[0] is the model's σ_max (``Sampler.max_denoise``).
    """

    def __init__(
        self,
        model_wrap: object,
        sigmas: torch.Tensor,
        sampler: comfy.samplers.KSAMPLER,
        extra_args: dict,
        noise: torch.Tensor,
        latent_image: torch.Tensor,
        denoise_mask: torch.Tensor | None,
        max_denoise: bool,
        *,
        stochastic: bool,
    ) -> None:
        self.model_wrap = model_wrap
        self.model_sampling = model_wrap.inner_model.model_sampling
        self.flow = is_flow(self.model_sampling)
        self.sigmas = sigmas
        self._sigma_list = [float(s) for s in sigmas.detach().cpu()]
        self.sampler = sampler
        self.function_name = _function_name(sampler)
        self.evals_per_step = EVALS_PER_STEP.get(self.function_name, 1)
        self.extra_args = {k: v for k, v in extra_args.items() if k != "denoise_mask"}
        self.noise = noise
        self.latent_image = latent_image
        self.denoise_mask = denoise_mask
        self.max_denoise = max_denoise
        self.stochastic = stochastic
        self.dtype = torch.float32
        self.eta = float(sampler.extra_options.get("eta", 1.0))
        self.s_noise = float(sampler.extra_options.get("s_noise", 1.0))

    @property
    def device(self) -> torch.device:
        return self.sigmas.device

    def _expand(self, tensor: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        if tensor is None:
            return None
        return tensor.expand(batch, *tensor.shape[1:])

    def initial_state(self, noise: torch.Tensor) -> torch.Tensor:
        latent = self._expand(self.latent_image, noise.shape[0]).to(noise.device, noise.dtype)
        return self.model_sampling.noise_scaling(self.sigmas[0], noise, latent, self.max_denoise)

    def signal_scale(self, step: int) -> float:
        return state_coefficients(self.model_sampling, self._sigma_list[step])[0]

    def noise_scale(self, step: int) -> float:
        """σ, or σ·s for a flow model whose ``noise_scaling`` scales the noise by s (newer ``noise_scale``)."""
        return state_coefficients(self.model_sampling, self._sigma_list[step])[1]

    def step_noise_std(self, step: int) -> float:
        """σ_up of an ancestral step (eta, s_noise of the inner sampler); the rectified-flow form for CONST models."""
        sigma, sigma_next = self._sigma_list[step], self._sigma_list[step + 1]
        if sigma_next == 0:
            return 0.0
        if self.flow:
            sigma_down = sigma_next * (1 + (sigma_next / sigma - 1) * self.eta)
            alpha_next, alpha_down = 1 - sigma_next, 1 - sigma_down
            return self.s_noise * math.sqrt(max(sigma_next**2 - sigma_down**2 * alpha_next**2 / alpha_down**2, 0.0))
        up = min(sigma_next, self.eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0)))
        return self.s_noise * up

    def _count(self, batch: int) -> None:
        self.evaluations += batch

    def run(self, x, start, end, noise_sampler, on_step=None):  # noqa: ANN001 - DenoisingProcess.run
        if start == end:
            return x
        batch = x.shape[0]
        model_k = _CountingInpaintModel(self.model_wrap, self.sigmas, self._count)
        model_k.latent_image = self._expand(self.latent_image, batch)
        model_k.noise = self._expand(self.noise, batch)
        extra_args = dict(self.extra_args)
        extra_args["denoise_mask"] = self._expand(self.denoise_mask, batch)

        callback = None
        if on_step is not None:

            def callback(info: dict) -> None:
                on_step(StepInfo(step=start + int(info["i"]), x=info["x"], denoised=info["denoised"]))

        kwargs = dict(self.sampler.extra_options)
        if _accepts_noise_sampler(self.sampler.sampler_function):
            kwargs["noise_sampler"] = noise_sampler
        return self.sampler.sampler_function(
            model_k, x, self.sigmas[start : end + 1], extra_args=extra_args, callback=callback, disable=True, **kwargs
        )

    def finalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.model_sampling.inverse_noise_scaling(self.sigmas[-1], x)

