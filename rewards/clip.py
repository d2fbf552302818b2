"""CLIP models for CLIPScore, HPSv2, PickScore and the LAION aesthetic head, on transformers' ``CLIPModel``.

Three file layouts load into the same class (docs/rewards.md §2):

* a Hugging Face folder (``config.json`` + ``model.safetensors``/``pytorch_model.bin``), e.g.
  ``openai/clip-vit-large-patch14`` or ``yuvalkirstain/PickScore_v1``;
* an open_clip state dict (``visual.conv1.weight``, ``transformer.resblocks.N.attn.in_proj_weight`` …), e.g.
  ``HPS_v2.1_compressed.pt`` (ViT-H-14, wrapped in ``{"state_dict": …}``, fp16) or an open_clip ViT-L-14 file;
* OpenAI's TorchScript ``ViT-L-14.pt`` (same keys as open_clip, read without running it).

open_clip/OpenAI keys are converted: ``in_proj`` split into q/k/v, layer norms and MLPs renamed, ``visual.proj`` and
``text_projection`` transposed. The architecture is read from the tensor shapes; attention heads follow open_clip's
model table (64-wide heads, but 16 heads for the 1280/1408/1664-wide ViT-H/g/bigG towers). OpenAI weights need
QuickGELU (``activation="quick_gelu"``), LAION/HPS ones exact GELU: a file path cannot tell, so the caller says.
Loaded models are cached per (file, dtype, options) while alive, so CLIPScore and the aesthetic head share one model.
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import Any

import torch

from .errors import BadRewardFile
from .model_cache import shared_model
from .weights import load_into, meta_module, read_hf_folder, read_state_dict

__all__ = [
    "load_clip_model",
    "openclip_to_hf",
    "clip_config_from_openclip",
    "clip_image_features",
    "clip_text_features",
    "is_openclip_layout",
]

log = logging.getLogger("evosearch.rewards")

#: open_clip's vision-tower widths whose heads are not 64 wide (ViT-H/14: 1280 = 16 × 80, ViT-g, ViT-bigG).
_VISION_HEADS = {1280: 16, 1408: 16, 1664: 16}
#: File keys that are not weights: buffers of older checkpoints, OpenAI JIT attributes.
IGNORED_KEYS = (r"position_ids$", r"(^|\.)attn_mask$", r"^(input_resolution|context_length|vocab_size)$")


def is_openclip_layout(sd: dict[str, torch.Tensor]) -> bool:
    """True for open_clip / OpenAI CLIP key names."""
    return "visual.conv1.weight" in sd and "token_embedding.weight" in sd


def _count_blocks(sd: dict[str, torch.Tensor], prefix: str) -> int:
    pattern = re.compile(re.escape(prefix) + r"(\d+)\.")
    found = {int(m.group(1)) for k in sd if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def clip_config_from_openclip(
    sd: dict[str, torch.Tensor], activation: str = "quick_gelu", heads: tuple[int, int] | None = None
) -> Any:
    """A ``CLIPConfig`` matching an open_clip/OpenAI state dict; ``heads=(vision, text)`` overrides the head table."""
    from transformers import CLIPConfig

    conv = sd["visual.conv1.weight"]
    v_width, patch = conv.shape[0], conv.shape[-1]
    grid = math.isqrt(sd["visual.positional_embedding"].shape[0] - 1)
    t_width = sd["token_embedding.weight"].shape[1]
    v_heads = _VISION_HEADS.get(v_width, max(1, v_width // 64))
    t_heads = max(1, t_width // 64)
    if heads is not None:
        v_heads, t_heads = heads
    text = dict(
        vocab_size=sd["token_embedding.weight"].shape[0],
        hidden_size=t_width,
        intermediate_size=sd["transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=_count_blocks(sd, "transformer.resblocks."),
        num_attention_heads=t_heads,
        max_position_embeddings=sd["positional_embedding"].shape[0],
        hidden_act=activation,
        bos_token_id=49406,
        eos_token_id=49407,
        pad_token_id=0,
    )
    vision = dict(
        hidden_size=v_width,
        intermediate_size=sd["visual.transformer.resblocks.0.mlp.c_fc.weight"].shape[0],
        num_hidden_layers=_count_blocks(sd, "visual.transformer.resblocks."),
        num_attention_heads=v_heads,
        image_size=grid * patch,
        patch_size=patch,
        hidden_act=activation,
    )
    return CLIPConfig(text_config=text, vision_config=vision, projection_dim=sd["visual.proj"].shape[1])


def _convert_tower(sd: dict[str, torch.Tensor], src: str, dst: str, out: dict[str, torch.Tensor]) -> None:
    names = {
        "ln_1": "layer_norm1",
        "ln_2": "layer_norm2",
        "mlp.c_fc": "mlp.fc1",
        "mlp.c_proj": "mlp.fc2",
        "attn.out_proj": "self_attn.out_proj",
    }
    for i in range(_count_blocks(sd, f"{src}resblocks.")):
        a, b = f"{src}resblocks.{i}.", f"{dst}encoder.layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = sd[f"{a}attn.in_proj_{kind}"].chunk(3, dim=0)
            out[f"{b}self_attn.q_proj.{kind}"], out[f"{b}self_attn.k_proj.{kind}"] = q, k
            out[f"{b}self_attn.v_proj.{kind}"] = v
            for old, new in names.items():
                out[f"{b}{new}.{kind}"] = sd[f"{a}{old}.{kind}"]


def openclip_to_hf(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an open_clip/OpenAI CLIP state dict to transformers' ``CLIPModel`` keys (exact, no numerics change)."""
    out: dict[str, torch.Tensor] = {
        "text_model.embeddings.token_embedding.weight": sd["token_embedding.weight"],
        "text_model.embeddings.position_embedding.weight": sd["positional_embedding"],
        "text_model.final_layer_norm.weight": sd["ln_final.weight"],
        "text_model.final_layer_norm.bias": sd["ln_final.bias"],
        "text_projection.weight": sd["text_projection"].t(),
        "vision_model.embeddings.class_embedding": sd["visual.class_embedding"],
        "vision_model.embeddings.patch_embedding.weight": sd["visual.conv1.weight"],
        "vision_model.embeddings.position_embedding.weight": sd["visual.positional_embedding"],
        "vision_model.pre_layrnorm.weight": sd["visual.ln_pre.weight"],
        "vision_model.pre_layrnorm.bias": sd["visual.ln_pre.bias"],
        "vision_model.post_layernorm.weight": sd["visual.ln_post.weight"],
        "vision_model.post_layernorm.bias": sd["visual.ln_post.bias"],
        "visual_projection.weight": sd["visual.proj"].t(),
        "logit_scale": sd["logit_scale"],
    }
    _convert_tower(sd, "transformer.", "text_model.", out)
    _convert_tower(sd, "visual.transformer.", "vision_model.", out)
    return out


