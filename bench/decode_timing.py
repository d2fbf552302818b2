"""Real-size decode cost on this machine: ComfyUI's full VAEs vs their TAESD-family decoders, in UNet evaluations.

Random weights only (nothing is downloaded). Each VAE is a ``comfy.sd.VAE`` built by ComfyUI's own key detection
from a seeded random state dict whose keys and shapes come from the architecture built on the ``meta`` device, so
the object, its dtype choice and its ``decode()`` are exactly what Load VAE gives. The SD1.5 UNet (the "NFE" unit)
is ComfyUI's ``supported_models.SD15`` model with its layers' skipped init filled from a seeded generator.

Part of ``bench/scoring_vae.py`` (``--parts timing``).
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch

log = logging.getLogger("bench.scoring_vae")

#: ComfyUI's SD1.x/SD2.x/SDXL VAE ddconfig (comfy/sd.py: the default branch, also what SDXL VAE files load as).
SD_DDCONFIG = {"double_z": True, "z_channels": 4, "resolution": 256, "in_channels": 3, "out_ch": 3, "ch": 128,
               "ch_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_resolutions": [], "dropout": 0.0}  # fmt: skip
#: ComfyUI's Wan 2.1 VAE config (comfy/sd.py, the "decoder.middle.0.residual.0.gamma" branch).
WAN21_CONFIG = {"dim": 96, "z_dim": 16, "dim_mult": [1, 2, 4, 4], "num_res_blocks": 2, "attn_scales": [],
                "temperal_downsample": [False, True, True], "dropout": 0.0}  # fmt: skip
#: Latent scale of TAESD (SD1.x) and TAESDXL, as ComfyUI's VAELoader.load_taesd sets them.
TAESD_SCALE = {"taesd": 0.18215, "taesdxl": 0.13025}


@dataclass
class Timing:
    """One decoder at one size: median seconds per call (one image or one video)."""

    key: str
    decoder: str
    family: str
    latent: tuple[int, ...]
    output: tuple[int, ...]
    seconds: float
    runs: int
    parameters: int
    dtype: str


# ------------------------------------------------------------------------------------------------ random weights
def random_like(shapes: dict[str, torch.Size], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights for ``shapes``: N(0, 1/fan_in) matrices and kernels, unit norm gains (1-D ``weight``s,
    ``gamma``), zero biases. Well scaled enough that activations stay finite at any depth."""
    gen = torch.Generator().manual_seed(seed)
    sd = {}
    for key, shape in sorted(shapes.items()):
        leaf = key.rsplit(".", 1)[-1]
        if leaf == "bias":
            sd[key] = torch.zeros(shape)
        elif leaf == "gamma" or (leaf == "weight" and len(shape) == 1):  # norm gains
            sd[key] = torch.ones(shape)
        elif len(shape) <= 1:
            sd[key] = torch.zeros(shape)
        else:
            fan_in = math.prod(shape[1:])
            sd[key] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return sd


def meta_shapes(factory: Callable[[], torch.nn.Module]) -> dict[str, torch.Size]:
    """Parameter and buffer shapes of ``factory()`` built on the ``meta`` device (no memory, no init)."""
    with torch.device("meta"):
        module = factory()
    return {k: v.shape for k, v in module.state_dict().items()}


def sd_vae(seed: int) -> Any:
    """ComfyUI's SD1.5 / SDXL VAE (one architecture, one detection branch) from random weights."""
    import comfy.sd
    from comfy.ldm.models.autoencoder import AutoencoderKL

    shapes = meta_shapes(lambda: AutoencoderKL(ddconfig=dict(SD_DDCONFIG), embed_dim=4))
    return comfy.sd.VAE(sd=random_like(shapes, seed))


