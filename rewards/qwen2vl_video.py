"""Qwen2-VL video inputs from a ComfyUI video tensor, in pure torch (as VideoAlign feeds VideoReward).

VideoAlign (github.com/KwaiVGI/VideoAlign, ``vision_process.py`` after qwen-vl-utils) reads a video file, keeps
``nframes`` frames sampled uniformly at ``fps`` (2 by default: ``T/source_fps·fps`` rounded to an even count, at
least 4, at most T), resizes them with ``smart_resize`` (sides multiples of 28, at most ``max_pixels`` per frame,
at least 128·28·28) bicubic with antialias, and lets ``Qwen2VLImageProcessor`` rescale, normalise with the OpenAI
CLIP mean/std and cut 2×14×14 patches ordered by 2×2 merge windows. Here the same happens on ``[T,H,W,3]`` tensors.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD, normalize

__all__ = [
    "VIDEO_MIN_PIXELS",
    "smart_resize",
    "sample_count",
    "video_patches",
    "patchify",
    "PATCH",
    "TEMPORAL_PATCH",
    "MERGE",
    "FACTOR",
]

PATCH = 14
TEMPORAL_PATCH = 2
MERGE = 2
FACTOR = PATCH * MERGE  # 28
VIDEO_MIN_PIXELS = 128 * 28 * 28
FRAME_FACTOR = 2
MIN_FRAMES = 4
MAX_FRAMES = 768


def smart_resize(
    height: int, width: int, min_pixels: int = VIDEO_MIN_PIXELS, max_pixels: int = 768 * 28 * 28
) -> tuple[int, int]:
    """Sides that are multiples of 28, with about the same aspect ratio and ``min_pixels ≤ h·w ≤ max_pixels``."""
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"Qwen2-VL: aspect ratio {width}×{height} is beyond 200:1 (the model's limit)")
    h = max(FACTOR, round(height / FACTOR) * FACTOR)
    w = max(FACTOR, round(width / FACTOR) * FACTOR)
    if h * w > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h = max(FACTOR, math.floor(height / beta / FACTOR) * FACTOR)
        w = max(FACTOR, math.floor(width / beta / FACTOR) * FACTOR)
    elif h * w < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h = math.ceil(height * beta / FACTOR) * FACTOR
        w = math.ceil(width * beta / FACTOR) * FACTOR
    return h, w


def sample_count(total: int, source_fps: float, fps: float | None, num_frames: int | None) -> int:
    """How many frames VideoAlign keeps: ``num_frames`` (rounded to even), or ``total/source_fps·fps`` clamped."""
    if num_frames:
        n = round(num_frames / FRAME_FACTOR) * FRAME_FACTOR
    else:
        low = math.ceil(MIN_FRAMES / FRAME_FACTOR) * FRAME_FACTOR
        high = math.floor(min(MAX_FRAMES, total) / FRAME_FACTOR) * FRAME_FACTOR
        n = round(min(max(total / source_fps * (fps or 2.0), low), high) / FRAME_FACTOR) * FRAME_FACTOR
    return max(1, min(n, total))


def video_patches(
    video: torch.Tensor,
    *,
    source_fps: float,
    fps: float | None,
    num_frames: int | None,
    max_pixels: int,
    min_pixels: int = VIDEO_MIN_PIXELS,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One video ``[T,H,W,3]`` 0..1 → (``pixel_values_videos [N, 3·2·14·14]`` float32, ``grid_thw`` LongTensor[3])."""
    total = video.shape[0]
    n = sample_count(total, source_fps, fps, num_frames)
    idx = torch.linspace(0, total - 1, n).round().long().to(video.device)
    frames = video.index_select(0, idx).permute(0, 3, 1, 2).float()
    h, w = smart_resize(frames.shape[-2], frames.shape[-1], min_pixels=min_pixels, max_pixels=max_pixels)
    if (h, w) != tuple(frames.shape[-2:]):
        frames = F.interpolate(frames, size=(h, w), mode="bicubic", align_corners=False, antialias=True)
    return patchify(normalize(frames.clamp(0, 1), OPENAI_CLIP_MEAN, OPENAI_CLIP_STD))


def patchify(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised frames ``[T,3,h,w]`` (sides multiples of 28) → (``[N, 3·2·14·14]`` patches, ``grid_thw``).

    The last frame is repeated up to a multiple of the temporal patch (an image is one frame shown twice), and the
    patches are ordered by 2×2 merge windows, as ``Qwen2VLImageProcessor`` / ``Qwen2VLVideoProcessor`` order them.
    """
    h, w = frames.shape[-2:]
    if frames.shape[0] % TEMPORAL_PATCH:
        frames = torch.cat([frames, frames[-1:].expand(TEMPORAL_PATCH - frames.shape[0] % TEMPORAL_PATCH, -1, -1, -1)])
    gt, gh, gw = frames.shape[0] // TEMPORAL_PATCH, h // PATCH, w // PATCH
    x = frames.reshape(gt, TEMPORAL_PATCH, 3, gh // MERGE, MERGE, PATCH, gw // MERGE, MERGE, PATCH)
    x = x.permute(0, 3, 6, 4, 7, 2, 1, 5, 8)
    patches = x.reshape(gt * gh * gw, 3 * TEMPORAL_PATCH * PATCH * PATCH)
    return patches, torch.tensor([gt, gh, gw], dtype=torch.long)
