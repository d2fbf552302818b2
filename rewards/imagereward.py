"""ImageReward v1.0 (Xu et al. 2023, arXiv 2304.05977; github.com/THUDM/ImageReward), rebuilt on transformers' BLIP.

The official ``ImageReward.pt`` (fp32 state dict, Apache-2.0) holds BLIP's ViT-L/16 (``blip.visual_encoder.*``, timm
key names), BLIP's "med" BERT with cross-attention in every layer (``blip.text_encoder.*``) and an MLP head
(``mlp.layers.{0,2,4,6,7}``). ``BlipVisionModel`` + ``BlipTextModel(add_pooling_layer=False)`` reproduce the package
exactly once the vision keys are renamed (docs/rewards.md §2):

    reward = (mlp(h_CLS) − 0.16717362830052426) / 1.0333394966054072

where ``h_CLS`` is the text encoder's first hidden state for ``[CLS] prompt [SEP]`` (35 tokens, truncated and padded)
attending to all 197 image tokens. Images: shortest side → 224 bicubic, centre crop, OpenAI CLIP mean/std.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .base import ModelReward
from .errors import BadRewardFile
from .heads import LinearStack, linear_stack_dims
from .preprocess import clip_pixels
from .protocol import check_images, prompt_list
from .text import BertTokenizer, bert_tokenizer
from .weights import load_into, meta_module, module_device_dtype, read_state_dict

__all__ = ["ImageRewardModel", "ImageReward", "ImageRewardArch", "load_imagereward", "convert_imagereward_keys"]

#: The official normalisation of ImageReward v1.0 (``ImageReward.py``: mean and std of the MLP output).
REWARD_MEAN = 0.16717362830052426
REWARD_STD = 1.0333394966054072

_VISION_RENAMES = (
    (r"^cls_token$", "embeddings.class_embedding"),
    (r"^pos_embed$", "embeddings.position_embedding"),
    (r"^patch_embed\.proj\.", "embeddings.patch_embedding."),
    (r"^norm\.", "post_layernorm."),
    (r"^blocks\.(\d+)\.norm1\.", r"encoder.layers.\1.layer_norm1."),
    (r"^blocks\.(\d+)\.norm2\.", r"encoder.layers.\1.layer_norm2."),
    (r"^blocks\.(\d+)\.attn\.qkv\.", r"encoder.layers.\1.self_attn.qkv."),
    (r"^blocks\.(\d+)\.attn\.proj\.", r"encoder.layers.\1.self_attn.projection."),
    (r"^blocks\.(\d+)\.mlp\.", r"encoder.layers.\1.mlp."),
)


@dataclass(frozen=True)
class ImageRewardArch:
    """BLIP sizes; the defaults are ImageReward v1.0's. Tests pass tiny ones."""

    vision_width: int = 1024
    vision_layers: int = 24
    vision_heads: int = 16
    vision_mlp: int = 4096
    image_size: int = 224
    patch_size: int = 16
    text_width: int = 768
    text_layers: int = 12
    text_heads: int = 12
    text_mlp: int = 3072
    vocab_size: int = 30524
    max_positions: int = 512


