"""The redesigned engine inside a real ComfyUI (issue 9): cut invariance for every stochastic sampler ComfyUI lists,
a sampler no table knows, measured accounting, and per-run results when one sampler serves two sampling nodes."""

from __future__ import annotations

import json

import pytest
import torch
from support.nodes import module, run_node
from support.samplers import sample_heun_ancestral
from support.tiny_models import build

STEPS = 6


@pytest.fixture(scope="module")
def sd15(pack):
    return build("sd15")


@pytest.fixture(scope="module")
def es(pack):
    return module("evosearch")


def _search(sd15, spec, inner, *, observer=None, model=None, chunk_size=2, seed=5):
    """Run a SearchSampler through ComfyUI's own sampling call (CFG guider, sigmas, NOISE) and return its run."""
    import comfy.sample
    import comfy.samplers

    ss = module("nodes.search_sampler")
    sampler = ss.SearchSampler(inner, sd15.vae, module("rewards").Colorfulness(), spec, module("evosearch").Mutation(),
                               chunk_size, node="test", observer=observer)  # fmt: skip
    model = model or sd15.model
    latent = sd15.empty_latent(1)["samples"]
    sigmas = comfy.samplers.KSampler(model, steps=STEPS, device=model.load_device, sampler="euler",
                                     scheduler="normal", denoise=1.0, model_options=model.model_options).sigmas  # fmt: skip
    noise = comfy.sample.prepare_noise(latent, seed)
    comfy.sample.sample_custom(model, noise, 2.0, sampler, sigmas, sd15.positive, sd15.negative, latent, seed=seed,
                               disable_pbar=True)  # fmt: skip
    return sampler.runs.last


def test_first_generation_is_best_of_k_start_for_every_stochastic_sampler(pack, sd15, es):
    """With every ComfyUI sampler (KSAMPLER_NAMES, read at run time) that is measured stochastic, EvoSearch's first
    generation is bit-identical to Best-of-k_start on the same seed: no trajectory is cut at the evolution steps."""
    import comfy.samplers

    # chunks of 2 in both runs: the first four trajectories go through the model in the same batches, so any
    # difference would come from the pack, not from the kernels' batch-size rounding
    model = sd15.model
    evo = es.ScheduleSpec(mode="custom", evolution_steps=(0, 2, 4), population=(4, 2, 2, 2), fitness="rollout")
    bon = es.ScheduleSpec(mode="custom", evolution_steps=(0,), population=(4, 1), strategy="best_of_n")  # Best-of-5
    checked, swapped, failures = [], [], []
    for name in comfy.samplers.KSAMPLER_NAMES:
        if name in ("dpm_fast", "dpm_adaptive"):  # adaptive step sizes: no fixed σ grid to evolve on
            continue
        first: dict[str, torch.Tensor] = {}

        def keep_first(key):
            def observe(event):
                if event.kind == "generation" and key not in first:
                    first[key] = event.scores

            return observe

        inner = comfy.samplers.ksampler(name)
        run = _search(sd15, evo, inner, observer=keep_first("evo"), model=model)
        if run.sampler_name != name:
            swapped.append(name)  # measured deterministic: the search ran a stochastic counterpart
            continue
        _search(sd15, bon, inner, observer=keep_first("bon"), model=model)
        search = run.results[0]
        if not torch.equal(first["evo"], first["bon"][: len(first["evo"])]):  # Best-of-5 at equal NFE: its first 4
            failures.append(f"{name}: first generation differs from Best-of-4")
        if search.nfe != search.planned_nfe:
            failures.append(f"{name}: counted {search.nfe} NFE, planned {search.planned_nfe}")
        checked.append(name)
    assert not failures, failures
    for multistep in ("dpmpp_2m_sde", "dpmpp_3m_sde", "er_sde", "res_multistep_ancestral", "sa_solver"):
        assert multistep in checked, f"{multistep} should be measured stochastic and checked"
    assert "euler" in swapped and "dpmpp_2m" in swapped, "deterministic samplers are measured as such"


