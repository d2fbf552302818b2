"""The sampling nodes on tiny random-weight models of every supported architecture, in-process (issue 3)."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support.nodes import clone_node, module, per_row_model, run_node
from support.tiny_models import ARCHITECTURES, build

STEPS = 6
SMALL = dict(mode="custom", evolution_steps=(0, 3, 4), population=(4, 2, 2, 2))  # 46 NFE at 6 steps


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


class RecordingReward:
    """Colourfulness that records what it was given (and accepts video)."""

    accepts_video = True

    def __init__(self, pack) -> None:  # noqa: ANN001
        self.inner = module("rewards").Colorfulness()
        self.calls: list[tuple[int, ...]] = []
        self.ranges: list[tuple[float, float]] = []

    def score(self, images, prompts):  # noqa: ANN001
        self.calls.append(tuple(images.shape))
        self.ranges.append((float(images.min()), float(images.max())))
        assert len(prompts) == images.shape[0]
        return self.inner.score(images, prompts)


class ImageOnlyReward:
    def score(self, images, prompts):  # noqa: ANN001
        return images.flatten(1).mean(1)


def ksampler(sn, model_bundle, reward, *, seed=3, schedule=None, mutation=None, chunk_size=0, model=None,
             latent=None, sampler_name="euler_ancestral", denoise=1.0, vae="default", cfg=2.0, top_k=0):  # fmt: skip
    return run_node(
        sn.EvoSearchKSampler, model=model or model_bundle.model, positive=model_bundle.positive,
        negative=model_bundle.negative, latent_image=latent or model_bundle.empty_latent(1), reward=reward, seed=seed,
        steps=STEPS, cfg=cfg, sampler_name=sampler_name, scheduler="normal", denoise=denoise, chunk_size=chunk_size,
        vae=model_bundle.vae if vae == "default" else vae, schedule=schedule, mutation=mutation, top_k=top_k,
    )  # fmt: skip


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_ksampler_searches_every_architecture(pack, tiny, es, sn, arch):
    bundle = tiny(arch)
    spec = es.ScheduleSpec(**SMALL)
    reward = RecordingReward(pack)
    best, population, scores, report, plot = ksampler(sn, bundle, reward, schedule=spec)
    latent = bundle.empty_latent(1)["samples"]
    assert best["samples"].shape == (1, *latent.shape[1:]) and torch.isfinite(best["samples"]).all()
    assert population["samples"].shape == (2, *latent.shape[1:])
    assert len(scores) == 2 and scores[0] >= scores[1]
    rep = json.loads(report)
    schedule = spec.resolve(STEPS)
    assert rep["nfe"] == schedule.nfe(STEPS) == 46
    assert rep["decodes"] == rep["reward_calls"] == sum(schedule.population) == 10
    assert rep["searches"][0]["history"][-1]["nfe"] == 46
    assert plot.shape[0] == 1 and plot.shape[-1] == 3 and 0 <= float(plot.min()) <= float(plot.max()) <= 1
    # the reward saw decoded pixels: [B,H,W,3] stills, [B,T,H,W,3] for Wan, in 0..1
    assert all(len(shape) == (5 if bundle.video else 4) and shape[-1] == 3 for shape in reward.calls)
    assert all(0.0 <= lo and hi <= 1.0 for lo, hi in reward.ranges)
    assert rep["best_rewards"][0] >= scores[0], "the best ever scored is at least the final population's best"
    again = ksampler(sn, bundle, RecordingReward(pack), schedule=spec)
    assert torch.equal(again[0]["samples"], best["samples"]), "same seed must reproduce the result"


def test_results_do_not_depend_on_chunk_size(pack, tiny, es, sn):
    bundle = tiny("flux")
    model = per_row_model(bundle.model)  # removes the kernels' own batch-size rounding; the pack must add none
    spec = es.ScheduleSpec(mode="custom", evolution_steps=(0, 3, 4), population=(5, 3, 3, 3))
    runs = [
        ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=spec, chunk_size=c, model=model)
        for c in (0, 1, 2)
    ]
    for other in runs[1:]:
        assert torch.equal(other[0]["samples"], runs[0][0]["samples"])
        assert torch.equal(other[1]["samples"], runs[0][1]["samples"])
        # the VAE decode and the reward also batch by chunk, so scores agree to their own rounding only
        assert other[2] == pytest.approx(runs[0][2], rel=1e-5)


def test_different_seeds_differ(pack, tiny, es, sn):
    bundle = tiny("sd15")
    spec = es.ScheduleSpec(**SMALL)
    a = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=spec, seed=1)
    b = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=spec, seed=2)
    assert not torch.equal(a[0]["samples"], b[0]["samples"])


def test_best_of_n_and_particles_at_the_same_budget(pack, tiny, es, sn):
    bundle = tiny("sd21v")
    evo = es.ScheduleSpec(**SMALL)
    budget = evo.resolve(STEPS).nfe(STEPS)
    bon = es.ScheduleSpec(**SMALL, strategy="best_of_n")
    _, population, scores, report, _ = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=bon)
    rep = json.loads(report)
    n = budget // STEPS
    assert rep["method"] == "best_of_n" and rep["nfe"] == n * STEPS and rep["reward_calls"] == n
    assert population["samples"].shape[0] == n and scores == sorted(scores, reverse=True)
    particles = es.ScheduleSpec(**SMALL, strategy="particles")
    rep = json.loads(ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=particles)[3])
    assert rep["method"] == "particles" and rep["nfe"] == n * STEPS
    assert rep["reward_calls"] == n * 3  # x0 predictions at the 2 resampling steps, then the final samples


@pytest.mark.parametrize("arch", ARCHITECTURES)
def test_sampler_node_inside_sampler_custom_advanced(pack, tiny, es, sn, arch):
    import comfy_extras.nodes_custom_sampler as custom

    bundle = tiny(arch)
    sampler, run = run_node(sn.EvoSearchSampler, reward=module("rewards").Colorfulness(), sampler_name="euler_ancestral",
                            chunk_size=0, vae=bundle.vae, schedule=es.ScheduleSpec(**SMALL))  # fmt: skip
    guider = custom.CFGGuider().get_guider(bundle.model, bundle.positive, bundle.negative, 2.0)[0]
    sigmas = custom.BasicScheduler().get_sigmas(bundle.model, "simple", STEPS, 1.0)[0]

    def sample(seed):
        noise = custom.RandomNoise().get_noise(seed)[0]
        return custom.SamplerCustomAdvanced().sample(noise, guider, sampler, sigmas, bundle.empty_latent(1))

    out, denoised = sample(7)
    assert out["samples"].shape == bundle.empty_latent(1)["samples"].shape
    assert torch.allclose(out["samples"], denoised["samples"], atol=1e-5), "denoised_output is the best x0"
    population, scores, report, plot = run_node(sn.EvoSearchResults, run=run, latent=out)
    rep = json.loads(report)
    assert rep["nfe"] == 46 and rep["searches"][0]["seed"] == 7, "the seed comes from the NOISE input"
    assert population["samples"].shape[0] == 2 and len(scores) == 2
    assert torch.equal(sample(7)[0]["samples"], out["samples"])
    assert not torch.equal(sample(8)[0]["samples"], out["samples"])


def test_deterministic_sampler_is_swapped_with_a_warning(pack, tiny, es, sn, caplog):
    bundle = tiny("sd15")
    rep = json.loads(ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=es.ScheduleSpec(**SMALL),
                              sampler_name="euler")[3])  # fmt: skip
    assert rep["sampler"] == "euler_ancestral"
    assert any("deterministic" in w and "euler_ancestral" in w for w in rep["warnings"])
    assert "deterministic" in caplog.text
    noise_only = es.ScheduleSpec(mode="custom", evolution_steps=(0,), population=(3, 3))
    rep = json.loads(
        ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=noise_only, sampler_name="euler")[3]
    )
    assert rep["sampler"] == "euler" and not rep["warnings"], "x_T-only schedules keep a deterministic sampler"


def test_img2img_with_denoise_below_one(pack, tiny, es, sn):
    bundle = tiny("sd15")
    source = {"samples": torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(0))}
    best, _, _, report, _ = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=es.ScheduleSpec(**SMALL),
                                     latent=source, denoise=0.5)  # fmt: skip
    assert json.loads(report)["nfe"] == 46
    assert best["samples"].shape == source["samples"].shape and not torch.equal(best["samples"], source["samples"])


def test_inpainting_keeps_the_unmasked_region(pack, tiny, es, sn):
    bundle = tiny("sd15")
    source = torch.randn((1, 4, 8, 8), generator=torch.Generator().manual_seed(1))
    mask = torch.zeros((1, 8, 8))
    mask[:, :, 4:] = 1.0  # repaint the right half only
    best, population, *_ = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=es.ScheduleSpec(**SMALL),
                                    latent={"samples": source, "noise_mask": mask})  # fmt: skip
    assert torch.allclose(best["samples"][..., :4], source[..., :4], atol=1e-4)
    assert torch.allclose(population["samples"][..., :4], source.expand(2, -1, -1, -1)[..., :4], atol=1e-4)
    assert not torch.allclose(best["samples"][..., 4:], source[..., 4:], atol=1e-2)


def test_interrupt_stops_within_one_model_call(pack, tiny, es, sn):
    import comfy.model_management as mm

    bundle = tiny("sd15")
    calls = []
    model = bundle.model.clone()
    model.set_model_unet_function_wrapper(
        lambda apply, args: (calls.append(1), apply(args["input"], args["timestep"], **args["c"]))[1]
    )

    class Interrupting:
        def score(self, images, prompts):  # noqa: ANN001
            mm.interrupt_current_processing(True)
            calls.append("interrupt")
            return images.flatten(1).mean(1)

    try:
        with pytest.raises(mm.InterruptProcessingException):
            ksampler(sn, bundle, Interrupting(), schedule=es.ScheduleSpec(**SMALL), model=model)
    finally:
        mm.interrupt_current_processing(False)
    assert calls.index("interrupt") == len(calls) - 1, "no model call may run after the interrupt"


def test_out_of_memory_halves_the_chunk(pack, tiny, es, sn):
    bundle = tiny("flux")
    reference = per_row_model(bundle.model)
    fragile = per_row_model(bundle.model)
    inner = fragile.model_options["model_function_wrapper"]

    def oom_above_one(apply, args):  # noqa: ANN001 - cond and uncond of one individual = 2 rows
        if args["input"].shape[0] > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return inner(apply, args)

    fragile.set_model_unet_function_wrapper(oom_above_one)
    spec = es.ScheduleSpec(**SMALL)
    got = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=spec, model=fragile, chunk_size=4)
    want = ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=spec, model=reference, chunk_size=1)
    assert torch.equal(got[0]["samples"], want[0]["samples"])
    assert json.loads(got[3])["searches"][0]["oom_retries"] == 2


@pytest.mark.parametrize(
    "case, message",
    [
        ("steps", r"EvoSearch KSampler: evolution_steps\[1\]=10 is out of range for a 6-step sampler"),
        ("elites", r"EvoSearch KSampler: population\[1\]=2 is smaller than elites=5"),
        ("vae", "EvoSearch KSampler: no VAE is connected"),
        ("video", "EvoSearch KSampler: the latent is a video"),
        ("latent", "EvoSearch KSampler: the latent has 4 channels but this model's latents have 16"),
        ("latent_dims", r"EvoSearch KSampler: the latent has shape \(1, 4, 2, 8, 8\) but this model takes image"),
    ],
)
def test_bad_input_errors_name_the_node(pack, tiny, es, sn, case, message):
    bundle = tiny("wan21" if case == "video" else "flux" if case == "latent" else "sd15")
    kwargs: dict = {"schedule": es.ScheduleSpec(**SMALL)}
    reward = module("rewards").Colorfulness()
    if case == "steps":
        kwargs["schedule"] = es.ScheduleSpec(mode="custom", evolution_steps=(0, 10), population=(4, 2, 2))
    elif case == "elites":
        kwargs["mutation"] = es.Mutation(elites=5)
    elif case == "vae":
        kwargs["vae"] = None
    elif case == "video":
        reward = ImageOnlyReward()
    elif case == "latent":
        kwargs["latent"] = {"samples": torch.ones((1, 4, 8, 8))}
    elif case == "latent_dims":
        kwargs["latent"] = {"samples": torch.ones((1, 4, 2, 8, 8))}
    with pytest.raises(ValueError, match=message):
        ksampler(sn, bundle, reward, **kwargs)


def test_schedule_node_parses_previews_and_rejects(pack, es, sn):
    spec, = run_node(sn.EvoSearchSchedule, mode="preset_sd21", strategy="evosearch", budget=10.0, evolution_steps="",
                     population="", steps=50, potential="max", lam=10.0)  # fmt: skip
    assert spec.resolve(50) == es.Schedule.preset("sd21")
    out = clone_node(sn.EvoSearchSchedule, "1").execute(
        mode="budget_multiple", strategy="best_of_n", budget=30.0, evolution_steps="", population="", steps=20,
        potential="max", lam=10.0)  # fmt: skip
    text = json.dumps(out.ui.as_dict()) if hasattr(out.ui, "as_dict") else str(out.ui)
    assert "Best-of-" in text and "NFE" in text
    with pytest.raises(ValueError, match=r"EvoSearch Schedule: evolution_steps: 'x' in '0, x' is not a whole number"):
        run_node(sn.EvoSearchSchedule, mode="custom", strategy="evosearch", budget=10.0, evolution_steps="0, x",
                 population="4, 2", steps=20, potential="max", lam=10.0)  # fmt: skip
    with pytest.raises(ValueError, match="EvoSearch Schedule: population must have"):
        run_node(sn.EvoSearchSchedule, mode="custom", strategy="evosearch", budget=10.0, evolution_steps="0, 5",
                 population="4, 2", steps=20, potential="max", lam=10.0)  # fmt: skip


def test_mutation_node(pack, es, sn):
    (mutation,) = run_node(
        sn.EvoSearchMutation, beta=0.2, intermediate="additive", strength=1.0, elites=-1, tournament=3.0
    )
    assert mutation == es.Mutation(beta=0.2, intermediate="additive", strength=1.0, elites=None, tournament=3.0)
    with pytest.raises(ValueError, match="EvoSearch Mutation: strength"):
        run_node(sn.EvoSearchMutation, beta=0.2, intermediate="redraw", strength=2.0, elites=-1, tournament=0.9)


def test_top_k_returns_one_option_per_island(pack, tiny, es, sn):
    """Diverse options (issue 10): with the default (graded x0 fitness) and top_k = 4, automatic islands split the
    population into four lineages and 'population' holds one option per island, best first; top_k = 0 keeps one
    population and returns it whole; islands = 1 on the Mutation node turns the islands off."""
    bundle = tiny("sd15")
    spec = es.ScheduleSpec(mode="budget_multiple", budget=16.0)  # 16 individuals a generation: islands of 4
    reward = module("rewards").Colorfulness()
    _, options, scores, report, _ = ksampler(sn, bundle, reward, schedule=spec, top_k=4)
    rep = json.loads(report)["searches"][0]
    assert rep["fitness"] == "graded" and rep["islands"] == 4 and rep["mutation"]["options"] == 4
    assert options["samples"].shape[0] == 4 and scores == sorted(scores, reverse=True)
    assert scores[0] == pytest.approx(json.loads(report)["best_rewards"][0], rel=1e-5)
    _, population, all_scores, report0, _ = ksampler(sn, bundle, reward, schedule=spec)
    assert json.loads(report0)["searches"][0]["islands"] == 1 and population["samples"].shape[0] == 16
    d = es.Mutation()
    (single,) = run_node(sn.EvoSearchMutation, beta=d.beta, intermediate=d.intermediate, strength=d.strength,
                         elites=-1, tournament=d.tournament, max_share=1.0, islands=1)  # fmt: skip
    report1 = ksampler(sn, bundle, reward, schedule=spec, mutation=single, top_k=4)[3]
    assert json.loads(report1)["searches"][0]["islands"] == 1
    assert json.loads(report1)["searches"][0]["nfe"] == rep["nfe"]  # islands cost nothing


def test_no_node_changes_the_shared_model_or_prints(pack, tiny, es, sn, capfd):
    bundle = tiny("sd15")
    before_options = repr(bundle.model.model_options)
    before_weights = {k: v.clone() for k, v in bundle.model.model.diffusion_model.state_dict().items()}
    capfd.readouterr()
    ksampler(sn, bundle, module("rewards").Colorfulness(), schedule=es.ScheduleSpec(**SMALL))
    out, _ = capfd.readouterr()
    assert out == "", f"nodes must log, not print: {out[:200]!r}"
    assert repr(bundle.model.model_options) == before_options
    after = bundle.model.model.diffusion_model.state_dict()
    assert all(torch.equal(before_weights[k], after[k]) for k in before_weights)


def test_process_respects_each_parameterisation(pack, tiny):
    import comfy.samplers

    cp = module("nodes.comfy_process")
    for arch, flow in (("sd15", False), ("flux", True)):
        bundle = tiny(arch)
        ms = bundle.model.get_model_object("model_sampling")
        sigmas = torch.tensor([float(ms.sigma_max), 0.5, 0.0])

        class Wrap:
            inner_model = bundle.model.model

        process = cp.ComfyProcess(Wrap, sigmas, comfy.samplers.ksampler("euler_ancestral"), {}, torch.zeros(1, 1),
                                  torch.zeros(1, 1), None, True)  # fmt: skip
        noise = torch.randn(3, 1)
        assert torch.allclose(process.initial_state(noise), ms.noise_scaling(sigmas[0], noise, torch.zeros(3, 1), True))
        assert process.signal_scale(1) == pytest.approx(0.5 if flow else 1.0)
        assert process.noise_scale(1) == pytest.approx(0.5)
        assert process.step_noise_std(1) == 0.0 and process.step_noise_std(0) > 0
        if not flow:  # EPS at σ_max: the unit noise is scaled by √(1+σ²)
            assert torch.allclose(process.initial_state(noise), noise * math.sqrt(1 + float(sigmas[0]) ** 2))
