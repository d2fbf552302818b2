"""After each scoring round of a search, the models the guider had loaded, the diffusion model included, are put back.

ComfyUI's guider loads ``[diffusion model] + additional models`` for sampling but keeps only the additional ones as
``model_wrap.loaded_models`` (comfy/sampler_helpers.py, v0.3.64 and newer). A reward with weights is loaded through
``comfy.model_management`` while scoring and may evict the diffusion model (on a GPU that holds only one of them; here
the reward evicts everything on purpose, as a full GPU would). The search must then request the guider's exact set
again, so the next model call runs on a loaded model. Checked with ComfyUI's model management on the CPU, through the
EvoSearch KSampler node.
"""

from __future__ import annotations

import json

import pytest
import torch
from support.nodes import module, run_node
from support.tiny_models import build

STEPS = 6
SCHEDULE = dict(mode="custom", evolution_steps=(0, 3, 4), population=(4, 2, 2, 2))  # 4 scoring rounds


class ModuleReward:
    """A reward holding weights (a seeded 1×1 conv scorer) that ComfyUI's model management loads for scoring."""

    def __init__(self, evict: bool) -> None:
        import comfy.model_management

        self.mm = comfy.model_management
        self.net = torch.nn.Conv2d(3, 1, 1)
        with torch.no_grad():
            g = torch.Generator().manual_seed(0)
            self.net.weight.copy_(torch.randn(self.net.weight.shape, generator=g))
            self.net.bias.zero_()
        self.evict = evict
        self.rounds = 0

    def modules(self) -> list[torch.nn.Module]:
        return [self.net]

    def score(self, images, prompts):  # noqa: ANN001
        self.rounds += 1
        scores = self.net(images.movedim(-1, 1).to(self.net.weight)).mean(dim=(1, 2, 3))
        if self.evict:  # what loading a large reward does on a GPU that cannot hold it next to the diffusion model
            self.mm.unload_all_models()
        return scores


@pytest.fixture()
def setup(pack, monkeypatch):
    """The tiny SD1.5 model with one additional model attached, and a spy on ``load_models_gpu``."""
    import comfy.model_management as mm
    import comfy.model_patcher

    bundle = build("sd15")
    model = bundle.model.clone()
    extra = comfy.model_patcher.ModelPatcher(torch.nn.Linear(4, 4), mm.get_torch_device(), mm.unet_offload_device())
    model.set_additional_models("evosearch_test", [extra])
    events: list[tuple] = []
    real_load = mm.load_models_gpu

    def spy(models, *args, **kwargs):  # noqa: ANN002, ANN003
        events.append(("load", tuple(models)))
        return real_load(models, *args, **kwargs)

    monkeypatch.setattr(mm, "load_models_gpu", spy)

    def resident(apply, args):  # noqa: ANN001 - ComfyUI's unet wrapper signature
        loaded = mm.loaded_models()
        events.append(("call", any(m is model for m in loaded)))
        return apply(args["input"], args["timestep"], **args["c"])

    model.set_model_unet_function_wrapper(resident)
    mm.unload_all_models()
    yield bundle, model, extra, events
    mm.unload_all_models()


def search(bundle, model, reward) -> dict:  # noqa: ANN001
    es, sn = module("evosearch"), module("nodes.sampler_nodes")
    out = run_node(sn.EvoSearchKSampler, model=model, positive=bundle.positive, negative=bundle.negative,
                   latent_image=bundle.empty_latent(1), reward=reward, seed=1, steps=STEPS, cfg=2.0,
                   sampler_name="euler_ancestral", scheduler="normal", denoise=1.0, chunk_size=0, vae=bundle.vae,
                   schedule=es.ScheduleSpec(**SCHEDULE), mutation=None)  # fmt: skip
    return json.loads(out[3])


def _guider_set(events: list[tuple], model: object) -> tuple:
    """What the guider's ``prepare_sampling`` requested: the first load that includes the diffusion model."""
    return next(models for kind, models in events if kind == "load" and any(m is model for m in models))


def test_after_scoring_the_guiders_exact_set_is_requested_again(setup):
    bundle, model, extra, events = setup
    reward = ModuleReward(evict=False)
    report = search(bundle, model, reward)
    assert report["reward_calls"] == 10 and reward.rounds == 4, "one scoring round per generation"
    guider_set = _guider_set(events, model)
    assert guider_set[0] is model and any(m is extra for m in guider_set), "the guider loads model + additional"
    reward_patcher = module("nodes.reward_runtime").patcher_for(reward.net)
    loads = [i for i, e in enumerate(events) if e[0] == "load" and any(m is reward_patcher for m in e[1])]
    assert len(loads) == reward.rounds, "the reward is loaded for each scoring round"
    for i in loads:
        after = next(e for e in events[i + 1 :] if e[0] == "load")  # the first request once the reward has scored
        assert len(after[1]) == len(guider_set) and all(a is b for a, b in zip(after[1], guider_set)), (
            "after scoring, the set the guider had loaded (diffusion model first) is requested again"
        )


def test_the_diffusion_model_is_loaded_for_every_call_after_scoring(setup):
    bundle, model, _, events = setup
    reward = ModuleReward(evict=True)
    report = search(bundle, model, reward)
    assert report["nfe"] == 46 and reward.rounds == 4
    reward_patcher = module("nodes.reward_runtime").patcher_for(reward.net)
    first = next(i for i, e in enumerate(events) if e[0] == "load" and any(m is reward_patcher for m in e[1]))
    before = [loaded for kind, loaded in events[:first] if kind == "call"]
    later = [loaded for kind, loaded in events[first:] if kind == "call"]
    assert before and all(before), "the guider loaded the diffusion model for the first generation"
    assert later, "the schedule makes model calls after the first scoring round"
    assert all(later), "every model call after an eviction by the reward runs on a loaded diffusion model"
