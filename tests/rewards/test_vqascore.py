"""VQAScore on Qwen2-VL / Qwen2.5-VL instruct folders: transformers' own processor and model as the reference, the
question options, the image resizing rule, the full-size layouts and the error messages."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from support import qwen_vl_fixtures as qf
from support import reward_fixtures as rf
from support import vlm_reference

from rewards import BadRewardFile, MissingRewardFile, get_kind, load_reward
from rewards.vqa_questions import DEFAULT_TEMPLATE, check_template, questions_for, split_conjunctions

transformers = pytest.importorskip("transformers")
if int(transformers.__version__.split(".")[0]) < 5:  # pragma: no cover
    pytest.skip("VQAScore needs transformers >= 5", allow_module_level=True)

NAMES = {"qwen2_vl": "Qwen2-VL-2B-Instruct", "qwen2_5_vl": "Qwen2.5-VL-3B-Instruct"}


@pytest.fixture(scope="module", params=[("qwen2_vl", False, 1), ("qwen2_5_vl", True, 2)], ids=["qwen2vl", "qwen25vl"])
def folder(request, tmp_path_factory):
    """A tiny instruct folder: Qwen2-VL with its own LM head; Qwen2.5-VL tied and sharded."""
    family, tied, shards = request.param
    root = tmp_path_factory.mktemp(family)
    path = root / "vqascore" / NAMES[family]
    qf.write_instruct_folder(path, torch.Generator().manual_seed(5), family=family, tied=tied, shards=shards)
    return path


def _quantised(gen, b, h, w):
    return (rf.images(gen, b=b, h=h, w=w) * 255).round() / 255


def test_matches_transformers_reference(folder, gen):
    """log P("Yes") equals transformers' processor + from_pretrained model, one image at a time (t2v_metrics' way)."""
    reward = load_reward("vqascore", roots=[folder.parents[1]])
    images = _quantised(gen, 2, 56, 84)  # already a resize fixed point: both sides see the same pixels
    prompts = ["a red apple on a table", "a cat on a sofa"]
    ours = reward.score(images, prompts)
    ref = [vlm_reference.vqascore_reference(folder, im, DEFAULT_TEMPLATE.format(p)) for im, p in zip(images, prompts)]
    assert ours.shape == (2,) and (ours < 0).all()
    assert torch.allclose(ours, torch.tensor(ref), atol=1e-4), (ours, ref)
    assert (ours[0] - ours[1]).abs() > 1e-3, "different images and prompts must score differently"


def test_inputs_equal_the_processor(folder, gen):
    """Token ids (chat format, image-token expansion) and patches equal Qwen2VLProcessor's on the same image."""
    from transformers import AutoProcessor

    reward = load_reward("vqascore", roots=[folder.parents[1]])
    image = _quantised(gen, 1, 112, 84)
    question = DEFAULT_TEMPLATE.format("a dog")
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": question}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    u8 = (image[0] * 255).round().to(torch.uint8).permute(2, 0, 1)
    ref = processor(text=[text], images=[u8], return_tensors="pt", do_resize=False)
    ours = reward.inputs(image, ["a dog"])
    assert torch.equal(ours["batch"]["input_ids"], ref["input_ids"])
    assert torch.equal(ours["batch"]["mm_token_type_ids"], ref["mm_token_type_ids"].long())
    assert torch.equal(ours["image_grid_thw"], ref["image_grid_thw"])
    assert torch.allclose(ours["pixel_values"], ref["pixel_values"], atol=1e-5)


@pytest.mark.parametrize("size", [(40, 56), (300, 200), (1000, 1500), (28, 900)])
def test_resize_rule_equals_qwen_smart_resize(size, folder, gen):
    """Image grids follow qwen-vl-utils' smart_resize (min 4·28², max 16384·28², or a lower max_pixels)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    max_pixels = 256 * 28 * 28
    reward = load_reward("vqascore", roots=[folder.parents[1]], max_pixels=max_pixels)
    image = rf.images(gen, b=1, h=size[0], w=size[1])
    processor = Qwen2VLImageProcessor(min_pixels=4 * 28 * 28, max_pixels=max_pixels)
    u8 = (image[0] * 255).round().to(torch.uint8).permute(2, 0, 1)
    ref = processor(images=[u8], return_tensors="pt")
    assert reward.inputs(image, ["x"])["image_grid_thw"].tolist() == ref["image_grid_thw"].tolist()


def test_resized_pixels_close_to_the_processor(gen):
    """Where an image is resized, the patches stay close to Qwen2VLImageProcessor's own resize (normalised units)."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import Qwen2VLImageProcessor

    from rewards.qwen2vl_image import image_patches

    for h, w in [(512, 512), (300, 200)]:
        image = rf.natural_image(gen, h, w)
        ours, grid = image_patches(image, max_pixels=256 * 28 * 28)
        processor = Qwen2VLImageProcessor(min_pixels=4 * 28 * 28, max_pixels=256 * 28 * 28)
        ref = processor(images=[(image * 255).round().to(torch.uint8).permute(2, 0, 1)], return_tensors="pt")
        assert grid.tolist() == ref["image_grid_thw"][0].tolist()
        diff = (ours - ref["pixel_values"]).abs()
        assert diff.max() < 0.06 and diff.mean() < 0.01, (h, w, diff.max(), diff.mean())


