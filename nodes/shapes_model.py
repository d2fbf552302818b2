"""The shapes text-to-image model: a tiny SD1.5-architecture UNet, VAE and CLIP text encoder, built with ComfyUI's classes.

All three were trained here on procedurally rendered shape scenes (``tools/train_shapes.py``) and ship as small
safetensors files in ``assets/shapes/``, each with its architecture in its metadata.

* UNet: ``comfy.supported_models.SD15`` with a small ``unet_config`` (cross-attention ``context_dim`` = the text
  encoder's width) → ``BaseModel`` (ε-prediction, 1000-step scaled-linear schedule, SD1.5 latent format ×0.18215).
* VAE: ``comfy.sd.VAE`` around ComfyUI's ``AutoencoderKL``: 32×32 RGB ↔ 8×8×4 latents, spatial compression **4**
  (make empty latents with :func:`empty_latent`, not EmptyLatentImage, which assumes 8).
* Text encoder: a ``comfy.sd.CLIP`` holding ComfyUI's SD1 CLIP text model (``comfy.sd1_clip.SDClipModel`` over
  ``comfy.clip_model.CLIPTextModel``) with a small config, and ComfyUI's shipped SD1 CLIP tokenizer (offline). The
  standard **CLIP Text Encode** node encodes prompts with it; the empty prompt is the unconditional side of CFG.
  Only the token-embedding rows of the words seen in training are stored (``token_ids`` + ``token_rows``); every
  other row is zero.

Benchmarks and tests call :func:`load_shapes` after ComfyUI is imported; the node outputs the same objects.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import comfy.model_management
import comfy.model_patcher
import comfy.sd
import comfy.sd1_clip
import comfy.supported_models_base
import comfy.utils
import torch

from . import demo_model

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_SIZE",
    "LATENT_CHANNELS",
    "SHAPES_DIR",
    "SPATIAL_COMPRESSION",
    "TEXT_CONFIG",
    "TEXT_ENCODER_FILE",
    "UNET_CONFIG",
    "UNET_FILE",
    "VAE_DDCONFIG",
    "VAE_FILE",
    "ShapesBundle",
    "ShapesTextEncoder",
    "ShapesTokenizer",
    "build_clip",
    "dense_text_state",
    "empty_latent",
    "load_shapes",
    "load_shapes_clip",
    "load_shapes_model",
    "load_shapes_vae",
    "sparse_text_state",
]

SHAPES_DIR = Path(__file__).resolve().parents[1] / "assets" / "shapes"
UNET_FILE = "unet.safetensors"
VAE_FILE = "vae.safetensors"
TEXT_ENCODER_FILE = "text_encoder.safetensors"

IMAGE_SIZE = 32
SPATIAL_COMPRESSION = 4
LATENT_CHANNELS = 4
TEXT_WIDTH = 64
_TOKEN_KEY = "text_model.embeddings.token_embedding.weight"

#: ComfyUI SD1 CLIP text-model config, scaled down: 2 layers, width 64, 4 heads (the vocabulary and the 77 positions
#: of SD1's tokenizer are kept so that ComfyUI's tokenizer and CLIP Text Encode work unchanged).
TEXT_CONFIG: dict[str, Any] = {
    "architectures": ["CLIPTextModel"],
    "attention_dropout": 0.0,
    "bos_token_id": 0,
    "dropout": 0.0,
    "eos_token_id": 49407,
    "hidden_act": "quick_gelu",
    "hidden_size": TEXT_WIDTH,
    "initializer_factor": 1.0,
    "initializer_range": 0.02,
    "intermediate_size": 4 * TEXT_WIDTH,
    "layer_norm_eps": 1e-05,
    "max_position_embeddings": 77,
    "model_type": "clip_text_model",
    "num_attention_heads": 4,
    "num_hidden_layers": 2,
    "pad_token_id": 1,
    "projection_dim": TEXT_WIDTH,
    "vocab_size": 49408,
}

#: SD1.5-style UNet as ``comfy.model_detection.detect_unet_config`` reports it: 8×8 → 4×4 → 2×2, channels 32/64/64,
#: one res block per level, cross-attention to the text at 4×4 and 2×2 (the digit demo's UNet with a text context).
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
    "context_dim": TEXT_WIDTH,
    "use_temporal_resblock": False,
    "use_temporal_attention": False,
}

#: ComfyUI ``AutoencoderKL`` ddconfig: 32×32×3 ↔ 8×8×4 (two downsamples), 32 channels throughout (the digit
#: demo's VAE).
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


# ------------------------------------------------------------------------------------------------------ text encoder
class _ShapesSDTokenizer(comfy.sd1_clip.SDTokenizer):
    """ComfyUI's SD1 CLIP tokenizer (its shipped vocabulary, 77 tokens) with this encoder's embedding width."""

    def __init__(self, embedding_directory: str | None = None, tokenizer_data: dict | None = None) -> None:
        super().__init__(
            embedding_directory=embedding_directory, embedding_size=TEXT_WIDTH, embedding_key="clip_l",
            tokenizer_data=tokenizer_data or {},
        )  # fmt: skip


class ShapesTokenizer(comfy.sd1_clip.SD1Tokenizer):
    """The tokenizer half of the shapes CLIP (``clip_l`` key, like SD1.5)."""

    def __init__(self, embedding_directory: str | None = None, tokenizer_data: dict | None = None) -> None:
        super().__init__(
            embedding_directory=embedding_directory, tokenizer_data=tokenizer_data or {}, tokenizer=_ShapesSDTokenizer
        )


class _ShapesClipL(comfy.sd1_clip.SDClipModel):
    """SD1's text encoder wrapper (last layer, no projection) over a small ``CLIPTextModel``."""

    def __init__(
        self, device: Any = "cpu", dtype: Any = None, model_options: dict | None = None, text_config: dict | None = None
    ) -> None:
        super().__init__(
            device=device, dtype=dtype, textmodel_json_config=dict(text_config or TEXT_CONFIG),
            return_projected_pooled=False, model_options=model_options or {},
        )  # fmt: skip


