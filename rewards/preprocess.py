"""Image preprocessing for reward models straight from ComfyUI IMAGE tensors, in pure torch (docs/rewards.md §3).

ComfyUI images are ``[B, H, W, 3]`` float 0..1 (channels last). The official pipelines work on PIL images:

* CLIP / PickScore / ImageReward / LAION aesthetic: ``Resize(224, bicubic)`` on the shortest side (the long side
  becomes ``int(224·long/short)``, torchvision's rule), ``CenterCrop(224)`` (offsets ``int(round((n−224)/2))``),
  ``Normalize(OpenAI mean, std)``;
* HPSv2 (open_clip ``ResizeMaxSize``): the longest side to 224 (the other ``round(n·224/long)``), zero padding to
  224×224 centred (left/top get the smaller half), then the same normalisation;
* SigLIP (``SiglipImageProcessor``, the aesthetic predictor v2.5): both sides to the model's size (384 for
  so400m-patch14-384, the aspect ratio is not kept), bicubic, ``Normalize(0.5, 0.5)``.

Bicubic resizing uses ``antialias=True``, whose kernel is PIL's (a = −0.5), and is clamped to 0..1 as PIL's 8-bit
output is. Against open_clip's PIL pipeline this stays within 0.015–0.044 (max) and 0.004 (mean) in normalised units.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = [
    "OPENAI_CLIP_MEAN",
    "OPENAI_CLIP_STD",
    "to_nchw",
    "resize_shortest",
    "center_crop",
    "resize_longest_pad",
    "resize_square",
    "normalize",
    "clip_pixels",
]

#: OpenAI CLIP normalisation, used by every reward here (CLIP, HPS, PickScore, BLIP in ImageReward, Qwen2-VL).
OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def to_nchw(images: torch.Tensor) -> torch.Tensor:
    """``[B,H,W,3]`` (IMAGE layout) → ``[B,3,H,W]`` float32, clamped to 0..1."""
    if images.dim() != 4 or images.shape[-1] != 3:
        raise ValueError(f"expected images [B,H,W,3], got {tuple(images.shape)}")
    return images.permute(0, 3, 1, 2).float().clamp(0, 1)


def _bicubic(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    if tuple(x.shape[-2:]) == size:
        return x
    return F.interpolate(x, size=size, mode="bicubic", align_corners=False, antialias=True).clamp(0, 1)


def resize_shortest(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[B,3,H,W]`` so the shortest side is ``size`` (the long side ``int(size·long/short)``)."""
    h, w = x.shape[-2:]
    if h <= w:
        new = (size, int(size * w / h))
    else:
        new = (int(size * h / w), size)
    return _bicubic(x, new)


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """Centre crop ``[B,3,H,W]`` to ``size×size`` with torchvision's rounding of the offsets."""
    h, w = x.shape[-2:]
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def resize_longest_pad(x: torch.Tensor, size: int, fill: float = 0.0) -> torch.Tensor:
    """Resize so the longest side is ``size``, then pad with ``fill`` to ``size×size``, centred (HPSv2)."""
    h, w = x.shape[-2:]
    scale = size / max(h, w)
    new_h, new_w = round(h * scale), round(w * scale)
    x = _bicubic(x, (new_h, new_w))
    pad_h, pad_w = size - new_h, size - new_w
    return F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=fill)


def resize_square(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize ``[B,3,H,W]`` to ``size×size`` without keeping the aspect ratio (SigLIP's processor)."""
    return _bicubic(x, (size, size))


def normalize(
    x: torch.Tensor, mean: tuple[float, ...] = OPENAI_CLIP_MEAN, std: tuple[float, ...] = OPENAI_CLIP_STD
) -> torch.Tensor:
    """Per-channel ``(x − mean) / std`` on ``[B,3,H,W]``."""
    m = torch.tensor(mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
    return (x - m) / s


def clip_pixels(images: torch.Tensor, size: int = 224, mode: str = "crop") -> torch.Tensor:
    """IMAGE ``[B,H,W,3]`` → normalised ``[B,3,size,size]`` float32; ``mode``: ``"crop"`` (CLIP) or ``"pad"`` (HPS)."""
    x = to_nchw(images)
    if mode == "crop":
        x = center_crop(resize_shortest(x, size), size)
    elif mode == "pad":
        x = resize_longest_pad(x, size)
    else:
        raise ValueError(f"preprocessing mode must be 'crop' or 'pad', got {mode!r}")
    return normalize(x)
