"""Qwen2-VL / Qwen2.5-VL image inputs from ComfyUI IMAGE tensors, in pure torch (as qwen-vl-utils feeds the model).

The official image path (qwen-vl-utils ``fetch_image``, then ``Qwen2VLImageProcessor`` with ``do_resize=False``; used
by t2v_metrics' VQAScore and by HPSv3's inference) resizes each image with ``smart_resize`` (sides multiples of 28,
about the same aspect ratio, ``min_pixels ≤ h·w ≤ max_pixels``; for images 4·28·28 … 16384·28·28 unless the caller
says otherwise) with PIL's bicubic filter, rescales to 0..1, normalises with the processor's mean/std (OpenAI CLIP's
for every Qwen2-VL and Qwen2.5-VL checkpoint) and cuts 2×14×14 patches of the image shown twice, ordered by 2×2 merge
windows. Here the same happens on ``[H,W,3]`` tensors (bicubic with antialias, PIL's kernel, clamped to 0..1).
Each image becomes ``h·w / (28·28)`` tokens in the language model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize
from .qwen2vl_video import MERGE, patchify, smart_resize

__all__ = ["IMAGE_MIN_PIXELS", "IMAGE_MAX_PIXELS", "image_patches", "image_batch"]

#: qwen-vl-utils' defaults for images (``MIN_PIXELS`` / ``MAX_PIXELS``).
IMAGE_MIN_PIXELS = 4 * 28 * 28
IMAGE_MAX_PIXELS = 16384 * 28 * 28


def image_patches(
    image: torch.Tensor,
    *,
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
    mean: Sequence[float] = OPENAI_CLIP_MEAN,
    std: Sequence[float] = OPENAI_CLIP_STD,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One image ``[H,W,3]`` 0..1 → (``pixel_values [N, 3·2·14·14]`` float32, ``grid_thw`` LongTensor[3])."""
    x = image.permute(2, 0, 1)[None].float().clamp(0, 1)
    h, w = smart_resize(x.shape[-2], x.shape[-1], min_pixels=min_pixels, max_pixels=max_pixels)
    if (h, w) != tuple(x.shape[-2:]):
        x = F.interpolate(x, size=(h, w), mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)
    return patchify(normalize(x, tuple(mean), tuple(std)))


def image_batch(
    images: torch.Tensor,
    *,
    min_pixels: int = IMAGE_MIN_PIXELS,
    max_pixels: int = IMAGE_MAX_PIXELS,
    mean: Sequence[float] = OPENAI_CLIP_MEAN,
    std: Sequence[float] = OPENAI_CLIP_STD,
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """IMAGE ``[B,H,W,3]`` → (all patches concatenated, ``image_grid_thw [B,3]``, image tokens per image)."""
    parts = [image_patches(im, min_pixels=min_pixels, max_pixels=max_pixels, mean=mean, std=std) for im in images]
    grids = torch.stack([g for _, g in parts])
    tokens = [int(g.prod()) // (MERGE * MERGE) for g in grids]
    return torch.cat([p for p, _ in parts]), grids, tokens
