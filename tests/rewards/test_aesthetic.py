"""LAION aesthetic: the real published head (shared/data) loads through the loader; CLIP forward shared."""

from __future__ import annotations

import hashlib

import pytest
import torch
import torch.nn.functional as F
from support import reward_fixtures as rf
from support.paths import SHARED_DATA

from rewards import CombinedReward, load_reward
from rewards.heads import LinearStack
from rewards.preprocess import clip_pixels
from rewards.weights import read_state_dict

HEAD = SHARED_DATA / "sac+logos+ava1-l14-linearMSE.pth"
SHA256 = "21dd590f3ccdc646f0d53120778b296013b096a035a2718c9cb0d511bff0f1e0"


@pytest.fixture
def real_head():
    if not HEAD.is_file():
        pytest.skip(f"the real LAION aesthetic head is not at {HEAD} (shared/data beside the checkout)")
    return HEAD


def test_real_head_file_format(real_head):
    assert hashlib.sha256(real_head.read_bytes()).hexdigest() == SHA256
    sd = read_state_dict(real_head)  # torch.load(weights_only=True) inside
    assert {k: tuple(v.shape) for k, v in sd.items()} == {
        "layers.0.weight": (1024, 768),
        "layers.0.bias": (1024,),
        "layers.2.weight": (128, 1024),
        "layers.2.bias": (128,),
        "layers.4.weight": (64, 128),
        "layers.4.bias": (64,),
        "layers.6.weight": (16, 64),
        "layers.6.bias": (16,),
        "layers.7.weight": (1, 16),
        "layers.7.bias": (1,),
    }
    assert all(v.dtype == torch.float32 for v in sd.values())


def test_real_head_through_the_loader(real_head, tmp_path, gen):
    """The official head on a tiny CLIP whose embedding is 768-d, like ViT-L/14's."""
    (tmp_path / "aesthetic").mkdir()
    (tmp_path / "aesthetic" / real_head.name).write_bytes(real_head.read_bytes())
    rf.save_openclip(
        rf.tiny_openclip(gen, quick_gelu=True, embed=768), tmp_path / "clipscore" / "ViT-L-14.safetensors", fp16=False
    )
    reward = load_reward("aesthetic", roots=[tmp_path], heads=rf.TINY_HEADS)
    images = rf.images(gen, b=4)
    scores = reward.score(images, "ignored")
    with torch.no_grad():
        pooled = reward.model.vision_model(pixel_values=clip_pixels(images, 32)).pooler_output
        emb = F.normalize(reward.model.visual_projection(pooled), dim=-1)
    head = LinearStack()
    head.load_state_dict(torch.load(real_head, map_location="cpu", weights_only=True))  # saved from CUDA
    with torch.no_grad():
        assert torch.allclose(scores, head(emb).squeeze(-1), atol=1e-5)
    assert scores.std() > 0 and (scores.abs() < 100).all()


def test_head_needs_matching_embedding(real_head, tmp_path, gen):
    (tmp_path / "aesthetic").mkdir()
    (tmp_path / "aesthetic" / real_head.name).write_bytes(real_head.read_bytes())
    rf.save_openclip(
        rf.tiny_openclip(gen, quick_gelu=True, embed=32), tmp_path / "clipscore" / "ViT-L-14.safetensors", fp16=False
    )
    with pytest.raises(ValueError, match="768-d embeddings"):
        load_reward("aesthetic", roots=[tmp_path], heads=rf.TINY_HEADS)


def test_combined_with_clipscore_shares_the_image_forward(tiny_reward, gen):
    """CLIPScore + aesthetic on the same CLIP model: one vision forward per combined call (feature scope)."""
    clip = tiny_reward("clipscore", prompt="a cat")
    aesthetic = tiny_reward("aesthetic")
    assert clip.model is aesthetic.model
    calls = []
    hook = clip.model.vision_model.register_forward_hook(lambda *a: calls.append(1))
    try:
        combo = CombinedReward([clip, aesthetic], [1.0, 0.5], "raw")
        images = rf.images(gen, b=3)
        out = combo.score(images)
        assert len(calls) == 1
        expected = (clip.score(images) + 0.5 * aesthetic.score(images)) / 1.5
        assert torch.allclose(out, expected, atol=1e-5)
        assert len(calls) == 3, "outside a combined call nothing is cached"
    finally:
        hook.remove()
    assert len(combo.modules()) == 2  # the shared CLIP model once, plus the head
