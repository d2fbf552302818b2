"""The demo's data: scikit-learn's bundled 8×8 handwritten digits (UCI), rendered as 32×32 RGB images.

Torch and scikit-learn only (no ComfyUI). Images are white ink on black, replicated to three channels, float 0..1,
channels last like a ComfyUI IMAGE. The split is stratified and seeded, so the held-out digits never reach training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["IMAGE_SIZE", "DigitSplit", "augment_render", "load_digit_split", "render"]

#: Side of the rendered images (and of the demo model's decoded images).
IMAGE_SIZE = 32


@dataclass(frozen=True)
class DigitSplit:
    """Stratified train/test split of the 1,797 digits: ``[N,8,8]`` ink in 0..1 and labels ``[N]``."""

    train_digits: torch.Tensor
    train_labels: torch.Tensor
    test_digits: torch.Tensor
    test_labels: torch.Tensor


def load_digit_split(seed: int = 0, test_fraction: float = 0.2) -> DigitSplit:
    """Load ``sklearn.datasets.load_digits`` (bundled with scikit-learn, no download) and split it per class.

    Every class keeps ``round(test_fraction·n_class)`` samples for testing, chosen with a generator seeded by ``seed``.
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError as e:  # pragma: no cover - dev dependency
        raise ImportError("the demo data needs scikit-learn (pip install 'scikit-learn>=1.3')") from e
    data = load_digits()
    digits = torch.from_numpy(data.images).float() / 16.0
    labels = torch.from_numpy(data.target).long()
    gen = torch.Generator().manual_seed(seed)
    test_mask = torch.zeros(len(labels), dtype=torch.bool)
    for c in range(10):
        idx = torch.nonzero(labels == c).flatten()
        n_test = round(test_fraction * len(idx))
        test_mask[idx[torch.randperm(len(idx), generator=gen)[:n_test]]] = True
    return DigitSplit(digits[~test_mask], labels[~test_mask], digits[test_mask], labels[test_mask])


def _to_image(ink: torch.Tensor) -> torch.Tensor:
    """``[N,1,S,S]`` ink → ``[N,S,S,3]`` white-on-black RGB in 0..1."""
    return ink.clamp(0, 1).squeeze(1)[..., None].expand(-1, -1, -1, 3).contiguous()


def render(digits: torch.Tensor, size: int = IMAGE_SIZE) -> torch.Tensor:
    """Upsample ``[N,8,8]`` ink to ``[N,size,size,3]`` images (bicubic, no augmentation)."""
    return augment_render(digits, None, size=size)


def augment_render(
    digits: torch.Tensor,
    generator: torch.Generator | None,
    *,
    size: int = IMAGE_SIZE,
    max_rotate_deg: float = 10.0,
    scale_range: tuple[float, float] = (0.9, 1.1),
    max_shift_px: float = 2.0,
) -> torch.Tensor:
    """Render ``[N,8,8]`` ink as ``[N,size,size,3]`` images with a random small affine warp per digit.

    Rotation up to ±``max_rotate_deg``, isotropic scale in ``scale_range`` and a shift of up to ±``max_shift_px``
    output pixels, all drawn from ``generator``; ``generator=None`` renders without augmentation.
    """
    n = digits.shape[0]
    src = digits.float()[:, None]
    if generator is None:
        angle = torch.zeros(n)
        scale = torch.ones(n)
        shift = torch.zeros(n, 2)
    else:
        u = torch.rand(n, 4, generator=generator)
        angle = (u[:, 0] * 2 - 1) * math.radians(max_rotate_deg)
        scale = scale_range[0] + u[:, 1] * (scale_range[1] - scale_range[0])
        shift = (u[:, 2:] * 2 - 1) * (2.0 * max_shift_px / size)  # in normalised [-1, 1] coordinates
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], dim=1), torch.stack([sin, cos, shift[:, 1]], dim=1)], dim=1
    )
    grid = F.affine_grid(theta, [n, 1, size, size], align_corners=False)
    ink = F.grid_sample(src, grid, mode="bicubic", padding_mode="zeros", align_corners=False)
    return _to_image(ink)
