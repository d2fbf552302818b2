"""Aesthetic predictor v2.5 (SigLIP): transformers' SiglipVisionModel and SiglipImageProcessor as the reference, the
published head layout (full size on meta, and the real file when one is given), errors."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from support import reward_fixtures as rf
from support import siglip_fixtures as sf
from torch import nn

from rewards import BadRewardFile, MissingRewardFile, get_kind, load_reward

#: Where a copy of the published aesthetic_predictor_v2_5.pth may be (not shipped: AGPL-3.0 repository).
REAL_HEAD = os.environ.get("EVOSEARCH_AESTHETIC_V25_HEAD", "")


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("aesthetic_v25")
    return root, sf.build(root, torch.Generator().manual_seed(4))


def _official_head(sd: dict) -> nn.Module:
    """The published head: Linear 1152→1024, Dropout(0.5), …, Linear 16→1 (dropout 0.5/0.5/0.5/0.2), eval mode."""
    dims = [sd["scoring_head.0.weight"].shape[1]] + [sd[f"scoring_head.{i}.weight"].shape[0] for i in (0, 2, 4, 6, 8)]
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
        layers.append(nn.Linear(a, b))
        if i < 4:
            layers.append(nn.Dropout(0.5 if i < 3 else 0.2))
    head = nn.Sequential(*layers)
    head.load_state_dict({k.removeprefix("scoring_head."): v.float() for k, v in sd.items()})
    return head.eval()


def test_matches_transformers_reference(release, gen):
    """Same pixels → transformers' own SiglipVisionModel.from_pretrained + the published head on the normalised
    pooled embedding."""
    from transformers import SiglipVisionModel

    root, parts = release
    reward = load_reward("aesthetic_v25", roots=[root])
    images = rf.images(gen, b=3, h=40, w=64)
    ours = reward.score(images, "ignored")
    folder = parts["folder"] / "siglip-so400m-patch14-384"
    model = SiglipVisionModel.from_pretrained(folder, local_files_only=True, dtype=torch.float32).eval()
    with torch.no_grad():
        pooled = model(pixel_values=reward.pixels(images)).pooler_output
        ref = _official_head(parts["head"])(pooled / pooled.norm(dim=-1, keepdim=True)).squeeze(-1)
    assert torch.allclose(ours, ref, atol=1e-5), (ours, ref)
    assert ours.std() > 0.05


def test_pixels_close_to_siglip_processor(release, gen):
    """Both sides to 384 (here the tiny model's 56), bicubic, mean = std = 0.5, as SiglipImageProcessor does."""
    from transformers import SiglipImageProcessor

    root, parts = release
    reward = load_reward("aesthetic_v25", roots=[root])
    folder = parts["folder"] / "siglip-so400m-patch14-384"
    processor = SiglipImageProcessor.from_pretrained(folder, local_files_only=True)
    images = torch.stack([rf.natural_image(gen, 90, 130) for _ in range(2)])
    u8 = [(im * 255).round().to(torch.uint8).permute(2, 0, 1) for im in images]
    ref = processor(images=u8, return_tensors="pt")["pixel_values"]
    ours = reward.pixels(images)
    assert ours.shape == ref.shape == (2, 3, 56, 56)
    assert (ours - ref).abs().max() < 0.02 and (ours - ref).abs().mean() < 0.005


def test_prompt_is_ignored_and_head_is_fp32(release, gen):
    root, parts = release
    reward = load_reward("aesthetic_v25", roots=[root], dtype="bf16")
    images = rf.images(gen, b=2)
    assert torch.equal(reward.score(images, "a cat"), reward.score(images, "a dog"))
    head = reward.head.scoring_head[0].weight
    assert head.dtype == torch.float32 and torch.equal(head, parts["head"]["scoring_head.0.weight"].float())
    assert reward.dtype == torch.bfloat16 and not get_kind("aesthetic_v25").needs_prompt


def test_real_head_file_loads(tmp_path):
    """The published aesthetic_predictor_v2_5.pth (bf16 state dict), if EVOSEARCH_AESTHETIC_V25_HEAD names a copy."""
    if not REAL_HEAD or not Path(REAL_HEAD).is_file():
        pytest.skip("set EVOSEARCH_AESTHETIC_V25_HEAD to a copy of aesthetic_predictor_v2_5.pth to check the real head")
    from rewards.aesthetic_v25 import _load_head
    from rewards.weights import read_state_dict

    sd = read_state_dict(REAL_HEAD)  # torch.load(weights_only=True) inside
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in sf.full_head_layout().items()}
    head = _load_head(Path(REAL_HEAD))
    x = F.normalize(torch.randn(4, 1152, generator=torch.Generator().manual_seed(0)), dim=-1)
    with torch.no_grad():
        assert torch.allclose(head(x), _official_head(sd)(x), atol=1e-6)


