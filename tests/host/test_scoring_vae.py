"""The optional ``scoring_vae`` of the EvoSearch samplers (issue 13), on the shipped digit demo and its TAESD decoder.

* Every candidate the reward scores is decoded by the scoring VAE and none by the main VAE (spies on both), previews
  included, while the returned LATENT is what it is without one (same keys, shape, dtype, latent space).
* The report attributes decode seconds to the decoder: a scoring VAE that takes a known time per call shows up in
  ``decode_seconds``, not in ``model_seconds`` or ``reward_seconds``.
* The shipped ``assets/demo/taesd_digits.safetensors`` loads through ``comfy.sd.VAE`` as ComfyUI's TAESD and decodes
  demo samples to images that the digit reward scores close to the full decode.
"""

from __future__ import annotations

import json
import time

import pytest
import torch
from support.nodes import clone_node, module, run_node

STEPS = 6
SMALL = {"mode": "custom", "evolution_steps": (0, 3, 4), "population": (4, 2, 2, 2)}  # 10 decodes of finished samples

#: Floors for the shipped TAESD against the full demo VAE on the 32 samples :func:`samples` draws (seed 123), under the
#: `digit` reward, target 3. Measured on this set (one CPU thread, torch 2.14.1): Spearman ρ 0.993, mean |Δ score|
#: 0.111, the same best sample. For scale, on the same set: a random-weight TAESD gives ρ 0.44 and |Δ| 2.96; the
#: shipped decode shifted by one pixel at the reward's 32² gives ρ 0.982, |Δ| 0.21, by two pixels ρ 0.958, |Δ| 0.34.
#: The floors admit about one pixel of misregistration (room for other kernels' rounding and a decoder re-trained
#: with another torch), not two.
MIN_SPEARMAN = 0.97
MAX_MEAN_ABS_GAP = 0.25


class SpyVAE:
    """A VAE that records every ``decode`` (batch shapes) and optionally sleeps ``delay`` seconds per call."""

    def __init__(self, inner: object, delay: float = 0.0) -> None:
        self.inner = inner
        self.delay = delay
        self.calls: list[tuple[int, ...]] = []

    def decode(self, samples: torch.Tensor, *args: object, **kwargs: object) -> torch.Tensor:
        self.calls.append(tuple(samples.shape))
        if self.delay:
            time.sleep(self.delay)
        return self.inner.decode(samples, *args, **kwargs)

    @property
    def decoded(self) -> int:
        return sum(shape[0] for shape in self.calls)

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


class RecordingReward:
    """The demo reward, recording the image shapes it is given."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.shapes: list[tuple[int, ...]] = []

    def score(self, images: torch.Tensor, prompts: object = None) -> torch.Tensor:
        self.shapes.append(tuple(images.shape))
        return self.inner.score(images, prompts)

    def modules(self) -> list:
        return self.inner.modules()


@pytest.fixture(scope="module")
def demo(pack):
    demo_nodes = module("nodes.demo_nodes")
    node = clone_node(demo_nodes.EvoSearchDemoModel, "1")
    return node.execute(batch_size=1, target_digit=3, reward_kind="digit").result


@pytest.fixture(scope="module")
def taesd(pack):
    return module("nodes.demo_model").load_demo_taesd()


def _ksampler(demo, reward, vae, scoring_vae=None, seed=5):
    sn = module("nodes.sampler_nodes")
    es = module("evosearch")
    model, _vae, positive, negative, latent, _reward = demo
    return run_node(
        sn.EvoSearchKSampler, model=model, positive=positive, negative=negative, latent_image=latent, reward=reward,
        seed=seed, steps=STEPS, cfg=1.0, sampler_name="euler_ancestral", scheduler="normal", denoise=1.0,
        chunk_size=0, vae=vae, schedule=es.ScheduleSpec(**SMALL), mutation=None, scoring_vae=scoring_vae,
    )  # fmt: skip


def test_every_candidate_is_decoded_by_the_scoring_vae_only(demo, taesd):
    vae, reward = demo[1], demo[5]
    main, scoring = SpyVAE(vae), SpyVAE(taesd)
    recording = RecordingReward(reward)
    best, population, scores, report, _ = _ksampler(demo, recording, main, scoring)
    rep = json.loads(report)
    assert main.calls == [], "the main VAE must not decode any candidate when a scoring VAE is connected"
    assert scoring.decoded == rep["decodes"] == rep["reward_calls"] == 10
    assert all(shape[1:] == (4, 8, 8) for shape in scoring.calls), "the scoring VAE gets VAE-space demo latents"
    # the TAESD upsamples 8×: the reward saw its 64×64 images, not the main VAE's 32×32
    assert recording.shapes and all(shape[1:] == (64, 64, 3) for shape in recording.shapes)
    assert sum(shape[0] for shape in recording.shapes) == rep["decodes"]

    plain, plain_population, _, plain_report, _ = _ksampler(demo, RecordingReward(reward), SpyVAE(vae))
    assert json.loads(plain_report)["decodes"] == 10
    # the returned LATENT is unchanged in kind: same keys, shape, dtype and device, still a 4×8×8 demo latent
    for got, want in ((best, plain), (population, plain_population)):
        assert got.keys() == want.keys()
        assert got["samples"].shape == want["samples"].shape
        assert got["samples"].dtype == want["samples"].dtype and got["samples"].device == want["samples"].device
    assert best["samples"].shape == (1, 4, 8, 8)
    assert len(scores) == population["samples"].shape[0] == 2
    # ...and it is a VAE-space latent for the user's own VAE: decoding it gives the 32×32 demo image
    assert vae.decode(best["samples"]).shape == (1, 32, 32, 3)
    # the reward scored the returned sample through the scoring VAE: the node's best reward is its TAESD score
    assert rep["best_rewards"][0] == pytest.approx(float(reward.score(taesd.decode(best["samples"]))[0]), abs=1e-4)


def test_previews_also_use_the_scoring_vae(demo, taesd, monkeypatch):
    """With live previews on (a non-TAESD previewer: the best sample is decoded for them), the main VAE stays idle."""
    import comfy.latent_formats
    import latent_preview

    fmt = comfy.latent_formats.SD15()
    monkeypatch.setattr(latent_preview, "get_previewer", lambda *a, **k: latent_preview.Latent2RGBPreviewer(
        fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias))  # fmt: skip
    main, scoring = SpyVAE(demo[1]), SpyVAE(taesd)
    _, _, _, report, _ = _ksampler(demo, demo[5], main, scoring)
    assert main.calls == []
    assert scoring.decoded > json.loads(report)["decodes"], "the preview decoded the best with the scoring VAE"


def test_decode_seconds_are_attributed_to_the_decoder(demo, taesd):
    delay = 0.05
    scoring = SpyVAE(taesd, delay=delay)
    _, _, _, report, _ = _ksampler(demo, demo[5], SpyVAE(demo[1]), scoring)
    rep = json.loads(report)
    slept = delay * len(scoring.calls)
    assert len(scoring.calls) >= 2
    assert rep["decode_seconds"] >= slept, "the scoring VAE's time is decode time"
    assert rep["reward_seconds"] < slept and rep["model_seconds"] < rep["seconds"] - slept + 0.01
    parts = rep["model_seconds"] + rep["decode_seconds"] + rep["reward_seconds"]
    assert parts == pytest.approx(rep["seconds"], abs=0.005), "model + decode + reward = total"


def test_sampler_node_hands_the_scoring_vae_to_the_search(demo, taesd):
    sn = module("nodes.sampler_nodes")
    sampler, runs = run_node(sn.EvoSearchSampler, vae=demo[1], reward=demo[5], sampler_name="euler_ancestral",
                             chunk_size=0, scoring_vae=taesd)  # fmt: skip
    assert sampler.scoring_vae is taesd and sampler.vae is demo[1] and len(runs) == 0


# ------------------------------------------------------------------------------------------- the shipped TAESD file
@pytest.fixture(scope="module")
def samples(demo):
    """32 demo samples (VAE space) from ComfyUI's sampler with the recommended settings, seed 123."""
    import comfy.sample

    model, _vae, positive, negative, _latent, _reward = demo
    latent = module("nodes.demo_model").empty_latent(32)["samples"]
    noise = comfy.sample.prepare_noise(latent, 123)
    return comfy.sample.sample(model, noise, 20, 1.0, "dpmpp_2m_sde", "karras", positive, negative, latent, seed=123,
                               disable_pbar=True)  # fmt: skip


