"""The EvoSearch KSampler on tiny models of the newer families: Wan 2.2 TI2V 5B, Qwen-Image, HunyuanVideo, LTXV,
SD3.5-style MMDiT, Chroma, HiDream (tests/support/tiny_models.py, ComfyUI's own classes).

Per family: output shapes, determinism across chunk sizes, NFE accounting against the model calls actually made,
img2img, inpainting (a masked region, or the TI2V / i2v first frame for the video models), a frame-sampled video reward
on the video models, and the latent sizes of the 16×/32× VAEs.
"""

from __future__ import annotations

import json

import pytest
import torch
from support.newer_comfy import newer_fix_empty_latent_channels, newer_samplings
from support.nodes import module, per_row_model, run_node
from support.tiny_models import NEW_ARCHITECTURES, VIDEO_ARCHITECTURES, build

STEPS = 6
SMALL = dict(mode="custom", evolution_steps=(0, 3, 4), population=(4, 2, 2, 2))  # 46 NFE, 10 decodes at 6 steps
IMAGE_FAMILIES = tuple(a for a in NEW_ARCHITECTURES if a not in VIDEO_ARCHITECTURES)
VIDEO_FAMILIES = tuple(a for a in NEW_ARCHITECTURES if a in VIDEO_ARCHITECTURES)
#: Pixel frames per latent frame count and pixels per latent pixel of each family's VAE.
DECODE = {"wan22_5b": (lambda t: 4 * (t - 1) + 1, 16), "hunyuan_video": (lambda t: 4 * (t - 1) + 1, 8),
          "ltxv": (lambda t: 8 * (t - 1) + 1, 32), "qwen_image": (lambda t: t, 8)}  # fmt: skip


@pytest.fixture(scope="module")
def tiny(pack):
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = build(name)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def es(pack):
    return module("evosearch")


@pytest.fixture(scope="module")
def sn(pack):
    return module("nodes.sampler_nodes")


class Recording:
    """Wraps a reward and records the shape of every batch it scores."""

    def __init__(self, inner: object, accepts_video: bool) -> None:
        self.inner = inner
        self.accepts_video = accepts_video
        self.shapes: list[tuple[int, ...]] = []

    def score(self, images, prompts):  # noqa: ANN001
        self.shapes.append(tuple(images.shape))
        return self.inner.score(images, prompts)


def colorfulness():
    return module("rewards").Colorfulness()


def counting(model: object) -> tuple[object, list[int]]:
    """A clone of ``model`` run one row at a time (batch-invariant) that counts the rows the diffusion model sees."""
    rows: list[int] = []
    clone = per_row_model(model)
    inner = clone.model_options["model_function_wrapper"]

    def count(apply, args):  # noqa: ANN001 - ComfyUI's unet wrapper signature
        rows.append(int(args["input"].shape[0]))
        return inner(apply, args)

    clone.set_model_unet_function_wrapper(count)
    return clone, rows


def ksampler(sn, bundle, reward, *, schedule, seed=3, chunk_size=0, model=None, latent=None, denoise=1.0, cfg=2.0):
    return run_node(
        sn.EvoSearchKSampler, model=model or bundle.model, positive=bundle.positive, negative=bundle.negative,
        latent_image=latent or bundle.empty_latent(1), reward=reward, seed=seed, steps=STEPS, cfg=cfg,
        sampler_name="euler_ancestral", scheduler="normal", denoise=denoise, chunk_size=chunk_size, vae=bundle.vae,
        schedule=schedule, mutation=None,
    )  # fmt: skip