def taesd_vae(name: str, seed: int) -> Any:
    """ComfyUI's TAESD / TAESDXL (``comfy.taesd.taesd.TAESD``) from random weights, keys as VAELoader.load_taesd."""
    import comfy.sd
    import comfy.taesd.taesd

    shapes = meta_shapes(lambda: comfy.taesd.taesd.TAESD(latent_channels=4))
    shapes = {k: s for k, s in shapes.items() if k.startswith(("taesd_encoder.", "taesd_decoder."))}
    sd = random_like(shapes, seed)
    sd["vae_scale"], sd["vae_shift"] = torch.tensor(TAESD_SCALE[name]), torch.tensor(0.0)
    return comfy.sd.VAE(sd=sd)


def wan21_vae(seed: int) -> Any:
    """ComfyUI's Wan 2.1 VAE (``comfy.ldm.wan.vae.WanVAE``) from random weights."""
    import comfy.ldm.wan.vae
    import comfy.sd

    return comfy.sd.VAE(sd=random_like(meta_shapes(lambda: comfy.ldm.wan.vae.WanVAE(**WAN21_CONFIG)), seed))


def sd15_unet(seed: int) -> Any:
    """ComfyUI's SD1.5 model (``supported_models.SD15`` → ``BaseModel``), fp32, weights from ``seed``."""
    import comfy.model_detection
    import comfy.supported_models

    config = comfy.supported_models.SD15(_sd15_unet_config())
    config.set_inference_dtype(torch.float32, None)
    model = config.get_model({}, "", device=torch.device("cpu"))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in sorted(model.diffusion_model.named_parameters()):
            if p.dim() <= 1:  # norm gains 1, biases 0 (the skipped init left garbage: overwrite, never scale it)
                p.copy_(torch.ones_like(p) if name.endswith("weight") else torch.zeros_like(p))
            else:
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(p[0].numel()))
    return model.eval()


def _sd15_unet_config() -> dict[str, Any]:
    """ComfyUI's SD1.5 ``unet_config`` (model_detection's SD15 entry, without its dtype)."""
    return {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
            "legacy": False, "adm_in_channels": None, "in_channels": 4, "model_channels": 320,
            "num_res_blocks": [2, 2, 2, 2], "transformer_depth": [1, 1, 1, 1, 1, 1, 0, 0], "channel_mult": [1, 2, 4, 4],
            "transformer_depth_middle": 1, "use_linear_in_transformer": False, "context_dim": 768, "num_heads": 8,
            "transformer_depth_output": [1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0], "use_temporal_attention": False,
            "use_temporal_resblock": False}  # fmt: skip


# --------------------------------------------------------------------------------------------------------- timing
def _median_time(fn: Callable[[], Any], runs: int, warmup: bool) -> tuple[float, Any]:
    if warmup:
        fn()
    times, out = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), out


def time_decode(key: str, name: str, family: str, vae: Any, latent: torch.Tensor, runs: int, warmup: bool) -> Timing:
    """Median seconds of ``vae.decode(latent)`` (a batch of one image or one video)."""
    with torch.inference_mode():
        seconds, out = _median_time(lambda: vae.decode(latent), runs, warmup)
    if not torch.isfinite(out).all():
        raise RuntimeError(f"{name}: the decode is not finite; the random weights are badly scaled")
    params = sum(p.numel() for p in vae.first_stage_model.parameters())
    row = Timing(key, name, family, tuple(latent.shape), tuple(out.shape), seconds, runs, params, str(vae.vae_dtype))
    log.info("%-28s latent %-22s → %-22s %8.3f s (%d run%s)", name, row.latent, row.output, seconds, runs,
             "s" * (runs > 1))  # fmt: skip
    return row


def time_unet_cfg(model: Any, side: int, runs: int) -> Timing:
    """Median seconds of one SD1.5 model evaluation with CFG at ``side``² pixels: cond + uncond as one batch of 2
    (what ComfyUI's CFG does when memory allows), 77-token context, σ = 1."""
    h = side // 8
    x = torch.randn(2, 4, h, h, generator=torch.Generator().manual_seed(1))
    context = torch.randn(2, 77, 768, generator=torch.Generator().manual_seed(2))
    sigma = torch.ones(2)
    with torch.inference_mode():
        seconds, out = _median_time(lambda: model.apply_model(x, sigma, c_crossattn=context), runs, warmup=False)
    if not torch.isfinite(out).all():
        raise RuntimeError("SD1.5 UNet: the output is not finite; the random weights are badly scaled")
    params = sum(p.numel() for p in model.diffusion_model.parameters())
    log.info("SD1.5 UNet, CFG (batch 2)     latent %-22s %8.3f s (%d runs)", tuple(x.shape), seconds, runs)
    return Timing("unet_sd15", "SD1.5 UNet, CFG (cond+uncond)", "nfe", tuple(x.shape), tuple(out.shape), seconds, runs,
                  params, "torch.float32")  # fmt: skip


