"""A tiny aesthetic predictor v2.5 release in the official layout, and the full-size layout of its files.

``<root>/aesthetic_v25/``: ``aesthetic_predictor_v2_5.pth`` (plain state dict ``scoring_head.{0,2,4,6,8}`` in bf16,
as published) and ``siglip-so400m-patch14-384/`` (``config.json`` of a full ``SiglipModel`` with text and vision
towers, ``model.safetensors``, ``preprocessor_config.json`` of ``SiglipImageProcessor``), as on the Hub.
:func:`full_siglip_layout` / :func:`full_head_layout` give the official key names and shapes, written from the
published architecture (SigLIP so400m-patch14-384: width 1152, 27 layers, MLP 4304, 384 px, attention-pooling head).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from .reward_fixtures import randomise

TINY = dict(hidden=48, layers=2, heads=2, mlp=96, image=56, patch=14)
HEAD_DIMS = (48, 32, 16, 8, 4, 1)


def tiny_siglip(gen: torch.Generator, cfg: dict = TINY):
    """A tiny transformers ``SiglipModel`` (text + vision) with seeded random weights."""
    from transformers import SiglipConfig, SiglipModel

    config = SiglipConfig(
        text_config=dict(
            vocab_size=64,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=16,
        ),
        vision_config=dict(
            hidden_size=cfg["hidden"],
            intermediate_size=cfg["mlp"],
            num_hidden_layers=cfg["layers"],
            num_attention_heads=cfg["heads"],
            image_size=cfg["image"],
            patch_size=cfg["patch"],
        ),
    )
    model = SiglipModel(config)
    randomise(model, gen, scale=0.1)
    return model.eval()


def head_state(gen: torch.Generator, dims=HEAD_DIMS, dtype=torch.bfloat16) -> dict[str, torch.Tensor]:
    """``scoring_head.{0,2,4,6,8}`` of the given widths, spread like a trained head (outputs of order 1–10)."""
    sd = {}
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        sd[f"scoring_head.{2 * i}.weight"] = (torch.randn(b, a, generator=gen) * (2.0 / math.sqrt(a))).to(dtype)
        sd[f"scoring_head.{2 * i}.bias"] = (torch.randn(b, generator=gen) * 0.5 + (5.0 if b == 1 else 0.0)).to(dtype)
    return sd


def write_siglip_folder(model, folder: Path) -> None:
    """config.json + model.safetensors + preprocessor_config.json, as in google/siglip-so400m-patch14-384."""
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps(model.config.to_dict(), default=str))
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    side = model.config.vision_config.image_size
    (folder / "preprocessor_config.json").write_text(
        json.dumps(
            {
                "image_processor_type": "SiglipImageProcessor",
                "processor_class": "SiglipProcessor",
                "do_resize": True,
                "size": {"height": side, "width": side},
                "resample": 3,
                "do_rescale": True,
                "rescale_factor": 1 / 255,
                "do_normalize": True,
                "image_mean": [0.5, 0.5, 0.5],
                "image_std": [0.5, 0.5, 0.5],
            }
        )
    )


def build(root: Path, gen: torch.Generator) -> dict:
    """Write ``root/aesthetic_v25/``; return the SigLIP model and the head state dict."""
    folder = root / "aesthetic_v25"
    model = tiny_siglip(gen)
    write_siglip_folder(model, folder / "siglip-so400m-patch14-384")
    sd = head_state(gen)
    torch.save(sd, folder / "aesthetic_predictor_v2_5.pth")
    return {"siglip": model, "head": sd, "folder": folder}


def _put(sd: dict, key: str, *shape: int) -> None:
    sd[key] = torch.empty(*shape, device="meta")


def full_siglip_layout(text: bool = True) -> dict[str, torch.Tensor]:
    """Keys and shapes of google/siglip-so400m-patch14-384's model.safetensors (vision tower; a few text keys)."""
    sd: dict[str, torch.Tensor] = {}
    width, mlp, layers, grid = 1152, 4304, 27, 384 // 14
    v = "vision_model."
    _put(sd, v + "embeddings.patch_embedding.weight", width, 3, 14, 14)
    _put(sd, v + "embeddings.patch_embedding.bias", width)
    _put(sd, v + "embeddings.position_embedding.weight", grid * grid, width)
    for i in range(layers):
        b = f"{v}encoder.layers.{i}."
        for p in ("q_proj", "k_proj", "v_proj", "out_proj"):
            _put(sd, b + f"self_attn.{p}.weight", width, width), _put(sd, b + f"self_attn.{p}.bias", width)
        for n in ("layer_norm1", "layer_norm2"):
            _put(sd, b + n + ".weight", width), _put(sd, b + n + ".bias", width)
        _put(sd, b + "mlp.fc1.weight", mlp, width), _put(sd, b + "mlp.fc1.bias", mlp)
        _put(sd, b + "mlp.fc2.weight", width, mlp), _put(sd, b + "mlp.fc2.bias", width)
    _put(sd, v + "post_layernorm.weight", width), _put(sd, v + "post_layernorm.bias", width)
    _put(sd, v + "head.probe", 1, 1, width)
    (
        _put(sd, v + "head.attention.in_proj_weight", 3 * width, width),
        _put(sd, v + "head.attention.in_proj_bias", 3 * width),
    )
    _put(sd, v + "head.attention.out_proj.weight", width, width), _put(sd, v + "head.attention.out_proj.bias", width)
    _put(sd, v + "head.layernorm.weight", width), _put(sd, v + "head.layernorm.bias", width)
    _put(sd, v + "head.mlp.fc1.weight", mlp, width), _put(sd, v + "head.mlp.fc1.bias", mlp)
    _put(sd, v + "head.mlp.fc2.weight", width, mlp), _put(sd, v + "head.mlp.fc2.bias", width)
    if text:  # the text tower is in the same file and is not loaded
        _put(sd, "text_model.embeddings.token_embedding.weight", 32000, width)
        _put(sd, "text_model.embeddings.position_embedding.weight", 64, width)
        _put(sd, "text_model.final_layer_norm.weight", width)
        _put(sd, "text_model.head.weight", width, width)
        _put(sd, "logit_scale", 1), _put(sd, "logit_bias", 1)
    return sd


def full_head_layout() -> dict[str, torch.Tensor]:
    """aesthetic_predictor_v2_5.pth: 1152→1024→128→64→16→1 at ``scoring_head.{0,2,4,6,8}``."""
    sd: dict[str, torch.Tensor] = {}
    dims = (1152, 1024, 128, 64, 16, 1)
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        _put(sd, f"scoring_head.{2 * i}.weight", b, a), _put(sd, f"scoring_head.{2 * i}.bias", b)
    return sd