@pytest.mark.parametrize("arch", NEW_ARCHITECTURES)
def test_shapes_nfe_and_chunk_invariance(pack, tiny, es, sn, arch):
    bundle = tiny(arch)
    spec = es.ScheduleSpec(**SMALL)
    planned = spec.resolve(STEPS).nfe(STEPS)
    runs, rows = [], []
    for chunk in (1, 3):
        model, seen = counting(bundle.model)
        reward = Recording(colorfulness(), accepts_video=True)
        runs.append(ksampler(sn, bundle, reward, schedule=spec, chunk_size=chunk, model=model))
        rows.append(seen)
        report = json.loads(runs[-1][3])
        assert report["nfe"] == planned == 46, "the report's NFE is the planned budget"
        assert sum(seen) == 2 * planned, "each NFE is one cond + one uncond row through the diffusion model (cfg 2)"
        want_dims = 5 if bundle.video else 4
        kind = "videos" if bundle.video else "images"
        assert all(len(s) == want_dims for s in reward.shapes), f"{arch} must be scored as {kind}"
    latent = bundle.empty_latent(1)["samples"]
    best, population, scores, *_ = runs[0]
    assert best["samples"].shape == latent.shape and torch.isfinite(best["samples"]).all()
    assert population["samples"].shape == (2, *latent.shape[1:]) and len(scores) == 2
    assert max(rows[0]) == 2 and max(rows[1]) == 6, "chunk_size individuals (cond + uncond rows) per model call"
    for other in runs[1:]:
        assert torch.equal(other[0]["samples"], best["samples"]), "results do not depend on the chunk size"
        assert torch.equal(other[1]["samples"], population["samples"])


@pytest.mark.parametrize("arch", IMAGE_FAMILIES)
def test_image_families_work_with_image_only_rewards(pack, tiny, es, sn, arch):
    """Qwen-Image latents are 5-D with one frame (Wan 2.1's format): they must be scored as still images."""
    bundle = tiny(arch)
    reward = Recording(colorfulness(), accepts_video=False)
    best, *_ = ksampler(sn, bundle, reward, schedule=es.ScheduleSpec(**SMALL))
    assert best["samples"].shape == bundle.empty_latent(1)["samples"].shape
    assert reward.shapes and all(len(s) == 4 and s[-1] == 3 for s in reward.shapes)
    if arch in DECODE:
        frames, ratio = DECODE[arch]
        assert reward.shapes[0][1:3] == (ratio * best["samples"].shape[-2], ratio * best["samples"].shape[-1])


@pytest.mark.parametrize("arch", NEW_ARCHITECTURES)
def test_img2img(pack, tiny, es, sn, arch):
    bundle = tiny(arch)
    shape = bundle.empty_latent(1)["samples"].shape
    source = {"samples": torch.randn(shape, generator=torch.Generator().manual_seed(0))}
    best, _, _, report, _ = ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL), latent=source,
                                     denoise=0.5)  # fmt: skip
    assert json.loads(report)["nfe"] == 46
    assert best["samples"].shape == shape and torch.isfinite(best["samples"]).all()
    assert not torch.equal(best["samples"], source["samples"])


@pytest.mark.parametrize("arch", IMAGE_FAMILIES)
def test_inpainting_keeps_the_unmasked_half(pack, tiny, es, sn, arch):
    bundle = tiny(arch)
    shape = bundle.empty_latent(1)["samples"].shape
    source = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    mask = torch.zeros((1, *shape[-2:]))
    mask[..., shape[-1] // 2 :] = 1.0  # repaint the right half only
    best, population, *_ = ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL),
                                    latent={"samples": source, "noise_mask": mask})  # fmt: skip
    half = shape[-1] // 2
    assert torch.allclose(best["samples"][..., :half], source[..., :half], atol=1e-4)
    assert torch.allclose(population["samples"][..., :half], source.expand(2, *shape[1:])[..., :half], atol=1e-4)
    assert not torch.allclose(best["samples"][..., half:], source[..., half:], atol=1e-2)


@pytest.mark.parametrize("arch", VIDEO_FAMILIES)
def test_image_to_video_keeps_the_first_frame(pack, tiny, es, sn, arch):
    """TI2V / i2v as Wan22ImageToVideoLatent builds it: the first latent frame given and masked out (mask 0)."""
    bundle = tiny(arch)
    shape = bundle.empty_latent(1)["samples"].shape
    source = torch.zeros(shape)
    source[:, :, :1] = torch.randn((1, shape[1], 1, *shape[-2:]), generator=torch.Generator().manual_seed(2))
    mask = torch.ones((1, 1, *shape[2:]))
    mask[:, :, :1] = 0.0
    best, population, *_ = ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL),
                                    latent={"samples": source, "noise_mask": mask})  # fmt: skip
    assert torch.allclose(best["samples"][:, :, :1], source[:, :, :1], atol=1e-4)
    assert torch.allclose(population["samples"][:, :, :1], source[:, :, :1].expand(2, -1, -1, -1, -1), atol=1e-4)
    assert not torch.allclose(best["samples"][:, :, 1:], source[:, :, 1:], atol=1e-2)


