"""EvoSearch Shapes Model inside a real (CPU) ComfyUI: the shipped weights load offline, CLIP Text Encode + KSampler +
VAEDecode draw 32×32 scenes that follow single-object prompts, and the verifier still reads VAE round trips."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

#: Plain-sampler strict pass rate on single coloured objects ("colors" prompts) at the recommended settings
#: (dpmpp_2m_sde, karras, 20 steps, cfg 4) is 0.69 over 8 prompts × 8 seeds (assets/shapes/README.md). The test draws
#: 6 prompts × 8 seeds = 48 images (s.e. ≈ 0.067 at p = 0.69); the floor sits 3.6 s.e. below, so it flags a broken
#: model or text path, not sampling noise. A model that ignored the prompt would pass about 1 in 12 (the right shape
#: and colour by chance).
MIN_SINGLE_OBJECT_PASS_RATE = 0.45
#: Verifier accuracy on VAE round trips of rendered scenes with matching and contradicting prompts: 0.986 on 300
#: scenes (1,817 cases, assets/shapes/README.md); the test uses 40 scenes (~240 cases).
MIN_ROUND_TRIP_ACCURACY = 0.95
SINGLE_PROMPTS = ["a red circle", "a blue square", "a green triangle", "a yellow circle", "a red triangle",
                  "a green square"]  # fmt: skip


@pytest.fixture(scope="module")
def shapes(pack):
    return (
        importlib.import_module("evosearch_pack.nodes.shapes_nodes"),
        importlib.import_module("evosearch_pack.nodes.shapes_model"),
        importlib.import_module("evosearch_pack.rewards.shapes_reward"),
    )


@pytest.fixture(scope="module")
def outputs(shapes):
    nodes_mod, _, _ = shapes
    node = nodes_mod.EvoSearchShapesModel.PREPARE_CLASS_CLONE({"unique_id": "1"})
    return node.execute(batch_size=8).result


def _sample(outputs, prompt: str, seed: int):
    import nodes

    model, clip, vae, latent = outputs
    (positive,) = nodes.CLIPTextEncode().encode(clip, prompt)
    (negative,) = nodes.CLIPTextEncode().encode(clip, "")
    (samples,) = nodes.KSampler().sample(model, seed, 20, 4.0, "dpmpp_2m_sde", "karras", positive, negative, latent)
    (images,) = nodes.VAEDecode().decode(vae, samples)
    return images


def test_schema_is_complete(shapes):
    nodes_mod, _, _ = shapes
    assert nodes_mod.NODES == [nodes_mod.EvoSearchShapesModel]
    schema = nodes_mod.EvoSearchShapesModel.define_schema()
    assert schema.node_id == "EvoSearchShapesModel" and schema.display_name == "EvoSearch Shapes Model"
    assert schema.category == "sampling/evosearch/demo"
    assert "dpmpp_2m_sde" in schema.description and "cfg 4" in schema.description and "left of" in schema.description
    assert all(i.tooltip and i.display_name for i in schema.inputs)
    assert all(o.tooltip and o.display_name for o in schema.outputs)
    assert [o.io_type for o in schema.outputs] == ["MODEL", "CLIP", "VAE", "LATENT"]


def test_node_loads_the_shipped_model(outputs):
    import comfy.model_base
    import comfy.model_patcher
    import comfy.sd

    model, clip, vae, latent = outputs
    assert isinstance(model, comfy.model_patcher.ModelPatcher)
    assert model.model.model_type == comfy.model_base.ModelType.EPS
    assert type(model.get_model_object("latent_format")).__name__ == "SD15"
    assert isinstance(clip, comfy.sd.CLIP) and isinstance(vae, comfy.sd.VAE)
    assert vae.spacial_compression_decode() == 4
    assert latent["samples"].shape == (8, 4, 8, 8) and latent["samples"].abs().sum() == 0
    n_params = sum(p.numel() for p in model.model.diffusion_model.parameters())
    assert 1_000_000 < n_params < 3_000_000


def test_clip_text_encode_gives_distinct_prompt_contexts(outputs):
    import nodes

    clip = outputs[1]
    conds = {p: nodes.CLIPTextEncode().encode(clip, p)[0][0][0] for p in ("", "a red circle", "a blue circle",
                                                                          "a red circle left of a blue square")}  # fmt: skip
    assert all(c.shape == (1, 77, 64) for c in conds.values())
    assert not torch.allclose(conds["a red circle"], conds["a blue circle"], atol=1e-3)
    again = nodes.CLIPTextEncode().encode(clip, "a red circle")[0][0][0]
    torch.testing.assert_close(again, conds["a red circle"])


def test_text_encoder_matches_its_training_forward(shapes, outputs, pack):
    """CLIP Text Encode equals the forward the trainer used (ComfyUI's CLIPTextModel, out-of-place residuals)."""
    from safetensors.torch import load_file

    train = importlib.import_module("evosearch_pack.tools.train_shapes")
    demo = importlib.import_module("evosearch_pack.tools.train_demo")
    _, shapes_model, _ = shapes
    path = shapes_model.SHAPES_DIR / shapes_model.TEXT_ENCODER_FILE
    stored = load_file(str(path))
    assert stored["token_rows"].shape[0] == stored["token_ids"].numel() < 200, "only the words seen are stored"
    with torch.inference_mode(False):
        text = train.build_text_model(shapes_model.TEXT_CONFIG, demo).eval()
        dense = shapes_model.dense_text_state(stored, shapes_model.TEXT_CONFIG["vocab_size"])
        text.load_state_dict({k: v.float() for k, v in dense.items()}, strict=False)
        clip = outputs[1]
        tokens = clip.tokenize("a photo of two green triangles")
        ids = torch.tensor([[t for t, _ in tokens["l"][0]]])
        with torch.no_grad():
            reference = text(ids)[0]
    cond = clip.encode_from_tokens_scheduled(tokens)[0][0]
    torch.testing.assert_close(cond.float(), reference, atol=5e-3, rtol=0)


def test_ksampler_draws_images_of_the_right_size(outputs):
    images = _sample(outputs, "a red circle", seed=1)
    assert images.shape == (8, 32, 32, 3) and 0 <= images.min() and images.max() <= 1


def test_model_follows_single_object_prompts(outputs, shapes):
    _, _, reward_mod = shapes
    reward = reward_mod.ShapesReward()
    passed = []
    for k, prompt in enumerate(SINGLE_PROMPTS):
        images = _sample(outputs, prompt, seed=100 + k)
        passed += reward.passes(images, [prompt] * len(images)).tolist()
    rate = sum(passed) / len(passed)
    assert rate >= MIN_SINGLE_OBJECT_PASS_RATE, f"only {rate:.2f} of single-object samples pass the verifier"


def test_shipped_unet_is_a_standard_sd_unet(shapes):
    import comfy.model_detection
    import comfy.utils

    _, shapes_model, _ = shapes
    sd = comfy.utils.load_torch_file(str(shapes_model.SHAPES_DIR / shapes_model.UNET_FILE))
    detected = comfy.model_detection.detect_unet_config(sd, "")
    for key, value in shapes_model.UNET_CONFIG.items():
        assert detected[key] == value, key


def test_verifier_reads_vae_round_trips(outputs, shapes):
    from evosearch_pack.rewards.shapes.cases import verification_cases
    from evosearch_pack.rewards.shapes.render import render

    import nodes

    _, _, reward_mod = shapes
    cases = verification_cases(40, np.random.default_rng(77))
    images = render([c.scene for c in cases])
    (latent,) = nodes.VAEEncode().encode(outputs[2], images)
    assert latent["samples"].shape == (len(cases), 4, 8, 8)
    (decoded,) = nodes.VAEDecode().decode(outputs[2], latent)
    passes = reward_mod.ShapesReward().passes(decoded, [c.prompt.text for c in cases])
    accuracy = (passes == torch.tensor([c.truth for c in cases])).float().mean().item()
    assert accuracy >= MIN_ROUND_TRIP_ACCURACY, f"verifier accuracy {accuracy:.3f} on VAE round trips"


def test_load_reward_node_gives_the_shapes_verifier(pack):
    rn = importlib.import_module("evosearch_pack.nodes.reward_nodes")
    node = rn.EvoSearchLoadReward.PREPARE_CLASS_CLONE({"unique_id": "9"})
    reward = node.execute(kind="shapes", model="auto", dtype="auto", prompt="three red circles").result[0]
    assert reward.prompt == "three red circles" and callable(reward.passes)
    assert reward.passes(torch.zeros(2, 32, 32, 3)).tolist() == [False, False]