def peak_rss_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2


def run_timing(
    *, seed: int = 0, runs: int = 3, heavy_runs: int = 1, sdxl_1024: bool = True, wan_frames: int = 9,
    wan_size: tuple[int, int] = (256, 256), unet_runs: int = 2, image_side: int = 512,
) -> dict[str, Any]:  # fmt: skip
    """Every timing row; returns ``{"rows": [...], "notes": {...}}`` (plain data for the results file)."""
    import comfy.model_management

    rows: list[Timing] = []
    started = time.perf_counter()
    load_before = [round(v, 2) for v in os.getloadavg()]
    gen = torch.Generator().manual_seed(seed + 7)

    def latent(*shape: int) -> torch.Tensor:
        return torch.randn(shape, generator=gen)

    unet = sd15_unet(seed)
    rows.append(time_unet_cfg(unet, image_side, unet_runs))
    del unet
    gc.collect()

    side = image_side // 8
    vae = sd_vae(seed + 1)
    rows.append(time_decode("sd15_512", "SD1.5 VAE", "sd15", vae, latent(1, 4, side, side), heavy_runs, False))
    rows.append(time_decode("sdxl_512", "SDXL VAE", "sdxl", vae, latent(1, 4, side, side), heavy_runs, False))
    if sdxl_1024:
        rows.append(time_decode("sdxl_1024", "SDXL VAE", "sdxl", vae, latent(1, 4, 2 * side, 2 * side), heavy_runs,
                                False))  # fmt: skip
    del vae
    gc.collect()

    for name, family in (("taesd", "sd15"), ("taesdxl", "sdxl")):
        tiny = taesd_vae(name, seed + 2)
        label = {"taesd": "TAESD", "taesdxl": "TAESDXL"}[name]
        rows.append(time_decode(f"{name}_512", label, family, tiny, latent(1, 4, side, side), runs, True))
        if name == "taesdxl" and sdxl_1024:
            rows.append(time_decode(f"{name}_1024", label, family, tiny, latent(1, 4, 2 * side, 2 * side), runs, True))
        del tiny

    wan = wan21_vae(seed + 3)
    t_lat = 1 + (wan_frames - 1) // 4
    h, w = wan_size
    rows.append(time_decode("wan21_video", "Wan 2.1 VAE", "wan21", wan, latent(1, 16, t_lat, h // 8, w // 8),
                            heavy_runs, False))  # fmt: skip
    del wan
    gc.collect()
    return {
        "image_side": image_side,
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "rows": [asdict(r) for r in rows],
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "mkldnn": bool(torch.backends.mkldnn.enabled),
        "device": str(comfy.model_management.get_torch_device()),
        "seconds": round(time.perf_counter() - started, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
        "wan_fast_decoder": wan_fast_decoder_note(),
    }


def wan_fast_decoder_note() -> str:
    """Whether the installed ComfyUI has a fast (TAE-family) decoder for Wan 2.1 latents."""
    import importlib.util

    import comfy.latent_formats

    has_taehv = importlib.util.find_spec("comfy.taesd.taehv") is not None
    name = comfy.latent_formats.Wan21().taesd_decoder_name
    if not has_taehv and name is None:
        return (
            "none: this ComfyUI has no TAEHV module (comfy/taesd/taehv.py) and Wan21's latent format names no "
            "TAESD decoder (taesd_decoder_name is None), so no fast decoder can serve as a Wan scoring VAE"
        )
    return f"available: comfy.taesd.taehv present={has_taehv}, Wan21 taesd_decoder_name={name!r}"