def _build(path: Path, dtype: torch.dtype, activation: str, heads: tuple[int, int] | None, expected: str) -> Any:
    from transformers import CLIPConfig, CLIPModel

    who = f"CLIP model {path.name}"
    if path.is_dir():
        config_file = path / "config.json"
        if not config_file.is_file():
            raise BadRewardFile(
                f"{path} is a folder without config.json; expected a Hugging Face CLIP folder. {expected}"
            )
        config = CLIPConfig.from_dict(json.loads(config_file.read_text()))
        sd = read_hf_folder(path)
    else:
        sd = read_state_dict(path)
        if is_openclip_layout(sd):
            config = clip_config_from_openclip(sd, activation, heads)
            sd = openclip_to_hf({k: v for k, v in sd.items()})
        elif (path.parent / "config.json").is_file() and any(k.startswith("vision_model.") for k in sd):
            config = CLIPConfig.from_dict(json.loads((path.parent / "config.json").read_text()))
        else:
            sample = ", ".join(list(sd)[:5])
            raise BadRewardFile(
                f"{who}: not a CLIP state dict (no visual.conv1.weight / token_embedding.weight; first keys: "
                f"{sample}). {expected}"
            )
    model = meta_module(lambda: CLIPModel(config))
    return load_into(model, sd, who=who, expected=expected, dtype=dtype, ignore=IGNORED_KEYS)


def load_clip_model(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    activation: str = "quick_gelu",
    heads: tuple[int, int] | None = None,
    expected: str = "",
) -> Any:
    """A ``transformers.CLIPModel`` from a folder, open_clip file or OpenAI JIT file (see the module docstring).

    ``activation`` applies to open_clip/OpenAI files only (a folder's config.json decides for itself); ``heads``
    overrides the inferred (vision, text) head counts for non-standard architectures. The model is shared with
    other callers asking for the same file and options while it is alive.
    """
    path = Path(path)

    def build() -> Any:
        log.info("loading CLIP model %s (%s)", path, dtype)
        return _build(path, dtype, activation, heads, expected)

    return shared_model("clip", path, {"dtype": str(dtype), "activation": activation, "heads": heads}, build)


def _pooled(output: Any) -> torch.Tensor:
    return output.pooler_output if hasattr(output, "pooler_output") else output[1]


def clip_image_features(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """Projected image embeddings ``[B, P]`` (not normalised) for normalised pixels ``[B,3,S,S]``."""
    return model.visual_projection(_pooled(model.vision_model(pixel_values=pixels)))


def clip_text_features(model: Any, input_ids: torch.Tensor) -> torch.Tensor:
    """Projected text embeddings ``[B, P]`` (not normalised) for CLIP token ids ``[B, 77]``."""
    return model.text_projection(_pooled(model.text_model(input_ids=input_ids)))
