"""ImageReward on transformers' BLIP against an independent forward of the published architecture (official keys)."""

from __future__ import annotations

import pytest
import torch
from support import blip_reference
from support import reward_fixtures as rf

from rewards import load_reward
from rewards.imagereward import ImageRewardArch, convert_imagereward_keys
from rewards.preprocess import clip_pixels
from rewards.text import bert_tokenizer

ARCH = ImageRewardArch(**rf.TINY_IMAGEREWARD_ARCH)
PROMPTS = ["a cat on a sofa", "an astronaut riding a horse, highly detailed, 4k", "x"]


def _write(tmp_path, sd, name="ImageReward.pt"):
    path = tmp_path / "imagereward" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    if name.endswith(".safetensors"):
        from safetensors.torch import save_file

        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    else:
        torch.save(sd, path)
    return path


def _reference(sd, images, prompts):
    ids, mask = bert_tokenizer()(prompts)
    return blip_reference.imagereward(
        sd, clip_pixels(images, ARCH.image_size), ids, mask, ARCH.vision_heads, ARCH.text_heads
    )


@pytest.mark.parametrize("name,fp16", [("ImageReward.pt", False), ("ImageReward.safetensors", True)])
def test_matches_published_architecture(name, fp16, tmp_path, gen):
    sd = rf.imagereward_state(gen)
    if fp16:
        sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
    _write(tmp_path, sd, name)
    reward = load_reward("imagereward", roots=[tmp_path], arch=ARCH)
    images = rf.images(gen, b=3, h=48, w=40)
    ours = reward.score(images, PROMPTS)
    ref = _reference(sd, images, PROMPTS)
    assert ours.std() > 0.1, "widened head: scores must spread (docs/rewards.md §2)"
    assert torch.allclose(ours, ref, atol=1e-4, rtol=1e-5), (ours, ref)


def test_prompt_truncated_at_35_tokens(tmp_path, gen):
    _write(tmp_path, rf.imagereward_state(gen))
    reward = load_reward("imagereward", roots=[tmp_path], arch=ARCH)
    images = rf.images(gen, b=1)
    words = " ".join(f"word{i}" for i in range(60))
    ids, _ = bert_tokenizer()([words])
    assert ids.shape == (1, 35) and ids[0, -1] == 102
    longer = words + " and many more words that the reward never sees"
    assert torch.equal(reward.score(images, [words]), reward.score(images, [longer]))


def test_arch_read_from_file(tmp_path, gen):
    """Without ``arch`` the sizes come from the tensors (heads assume BLIP's 64-wide heads)."""
    cfg = dict(rf.TINY_BLIP, v_heads=1, t_heads=1)
    sd = rf.imagereward_state(gen, cfg)
    _write(tmp_path, sd)
    reward = load_reward("imagereward", roots=[tmp_path])
    assert reward.model.arch.vision_layers == 2 and reward.model.arch.image_size == 32
    images = rf.images(gen)
    ref = blip_reference.imagereward(sd, clip_pixels(images, 32), *bert_tokenizer()(PROMPTS), 1, 1)
    assert torch.allclose(reward.score(images, PROMPTS), ref, atol=1e-4)


def test_key_mapping_covers_every_weight(gen):
    sd = rf.imagereward_state(gen)
    converted = convert_imagereward_keys(sd)
    dropped = set(sd) - {k for k in sd if k.startswith(("blip.visual_encoder.", "blip.text_encoder.", "mlp."))}
    assert dropped == {
        "blip.vision_proj.weight",
        "blip.vision_proj.bias",
        "blip.text_proj.weight",
        "blip.text_proj.bias",
    }
    assert not any("position_ids" in k for k in converted)
    assert "vision.encoder.layers.1.self_attn.qkv.weight" in converted and "vision.post_layernorm.weight" in converted


def test_head_stays_fp32_in_bf16(tmp_path, gen):
    _write(tmp_path, rf.imagereward_state(gen))
    reward = load_reward("imagereward", roots=[tmp_path], arch=ARCH, dtype="bf16")
    assert reward.dtype == torch.bfloat16 and reward.model.mlp.layers[0].weight.dtype == torch.float32


FULL_BLIP = dict(
    v_width=1024,
    v_layers=24,
    v_heads=16,
    v_mlp=4096,
    image=224,
    patch=16,
    t_width=768,
    t_layers=12,
    t_heads=12,
    t_mlp=3072,
    vocab=30524,
    positions=512,
    head=(768, 1024, 128, 64, 16, 1),
)


def test_full_size_layout_maps_onto_blip():
    """The published ImageReward.pt layout (shapes only, meta) gives ImageReward v1.0's sizes and maps key for key."""
    from rewards.imagereward import ImageRewardModel, _arch_from_state
    from rewards.weights import meta_module

    sd = rf.imagereward_state(None, FULL_BLIP)
    assert _arch_from_state(sd) == ImageRewardArch()
    want = meta_module(lambda: ImageRewardModel(ImageRewardArch())).state_dict()
    got = convert_imagereward_keys(sd)
    assert sorted(got) == sorted(want) and all(got[k].shape == want[k].shape for k in want)
    assert sum(v.numel() for v in want.values()) / 1e6 > 440  # ≈ 446 M parameters (docs/rewards.md §4)