def test_several_questions_add_their_log_probs(folder, gen):
    """Explicit questions and the conjunction split: Σ log P("Yes") of the single-question scores."""
    roots = [folder.parents[1]]
    images = rf.images(gen, b=2, h=40, w=56)
    single = load_reward("vqascore", roots=roots)
    parts = ["a red circle", "a blue square"]
    each = [single.score(images, p) for p in parts]
    explicit = load_reward("vqascore", roots=roots, questions="a red circle\n\n  a blue square  \n")
    split = load_reward("vqascore", roots=roots, split="conjunctions")
    assert torch.allclose(explicit.score(images, "ignored prompt"), each[0] + each[1], atol=1e-5)
    assert torch.allclose(split.score(images, "a red circle and a blue square"), each[0] + each[1], atol=1e-5)
    per_question = split.question_log_probs(images, "a red circle and a blue square")
    assert [lp.shape for lp in per_question] == [(2,), (2,)]
    assert all((lp < 0).all() for lp in per_question)
    verbatim = load_reward("vqascore", roots=roots, questions="Is the circle red? Please answer Yes or No?")
    assert verbatim.questions("anything") == ["Is the circle red? Please answer Yes or No?"]


def test_each_image_is_encoded_once(folder, gen):
    reward = load_reward("vqascore", roots=[folder.parents[1]], questions="a\nb\nc")
    calls = []
    hook = reward.model.vlm.visual.register_forward_hook(lambda *a: calls.append(1))
    try:
        reward.score(rf.images(gen, b=2, h=40, w=56), "x")
    finally:
        hook.remove()
    assert len(calls) == 1


def test_template_and_answer_options(folder, gen):
    roots = [folder.parents[1]]
    images = _quantised(gen, 1, 56, 84)
    custom = 'Is "{prompt}" what this picture shows? Answer Yes or No.'
    reward = load_reward("vqascore", roots=roots, template=custom)
    assert reward.questions("a cat") == ['Is "a cat" what this picture shows? Answer Yes or No.']
    ref = vlm_reference.vqascore_reference(folder, images[0], custom.replace("{prompt}", "a cat"))
    assert abs(float(reward.score(images, "a cat")) - ref) < 1e-4
    no = load_reward("vqascore", roots=roots, answer="No")
    ref_no = vlm_reference.vqascore_reference(folder, images[0], DEFAULT_TEMPLATE.format("a cat"), answer="No")
    assert abs(float(no.score(images, "a cat")) - ref_no) < 1e-4


def test_multi_token_answer_is_teacher_forced(folder, gen):
    """An answer of two tokens scores log p(t1 | q) + log p(t2 | q, t1), read from the full logits of one pass."""
    from transformers import AutoProcessor

    roots = [folder.parents[1]]
    reward = load_reward("vqascore", roots=roots, answer="Yes No")
    assert len(reward.answer_ids) >= 2
    images = _quantised(gen, 1, 56, 84)
    processor = AutoProcessor.from_pretrained(folder, local_files_only=True)
    model = vlm_reference._model_class(folder).from_pretrained(folder, local_files_only=True, dtype=torch.float32)
    messages = [
        {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": DEFAULT_TEMPLATE.format("x")}]}
    ]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True) + "Yes No"
    u8 = (images[0] * 255).round().to(torch.uint8).permute(2, 0, 1)
    inputs = processor(text=[text], images=[u8], return_tensors="pt", do_resize=False)
    n = len(reward.answer_ids)
    with torch.no_grad():
        logp = model.eval()(**inputs).logits[0].float().log_softmax(-1)
    ids = inputs["input_ids"][0]
    expected = sum(float(logp[len(ids) - n - 1 + j, ids[len(ids) - n + j]]) for j in range(n))
    assert torch.equal(ids[-n:], torch.tensor(reward.answer_ids))
    assert abs(float(reward.score(images, "x")) - expected) < 1e-4


# ------------------------------------------------------------------------------------------------ questions (text)


