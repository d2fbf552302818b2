"""Two-expert models in one search (issue 12): Wan 2.2 A14B's high/low-noise experts and SDXL base + refiner."""

from __future__ import annotations

import json

import pytest
import torch
from support.nodes import module, run_node
from support.tiny_models import build

STEPS = 6


@pytest.fixture(scope="module")
def experts(pack):
    """Two different tiny Wan 2.1-architecture models (Wan 2.2 A14B's experts have that architecture)."""
    return build("wan21", seed=0), build("wan21", seed=7)


def _spy(model, sigmas_seen: list[float]):
    clone = model.clone()

    def wrapper(apply, args):  # noqa: ANN001
        sigmas_seen.extend(float(t) for t in args["timestep"].reshape(-1)[:1])
        return apply(args["input"], args["timestep"], **args["c"])

    clone.set_model_unet_function_wrapper(wrapper)
    return clone


def _sigmas(model):
    import comfy_extras.nodes_custom_sampler as custom

    return custom.BasicScheduler().get_sigmas(model, "simple", STEPS, 1.0)[0]


def test_the_guider_routes_by_sigma_and_equals_two_chained_ksamplers(pack, experts):
    import comfy_extras.nodes_custom_sampler as custom

    import nodes as comfy_nodes

    high, low = experts
    sigmas = _sigmas(high.model)
    k = 3
    boundary = float(sigmas[k - 1] + sigmas[k]) / 2
    seen_high, seen_low = [], []
    sn = module("nodes.sampler_nodes")
    (guider,) = run_node(sn.EvoSearchTwoExpertGuider, model_high=_spy(high.model, seen_high),
                         model_low=_spy(low.model, seen_low), positive=high.positive, negative=high.negative, cfg=2.0,
                         cfg_low=2.0, boundary=boundary)  # fmt: skip
    noise = custom.RandomNoise().get_noise(3)[0]
    sampler = custom.KSamplerSelect().get_sampler("euler")[0]
    out = custom.SamplerCustomAdvanced().sample(noise, guider, sampler, sigmas, high.empty_latent(1))[0]
    assert seen_high and seen_low
    assert min(seen_high) >= boundary > max(seen_low)
    assert guider.evaluations == {"high": k, "low": STEPS - k}
    # the same trajectory as core's two chained KSamplerAdvanced nodes (which round-trip the latent once)
    first = comfy_nodes.KSamplerAdvanced().sample(high.model, "enable", 3, STEPS, 2.0, "euler", "simple",
                                                  high.positive, high.negative, high.empty_latent(1), 0, k,
                                                  "enable")[0]  # fmt: skip
    second = comfy_nodes.KSamplerAdvanced().sample(low.model, "disable", 3, STEPS, 2.0, "euler", "simple",
                                                   high.positive, high.negative, first, k, 10_000, "disable")[0]  # fmt: skip
    assert torch.allclose(out["samples"], second["samples"], atol=1e-4)


