"""Fixtures of the rewards group: tiny reward models in official layouts, built once per session under tmp.

The machine running the suite may be shared: tiny models run fastest on one thread (with two busy cores, OpenMP
spinning makes a 64-wide linear layer 200× slower), so the group runs single-threaded and restores the setting.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from support import reward_fixtures as rf


@pytest.fixture(scope="session", autouse=True)
def _single_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(scope="session")
def reward_root(tmp_path_factory) -> Path:
    """A models/rewards folder holding tiny versions of every built-in kind, in the official layouts."""
    root = tmp_path_factory.mktemp("rewards")
    g = torch.Generator().manual_seed(7)
    sd = rf.imagereward_state(g)
    (root / "imagereward").mkdir()
    torch.save(sd, root / "imagereward" / "ImageReward.pt")
    rf.save_openai_jit(rf.tiny_openclip(g, quick_gelu=True), root / "clipscore" / "ViT-L-14.pt")
    rf.save_openclip(rf.tiny_openclip(g, quick_gelu=False), root / "hpsv2" / "HPS_v2.1_compressed.pt")
    rf.save_hf_folder(rf.tiny_hf_clip(g, hidden_act="gelu"), root / "pickscore" / "PickScore_v1")
    (root / "aesthetic").mkdir()
    torch.save(rf.aesthetic_head_state(g), root / "aesthetic" / "sac+logos+ava1-l14-linearMSE.pth")
    if rf.unavailable("videoreward") is None:
        from support import videoreward_fixtures as vf

        vf.build(root, g)
    if rf.unavailable("vqascore") is None:
        from support import qwen_vl_fixtures as qf

        qf.write_instruct_folder(root / "vqascore" / "Qwen2-VL-2B-Instruct", g)
        qf.build_hpsv3(root, g)
    from support import siglip_fixtures as sf

    sf.build(root, g)
    return root


@pytest.fixture(scope="session")
def tiny_reward(reward_root):
    """``tiny_reward(kind, **options)``: the kind loaded from :func:`reward_root` through ``rewards.load_reward``."""
    from rewards import load_reward

    def make(kind: str, **options):
        return load_reward(kind, roots=[reward_root], **{**rf.tiny_options(kind), **options})

    return make