def test_shipped_taesd_loads_as_comfyui_taesd(taesd):
    import comfy.latent_formats
    import comfy.taesd.taesd
    import comfy.utils

    demo_model = module("nodes.demo_model")
    sd = comfy.utils.load_torch_file(str(demo_model.DEMO_DIR / demo_model.TAESD_FILE))
    assert "taesd_decoder.1.weight" in sd, "the key ComfyUI's VAE detection reads"
    assert not any(k.startswith("taesd_encoder.") for k in sd), "decoder only"
    assert isinstance(taesd.first_stage_model, comfy.taesd.taesd.TAESD)
    assert taesd.latent_channels == 4 and taesd.upscale_ratio == 8
    assert float(taesd.first_stage_model.vae_scale) == pytest.approx(comfy.latent_formats.SD15().scale_factor)
    assert float(taesd.first_stage_model.vae_shift) == 0.0


def test_shipped_taesd_scores_close_to_the_full_decode(demo, taesd, samples):
    stats = module("bench.ranking")
    vae, reward = demo[1], demo[5]
    full, fast = vae.decode(samples), taesd.decode(samples)
    assert full.shape == (32, 32, 32, 3) and fast.shape == (32, 64, 64, 3)
    assert 0.0 <= float(fast.min()) and float(fast.max()) <= 1.0
    a, b = reward.score(full), reward.score(fast)
    rho = stats.spearman(a, b)
    gap = float((a - b).abs().mean())
    assert rho >= MIN_SPEARMAN, f"Spearman ρ {rho:.3f} < {MIN_SPEARMAN}"
    assert gap <= MAX_MEAN_ABS_GAP, f"mean |Δ score| {gap:.3f} > {MAX_MEAN_ABS_GAP}"
    assert stats.top1_hit(a, b)[1] <= 1, "the TAESD's best is the full decode's best or second best"


def test_a_scoring_vae_of_another_family_is_refused_by_name(pack, taesd):
    """A 4-channel TAESD on a 16-channel (Flux) model: a clear error naming the node and scoring_vae, before any
    sampling, instead of a convolution shape error inside the first decode."""
    from support.tiny_models import build

    sn = module("nodes.sampler_nodes")
    es = module("evosearch")
    flux = build("flux")
    with pytest.raises(ValueError, match=r"EvoSearch KSampler: scoring_vae decodes 4-channel image latents but this "
                                         r"model's latents are 16-channel"):  # fmt: skip
        run_node(sn.EvoSearchKSampler, model=flux.model, positive=flux.positive, negative=flux.negative,
                 latent_image=flux.empty_latent(1), reward=module("rewards").Colorfulness(), seed=0, steps=STEPS,
                 cfg=1.0, sampler_name="euler_ancestral", scheduler="normal", denoise=1.0, chunk_size=0,
                 vae=flux.vae, schedule=es.ScheduleSpec(**SMALL), mutation=None, scoring_vae=SpyVAE(taesd))  # fmt: skip