class ShapesTextEncoder(comfy.sd1_clip.SD1ClipModel):
    """The text-encoder half of the shapes CLIP: ``clip_l`` = :class:`_ShapesClipL` with the file's config."""

    def __init__(
        self, device: Any = "cpu", dtype: Any = None, model_options: dict | None = None, text_config: dict | None = None
    ) -> None:
        super().__init__(
            device=device, dtype=dtype, model_options=model_options or {}, clip_model=_ShapesClipL,
            text_config=text_config,
        )  # fmt: skip


def sparse_text_state(state: dict[str, torch.Tensor], token_ids: torch.Tensor) -> dict[str, torch.Tensor]:
    """A ``CLIPTextModel`` state dict with the token embedding cut to ``token_ids`` (``token_ids`` / ``token_rows``)."""
    out = {k: v for k, v in state.items() if k != _TOKEN_KEY}
    ids = torch.as_tensor(token_ids, dtype=torch.int64).sort().values
    out["token_ids"] = ids
    out["token_rows"] = state[_TOKEN_KEY][ids].clone()
    return out


def dense_text_state(state: dict[str, torch.Tensor], vocab_size: int) -> dict[str, torch.Tensor]:
    """Undo :func:`sparse_text_state`: the full token embedding, zero outside the stored rows."""
    out = {k: v for k, v in state.items() if k not in ("token_ids", "token_rows")}
    rows = state["token_rows"]
    table = torch.zeros(vocab_size, rows.shape[1], dtype=rows.dtype)
    table[state["token_ids"].long()] = rows
    out[_TOKEN_KEY] = table
    return out


def build_clip(
    state_dict: dict[str, torch.Tensor] | None = None, text_config: dict[str, Any] | None = None, **model_options: Any
) -> comfy.sd.CLIP:
    """A ``comfy.sd.CLIP`` with the shapes tokenizer and text encoder, loaded with a dense ``CLIPTextModel`` state.

    ``model_options`` go to ``comfy.sd.CLIP`` (``dtype``, ``load_device``, ``offload_device``, …); without weights the
    modules hold ComfyUI's uninitialised memory.
    """
    config = dict(text_config or TEXT_CONFIG)
    target = comfy.supported_models_base.ClipTarget(ShapesTokenizer, ShapesTextEncoder)
    target.params = {"text_config": config}
    parameters = comfy.utils.calculate_parameters(state_dict) if state_dict else 0
    clip = comfy.sd.CLIP(target, parameters=parameters, model_options=model_options)
    if state_dict:
        missing, unexpected = clip.load_sd(state_dict)
        missing = [k for k in missing if not k.endswith(("text_projection.weight", "logit_scale"))]
        if missing or unexpected:
            raise ValueError(f"shapes text encoder: missing keys {missing[:5]}, unexpected keys {unexpected[:5]}")
    return clip


