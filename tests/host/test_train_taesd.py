"""tools/train_taesd.py and tools/taesd_distill.py: the identity graft is exact, a token-budget run writes a file
ComfyUI loads as TAESD, and training is reproducible from the seed."""

from __future__ import annotations

import importlib

import pytest
import torch


@pytest.fixture(scope="module")
def distill(pack):
    return importlib.import_module("evosearch_pack.tools.taesd_distill")


def test_fast_forward_equals_the_grafted_decoder(distill):
    decoder = distill.new_decoder(4, seed=3)
    with torch.no_grad():  # give the layers the fast stage skips non-identity values first
        for index in distill.IDENTITY_BLOCKS:
            decoder[index].conv[-1].weight.normal_(0, 0.05, generator=torch.Generator().manual_seed(index))
    z = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        before = decoder(z)
        distill.graft_identities(decoder)
        full, fast = decoder(z), distill.fast_forward(decoder, z)
    assert full.shape == (3, 3, 64, 64)
    assert not torch.allclose(before, full), "the graft changed the skipped layers"
    torch.testing.assert_close(full, fast, rtol=0, atol=1e-5)


def test_state_dict_has_the_keys_comfyui_detects(distill):
    import comfy.latent_formats
    import comfy.sd
    import comfy.taesd.taesd

    state = distill.taesd_state_dict(distill.new_decoder(4, seed=0), comfy.latent_formats.SD15())
    vae = comfy.sd.VAE(sd=state)
    assert isinstance(vae.first_stage_model, comfy.taesd.taesd.TAESD)
    assert float(vae.first_stage_model.vae_scale) == pytest.approx(0.18215)


@pytest.mark.slow
def test_quick_run_writes_a_loadable_deterministic_decoder(pack, tmp_path):
    pytest.importorskip("sklearn", reason="the demo latents come from scikit-learn's bundled digits")
    train = importlib.import_module("evosearch_pack.tools.train_taesd")
    demo_model = importlib.import_module("evosearch_pack.nodes.demo_model")
    threads = torch.get_num_threads()
    reports = [train.run(tmp_path / run, quick=True) for run in ("a", "b")]
    assert torch.get_num_threads() == threads, "run() must restore the thread count"
    assert train.TAESD_FILE == demo_model.TAESD_FILE
    assert set(reports[0]["heldout"]) >= {"heldout_digits", "heldout_samples", "reward_agreement"}
    vae = demo_model.load_demo_taesd(tmp_path / "a" / train.TAESD_FILE)
    latent = demo_model.empty_latent(2)["samples"]
    assert vae.decode(latent).shape == (2, 64, 64, 3)
    from safetensors.torch import load_file

    a, b = (load_file(str(tmp_path / run / train.TAESD_FILE)) for run in ("a", "b"))
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), f"{key} differs between two runs with the same seed"