def test_one_evosearch_search_across_both_experts(pack, experts):
    high, low = experts
    sn = module("nodes.sampler_nodes")
    es = module("evosearch")
    boundary = float(_sigmas(high.model)[2])
    spec = es.ScheduleSpec(mode="custom", evolution_steps=(0, 2, 4), population=(4, 2, 2, 2), fitness="rollout")
    loads = []
    import comfy.model_management as mm

    original = mm.load_models_gpu

    def spy(models, *args, **kwargs):  # noqa: ANN001
        loads.append([id(m) for m in models])
        return original(models, *args, **kwargs)

    mm.load_models_gpu = spy
    try:
        kwargs = dict(model=high.model, positive=high.positive, negative=high.negative,
                      latent_image=high.empty_latent(1), reward=module("rewards").Colorfulness(), seed=4, steps=STEPS,
                      cfg=2.0, sampler_name="euler_ancestral", scheduler="simple", denoise=1.0, chunk_size=0,
                      vae=high.vae, schedule=spec, model_low=low.model, expert_boundary=boundary)  # fmt: skip
        best, _, _, report, _ = run_node(sn.EvoSearchKSampler, **kwargs)
    finally:
        mm.load_models_gpu = original
    rep = json.loads(report)
    per_model = rep["nfe_per_model"]
    assert (
        per_model["high"] > 0
        and per_model["low"] > 0
        and sum(per_model.values()) == rep["nfe"] == 4 * 6 + 2 * 6 + 2 * 4 + 2 * 2
    )
    assert any(id(high.model) in ids for ids in loads) and any(id(low.model) in ids for ids in loads)
    again = run_node(sn.EvoSearchKSampler, **kwargs)
    assert torch.equal(again[0]["samples"], best["samples"])
    alone = run_node(sn.EvoSearchKSampler, **{**kwargs, "model_low": None})
    assert not torch.equal(alone[0]["samples"], best["samples"]), "the low-noise expert must have been used"


def test_sdxl_base_and_refiner_with_their_own_conditioning(pack):
    """The same mechanism runs SDXL's base model and refiner, each with its own conditioning."""
    import comfy.supported_models as sm
    import comfy_extras.nodes_custom_sampler as custom
    from support import tiny_models

    base = build("sdxl")
    unet = {"use_checkpoint": False, "image_size": 32, "out_channels": 4, "use_spatial_transformer": True,
            "legacy": False, "in_channels": 4, "model_channels": 32, "num_res_blocks": [1, 1],
            "transformer_depth": [0, 1], "channel_mult": [1, 2], "transformer_depth_middle": 1,
            "transformer_depth_output": [0, 0, 1, 1], "context_dim": 48, "num_heads": 2, "num_head_channels": -1,
            "use_temporal_attention": False, "use_temporal_resblock": False, "adm_in_channels": 2560,
            "num_classes": "sequential", "use_linear_in_transformer": True}  # fmt: skip
    refiner = tiny_models._model(sm.SDXLRefiner, unet, 5)
    pooled = torch.randn((1, 1280), generator=torch.Generator().manual_seed(9))
    ref_pos = [[torch.randn((1, 7, 48), generator=torch.Generator().manual_seed(10)),
                {"pooled_output": pooled, "aesthetic_score": 6.0, "width": 64, "height": 64}]]  # fmt: skip
    ref_neg = [
        [torch.zeros((1, 7, 48)), {"pooled_output": pooled * 0, "aesthetic_score": 2.5, "width": 64, "height": 64}]
    ]
    sn = module("nodes.sampler_nodes")
    es = module("evosearch")
    sigmas = _sigmas(base.model)
    (guider,) = run_node(sn.EvoSearchTwoExpertGuider, model_high=base.model, model_low=refiner,
                         positive=base.positive, negative=base.negative, cfg=2.0, cfg_low=2.0,
                         boundary=float(sigmas[4]), positive_low=ref_pos, negative_low=ref_neg)  # fmt: skip
    sampler, runs = run_node(sn.EvoSearchSampler, reward=module("rewards").Colorfulness(),
                             sampler_name="euler_ancestral", chunk_size=0, vae=base.vae,
                             schedule=es.ScheduleSpec(mode="custom", evolution_steps=(0, 3), population=(3, 2, 2)))  # fmt: skip
    noise = custom.RandomNoise().get_noise(1)[0]
    out = custom.SamplerCustomAdvanced().sample(noise, guider, sampler, sigmas, base.empty_latent(1))[0]
    rep = json.loads(run_node(sn.EvoSearchResults, run=runs, latent=out)[2])
    assert rep["nfe_per_model"]["high"] > 0 and rep["nfe_per_model"]["low"] > 0
    assert sum(rep["nfe_per_model"].values()) == rep["nfe"] and torch.isfinite(out["samples"]).all()