def test_deterministic_samplers_are_measured_and_swapped(pack, sd15, es):
    import comfy.samplers

    spec = es.ScheduleSpec(mode="custom", evolution_steps=(0, 3), population=(4, 2, 2), fitness="rollout")
    for name, expected in (("euler", "euler_ancestral"), ("dpmpp_2m", "dpmpp_2m_sde"), ("lms", "euler_ancestral")):
        run = _search(sd15, spec, comfy.samplers.ksampler(name))
        assert run.sampler_name == expected and any("deterministic" in w for w in run.warnings), name
    eta0 = comfy.samplers.ksampler("euler_ancestral", {"eta": 0.0})
    run = _search(sd15, spec, eta0)
    assert run.sampler_name == "euler_ancestral" and "eta=0" in run.warnings[0]


def test_a_sampler_no_table_knows_is_classified_and_counted(pack, sd15, es):
    """A test-only stochastic two-evaluation k-diffusion function wrapped in ComfyUI's KSAMPLER."""
    import comfy.samplers

    calls = []
    model = sd15.model.clone()
    model.set_model_unet_function_wrapper(
        lambda apply, args: (calls.append(args["input"].shape[0]), apply(args["input"], args["timestep"], **args["c"]))[
            1
        ]
    )
    spec = es.ScheduleSpec(mode="custom", evolution_steps=(0, 3), population=(4, 2, 2), fitness="rollout")
    run = _search(sd15, spec, comfy.samplers.KSAMPLER(sample_heun_ancestral), model=model, chunk_size=8)
    search = run.results[0]
    assert run.sampler_name == "heun_ancestral" and not run.warnings
    assert search.sampler_facts["evals_per_step"] == [2] * (STEPS - 1) + [1] and search.sampler_facts["stochastic"]
    # each model call runs cond and uncond of every individual: rows / 2 = individual evaluations
    assert search.nfe == search.planned_nfe == sum(calls) // 2 == 4 * 11 + 2 * 11 + 2 * 5


def test_results_read_the_run_that_produced_their_latent(pack, sd15, es):
    """Two SamplerCustomAdvanced nodes sharing one EvoSearch Sampler: each Results node gets its own run."""
    import comfy_extras.nodes_custom_sampler as custom

    sn = module("nodes.sampler_nodes")
    spec = es.ScheduleSpec(mode="custom", evolution_steps=(0, 3), population=(4, 2, 2))
    sampler, runs = run_node(sn.EvoSearchSampler, reward=module("rewards").Colorfulness(),
                             sampler_name="euler_ancestral", chunk_size=0, vae=sd15.vae, schedule=spec)  # fmt: skip
    guider = custom.CFGGuider().get_guider(sd15.model, sd15.positive, sd15.negative, 2.0)[0]
    sigmas = custom.BasicScheduler().get_sigmas(sd15.model, "simple", STEPS, 1.0)[0]
    outs = []
    for seed in (1, 2):
        noise = custom.RandomNoise().get_noise(seed)[0]
        outs.append(custom.SamplerCustomAdvanced().sample(noise, guider, sampler, sigmas, sd15.empty_latent(1))[0])
    reports = [json.loads(run_node(sn.EvoSearchResults, run=runs, latent=out)[2]) for out in outs]
    assert [r["searches"][0]["seed"] for r in reports] == [1, 2]
    with pytest.raises(ValueError, match="EvoSearch Results: this latent was not produced by the connected"):
        run_node(sn.EvoSearchResults, run=runs, latent={"samples": outs[0]["samples"] + 1})


def test_reports_are_strict_json_and_x0_fitness_reports_a_labelled_proxy(pack, sd15, es):
    import comfy.samplers

    spec = es.ScheduleSpec(mode="custom", evolution_steps=(2, 4), population=(4, 3, 3), fitness="x0")
    run = _search(sd15, spec, comfy.samplers.ksampler("euler_ancestral"))
    report = json.loads(json.dumps(run.report(), allow_nan=False))
    history = report["searches"][0]["history"]
    assert [h["best_is_proxy"] for h in history] == [True, True, False]
    assert all(isinstance(h["best_reward"], float) for h in history)
    assert report["nfe"] == report["planned_nfe"] == 4 * 2 + 3 * 2 + 3 * 2  # generation g runs s_{g-1}..s_g
    assert "spent" in run.summary() and "NFE" in run.summary()
