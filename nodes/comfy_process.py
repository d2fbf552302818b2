"""A ComfyUI model, guider and k-diffusion sampler as an :class:`evosearch.DenoisingProcess`.

Everything happens in ComfyUI's *model space*: the states the engine evolves are what ComfyUI's samplers step, the
initial state is ``model_sampling.noise_scaling`` of unit noise (so the x_T mutation acts on the unit noise, correct
for EPS at σ_max, v-prediction and flow models alike), and the parameterisation the re-draw mutation uses is
x = x0 + σ·ε, or x = (1 − σ)·x0 + σ·ε for CONST (flow) models. Inpainting and img2img work as in
``comfy.samplers.KSAMPLER.sample``: ``KSamplerX0Inpaint`` keeps the unmasked region, ``noise_scaling`` adds the latent.

The sampler is run exactly as ``KSAMPLER.sample`` runs it (same function, options, σ tail, extra_args), with the
engine's per-individual ``noise_sampler`` and hooks around every model evaluation. Whether it is stochastic, how many
evaluations each step makes and how much noise it injects are measured by the engine (``evosearch.facts``); this
module only decides *which* stochastic sampler stands in for a deterministic one, when the engine asks.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable

import comfy.model_management
import comfy.model_sampling
import comfy.samplers
import torch

from .. import evosearch as es
from .compat import state_coefficients

log = logging.getLogger("evosearch.comfy")

__all__ = ["ComfyProcess", "is_flow", "sampler_name"]

#: Fallback only: a deterministic sampler whose stochastic counterpart the naming rules in
#: :meth:`ComfyProcess.stochastic_variant` do not find (every candidate is measured before it is used).
_COUNTERPART_FALLBACK = {"dpmpp_2m_cfg_pp": "dpmpp_2s_ancestral_cfg_pp"}


def is_flow(model_sampling: object) -> bool:
    """Whether states are x = (1 − σ)·x0 + σ·ε (CONST / rectified flow: SD3, Flux, Wan, HunyuanVideo)."""
    return isinstance(model_sampling, comfy.model_sampling.CONST)


def sampler_name(sampler: comfy.samplers.KSAMPLER) -> str:
    """The sampler's name as ComfyUI lists it (``sample_euler_ancestral`` → ``euler_ancestral``)."""
    fn = sampler.sampler_function
    return getattr(fn, "__name__", type(fn).__name__).removeprefix("sample_")


def _accepts_noise_sampler(fn: Callable[..., object]) -> bool:
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False
    return "noise_sampler" in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


class _ModelK(comfy.samplers.KSamplerX0Inpaint):
    """``KSamplerX0Inpaint`` that reports every evaluation to the engine's monitor and honours ComfyUI's interrupt.

    With ``denoiser`` given (the engine measuring the sampler) it returns that instead of calling the model, keeping
    the attributes samplers read (``inner_model.inner_model.model_sampling``, …).
    """

    def __init__(self, model_wrap: object, sigmas: torch.Tensor, monitor: es.Monitor, denoiser=None) -> None:  # noqa: ANN001
        super().__init__(model_wrap, sigmas)
        self.monitor = monitor
        self.denoiser = denoiser

    def __call__(self, x, sigma, denoise_mask, model_options={}, seed=None):  # noqa: B006,ANN001 - ComfyUI's signature
        if self.denoiser is None:
            comfy.model_management.throw_exception_if_processing_interrupted()
        self.monitor.before_eval(x, sigma)
        if self.denoiser is not None:
            out = self.denoiser(x, sigma)
            # CFG++ samplers read the unconditional prediction through post-CFG hooks: feed them the stand-in's
            for fn in model_options.get("sampler_post_cfg_function", []):
                out = fn({"denoised": out, "cond": None, "uncond": None, "cond_scale": 1.0, "model": self.inner_model,
                          "uncond_denoised": out, "cond_denoised": out, "sigma": sigma, "model_options": model_options,
                          "input": x})  # fmt: skip
        else:
            out = super().__call__(x, sigma, denoise_mask, model_options=model_options, seed=seed)
        self.monitor.after_eval(int(x.shape[0]))
        return out


