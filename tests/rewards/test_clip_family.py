"""CLIPScore, HPSv2, PickScore: every file layout loads into transformers' CLIPModel and matches the reference model.

References: open_clip's own forward for open_clip files and OpenAI JIT archives (QuickGELU for OpenAI weights, GELU
for HPS), transformers' forward for Hugging Face folders. Scores are compared on identical preprocessed pixels.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from support import reward_fixtures as rf

from rewards import load_reward
from rewards.clip import clip_config_from_openclip
from rewards.preprocess import clip_pixels
from rewards.text import ClipTokenizer

PROMPTS = ["a cat on a sofa", "a dog in the snow", "a cat on a sofa"]
open_clip = pytest.importorskip("open_clip")


def _openclip_cosine(model, images, mode):
    with torch.no_grad():
        px = clip_pixels(images, model.visual.image_size[0], mode)
        a = F.normalize(model.encode_image(px), dim=-1)
        b = F.normalize(model.encode_text(ClipTokenizer()(PROMPTS)), dim=-1)
    return (a * b).sum(-1)


@pytest.mark.parametrize(
    "kind,name,quick,writer",
    [
        ("hpsv2", "HPS_v2.1_compressed.pt", False, "pt-state_dict-fp16"),
        ("clipscore", "open_clip_model.safetensors", True, "safetensors"),
        ("clipscore", "open_clip_pytorch_model.bin", True, "pt-plain-fp32"),
        ("clipscore", "ViT-L-14.pt", True, "jit-fp16"),
    ],
)
def test_openclip_layouts_match_open_clip(kind, name, quick, writer, tmp_path, gen):
    model = rf.tiny_openclip(gen, quick_gelu=quick)
    path = tmp_path / kind / name
    if writer == "jit-fp16":
        rf.save_openai_jit(model, path)
        model = rf.as_fp16_reference(model.float())
    elif writer == "safetensors":
        rf.save_openclip(model, path, fp16=False)
    elif writer == "pt-plain-fp32":
        rf.save_openclip(model, path, wrapper=None, fp16=False)
    else:
        rf.save_openclip(model, path)
        model = rf.as_fp16_reference(model)
    reward = load_reward(kind, name, roots=[tmp_path], heads=rf.TINY_HEADS)
    images = rf.images(gen, b=3, h=40, w=64)
    ours = reward.score(images, PROMPTS)
    ref = _openclip_cosine(model, images, "pad" if kind == "hpsv2" else "crop")
    assert torch.allclose(ours, ref, atol=2e-5), (ours, ref)


def test_quick_gelu_matters(tmp_path, gen):
    """OpenAI weights need QuickGELU; loading them with GELU gives different scores (docs/rewards.md §2)."""
    model = rf.tiny_openclip(gen, quick_gelu=True)
    rf.save_openclip(model, tmp_path / "clipscore" / "x.safetensors", fp16=False)
    images = rf.images(gen)
    right = load_reward("clipscore", "x.safetensors", roots=[tmp_path], heads=rf.TINY_HEADS).score(images, PROMPTS)
    wrong = load_reward("clipscore", "x.safetensors", roots=[tmp_path], heads=rf.TINY_HEADS, activation="gelu").score(
        images, PROMPTS
    )
    assert not torch.allclose(right, wrong, atol=1e-4)


@pytest.mark.parametrize("kind", ["pickscore", "clipscore"])
def test_hf_folder_matches_transformers(kind, tmp_path, gen):
    model = rf.tiny_hf_clip(gen, hidden_act="gelu" if kind == "pickscore" else "quick_gelu")
    folder = "PickScore_v1" if kind == "pickscore" else "clip-vit-large-patch14"
    rf.save_hf_folder(model, tmp_path / kind / folder)
    reward = load_reward(kind, roots=[tmp_path])
    images = rf.images(gen)
    with torch.no_grad():
        px = clip_pixels(images, 32)
        a = F.normalize(model.visual_projection(model.vision_model(pixel_values=px).pooler_output), dim=-1)
        t = model.text_model(input_ids=ClipTokenizer()(PROMPTS)).pooler_output
        b = F.normalize(model.text_projection(t), dim=-1)
    cos = (a * b).sum(-1)
    expected = cos * math.exp(math.log(100.0)) if kind == "pickscore" else cos
    assert torch.allclose(reward.score(images, PROMPTS), expected, atol=2e-5 * (100 if kind == "pickscore" else 1))


def test_hps_pads_instead_of_cropping(tmp_path, gen):
    """The same weights score differently under HPS (pad) and CLIPScore (crop) preprocessing on a wide image."""
    model = rf.tiny_openclip(gen, quick_gelu=False)
    rf.save_openclip(model, tmp_path / "hpsv2" / "HPS_v2.1_compressed.pt")
    rf.save_openclip(model, tmp_path / "clipscore" / "open_clip_model.safetensors")
    images = rf.images(gen, h=32, w=96)
    hps = load_reward("hpsv2", roots=[tmp_path], heads=rf.TINY_HEADS).score(images, PROMPTS)
    crop = load_reward("clipscore", roots=[tmp_path], heads=rf.TINY_HEADS, activation="gelu").score(images, PROMPTS)
    assert not torch.allclose(hps, crop, atol=1e-4)


def test_config_from_shapes_uses_open_clip_head_table():
    """ViT-H/14 (HPS) has 16 heads of 80, not 20 of 64; ViT-L/14 has 16 vision and 12 text heads."""

    def shapes(v_width, t_width, layers=1):
        sd = {
            "visual.conv1.weight": torch.empty(v_width, 3, 14, 14),
            "visual.positional_embedding": torch.empty(257, v_width),
            "token_embedding.weight": torch.empty(49408, t_width),
            "positional_embedding": torch.empty(77, t_width),
            "visual.proj": torch.empty(v_width, 768),
            "transformer.resblocks.0.mlp.c_fc.weight": torch.empty(4 * t_width, t_width),
            "visual.transformer.resblocks.0.mlp.c_fc.weight": torch.empty(4 * v_width, v_width),
        }
        return sd

    h = clip_config_from_openclip(shapes(1280, 1024), "gelu")
    assert (h.vision_config.num_attention_heads, h.text_config.num_attention_heads) == (16, 16)
    assert h.vision_config.image_size == 224 and h.vision_config.patch_size == 14
    large = clip_config_from_openclip(shapes(1024, 768))
    assert (large.vision_config.num_attention_heads, large.text_config.num_attention_heads) == (16, 12)
    assert large.text_config.hidden_act == "quick_gelu"


def test_loaders_share_one_model(tmp_path, gen):
    rf.save_openclip(
        rf.tiny_openclip(gen, quick_gelu=True), tmp_path / "clipscore" / "ViT-L-14.safetensors", fp16=False
    )
    a = load_reward("clipscore", roots=[tmp_path], heads=rf.TINY_HEADS, prompt="a")
    b = load_reward("clipscore", roots=[tmp_path], heads=rf.TINY_HEADS, prompt="b")
    c = load_reward("clipscore", roots=[tmp_path], heads=rf.TINY_HEADS, dtype="bf16")
    assert a.model is b.model and a.model is not c.model
    assert (a.prompt, b.prompt) == ("a", "b")


@pytest.mark.parametrize(
    "name,activation,heads", [("ViT-H-14", "gelu", (16, 16)), ("ViT-L-14-quickgelu", "quick_gelu", (16, 12))]
)
def test_full_size_openclip_keys_convert_exactly(name, activation, heads):
    """HPS's ViT-H-14 (686 keys) and OpenAI's ViT-L/14 map 1:1 onto CLIPModel (built on meta: no memory)."""
    from transformers import CLIPModel

    from rewards.clip import openclip_to_hf
    from rewards.weights import meta_module

    with torch.device("meta"):  # no random initialisation of a billion parameters
        source = open_clip.create_model(name, pretrained=None, device="meta").state_dict()
    config = clip_config_from_openclip(source, activation)
    want = meta_module(lambda: CLIPModel(config)).state_dict()
    got = openclip_to_hf(source)
    assert sorted(got) == sorted(want)
    assert all(got[k].shape == want[k].shape for k in want)
    assert (config.vision_config.num_attention_heads, config.text_config.num_attention_heads) == heads
