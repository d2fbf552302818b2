"""Faithful fakes of newer ComfyUI functions and classes that more than one host test needs.

Each reproduces a newer form as read from a newer ComfyUI file (file@commit in its docstring). The fakes only used by
one test live in that test (tests/host/test_compat.py).
"""

from __future__ import annotations

import torch


def newer_fix_empty_latent_channels(model, latent_image, downscale_ratio_spacial=None, downscale_ratio_temporal=None):
    """The newer ``comfy.sample.fix_empty_latent_channels``: its signature as nodes.py@5aabaf51 and
    comfy_extras/nodes_custom_sampler.py@be91880b call it; empty latents are resized by ``downscale_ratio_spacial /
    latent_format.spacial_downscale_ratio`` (the attribute of comfy/latent_formats.py@9a9a69fd). comfy/sample.py
    itself is not in the index; the resize is what those callers rely on."""
    import comfy.utils

    latent_format = model.get_model_object("latent_format")
    if torch.count_nonzero(latent_image) == 0:
        if latent_format.latent_channels != latent_image.shape[1]:
            latent_image = comfy.utils.repeat_to_batch_size(latent_image, latent_format.latent_channels, dim=1)
        own = getattr(latent_format, "spacial_downscale_ratio", 8)
        if downscale_ratio_spacial is not None and downscale_ratio_spacial != own:
            ratio = downscale_ratio_spacial / own
            latent_image = comfy.utils.common_upscale(latent_image, round(latent_image.shape[-1] * ratio),
                                                      round(latent_image.shape[-2] * ratio), "nearest-exact", "disabled")  # fmt: skip
    if latent_format.latent_dimensions == 3 and latent_image.ndim == 4:
        latent_image = latent_image.unsqueeze(2)
    return latent_image


def newer_samplings():
    """comfy/model_sampling.py@38a99a82: ``CONST.noise_scaling`` with ``noise_scale`` (set by
    ``ModelSamplingDiscreteFlow.set_noise_scale``), and the new ``IMG_TO_IMG_FLOW`` / ``IMG_TO_IMG_VELOCITY``."""
    import comfy.model_sampling as ms

    class NewerCONST(ms.CONST):
        def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
            sigma = ms.reshape_sigma(sigma, noise.ndim)
            s = getattr(self, "noise_scale", 1.0)
            return sigma * (s * noise) + (1.0 - sigma) * latent_image

    class IMG_TO_IMG_FLOW(NewerCONST):  # noqa: N801 - ComfyUI's name
        def calculate_denoised(self, sigma, model_output, model_input):
            return model_output

        def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
            return latent_image

        def inverse_noise_scaling(self, sigma, latent):
            return 1.0 - latent

    class IMG_TO_IMG_VELOCITY(NewerCONST):  # noqa: N801 - ComfyUI's name
        def calculate_denoised(self, sigma, model_output, model_input):
            return model_input - model_output

        def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
            return latent_image

        def inverse_noise_scaling(self, sigma, latent):
            return latent

    def flow(kind, noise_scale=None):
        class ModelSampling(ms.ModelSamplingDiscreteFlow, kind):
            def set_noise_scale(self, value):
                self.noise_scale = float(value)

        sampling = ModelSampling()
        if noise_scale is not None:
            sampling.set_noise_scale(noise_scale)
        return sampling

    return flow, NewerCONST, IMG_TO_IMG_FLOW, IMG_TO_IMG_VELOCITY