class ComfyProcess(es.DenoisingProcess):
    """One latent of a ComfyUI sampling call (``KSAMPLER.sample`` arguments), run trajectory by trajectory.

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
    ) -> None:
        self.model_wrap = model_wrap
        self.model_sampling = model_wrap.inner_model.model_sampling
        self.flow = is_flow(self.model_sampling)
        self.sigmas = sigmas
        self._sigma_list = [float(s) for s in sigmas.detach().cpu()]
        self.sampler = sampler
        self.name = sampler_name(sampler)
        self.extra_args = {k: v for k, v in extra_args.items() if k != "denoise_mask"}
        self.noise = noise
        self.latent_image = latent_image
        self.denoise_mask = denoise_mask
        self.max_denoise = max_denoise
        self.dtype = noise.dtype if noise.is_floating_point() else torch.float32
        self.state_shape = tuple(noise.shape[1:])

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
        """α in x = α·x0 + σ·ε: 1, or 1 − σ for flow models."""
        return state_coefficients(self.model_sampling, self._sigma_list[step])[0]

    def noise_scale(self, step: int) -> float:
        """σ, or σ·s for a flow model whose ``noise_scaling`` scales the noise by s (newer ``noise_scale``)."""
        return state_coefficients(self.model_sampling, self._sigma_list[step])[1]

    def sample(self, x, start, noise_sampler, monitor, *, denoiser=None):  # noqa: ANN001 - DenoisingProcess.sample
        batch = x.shape[0]
        model_k = _ModelK(self.model_wrap, self.sigmas, monitor, denoiser)
        if denoiser is None:
            model_k.latent_image = self._expand(self.latent_image, batch)
            model_k.noise = self._expand(self.noise, batch)
        extra_args = dict(self.extra_args)
        extra_args["denoise_mask"] = self._expand(self.denoise_mask, batch) if denoiser is None else None

        def callback(info: dict) -> None:
            monitor.on_step(es.StepInfo(step=start + int(info["i"]), x=info["x"], denoised=info["denoised"]))

        kwargs = dict(self.sampler.extra_options)
        if _accepts_noise_sampler(self.sampler.sampler_function):
            kwargs["noise_sampler"] = noise_sampler
        return self.sampler.sampler_function(
            model_k, x, self.sigmas[start:], extra_args=extra_args, callback=callback, disable=True, **kwargs
        )

    def finalize(self, x: torch.Tensor) -> torch.Tensor:
        return self.model_sampling.inverse_noise_scaling(self.sigmas[-1], x)

    # ------------------------------------------------------------------ deterministic samplers
    def _with_sampler(self, sampler: comfy.samplers.KSAMPLER) -> ComfyProcess:
        return ComfyProcess(
            self.model_wrap, self.sigmas, sampler, self.extra_args, self.noise, self.latent_image, self.denoise_mask,
            self.max_denoise,
        )  # fmt: skip

    def _candidates(self) -> list[tuple[comfy.samplers.KSAMPLER, str]]:
        """Stochastic stand-ins to try, most faithful first: the same sampler with its noise switched on, then its
        counterpart by ComfyUI's naming (``_ancestral``, ``_sde``), then euler_ancestral."""
        sampler, name = self.sampler, self.name
        options = dict(sampler.extra_options)
        out: list[tuple[comfy.samplers.KSAMPLER, str]] = []
        if _accepts_noise_sampler(sampler.sampler_function) and (
            options.get("eta", 1.0) == 0 or options.get("s_noise", 1.0) == 0
        ):
            options.update({"eta": 1.0, "s_noise": 1.0})
            out.append((
                comfy.samplers.KSAMPLER(sampler.sampler_function, options, sampler.inpaint_options),
                f"sampler {name} was set to eta=0 / s_noise=0 (deterministic); intermediate generations need fresh "
                "noise, so eta and s_noise were set to 1",
            ))  # fmt: skip
        keep = {k: v for k, v in sampler.extra_options.items() if k in ("s_noise",)}
        names = [f"{name}_ancestral", f"{name}_sde", name.replace("_cfg_pp", "_ancestral_cfg_pp")]
        names += [_COUNTERPART_FALLBACK.get(name, ""), "euler_ancestral"]
        for candidate in dict.fromkeys(n for n in names if n and n != name and n in comfy.samplers.KSAMPLER_NAMES):
            out.append((
                comfy.samplers.ksampler(candidate, keep, sampler.inpaint_options),
                f"sampler {name} is deterministic, so copies of an intermediate state would share one continuation; "
                f"intermediate generations ran with its stochastic counterpart {candidate} instead",
            ))  # fmt: skip
        return out

    def stochastic_variant(self, after: int = 1) -> tuple[es.DenoisingProcess, str] | None:
        """The first candidate (see :meth:`_candidates`) measured to inject noise from step ``after`` on."""
        for sampler, why in self._candidates():
            variant = self._with_sampler(sampler)
            try:
                if variant.facts(noise=True).is_stochastic(after=after):
                    return variant, why
            except ValueError as e:  # e.g. not a fixed-step sampler
                log.debug("stochastic candidate %s rejected: %s", variant.name, e)
        return None