# ------------------------------------------------------------------------------------------------------------ loading
def _require(path: Path) -> Path:
    if not path.is_file():
        raise FileNotFoundError(
            f"shapes model weights not found at {path}; they ship in assets/shapes/ (re-create them with "
            "`python tools/train_shapes.py --comfyui <ComfyUI path>`)"
        )
    return path


def _config(path: Path, key: str) -> dict[str, Any]:
    metadata = demo_model.read_metadata(path)
    if key not in metadata:
        raise ValueError(f"{path} has no '{key}' in its metadata: it was not written by tools/train_shapes.py")
    return json.loads(metadata[key])


def load_shapes_model(
    path: str | Path | None = None, *, dtype: torch.dtype | None = None
) -> comfy.model_patcher.ModelPatcher:
    """The shapes UNet as a MODEL (``ModelPatcher`` on ComfyUI's devices; ``dtype`` None = ComfyUI's choice)."""
    return demo_model.load_demo_model(_require(Path(path) if path else SHAPES_DIR / UNET_FILE), dtype=dtype)


def load_shapes_vae(path: str | Path | None = None, *, dtype: torch.dtype | None = None) -> comfy.sd.VAE:
    """The shapes VAE (``comfy.sd.VAE``, 4× compression)."""
    return demo_model.load_demo_vae(_require(Path(path) if path else SHAPES_DIR / VAE_FILE), dtype=dtype)


def load_shapes_clip(path: str | Path | None = None, *, dtype: torch.dtype | None = None) -> comfy.sd.CLIP:
    """The shapes text encoder as a CLIP (for CLIP Text Encode); ``dtype`` None = ComfyUI's text-encoder dtype."""
    path = _require(Path(path) if path else SHAPES_DIR / TEXT_ENCODER_FILE)
    config = _config(path, "text_config")
    state = dense_text_state(comfy.utils.load_torch_file(str(path), safe_load=True), int(config["vocab_size"]))
    options = {"dtype": dtype} if dtype is not None else {}
    clip = build_clip(state, config, **options)
    logger.info("EvoSearch shapes text encoder loaded from %s", path)
    return clip


@dataclass
class ShapesBundle:
    """What the shapes node outputs: MODEL, CLIP and VAE (plus :meth:`empty_latent`)."""

    model: comfy.model_patcher.ModelPatcher
    clip: comfy.sd.CLIP
    vae: comfy.sd.VAE

    def empty_latent(self, batch_size: int = 1) -> dict[str, torch.Tensor]:
        return empty_latent(batch_size)

    def encode(self, prompt: str) -> list:
        """CONDITIONING for ``prompt``, exactly as the CLIP Text Encode node makes it."""
        return self.clip.encode_from_tokens_scheduled(self.clip.tokenize(prompt))


def empty_latent(batch_size: int = 1) -> dict[str, torch.Tensor]:
    """An empty LATENT ``{"samples": zeros[B,4,8,8]}`` for 32×32 shapes images."""
    if batch_size < 1:
        raise ValueError(f"EvoSearch Shapes Model: batch_size must be ≥ 1, got {batch_size}")
    side = IMAGE_SIZE // SPATIAL_COMPRESSION
    device = comfy.model_management.intermediate_device()
    return {"samples": torch.zeros(batch_size, LATENT_CHANNELS, side, side, device=device)}


def load_shapes(
    directory: str | Path | None = None,
    *,
    dtype: torch.dtype | None = None,
    vae_dtype: torch.dtype | None = None,
    clip_dtype: torch.dtype | None = None,
) -> ShapesBundle:
    """Load the shipped shapes model: ``ShapesBundle(model, clip, vae)`` (see the module docstring)."""
    directory = Path(directory) if directory is not None else SHAPES_DIR
    return ShapesBundle(
        model=load_shapes_model(directory / UNET_FILE, dtype=dtype),
        clip=load_shapes_clip(directory / TEXT_ENCODER_FILE, dtype=clip_dtype),
        vae=load_shapes_vae(directory / VAE_FILE, dtype=vae_dtype),
    )
