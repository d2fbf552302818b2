"""HPSv3 from its release layout: the official recipe re-expressed with transformers as the reference, the fixed
pixel count, the reward token, the template file, key layouts (full size on meta) and errors."""

from __future__ import annotations

import shutil

import pytest
import torch
from support import qwen_vl_fixtures as qf
from support import reward_fixtures as rf
from support import vlm_reference

from rewards import BadRewardFile, MissingRewardFile, get_kind, load_reward

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:  # pragma: no cover
    pytest.skip("HPSv3 needs transformers >= 5", allow_module_level=True)

SMALL = 56 * 84  # a pixel budget that keeps the tiny tests fast (the official one is 256·28·28)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    root = tmp_path_factory.mktemp("hpsv3")
    return root, qf.build_hpsv3(root, torch.Generator().manual_seed(9))


def _quantised(gen, b, h, w):
    return (rf.images(gen, b=b, h=h, w=w) * 255).round() / 255


def test_matches_official_recipe(release, gen, tmp_path):
    """μ equals processor (+ <|Reward|>) → from_pretrained backbone → hidden at <|Reward|> → RankNet head, per image."""
    root, parts = release
    reward = load_reward("hpsv3", roots=[root], pixels=SMALL)
    images = _quantised(gen, 2, 56, 84)
    prompts = ["a cat on a sofa", "a red apple on a table in the snow"]
    ours = reward.rewards(images, prompts)
    ref = vlm_reference.hpsv3_reference(parts, images, prompts, tmp_path)
    assert torch.allclose(ours["mu"], ref, atol=1e-4), (ours["mu"], ref)
    assert torch.equal(reward.score(images, prompts), ours["mu"])
    assert (ours["mu"][0] - ours["mu"][1]).abs() > 1e-3 and ours["sigma"].shape == (2,)


