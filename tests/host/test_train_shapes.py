"""tools/train_shapes.py runs end to end with a token budget, writes loadable files, and is deterministic."""

from __future__ import annotations

import importlib

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def train(pack):
    return importlib.import_module("evosearch_pack.tools.train_shapes")


def test_quick_training_writes_a_loadable_model(train, tmp_path):
    shapes_model = importlib.import_module("evosearch_pack.nodes.shapes_model")
    threads = torch.get_num_threads()
    report = train.run(train.QUICK, tmp_path)
    assert torch.get_num_threads() == threads, "run() must restore the thread count"
    for name in (train.UNET_FILE, train.VAE_FILE, train.TEXT_ENCODER_FILE, train.REPORT_FILE, "samples.png"):
        assert (tmp_path / name).is_file(), name
    assert set(report["seconds"]) >= {"vae", "unet", "eval", "total"}
    assert set(report["eval"]["pass_rate"]) == {"single_object", "two_object", "counting", "colors", "position",
                                                "color_attr"}  # fmt: skip
    assert 0 <= report["vae"]["verifier"]["vae_round_trip"]["accuracy"] <= 1
    bundle = shapes_model.load_shapes(tmp_path)
    cond = bundle.encode("a red circle")
    assert cond[0][0].shape == (1, 77, 64)
    assert bundle.vae.decode(bundle.empty_latent(2)["samples"]).shape == (2, 32, 32, 3)


def test_training_is_deterministic(train, tmp_path):
    import dataclasses

    from safetensors.torch import load_file

    cfg = dataclasses.replace(train.QUICK, eval_prompts_per_category=0)
    for run in ("a", "b"):
        train.run(cfg, tmp_path / run, stages=("vae", "unet"))
    for name in (train.VAE_FILE, train.UNET_FILE, train.TEXT_ENCODER_FILE):
        a, b = load_file(str(tmp_path / "a" / name)), load_file(str(tmp_path / "b" / name))
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs between two runs with the same seed"


def test_unknown_stage_is_refused(train, tmp_path):
    with pytest.raises(ValueError, match="unknown stages"):
        train.run(train.QUICK, tmp_path, stages=("vae", "gan"))
