"""Reward nodes and reward_runtime inside a real (in-process, CPU) ComfyUI, with tiny weights in a rewards folder."""

from __future__ import annotations

import asyncio
import importlib

import pytest
import torch
from support import reward_fixtures as rf
from support.nodes import clone_node, module


@pytest.fixture(scope="module")
def rn(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.reward_nodes")


@pytest.fixture(scope="module")
def rt(pack):
    return importlib.import_module(f"{pack.__name__}.nodes.reward_runtime")


@pytest.fixture(scope="module")
def rewards_dir(pack, tmp_path_factory):
    """Tiny official-layout weights in an extra ``rewards`` folder, registered through extra_model_paths.yaml."""
    import folder_paths
    from utils.extra_config import load_extra_path_config

    root = tmp_path_factory.mktemp("models") / "rewards"
    g = torch.Generator().manual_seed(11)
    (root / "imagereward").mkdir(parents=True)
    torch.save(rf.imagereward_state(g), root / "imagereward" / "ImageReward.pt")
    rf.save_openai_jit(rf.tiny_openclip(g, quick_gelu=True), root / "clipscore" / "ViT-L-14.pt")
    rf.save_openclip(rf.tiny_openclip(g, quick_gelu=False), root / "hpsv2" / "HPS_v2.1_compressed.pt")
    rf.save_hf_folder(rf.tiny_hf_clip(g, hidden_act="gelu"), root / "pickscore" / "PickScore_v1")
    (root / "aesthetic").mkdir()
    torch.save(rf.aesthetic_head_state(g), root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")
    yaml = root.parent / "extra_model_paths.yaml"
    yaml.write_text(f"tiny:\n    rewards: {root}\n")
    before = folder_paths.folder_names_and_paths.get("rewards")
    before = (list(before[0]), set(before[1])) if before else None
    load_extra_path_config(str(yaml))
    yield root
    if before is None:
        folder_paths.folder_names_and_paths.pop("rewards", None)
    else:
        folder_paths.folder_names_and_paths["rewards"] = before


def run(node, **inputs):
    return clone_node(node).execute(**inputs)


def load(rn, kind, prompt="a red apple", **extra):
    return run(rn.EvoSearchLoadReward, kind=kind, model="auto", dtype="auto", prompt=prompt, **extra).args[0]


# ------------------------------------------------------------------------------------------------ folder + schema


def test_folder_registered_and_listed(rt, rewards_dir):
    import folder_paths

    roots = rt.reward_roots()
    assert str(rewards_dir) in roots and any(r.endswith("models/rewards") for r in roots)
    assert ".safetensors" in folder_paths.folder_names_and_paths["rewards"][1]
    choices = rt.model_choices()
    for entry in (
        "imagereward/ImageReward.pt",
        "clipscore/ViT-L-14.pt",
        "hpsv2/HPS_v2.1_compressed.pt",
        "pickscore/PickScore_v1",
        "aesthetic/sac+logos+ava1-l14-linearMSE.pth",
    ):
        assert entry in choices
    assert choices[0] == "auto"


def test_schema_contract(rn, rewards_dir):
    ids = set()
    for node in rn.NODES:
        schema = node.GET_SCHEMA()
        assert schema.node_id.startswith("EvoSearch") and schema.node_id not in ids
        ids.add(schema.node_id)
        assert schema.category == "sampling/evosearch/rewards" and len(schema.description) > 80
        for item in schema.inputs:
            assert item.tooltip, f"{schema.node_id}.{item.id} has no tooltip"
            default, low, high = getattr(item, "default", None), getattr(item, "min", None), getattr(item, "max", None)
            if default is not None and low is not None:
                assert low <= default <= high, f"{schema.node_id}.{item.id} default out of bounds"
            if getattr(item, "options", None) and default is not None:
                assert default in item.options, f"{schema.node_id}.{item.id} default not an option"
        assert all(o.tooltip for o in schema.outputs)
    assert ids == {"EvoSearchLoadReward", "EvoSearchCombineRewards", "EvoSearchScoreImages"}


# ------------------------------------------------------------------------------------------------ Load Reward


@pytest.mark.parametrize("kind", ["imagereward", "clipscore", "hpsv2", "pickscore", "aesthetic", "colorfulness"])
def test_load_every_kind(rn, rt, rewards_dir, kind):
    reward = load(rn, kind, prompt="a red apple")
    assert reward.prompt == "a red apple"
    assert rt.reward_accepts_video(reward), "image rewards come wrapped for video"
    images = rf.images(torch.Generator().manual_seed(0), b=3)
    scores = rt.score_images(reward, images)
    assert scores.shape == (3,) and scores.dtype == torch.float32 and scores.device.type == "cpu"
    video = rf.images(torch.Generator().manual_seed(1), b=2, t=5, h=32, w=40)
    assert rt.score_images(reward, video).shape == (2,)


def test_load_errors_name_the_node(rn, rewards_dir, tmp_path):
    with pytest.raises(
        ValueError, match=r"EvoSearch Load Reward: model 'clipscore/ViT-L-14.pt' is in rewards/clipscore/"
    ):
        run(rn.EvoSearchLoadReward, kind="imagereward", model="clipscore/ViT-L-14.pt", dtype="auto", prompt="")
    with pytest.raises(
        FileNotFoundError,
        match=r"EvoSearch Load Reward: VideoReward.*model_config.json|EvoSearch Load Reward: .*VideoReward",
    ):
        load(rn, "videoreward")


def test_video_options_reach_the_wrapper(rn, rewards_dir):
    reward = load(
        rn,
        "clipscore",
        video_frames=3,
        frame_policy="first_middle_last",
        video_aggregate="mean_minus_std",
        std_weight=0.25,
    )
    assert (reward.frames, reward.policy, reward.aggregate, reward.lam) == (
        3,
        "first_middle_last",
        "mean_minus_std",
        0.25,
    )


def test_same_file_shares_model_and_patcher(rn, rt, rewards_dir):
    clip = load(rn, "clipscore", prompt="a")
    aesthetic = load(rn, "aesthetic")
    assert clip.reward.model is aesthetic.reward.model
    images = rf.images(torch.Generator().manual_seed(2), b=2)
    rt.score_images(clip, images)
    rt.score_images(aesthetic, images)
    assert rt.patcher_for(clip.reward.model) is rt.patcher_for(aesthetic.reward.model)


# ------------------------------------------------------------------------------------------------ score_images


def test_score_images_uses_model_management(rt, rn, rewards_dir):
    import comfy.model_management as mm

    reward = load(rn, "imagereward")
    images = rf.images(torch.Generator().manual_seed(3), b=4)
    first = rt.score_images(reward, images)
    patcher = rt.patcher_for(reward.reward.model)
    assert any(p is patcher for p in mm.loaded_models()), "the reward must be loaded through load_models_gpu"
    assert rt.patcher_for(reward.reward.model) is patcher, "patchers are cached, not rebuilt per call"
    assert torch.equal(rt.score_images(reward, images), first)
    assert torch.allclose(rt.score_images(reward, images, ["a red apple"] * 4), first)
    mm.unload_all_models()
    assert torch.equal(rt.score_images(reward, images), first), "reloads after ComfyUI unloaded it"


def test_score_images_any_protocol_object(rt):
    class OnlyScore:
        def score(self, images, prompts):
            self.seen = (images.dtype, images.device, list(prompts))
            return images.mean(dim=(1, 2, 3)).double()

    class Declares(OnlyScore):
        dtype = torch.bfloat16
        prompt = "from attribute"

    images = torch.rand(3, 8, 8, 3)
    plain = OnlyScore()
    out = rt.score_images(plain, images)
    assert out.dtype == torch.float32 and plain.seen == (torch.float32, torch.device("cpu"), ["", "", ""])
    declared = Declares()
    rt.score_images(declared, images)
    assert declared.seen[0] == torch.bfloat16 and declared.seen[2] == ["from attribute"] * 3
    assert not rt.reward_accepts_video(plain)
    with pytest.raises(ValueError, match="image-only"):
        rt.score_images(plain, torch.rand(2, 3, 8, 8, 3))


def test_scoring_outside_inference_mode(rt, rn, rewards_dir):
    """Loaded inside a node (inference mode), scored by an engine that may run outside it."""
    reward = load(rn, "hpsv2")
    images = rf.images(torch.Generator().manual_seed(4), b=2)
    with torch.inference_mode(False):
        assert rt.score_images(reward, images.clone()).shape == (2,)


def test_bad_scores_shape_is_reported(rt):
    class Wrong:
        name = "wrong"

        def score(self, images, prompts):
            return torch.zeros(images.shape[0] + 1)

    with pytest.raises(ValueError, match=r"wrong returned scores of shape \(4,\), expected \(3,\)"):
        rt.score_images(Wrong(), torch.rand(3, 4, 4, 3))


# ------------------------------------------------------------------------------------------------ Combine + Score


def test_combine_and_score_images(rn, rt, rewards_dir):
    clip = load(rn, "clipscore", prompt="a cat")
    colour = load(rn, "colorfulness")
    combined = run(
        rn.EvoSearchCombineRewards,
        reward_1=clip,
        weight_1=1.0,
        reward_2=colour,
        weight_2=0.5,
        weight_3=1.0,
        weight_4=1.0,
        normalization="rank",
        guard_floor=0.2,
    ).args[0]
    assert combined.batch_relative and combined.prompt == "a cat"
    images = rf.images(torch.Generator().manual_seed(5), b=5)
    out = run(rn.EvoSearchScoreImages, images=images, reward=combined, top_k=2)
    scores, ranked, top, table = out.args
    assert len(scores) == 5 and ranked.shape == images.shape and top.shape == (2, *images.shape[1:])
    order = sorted(range(5), key=lambda i: -scores[i])
    assert torch.equal(ranked, images[order]) and torch.equal(top, images[order[:2]])
    assert "rank" in table and table.count("*") == 2
    assert out.ui is not None


def test_guard_in_node(rn, rewards_dir):
    colour = load(rn, "colorfulness")
    guard = load(rn, "colorfulness")
    node = run(
        rn.EvoSearchCombineRewards,
        reward_1=colour,
        weight_1=1.0,
        weight_2=1.0,
        weight_3=1.0,
        weight_4=1.0,
        normalization="raw",
        guard=guard,
        guard_floor=1e6,
    ).args[0]
    assert (node.score(rf.images(torch.Generator().manual_seed(6), b=2)) < -999).all()


def test_score_images_videos(rn, rewards_dir):
    reward = load(rn, "clipscore", video_frames=2)
    frames = rf.images(torch.Generator().manual_seed(7), b=12, h=32, w=40)  # 3 videos × 4 frames, as VAE Decode gives
    scores, ranked, top, _ = run(rn.EvoSearchScoreImages, images=frames, reward=reward, top_k=1, video_length=4).args
    assert len(scores) == 3 and ranked.shape == frames.shape and top.shape == (4, 32, 40, 3)
    best = max(range(3), key=lambda i: scores[i])
    assert torch.equal(top, frames[4 * best : 4 * best + 4])
    with pytest.raises(ValueError, match="whole number of videos"):
        run(rn.EvoSearchScoreImages, images=frames, reward=reward, top_k=1, video_length=5)


def test_nodes_through_the_executor(pack, rn, rewards_dir):
    """Load → Combine → Score Images as an API graph through ComfyUI's validation and executor."""
    import execution

    import nodes

    for node in rn.NODES:
        nodes.NODE_CLASS_MAPPINGS.setdefault(node.GET_SCHEMA().node_id, node)

    class Server:
        client_id, last_node_id, last_prompt_id, sockets_metadata = None, None, None, {}

        def send_sync(self, *args, **kwargs):
            pass

        def queue_updated(self):
            pass

    prompt = {
        "1": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 40, "batch_size": 2, "color": 0xFF2010}},
        "2": {"class_type": "EmptyImage", "inputs": {"width": 48, "height": 40, "batch_size": 1, "color": 0x808080}},
        "3": {"class_type": "ImageBatch", "inputs": {"image1": ["1", 0], "image2": ["2", 0]}},
        "4": {
            "class_type": "EvoSearchLoadReward",
            "inputs": {"kind": "colorfulness", "model": "auto", "dtype": "auto", "prompt": "x"},
        },
        "5": {
            "class_type": "EvoSearchLoadReward",
            "inputs": {"kind": "clipscore", "model": "clipscore/ViT-L-14.pt", "dtype": "fp32", "prompt": "x"},
        },
        "6": {
            "class_type": "EvoSearchCombineRewards",
            "inputs": {
                "reward_1": ["4", 0],
                "weight_1": 1.0,
                "reward_2": ["5", 0],
                "weight_2": 0.0,
                "weight_3": 1.0,
                "weight_4": 1.0,
                "normalization": "raw",
                "guard_floor": 0.2,
            },
        },
        "7": {"class_type": "EvoSearchScoreImages", "inputs": {"images": ["3", 0], "reward": ["6", 0], "top_k": 1}},
    }
    valid = asyncio.run(execution.validate_prompt("p1", prompt, None))
    assert valid[0], valid
    executor = module("nodes.compat").make_prompt_executor(Server(), "CLASSIC")
    executor.execute(prompt, "p1", {}, valid[2])
    assert executor.success, executor.status_messages
    table = executor.history_result["outputs"]["7"]["text"][0]
    assert table.splitlines()[2].split()[1] == "0"  # the saturated red image ranks first
