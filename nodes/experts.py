"""Two diffusion models in one sampling call, switched at a σ boundary: Wan 2.2 A14B's high-noise and low-noise
experts, or SDXL's base model and refiner.

Core ComfyUI workflows run such pairs as two chained KSamplerAdvanced nodes, so no single sampler sees the whole
trajectory and no search can span both. :class:`TwoExpertGuider` is one GUIDER over both: every model evaluation
with σ ≥ ``boundary`` goes to the high-noise expert, every other one to the low-noise expert, inside one sampler call.
It works with any SAMPLER (the EvoSearch Sampler, or ComfyUI's own) through SamplerCustomAdvanced, and the EvoSearch
KSampler builds one when its optional second model is connected.

Both experts are prepared by ComfyUI's own guider code, nested: the high expert's ``CFGGuider.sample`` runs a sampler
whose ``sample`` runs the low expert's ``CFGGuider.sample``, whose sampler finally runs the real one with a model
that routes each call by σ. So conditioning, hooks, model patches, model management (both models are loaded, beside
each other when they fit) and clean-up are ComfyUI's, for each expert. Evaluations are counted per expert.
"""

from __future__ import annotations

import comfy.samplers
import torch

__all__ = ["TwoExpertGuider", "WAN22_BOUNDARY"]

#: σ at which Wan 2.2 A14B text-to-video switches from its high-noise to its low-noise expert (0.9 for image-to-video).
WAN22_BOUNDARY = 0.875
#: model_options entries a sampler adds for its own use (CFG++ samplers read the unconditional prediction through a
#: post-CFG function); they are carried over to the low-noise expert's calls.
_SAMPLER_OPTIONS = ("sampler_post_cfg_function", "sampler_cfg_function", "sampler_pre_cfg_function",
                    "disable_cfg1_optimization")  # fmt: skip


class _Routed:
    """The model a sampler sees: one guider call, sent to the high or the low expert by its σ."""

    def __init__(self, owner: TwoExpertGuider, high: object, low: object, low_options: dict) -> None:
        self.owner, self.high, self.low, self.low_options = owner, high, low, low_options
        self.inner_model = high.inner_model  # model_sampling, process_latent_in/out: shared by both experts
        self.model_patcher = high.model_patcher
        self.loaded_models = [*high.loaded_models, low.model_patcher, *low.loaded_models]

    def __call__(self, x: torch.Tensor, timestep: torch.Tensor, model_options: dict = {}, seed=None):  # noqa: B006,ANN001
        sigma = float(torch.as_tensor(timestep).reshape(-1)[0])
        if sigma >= self.owner.boundary:
            self.owner.evaluations["high"] += int(x.shape[0])
            return self.high(x, timestep, model_options=model_options, seed=seed)
        options = dict(self.low_options)
        options.update({k: model_options[k] for k in _SAMPLER_OPTIONS if k in model_options})
        self.owner.evaluations["low"] += int(x.shape[0])
        return self.low(x, timestep, model_options=options, seed=seed)


class _Nested(comfy.samplers.Sampler):
    """Runs inside one expert's prepared sampling call; hands over to the next stage with that expert's wrap."""

    def __init__(self, stage) -> None:  # noqa: ANN001
        self.stage = stage

    def sample(self, model_wrap, sigmas, extra_args, callback, noise, latent_image=None, denoise_mask=None,
               disable_pbar=False):  # noqa: ANN001  # fmt: skip
        return self.stage(model_wrap, sigmas, extra_args, callback, noise, latent_image, denoise_mask, disable_pbar)


class TwoExpertGuider(comfy.samplers.CFGGuider):
    """A GUIDER over two CFG guiders: ``high`` for σ ≥ ``boundary``, ``low`` below it.

    ``evaluations`` counts individual model evaluations per expert (cumulative over the guider's life).
    """

    def __init__(self, high: comfy.samplers.CFGGuider, low: comfy.samplers.CFGGuider, boundary: float) -> None:
        super().__init__(high.model_patcher)
        if not boundary > 0:
            raise ValueError(f"the expert boundary must be a σ > 0, got {boundary}")
        self.high, self.low, self.boundary = high, low, float(boundary)
        self.evaluations = {"high": 0, "low": 0}

    def set_conds(self, positive, negative) -> None:  # noqa: ANN001
        self.high.set_conds(positive, negative)
        self.low.set_conds(positive, negative)

    def sample(self, noise, latent_image, sampler, sigmas, denoise_mask=None, callback=None, disable_pbar=False,
               seed=None):  # noqa: ANN001  # fmt: skip
        if sigmas.shape[-1] == 0:
            return latent_image
        raw: dict[str, torch.Tensor] = {}

        def in_high(high_wrap, sigmas, extra_args, callback, noise, latent_in, mask, disable_pbar):  # noqa: ANN001
            # back to VAE space for the low expert's own preparation (it applies process_latent_in itself)
            latent_out = latent_in
            if latent_in is not None and torch.count_nonzero(latent_in) > 0:
                latent_out = high_wrap.inner_model.process_latent_out(latent_in)

            def in_low(low_wrap, sigmas_l, extra_args_l, callback_l, noise_l, latent_l, mask_l, disable_l):  # noqa: ANN001
                routed = _Routed(self, high_wrap, low_wrap, extra_args_l["model_options"])
                raw["samples"] = sampler.sample(routed, sigmas, extra_args, callback, noise, latent_in, mask,
                                                disable_pbar)  # fmt: skip
                return raw["samples"]

            self.low.sample(noise, latent_out, _Nested(in_low), sigmas, denoise_mask=denoise_mask, callback=None,
                            disable_pbar=True, seed=seed)  # fmt: skip
            return raw["samples"]  # model space, exactly as the sampler returned it

        return self.high.sample(noise, latent_image, _Nested(in_high), sigmas, denoise_mask=denoise_mask,
                                callback=callback, disable_pbar=disable_pbar, seed=seed)  # fmt: skip


def make_guider(high_model, low_model, positive, negative, cfg: float, boundary: float,
                positive_low=None, negative_low=None, cfg_low: float | None = None) -> TwoExpertGuider:  # noqa: ANN001  # fmt: skip
    """A :class:`TwoExpertGuider` from two MODELs and their conditioning (the low expert's defaults to the high's)."""
    high = comfy.samplers.CFGGuider(high_model)
    high.set_conds(positive, negative)
    high.set_cfg(cfg)
    low = comfy.samplers.CFGGuider(low_model)
    low.set_conds(
        positive if positive_low is None else positive_low, negative if negative_low is None else negative_low
    )
    low.set_cfg(cfg if cfg_low is None else cfg_low)
    return TwoExpertGuider(high, low, boundary)