def test_split_conjunctions():
    assert split_conjunctions("a red circle and a blue square") == ["a red circle", "a blue square"]
    assert split_conjunctions("a cat, a dog, and a bird.") == ["a cat", "a dog", "a bird"]
    assert split_conjunctions("a cat; a dog") == ["a cat", "a dog"]
    assert split_conjunctions("black and white photo of a cat") == ["black and white photo of a cat"]
    assert split_conjunctions("a sandcastle") == ["a sandcastle"]
    assert split_conjunctions("") == [""]


def test_template_validation():
    assert check_template("Is it {prompt}?") == "Is it {}?"
    for bad in ("no slot", "{} and {}"):
        with pytest.raises(ValueError, match="exactly once"):
            check_template(bad)
    with pytest.raises(ValueError, match="split must be one of"):
        questions_for("x", split="words")
    assert questions_for('a "quoted" {prompt}') == [DEFAULT_TEMPLATE.replace("{}", 'a "quoted" {prompt}')]


def test_bad_options_name_the_fix(folder):
    roots = [folder.parents[1]]
    with pytest.raises(ValueError, match=r"prompt slot \{\}"):
        load_reward("vqascore", roots=roots, template="Does this show it?")
    with pytest.raises(ValueError, match="min_pixels"):
        load_reward("vqascore", roots=roots, min_pixels=10**6, max_pixels=10**5)


# ------------------------------------------------------------------------------------------------ files and errors


def test_missing_folder_names_expected_folders_and_source(tmp_path):
    spec = get_kind("vqascore")
    with pytest.raises(MissingRewardFile) as info:
        load_reward("vqascore", roots=[tmp_path])
    message = str(info.value)
    for name in spec.files:
        assert name in message
    assert str(tmp_path / "vqascore") in message and "huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct" in message


def test_folder_without_tokenizer(folder, tmp_path):
    copy = tmp_path / "vqascore" / folder.name
    shutil.copytree(folder, copy)
    (copy / "tokenizer.json").unlink()
    with pytest.raises(MissingRewardFile, match=r"tokenizer\.json.*huggingface\.co/Qwen"):
        load_reward("vqascore", roots=[tmp_path])


def test_wrong_model_type_and_missing_weights(folder, tmp_path):
    copy = tmp_path / "vqascore" / folder.name
    shutil.copytree(folder, copy)
    config = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**config, "model_type": "llava"}))
    with pytest.raises(BadRewardFile, match="'llava' model; expected a Qwen2-VL or Qwen2.5-VL"):
        load_reward("vqascore", roots=[tmp_path])
    (copy / "config.json").write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file

    files = sorted(copy.glob("*.safetensors"))
    sd = load_file(str(files[0]))
    dropped = sorted(k for k in sd if ".layers.1." in k or "blocks.1." in k)[0]
    del sd[dropped]
    save_file(sd, str(files[0]))
    if (copy / "model.safetensors.index.json").is_file():
        index = json.loads((copy / "model.safetensors.index.json").read_text())
        del index["weight_map"][dropped]
        (copy / "model.safetensors.index.json").write_text(json.dumps(index))
    with pytest.raises(BadRewardFile, match=r"missing keys \(1\).*Qwen2-VL / Qwen2.5-VL instruct folder"):
        load_reward("vqascore", roots=[tmp_path])


# ------------------------------------------------------------------------------------------------ full-size layouts


@pytest.mark.parametrize(
    "config,layout,tied,billions",
    [
        (qf.QWEN2_VL_2B, dict(hidden=1536, inter=8960, kv=2, heads=12, vocab=151936, tied=True), True, 2.2),
        (qf.QWEN2_VL_7B, {}, False, 8.29),
        (qf.QWEN25_VL_7B, {}, False, 8.29),
    ],
    ids=["Qwen2-VL-2B", "Qwen2-VL-7B", "Qwen2.5-VL-7B"],
)
def test_full_size_layout_maps_key_for_key(config, layout, tied, billions):
    """Every key of the official Hub files maps onto the meta-built model with its shape, and nothing is left over."""
    from rewards.qwen2vl_model import vlm_state
    from rewards.vqascore import VQAScoreModel
    from rewards.weights import meta_module

    family = config["model_type"]
    cfg = (transformers.Qwen2VLConfig if family == "qwen2_vl" else transformers.Qwen2_5_VLConfig).from_dict(config)
    want = meta_module(lambda: VQAScoreModel(cfg, tied)).state_dict()
    source = (qf.full_qwen2vl_layout if family == "qwen2_vl" else qf.full_qwen25vl_layout)(**layout)
    got = vlm_state(source, "vlm.")
    assert sorted(got) == sorted(want)
    assert all(tuple(got[k].shape) == tuple(want[k].shape) for k in want)
    params = sum(v.numel() for k, v in want.items() if not (tied and k == "lm_head.weight")) / 1e9
    assert abs(params - billions) < 0.05, params
