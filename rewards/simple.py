"""Cheap built-in rewards that need no weights: useful for first runs, tests and sanity checks.

* :class:`Colorfulness`: the Hasler & Süsstrunk (2003) colourfulness metric M = σ_rgyb + 0.3·μ_rgyb on 0..255 RGB.
* :class:`ImageSimilarity`: similarity to a target image (negative mean squared error after resizing, or cosine).

Both score each image on its own (batch-invariant), accept videos (the mean over frames), and run on any device.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from .protocol import check_images

__all__ = ["Colorfulness", "ImageSimilarity"]


def _frames_last(images: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Flatten ``[B,T,H,W,3]`` to ``[B·T,H,W,3]``; returns the frames and T (1 for stills)."""
    if images.dim() == 5:
        b, t = images.shape[:2]
        return images.reshape(b * t, *images.shape[2:]), t
    return images, 1


class Colorfulness:
    """Hasler & Süsstrunk colourfulness (higher = more colourful); ≈0 for grey images, ≈100+ for saturated ones."""

    name = "colorfulness"
    accepts_video = True
    device = None
    dtype = None

    def __init__(self, prompt: str | None = None) -> None:
        self.prompt = prompt

    def modules(self) -> list[torch.nn.Module]:
        return []

    def score(self, images: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        check_images(images, accepts_video=True, who="Colorfulness")
        frames, t = _frames_last(images.float())
        rgb = frames.clamp(0, 1) * 255.0
        rg = rgb[..., 0] - rgb[..., 1]
        yb = 0.5 * (rgb[..., 0] + rgb[..., 1]) - rgb[..., 2]
        dims = (1, 2)
        std = torch.sqrt(rg.var(dim=dims, unbiased=False) + yb.var(dim=dims, unbiased=False))
        mean = torch.sqrt(rg.mean(dim=dims) ** 2 + yb.mean(dim=dims) ** 2)
        per_frame = std + 0.3 * mean
        return per_frame.reshape(-1, t).mean(dim=1)


class ImageSimilarity:
    """Similarity to a target image ``[1,H,W,3]`` (or ``[H,W,3]``), compared at the target's size.

    ``metric="mse"`` gives −MSE (0 is a perfect match); ``"cosine"`` the cosine of the mean-centred pixels.
    """

    name = "image_similarity"
    accepts_video = True
    device = None
    dtype = None

    def __init__(self, target: torch.Tensor, metric: str = "mse", prompt: str | None = None) -> None:
        if target.dim() == 3:
            target = target[None]
        check_images(target, accepts_video=False, who="ImageSimilarity target")
        if metric not in ("mse", "cosine"):
            raise ValueError(f"ImageSimilarity: metric must be 'mse' or 'cosine', got {metric!r}")
        self.target = target[:1].float().clamp(0, 1)
        self.metric = metric
        self.prompt = prompt

    def modules(self) -> list[torch.nn.Module]:
        return []

    def score(self, images: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        check_images(images, accepts_video=True, who="ImageSimilarity")
        frames, t = _frames_last(images.float())
        h, w = self.target.shape[1:3]
        x = frames.permute(0, 3, 1, 2)
        if x.shape[-2:] != (h, w):
            x = F.interpolate(x, size=(h, w), mode="bilinear", align_corners=False, antialias=True)
        target = self.target.to(x.device).permute(0, 3, 1, 2)
        if self.metric == "mse":
            per_frame = -((x.clamp(0, 1) - target) ** 2).flatten(1).mean(dim=1)
        else:
            a = x.flatten(1) - x.flatten(1).mean(dim=1, keepdim=True)
            b = (target.flatten(1) - target.flatten(1).mean(dim=1, keepdim=True)).expand_as(a)
            per_frame = F.cosine_similarity(a, b, dim=1, eps=1e-8)
        return per_frame.reshape(-1, t).mean(dim=1)