@pytest.mark.parametrize("arch", VIDEO_FAMILIES)
def test_frame_sampled_video_reward(pack, tiny, es, sn, arch):
    bundle = tiny(arch)
    frames, ratio = DECODE[arch]
    inner = Recording(colorfulness(), accepts_video=False)
    reward = module("rewards").FrameSampled(inner, frames=3, aggregate="mean_minus_std", lam=0.5)
    best, _, scores, report, _ = ksampler(sn, bundle, reward, schedule=es.ScheduleSpec(**SMALL))
    t, h, w = best["samples"].shape[2:]
    decoded = (frames(t), ratio * h, ratio * w)
    rep = json.loads(report)
    assert rep["decodes"] == rep["reward_calls"] == 10
    assert sum(s[0] for s in inner.shapes) == 3 * 10, "3 frames of each of the 10 decoded videos"
    assert all(s[1:] == (*decoded[1:], 3) for s in inner.shapes)
    vae_frames = bundle.vae.decode(bundle.model.model.process_latent_out(best["samples"])).shape[1]
    assert vae_frames == decoded[0] > 3
    assert rep["best_rewards"][0] >= scores[0]


def test_wan22_ti2v_latent_from_its_own_node(pack, tiny, es, sn):
    """Wan22ImageToVideoLatent (v0.3.64) sizes the 48-channel latent for the 16× Wan 2.2 VAE; the search keeps it."""
    from comfy_extras.nodes_wan import Wan22ImageToVideoLatent

    bundle = tiny("wan22_5b")
    assert bundle.vae.latent_channels == 48 and bundle.vae.spacial_compression_decode() == 16
    (latent,) = Wan22ImageToVideoLatent.execute(vae=bundle.vae, width=64, height=32, length=5, batch_size=1).result
    assert latent["samples"].shape == (1, 48, 2, 2, 4)
    best, *_ = ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL), latent=latent)
    assert best["samples"].shape == (1, 48, 2, 2, 4)
    video = bundle.vae.decode(bundle.model.model.process_latent_out(best["samples"]))
    assert video.shape == (1, 5, 32, 64, 3)


def test_newer_empty_latent_image_is_resized_for_wan22(pack, tiny, es, sn, monkeypatch):
    """Newer ComfyUI: EmptyLatentImage carries ``downscale_ratio_spacial: 8`` (nodes.py@5aabaf51) and
    ``fix_empty_latent_channels`` resizes it to Wan 2.2's 16× (latent_formats.py@9a9a69fd); outputs drop the key."""
    import comfy.sample

    bundle = tiny("wan22_5b")
    monkeypatch.setattr(comfy.sample, "fix_empty_latent_channels", newer_fix_empty_latent_channels)
    monkeypatch.setattr(bundle.model.get_model_object("latent_format"), "spacial_downscale_ratio", 16, raising=False)
    empty = {"samples": torch.zeros((1, 4, 4, 4)), "downscale_ratio_spacial": 8}  # a 32×32 EmptyLatentImage
    best, population, *_ = ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL), latent=empty)
    assert best["samples"].shape == (1, 48, 1, 2, 2), "a 32×32 image is a 2×2 latent at 16×"
    assert population["samples"].shape == (2, 48, 1, 2, 2)
    assert "downscale_ratio_spacial" not in best and "downscale_ratio_spacial" not in population


def test_sampling_that_ignores_the_initial_noise_is_reported(pack, tiny, es, sn):
    """Newer IMG_TO_IMG_FLOW (comfy/model_sampling.py@38a99a82) discards the initial noise: the node says so."""
    flow, _, img_to_img_flow, _ = newer_samplings()
    bundle = tiny("chroma")
    model = bundle.model.clone()
    model.add_object_patch("model_sampling", flow(img_to_img_flow))
    source = {"samples": torch.randn((1, 16, 8, 8), generator=torch.Generator().manual_seed(5))}
    report = json.loads(ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL), model=model,
                                 latent=source)[3])  # fmt: skip
    assert any("ignores the initial noise" in w for w in report["warnings"]), report["warnings"]
    plain = json.loads(ksampler(sn, bundle, colorfulness(), schedule=es.ScheduleSpec(**SMALL), latent=source)[3])
    assert not any("initial noise" in w for w in plain["warnings"])
