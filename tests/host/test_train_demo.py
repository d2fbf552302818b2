"""tools/train_demo.py runs end to end with a token budget, writes loadable files, and is deterministic."""

from __future__ import annotations

import importlib

import pytest
import torch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def train_demo(pack):
    pytest.importorskip("sklearn", reason="the demo trains on scikit-learn's bundled digits")
    return importlib.import_module("evosearch_pack.tools.train_demo")


def _tensors(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_quick_training_writes_a_loadable_demo(train_demo, tmp_path):
    demo_model = importlib.import_module("evosearch_pack.nodes.demo_model")
    digits = importlib.import_module("evosearch_pack.rewards.digits")
    threads = torch.get_num_threads()
    report = train_demo.run(train_demo.QUICK, tmp_path)
    assert torch.get_num_threads() == threads, "run() must restore the thread count"
    for name in (train_demo.UNET_FILE, train_demo.VAE_FILE, train_demo.CLASSIFIER_FILE, train_demo.REPORT_FILE):
        assert (tmp_path / name).is_file(), name
    assert set(report["seconds"]) >= {"classifier", "vae", "unet", "eval", "total"}
    assert report["eval"]["euler_ancestral/normal"]["samples"] == train_demo.QUICK.eval_samples
    bundle = demo_model.load_demo(tmp_path)
    latent = bundle.empty_latent(2)["samples"]
    assert bundle.vae.decode(latent).shape == (2, 32, 32, 3)
    reward = digits.DigitReward.load(tmp_path / train_demo.CLASSIFIER_FILE, target=1, kind="digit_thin")
    assert reward.score(torch.rand(2, 32, 32, 3), None).shape == (2,)


def test_training_is_deterministic(train_demo, tmp_path):
    for run in ("a", "b"):
        train_demo.run(train_demo.QUICK, tmp_path / run, stages=("classifier", "vae"))
    for name in (train_demo.CLASSIFIER_FILE, train_demo.VAE_FILE):
        a, b = _tensors(tmp_path / "a" / name), _tensors(tmp_path / "b" / name)
        assert a.keys() == b.keys()
        for key in a:
            assert torch.equal(a[key], b[key]), f"{name}:{key} differs between two runs with the same seed"


def test_unknown_stage_is_refused(train_demo, tmp_path):
    with pytest.raises(ValueError, match="unknown stages"):
        train_demo.run(train_demo.QUICK, tmp_path, stages=("classifier", "gan"))
