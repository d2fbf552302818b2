"""VideoReward (VideoAlign) from its release layout under transformers 5: LoRA merge, key mapping, inputs, scores."""

from __future__ import annotations

import pytest
import torch
from support import reward_fixtures as rf
from support import videoreward_fixtures as vf

from rewards.qwen2vl_video import sample_count, smart_resize, video_patches

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:  # pragma: no cover
    pytest.skip("VideoReward needs transformers >= 5", allow_module_level=True)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("videoreward")
    return root, vf.build(root, torch.Generator().manual_seed(3))


def test_matches_merged_reference(release, gen):
    """Loader (4.45 keys → 5.x, LoRA merged, bf16 vision weights) equals a model merged by hand."""
    from rewards import load_reward

    root, parts = release
    reward = load_reward("videoreward", roots=[root], min_pixels=56 * 56)
    videos = rf.images(gen, b=2, h=40, w=64, t=9)
    prompts = ["a cat jumps", "a dog runs on the beach"]
    out = reward.rewards(videos, prompts)
    model, head = vf.reference(parts)
    batch = reward.inputs(videos, prompts)
    with torch.no_grad():
        hidden = model(**batch, use_cache=False).last_hidden_state
    mask = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    for token in reward.reward_ids:
        mask |= batch["input_ids"] == token
    raw = head(hidden[mask]).view(2, 3, 3).diagonal(dim1=1, dim2=2)
    for i, dim in enumerate(("VQ", "MQ", "TA")):
        expected = (raw[:, i] - vf.NORM[f"{dim}_mean"]) / vf.NORM[f"{dim}_std"]
        assert torch.allclose(out[dim], expected, atol=1e-4), dim
    assert torch.allclose(out["overall"], out["VQ"] + out["MQ"] + out["TA"])
    assert torch.equal(reward.score(videos, prompts), out["overall"])


def test_inputs_layout(release, gen):
    from rewards import load_reward

    root, _ = release
    reward = load_reward("videoreward", roots=[root], min_pixels=56 * 56, source_fps=16)
    batch = reward.inputs(rf.images(gen, b=2, h=40, w=64, t=33), ["a", "a much longer prompt about a cat"])
    grids = batch["video_grid_thw"]
    # 33 frames at 16 fps → 4 frames at 2 fps; 40×64 scaled up to min_pixels (ceil) → 56×84, as qwen-vl-utils does
    assert grids.tolist() == [[2, 4, 6], [2, 4, 6]]
    video_tokens = (batch["input_ids"] == reward.video_id).sum(dim=1)
    assert video_tokens.tolist() == [12, 12]  # t·h·w / merge²
    assert torch.equal(batch["mm_token_type_ids"] == 2, batch["input_ids"] == reward.video_id)
    lengths = batch["attention_mask"].sum(dim=1)
    assert lengths[0] < lengths[1] and (batch["input_ids"][0, lengths[0] :] == reward.pad_id).all()  # right padding
    for token in reward.reward_ids:
        assert ((batch["input_ids"] == token).sum(dim=1) == 1).all()


def test_patches_match_transformers_processor(gen):
    """Patch order and normalisation equal Qwen2-VL's own video processor on the same (already resized) frames."""
    from transformers.models.qwen2_vl.video_processing_qwen2_vl import Qwen2VLVideoProcessor

    frames = rf.images(gen, b=1, h=56, w=84, t=4)[0]
    ours, grid = video_patches(frames, source_fps=2.0, fps=2.0, num_frames=None, max_pixels=56 * 84, min_pixels=28 * 28)
    proc = Qwen2VLVideoProcessor(min_pixels=28 * 28, max_pixels=56 * 84, do_sample_frames=False)
    video = (frames * 255).round().to(torch.uint8).permute(0, 3, 1, 2)
    ref = proc(videos=[video], return_tensors="pt", do_rescale=True)
    assert grid.tolist() == ref["video_grid_thw"][0].tolist() == [2, 4, 6]
    ours_q, _ = video_patches(
        (frames * 255).round() / 255, source_fps=2.0, fps=2.0, num_frames=None, max_pixels=56 * 84, min_pixels=28 * 28
    )
    assert torch.allclose(ours_q, ref["pixel_values_videos"], atol=1e-5)
    assert ours.shape == ours_q.shape


def test_frame_count_and_resize_rules():
    assert sample_count(81, 16.0, 2.0, None) == 10  # 5 s of Wan video at 2 fps
    assert sample_count(9, 16.0, 2.0, None) == 4  # at least 4
    assert sample_count(3, 16.0, 2.0, None) == 2  # the even count ≤ the frames there are
    assert sample_count(81, 16.0, 2.0, 7) == 8  # explicit count, rounded to even
    h, w = smart_resize(480, 832, max_pixels=200704)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 200704 and abs(w / h - 832 / 480) < 0.1


def test_requires_transformers_5(monkeypatch, release):
    import sys

    from rewards import videoreward

    monkeypatch.setattr(sys.modules["transformers"], "__version__", "4.46.0")
    with pytest.raises(ImportError, match="transformers >= 5"):
        videoreward.load_videoreward(release[1]["folder"], roots=[release[0]])


def test_missing_base_model(tmp_path):
    from rewards import MissingRewardFile, load_reward

    (tmp_path / "videoreward" / "VideoReward").mkdir(parents=True)
    (tmp_path / "videoreward" / "VideoReward" / "model_config.json").write_text('{"model_config": {}}')
    with pytest.raises(MissingRewardFile, match="Qwen2-VL-2B-Instruct"):
        load_reward("videoreward", roots=[tmp_path])


def test_missing_prompt_template_names_file_and_source(release, tmp_path):
    import shutil

    from rewards import MissingRewardFile, load_reward

    root, _ = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "videoreward" / "VideoReward" / "prompt_template.txt").unlink()
    with pytest.raises(MissingRewardFile, match=r"prompt_template\.txt[\s\S]*DETAILED_PROMPT_WITH_SPECIAL_TOKEN"):
        load_reward("videoreward", roots=[copy])