# ------------------------------------------------------------------------------------------------ errors


def test_missing_files_name_expected_folder_and_source(release, tmp_path):
    with pytest.raises(MissingRewardFile) as info:
        load_reward("aesthetic_v25", roots=[tmp_path])
    message = str(info.value)
    assert "aesthetic_predictor_v2_5.pth" in message and str(tmp_path / "aesthetic_v25") in message
    assert "github.com/discus0434/aesthetic-predictor-v2-5" in message
    root, _ = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    shutil.rmtree(copy / "aesthetic_v25" / "siglip-so400m-patch14-384")
    with pytest.raises(MissingRewardFile, match=r"siglip-so400m-patch14-384/.*huggingface\.co/google"):
        load_reward("aesthetic_v25", roots=[copy])


def test_wrong_head_files(release, tmp_path, gen):
    root, _ = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "aesthetic_v25" / "aesthetic_predictor_v2_5.pth"
    torch.save(rf.aesthetic_head_state(gen), path)  # the LAION v2 head (layers.{0,2,4,6,7}) in the wrong folder
    with pytest.raises(BadRewardFile, match=r"scoring_head\.\{0,2,4,6,8\}.*layers\.0\.weight"):
        load_reward("aesthetic_v25", roots=[copy])
    torch.save(sf.head_state(gen, dims=(32, 16, 8, 4, 2, 1)), path)
    with pytest.raises(BadRewardFile, match="takes 32-d embeddings but the SigLIP model"):
        load_reward("aesthetic_v25", roots=[copy])


# ------------------------------------------------------------------------------------------------ full size


def test_full_size_layout_maps_key_for_key():
    """google/siglip-so400m-patch14-384's vision keys map onto SiglipVisionModel (meta), text keys are dropped, and
    the head file's layout gives 1152→1024→128→64→16→1."""
    import re

    from transformers import SiglipVisionConfig, SiglipVisionModel

    from rewards.aesthetic_v25 import _IGNORED, ScoringHead, _head_dims, siglip_vision_state
    from rewards.weights import meta_module

    config = SiglipVisionConfig(
        hidden_size=1152,
        intermediate_size=4304,
        num_hidden_layers=27,
        num_attention_heads=16,
        image_size=384,
        patch_size=14,
    )
    model = meta_module(lambda: SiglipVisionModel(config))
    want = model.state_dict()
    got = siglip_vision_state(sf.full_siglip_layout(), model)
    kept = {k: v for k, v in got.items() if not any(re.search(p, k) for p in _IGNORED)}
    assert len(kept) < len(got)  # the text tower and logit scale/bias are in the file and dropped
    assert sorted(kept) == sorted(want)
    assert all(tuple(kept[k].shape) == tuple(want[k].shape) for k in want)
    assert abs(sum(v.numel() for v in want.values()) / 1e6 - 428) < 3  # so400m's vision tower: ≈ 428 M
    dims = _head_dims(sf.full_head_layout(), "test")
    assert dims == (1152, 1024, 128, 64, 16, 1)
    head = meta_module(lambda: ScoringHead(dims)).state_dict()
    assert {k: tuple(v.shape) for k, v in head.items()} == {k: tuple(v.shape) for k, v in sf.full_head_layout().items()}