@pytest.mark.parametrize("size", [(512, 512), (512, 768), (1024, 576), (40, 56)])
def test_every_image_gets_the_official_pixel_count(size, release, gen):
    """min_pixels = max_pixels = 256·28·28: 448×448 (256 tokens) for a square; the grid equals the processor's."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    root, _ = release
    reward = load_reward("hpsv3", roots=[root])
    image = rf.images(gen, b=1, h=size[0], w=size[1])
    grid = reward.inputs(image, ["x"])["image_grid_thw"][0]
    processor = Qwen2VLImageProcessor(min_pixels=200704, max_pixels=200704)
    u8 = (image[0] * 255).round().to(torch.uint8).permute(2, 0, 1)
    assert grid.tolist() == processor(images=[u8], return_tensors="pt")["image_grid_thw"][0].tolist()
    if size == (512, 512):
        assert grid.tolist() == [1, 32, 32]  # 448×448 → 256 merged tokens


def test_reward_token_and_template(release):
    root, parts = release
    reward = load_reward("hpsv3", roots=[root], pixels=SMALL)
    assert reward.reward_id == parts["tokenizer"].get_vocab_size()  # added after the base vocabulary
    ids = reward.inputs(rf.images(torch.Generator().manual_seed(0), b=1), ["a cat"])["input_ids"][0]
    assert int((ids == reward.reward_id).sum()) == 1
    text = parts["tokenizer"].decode(ids.tolist(), skip_special_tokens=False)
    assert "Textual prompt - a cat" in text and text.endswith("END\n<|im_end|>\n<|im_start|>assistant\n")


def test_text_after_the_reward_token_does_not_matter(release, gen, tmp_path):
    root, _ = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    images = rf.images(gen, b=2)
    before = load_reward("hpsv3", roots=[copy], pixels=SMALL).score(images, "a dog")
    template = copy / "hpsv3" / "prompt_template.txt"
    template.write_text(template.read_text().replace("END\n", "END, and more text\n"))
    assert torch.allclose(load_reward("hpsv3", roots=[copy], pixels=SMALL).score(images, "a dog"), before, atol=1e-5)


def test_newer_key_layout_loads_the_same(release, gen, tmp_path):
    """A checkpoint saved by transformers >= 4.52 (model.language_model.*, model.visual.*) gives the same scores."""
    from safetensors.torch import save_file

    root, parts = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    renamed = {}
    for key, value in parts["state"].items():
        if key.startswith("model."):
            key = "model.language_model." + key[len("model.") :]
        elif key.startswith("visual."):
            key = "model." + key
        renamed[key] = value
    save_file(renamed, str(copy / "hpsv3" / "HPSv3.safetensors"))
    images = rf.images(gen, b=2)
    a = load_reward("hpsv3", roots=[root], pixels=SMALL).score(images, "a cat")
    b = load_reward("hpsv3", roots=[copy], pixels=SMALL).score(images, "a cat")
    assert torch.allclose(a, b, atol=1e-6)


def test_head_stays_fp32_in_bf16(release):
    root, _ = release
    reward = load_reward("hpsv3", roots=[root], pixels=SMALL, dtype="bf16")
    assert reward.dtype == torch.bfloat16 and reward.model.rm_head[0].weight.dtype == torch.float32


# ------------------------------------------------------------------------------------------------ errors


def test_missing_checkpoint_names_file_folder_and_source(tmp_path):
    with pytest.raises(MissingRewardFile) as info:
        load_reward("hpsv3", roots=[tmp_path])
    message = str(info.value)
    assert "HPSv3.safetensors" in message and str(tmp_path / "hpsv3") in message
    assert "huggingface.co/MizzenAI/HPSv3" in message and get_kind("hpsv3").files == ("HPSv3.safetensors",)


def test_missing_base_folder_and_template(release, tmp_path):
    root, _ = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    (copy / "hpsv3" / "prompt_template.txt").unlink()
    with pytest.raises(MissingRewardFile, match=r"prompt_template\.txt.*INSTRUCTION.*data_collator_qwen\.py"):
        load_reward("hpsv3", roots=[copy])
    (copy / "hpsv3" / "prompt_template.txt").write_text("Textual prompt - {text_prompt}. Rate it.")
    with pytest.raises(BadRewardFile, match=r"lacks \['<\|Reward\|>'\]"):
        load_reward("hpsv3", roots=[copy])
    shutil.rmtree(copy / "hpsv3" / "Qwen2-VL-7B-Instruct")
    with pytest.raises(MissingRewardFile, match=r"Qwen2-VL-7B-Instruct/.*huggingface\.co/Qwen/Qwen2-VL-7B-Instruct"):
        load_reward("hpsv3", roots=[copy])


def test_wrong_files(release, tmp_path):
    from safetensors.torch import save_file

    root, parts = release
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    path = copy / "hpsv3" / "HPSv3.safetensors"
    state = dict(parts["state"])
    state["rm_head.2.weight"] = state.pop("rm_head.3.weight")
    save_file(state, str(path))
    with pytest.raises(BadRewardFile, match=r"reward head has layers \[0, 2, 5\].*rm_head\.\{0,3,5\}"):
        load_reward("hpsv3", roots=[copy])
    save_file({k: v for k, v in parts["state"].items() if not k.startswith("rm_head.")}, str(path))
    with pytest.raises(BadRewardFile, match="not an HPSv3 checkpoint"):
        load_reward("hpsv3", roots=[copy])


# ------------------------------------------------------------------------------------------------ full size


def test_full_size_layout_maps_key_for_key():
    """HPSv3.safetensors' published layout (Qwen2-VL-7B, 151658 rows, rm_head 3584→1024→16→2) on the meta device."""
    from rewards.hpsv3 import HPSv3Model, _head_dims
    from rewards.qwen2vl_model import vlm_state
    from rewards.weights import meta_module

    config = transformers.Qwen2VLConfig.from_dict(qf.QWEN2_VL_7B)
    source = qf.full_hpsv3_layout()
    config.text_config.vocab_size = source["model.embed_tokens.weight"].shape[0]
    head = _head_dims(source, "test")
    assert head == (1024, 16, 2)
    want = meta_module(lambda: HPSv3Model(config, head)).state_dict()
    got = vlm_state(source, "qwen.")
    got.pop("lm_head.weight")
    got.update({k: v for k, v in source.items() if k.startswith("rm_head.")})
    assert sorted(got) == sorted(want)
    assert all(tuple(got[k].shape) == tuple(want[k].shape) for k in want)
    params = sum(v.numel() for v in want.values()) / 1e9
    assert abs(params - 7.75) < 0.05, params  # 8.29 B with the 0.54 B lm_head, which the reward does not load
