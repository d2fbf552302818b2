"""Pure-torch preprocessing from IMAGE tensors against the official PIL pipelines (docs/rewards.md §3 tolerances)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from support import reward_fixtures as rf

from rewards.preprocess import center_crop, clip_pixels, resize_longest_pad, resize_shortest

SIZES = [(300, 200), (200, 333), (256, 256), (64, 96), (517, 301)]


def _pil(image: torch.Tensor) -> Image.Image:
    return Image.fromarray((image.numpy() * 255).round().astype(np.uint8))


#: docs/rewards.md §3: max 0.015–0.044, mean ≈ 0.004 in normalised units; PIL's 8-bit output alone adds ≈ 0.0036 mean.
MAX_DIFF, MEAN_DIFF = 0.05, 0.006


@pytest.mark.parametrize("h,w", SIZES)
def test_center_crop_matches_open_clip(h, w, gen):
    from open_clip.transform import image_transform

    image = rf.natural_image(gen, h, w)
    ref = image_transform(224, is_train=False)(_pil(image))
    ours = clip_pixels(image[None], 224, "crop")[0]
    diff = (ours - ref).abs()
    assert ours.shape == ref.shape == (3, 224, 224)
    assert diff.max() < MAX_DIFF and diff.mean() < MEAN_DIFF, (diff.max(), diff.mean())


@pytest.mark.parametrize("h,w", SIZES)
def test_longest_pad_matches_open_clip(h, w, gen):
    """HPSv2's transform: longest side to 224 and zero padding, not a crop."""
    from open_clip.transform import image_transform

    image = rf.natural_image(gen, h, w)
    ref = image_transform(224, is_train=False, resize_mode="longest", fill_color=0)(_pil(image))
    ours = clip_pixels(image[None], 224, "pad")[0]
    diff = (ours - ref).abs()
    assert ours.shape == ref.shape == (3, 224, 224)
    assert diff.max() < MAX_DIFF and diff.mean() < MEAN_DIFF, (diff.max(), diff.mean())


def test_shortest_side_rule_and_crop_offsets():
    x = torch.zeros(1, 3, 300, 200)
    assert resize_shortest(x, 224).shape[-2:] == (int(224 * 300 / 200), 224)
    y = torch.arange(10 * 7, dtype=torch.float32).view(1, 1, 10, 7)
    assert center_crop(y, 4)[0, 0, 0, 0] == y[0, 0, 3, 2]  # offsets round((10-4)/2)=3, round((7-4)/2)=2 (banker's)


def test_pad_geometry_and_fill():
    x = torch.ones(1, 3, 100, 50)
    out = resize_longest_pad(x, 224)
    assert out.shape[-2:] == (224, 224)
    assert out[..., :, :50].abs().sum() == 0 and out[..., :, -50:].abs().sum() == 0  # 112 wide, centred
    assert out[..., :, 56:168].min() > 0.99


def test_orientation_is_kept(gen):
    """A bright top-left corner stays top-left (no transposes): IMAGE [B,H,W,3] → [B,3,H,W]."""
    image = torch.zeros(1, 448, 224, 3)
    image[:, :100, :50, 0] = 1.0
    px = clip_pixels(image, 224, "pad")[0]
    red = px[0] > 0
    rows, cols = red.nonzero(as_tuple=True)
    assert rows.float().mean() < 60 and cols.float().mean() < 80  # top-left of the padded, centred image


def test_batch_and_dtype_invariance(gen):
    x = rf.images(gen, b=4, h=80, w=120)
    full = clip_pixels(x, 224)
    single = torch.cat([clip_pixels(x[i : i + 1], 224) for i in range(4)])
    assert torch.allclose(full, single, atol=1e-6)
    assert clip_pixels(x.to(torch.bfloat16), 224).dtype == torch.float32