def convert_imagereward_keys(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official keys → ``vision.*`` (BlipVisionModel), ``text.*`` (BlipTextModel), ``mlp.*``; unused keys dropped."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        if key.startswith("blip.visual_encoder."):
            name = key[len("blip.visual_encoder.") :]
            for pattern, repl in _VISION_RENAMES:
                name, n = re.subn(pattern, repl, name)
                if n:
                    break
            out["vision." + name] = value
        elif key.startswith("blip.text_encoder."):
            name = key[len("blip.text_encoder.") :]
            if not name.endswith("position_ids"):
                out["text." + name] = value
        elif key.startswith("mlp."):
            out[key] = value
    return out


class ImageRewardModel(nn.Module):
    """BLIP ViT + BLIP text encoder with cross-attention + MLP head, as one module (for model management)."""

    def __init__(self, arch: ImageRewardArch, head_dims: tuple[int, ...] = (768, 1024, 128, 64, 16, 1)) -> None:
        super().__init__()
        from transformers import BlipTextConfig, BlipTextModel, BlipVisionConfig, BlipVisionModel

        vision = BlipVisionConfig(
            hidden_size=arch.vision_width,
            intermediate_size=arch.vision_mlp,
            num_hidden_layers=arch.vision_layers,
            num_attention_heads=arch.vision_heads,
            image_size=arch.image_size,
            patch_size=arch.patch_size,
            layer_norm_eps=1e-6,
            hidden_act="gelu",
        )
        text = BlipTextConfig(
            vocab_size=arch.vocab_size,
            hidden_size=arch.text_width,
            encoder_hidden_size=arch.vision_width,
            intermediate_size=arch.text_mlp,
            num_hidden_layers=arch.text_layers,
            num_attention_heads=arch.text_heads,
            max_position_embeddings=arch.max_positions,
            layer_norm_eps=1e-12,
            hidden_act="gelu",
            is_decoder=True,  # builds the cross-attention layers; the forward runs bidirectionally
        )
        self.arch = arch
        self.vision = BlipVisionModel(vision)
        self.text = BlipTextModel(text, add_pooling_layer=False)
        self.mlp = LinearStack(head_dims)

    def forward(self, pixels: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Raw MLP output ``[B]`` (before the official normalisation)."""
        image_embeds = self.vision(pixel_values=pixels)[0]
        image_atts = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=image_embeds.device)
        hidden = self.text(
            input_ids=input_ids,
            attention_mask=attention_mask,
            encoder_hidden_states=image_embeds,
            encoder_attention_mask=image_atts,
            is_decoder=False,
        )[0]
        head_dtype = self.mlp.layers[0].weight.dtype  # fp32 when loaded by load_imagereward
        return self.mlp(hidden[:, 0, :].to(head_dtype)).float().squeeze(-1)


def _arch_from_state(sd: dict[str, torch.Tensor]) -> ImageRewardArch:
    """Sizes read from the official tensors; head counts from BLIP's 64-wide heads."""
    pos = sd["blip.visual_encoder.pos_embed"].shape[1]
    patch = sd["blip.visual_encoder.patch_embed.proj.weight"].shape[-1]
    v_width = sd["blip.visual_encoder.cls_token"].shape[-1]
    t_width = sd["blip.text_encoder.embeddings.word_embeddings.weight"].shape[1]

    def count(prefix: str) -> int:
        pat = re.compile(re.escape(prefix) + r"(\d+)\.")
        return 1 + max((int(m.group(1)) for k in sd if (m := pat.match(k))), default=-1)

    return ImageRewardArch(
        vision_width=v_width,
        vision_layers=count("blip.visual_encoder.blocks."),
        vision_heads=max(1, v_width // 64),
        vision_mlp=sd["blip.visual_encoder.blocks.0.mlp.fc1.weight"].shape[0],
        image_size=math.isqrt(pos - 1) * patch,
        patch_size=patch,
        text_width=t_width,
        text_layers=count("blip.text_encoder.encoder.layer."),
        text_heads=max(1, t_width // 64),
        text_mlp=sd["blip.text_encoder.encoder.layer.0.intermediate.dense.weight"].shape[0],
        vocab_size=sd["blip.text_encoder.embeddings.word_embeddings.weight"].shape[0],
        max_positions=sd["blip.text_encoder.embeddings.position_embeddings.weight"].shape[0],
    )


_REQUIRED = (
    "blip.visual_encoder.pos_embed",
    "blip.visual_encoder.cls_token",
    "blip.text_encoder.embeddings.word_embeddings.weight",
)


def load_imagereward(
    path: str, *, dtype: torch.dtype = torch.float32, arch: ImageRewardArch | None = None, expected: str = ""
) -> ImageRewardModel:
    """Build ImageReward on the meta device and load ``ImageReward.pt`` (or a .safetensors copy) into it.

    ``arch`` defaults to sizes read from the file (ImageReward v1.0's for the official one). The MLP head stays fp32.
    """
    sd = read_state_dict(path)
    who = f"ImageReward ({path})"
    missing = [k for k in _REQUIRED if k not in sd]
    if missing:
        raise BadRewardFile(f"{who}: not an ImageReward checkpoint (no {', '.join(missing)}). {expected}")
    arch = arch or _arch_from_state(sd)
    head = linear_stack_dims(sd, "mlp.", who, expected)
    model = meta_module(lambda: ImageRewardModel(arch, head))
    return load_into(
        model,
        convert_imagereward_keys(sd),
        who=who,
        expected=expected,
        dtype=dtype,
        keep_fp32=lambda k: k.startswith("mlp."),
    )


class ImageReward(ModelReward):
    """ImageReward v1.0 as a reward: higher means more preferred by humans for the prompt (≈ −2…2)."""

    name = "imagereward"

    def __init__(
        self, model: ImageRewardModel, prompt: str | None = None, tokenizer: BertTokenizer | None = None
    ) -> None:
        self.model = model
        self.prompt = prompt
        self.tokenizer = tokenizer or bert_tokenizer()

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        check_images(images, accepts_video=False, who=self.name)
        prompts = prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])
        if images.shape[0] == 0:
            return torch.zeros(0)
        device, dtype = module_device_dtype(self.model.vision)
        pixels = clip_pixels(images.to(device), self.model.arch.image_size).to(dtype)
        ids, mask = self.tokenizer(prompts)
        raw = self.model(pixels, ids.to(device), mask.to(device))
        return (raw.float() - REWARD_MEAN) / REWARD_STD
