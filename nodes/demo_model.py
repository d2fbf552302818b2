"""The demo diffusion model: a tiny SD1.5-architecture UNet and a tiny AutoencoderKL, built with ComfyUI's own classes.

Both were trained here on scikit-learn's handwritten digits (``tools/train_demo.py``) and ship as small safetensors
files in ``assets/demo/``; their architecture is stored in each file's metadata, so the files describe themselves.

* UNet: ``comfy.supported_models.SD15`` with a small ``unet_config`` → ``BaseModel`` (ε-prediction, ComfyUI's discrete
  1000-step schedule, SD1.5 latent format with scale 0.18215), wrapped in a ``ModelPatcher`` on ComfyUI's devices.
* VAE: ``comfy.sd.VAE`` around ComfyUI's ``AutoencoderKL`` (``ch=32``, two downsamples): 32×32 RGB ↔ 8×8×4 latents,
  i.e. a spatial compression of 4 (not SD's 8: make empty latents with :func:`empty_latent`, not EmptyLatentImage).
* Conditioning: the model is unconditional; positive and negative are the same all-zero context (use cfg = 1).

Everything here is what the **EvoSearch Demo Model** node outputs; benchmarks and tests call :func:`load_demo` directly
after ComfyUI is imported.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import comfy.model_base
import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.supported_models
import comfy.utils
import torch

logger = logging.getLogger(__name__)

__all__ = [
    "CONTEXT_DIM",
    "DEMO_DIR",
    "IMAGE_SIZE",
    "LATENT_CHANNELS",
    "SPATIAL_COMPRESSION",
    "UNET_CONFIG",
    "VAE_DDCONFIG",
    "VAE_EMBED_DIM",
    "DemoBundle",
    "build_unet",
    "build_vae",
    "demo_conditioning",
    "empty_latent",
    "load_demo",
    "load_demo_model",
    "load_demo_taesd",
    "load_demo_vae",
    "read_metadata",
]

#: Where the shipped weights live.
DEMO_DIR = Path(__file__).resolve().parents[1] / "assets" / "demo"
UNET_FILE = "unet.safetensors"
VAE_FILE = "vae.safetensors"
#: The demo VAE's decoder distilled into ComfyUI's TAESD architecture (``tools/train_taesd.py``): a scoring VAE.
TAESD_FILE = "taesd_digits.safetensors"

IMAGE_SIZE = 32
SPATIAL_COMPRESSION = 4
LATENT_CHANNELS = 4
CONTEXT_DIM = 64

#: SD1.5-style UNet, in the form ComfyUI's model detection produces (``comfy.model_detection.detect_unet_config``):
#: 8×8 → 4×4 → 2×2, channels 32/64/64, one res block per level, attention at 4×4 and 2×2 (≈1.7 M parameters).
UNET_CONFIG: dict[str, Any] = {
    "use_checkpoint": False,
    "image_size": 32,
    "use_spatial_transformer": True,
    "legacy": False,
    "adm_in_channels": None,
    "in_channels": LATENT_CHANNELS,
    "out_channels": LATENT_CHANNELS,
    "model_channels": 32,
    "num_res_blocks": [1, 1, 1],
    "transformer_depth": [0, 1, 1],
    "transformer_depth_output": [0, 0, 1, 1, 1, 1],
    "channel_mult": [1, 2, 2],
    "transformer_depth_middle": 1,
    "use_linear_in_transformer": False,
    "context_dim": CONTEXT_DIM,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

#: ComfyUI ``AutoencoderKL`` ddconfig: 32×32×3 ↔ 8×8×4, 32 channels throughout (GroupNorm needs multiples of 32);
#: one res block per decoder level, strided convs + the mid block in the encoder: cheap enough to train and decode on
#: a CPU (≈0.18 M parameters).
VAE_DDCONFIG: dict[str, Any] = {
    "double_z": True,
    "z_channels": LATENT_CHANNELS,
    "resolution": IMAGE_SIZE,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 1, 1],
    "num_res_blocks": 0,
    "attn_resolutions": [],
    "dropout": 0.0,
}
VAE_EMBED_DIM = LATENT_CHANNELS


@dataclass
class DemoBundle:
    """What the demo node outputs: MODEL, VAE, positive and negative CONDITIONING."""

    model: comfy.model_patcher.ModelPatcher
    vae: comfy.sd.VAE
    positive: list
    negative: list

    def empty_latent(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        return empty_latent(batch_size)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors file (strings)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata() or {})


def _config_from(metadata: dict[str, str], key: str, path: Path) -> dict[str, Any]:
    if key not in metadata:
        raise ValueError(f"{path} has no '{key}' in its metadata: it was not written by tools/train_demo.py")
    return json.loads(metadata[key])


def _require(path: Path, tool: str = "tools/train_demo.py") -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"demo weights not found at {path}; they ship in assets/demo/ (re-create them with "
            f"`python {tool} --comfyui <ComfyUI path>`)"
        )
    return path


def build_unet(
    unet_config: dict[str, Any] | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    manual_cast_dtype: torch.dtype | None = None,
    device: torch.device | None = None,
) -> comfy.model_base.BaseModel:
    """A ComfyUI SD1.5 ``BaseModel`` (ε-prediction) with the given (default: the demo's) UNet config, weights unset.

    ComfyUI's layers skip ``reset_parameters``: the weights hold whatever memory held until loaded or initialised.
    """
    config = comfy.supported_models.SD15(dict(unet_config or UNET_CONFIG))
    config.set_inference_dtype(dtype, manual_cast_dtype)
    return config.get_model({}, "", device=device)


def build_vae(
    state_dict: dict[str, torch.Tensor] | None = None,
    *,
    ddconfig: dict[str, Any] | None = None,
    embed_dim: int = VAE_EMBED_DIM,
    device: torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> comfy.sd.VAE:
    """A ``comfy.sd.VAE`` around ComfyUI's ``AutoencoderKL`` with the demo's (or the given) config.

    ``comfy.sd.VAE`` assumes SD's 8× compression for configs it is handed; this one compresses by 4, so the instance's
    ratios are set to match (VAEEncode then crops and sizes correctly).
    """
    ddconfig = dict(ddconfig or VAE_DDCONFIG)
    vae = comfy.sd.VAE(
        sd=state_dict or {},
        device=device,
        dtype=dtype,
        config={"params": {"ddconfig": ddconfig, "embed_dim": embed_dim}},
    )
    ratio = 2 ** (len(ddconfig["ch_mult"]) - 1)
    vae.downscale_ratio = ratio
    vae.upscale_ratio = ratio
    vae.latent_channels = ddconfig["z_channels"]
    return vae


def load_demo_model(
    path: str | Path | None = None, *, dtype: torch.dtype | None = None
) -> comfy.model_patcher.ModelPatcher:
    """Load the demo UNet as a MODEL: a ``ModelPatcher`` on ComfyUI's torch device, offloaded where ComfyUI offloads.

    ``dtype`` None lets ComfyUI choose (float32 on the CPU, float16 on most GPUs), as its UNet loader does.
    """
    path = _require(Path(path) if path is not None else DEMO_DIR / UNET_FILE)
    unet_config = _config_from(read_metadata(path), "unet_config", path)
    state_dict = comfy.utils.load_torch_file(str(path), safe_load=True)
    load_device = comfy.model_management.get_torch_device()
    offload_device = comfy.model_management.unet_offload_device()
    supported = list(comfy.supported_models.SD15.supported_inference_dtypes)
    if dtype is None:
        dtype = comfy.model_management.unet_dtype(
            model_params=comfy.utils.calculate_parameters(state_dict),
            supported_dtypes=supported,
            weight_dtype=comfy.utils.weight_dtype(state_dict),
        )
    manual_cast = comfy.model_management.unet_manual_cast(dtype, load_device, supported)
    model = build_unet(unet_config, dtype=dtype, manual_cast_dtype=manual_cast, device=offload_device)
    model.load_model_weights(state_dict, "")
    logger.info("EvoSearch demo UNet loaded from %s (dtype %s, device %s)", path, dtype, load_device)
    return comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)


def load_demo_vae(path: str | Path | None = None, *, dtype: torch.dtype | None = None) -> comfy.sd.VAE:
    """Load the demo VAE (``comfy.sd.VAE``; ComfyUI picks its device and dtype unless ``dtype`` is given)."""
    path = _require(Path(path) if path is not None else DEMO_DIR / VAE_FILE)
    metadata = read_metadata(path)
    config = _config_from(metadata, "vae_config", path)
    state_dict = comfy.utils.load_torch_file(str(path), safe_load=True)
    vae = build_vae(state_dict, ddconfig=config["ddconfig"], embed_dim=int(config["embed_dim"]), dtype=dtype)
    logger.info("EvoSearch demo VAE loaded from %s (dtype %s, device %s)", path, vae.vae_dtype, vae.device)
    return vae


def load_demo_taesd(path: str | Path | None = None) -> comfy.sd.VAE:
    """Load the demo's TAESD decoder as ComfyUI's Load VAE node loads a file from ``models/vae``.

    ``comfy.sd.VAE`` detects it as TAESD from its ``taesd_decoder.*`` keys. It decodes the demo's 8×8×4 latents to
    64×64 images (TAESD upsamples 8×; the demo VAE 4× to 32×32), which the digit reward resizes to its 32×32 input.
    A decoder only: for the EvoSearch nodes' ``scoring_vae`` and previews, not for VAE Encode.
    """
    path = _require(Path(path) if path is not None else DEMO_DIR / TAESD_FILE, "tools/train_taesd.py")
    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path), safe_load=True))
    vae.throw_exception_if_invalid()
    logger.info("EvoSearch demo TAESD loaded from %s (dtype %s, device %s)", path, vae.vae_dtype, vae.device)
    return vae


def demo_conditioning(batch: int = 1) -> list:
    """CONDITIONING for the unconditional demo model: one all-zero context token of ``CONTEXT_DIM``."""
    return [[torch.zeros(batch, 1, CONTEXT_DIM), {}]]


def empty_latent(batch_size: int = 1) -> dict[str, torch.Tensor]:
    """An empty LATENT ``{"samples": zeros[B,4,8,8]}`` for 32×32 demo images."""
    if batch_size < 1:
        raise ValueError(f"EvoSearch demo: batch_size must be ≥ 1, got {batch_size}")
    side = IMAGE_SIZE // SPATIAL_COMPRESSION
    device = comfy.model_management.intermediate_device()
    return {"samples": torch.zeros(batch_size, LATENT_CHANNELS, side, side, device=device)}


def load_demo(
    directory: str | Path | None = None, *, dtype: torch.dtype | None = None, vae_dtype: torch.dtype | None = None
) -> DemoBundle:
    """Load the shipped demo: ``DemoBundle(model, vae, positive, negative)`` (see the module docstring)."""
    directory = Path(directory) if directory is not None else DEMO_DIR
    return DemoBundle(
        model=load_demo_model(directory / UNET_FILE, dtype=dtype),
        vae=load_demo_vae(directory / VAE_FILE, dtype=vae_dtype),
        positive=demo_conditioning(),
        negative=demo_conditioning(),
    )
