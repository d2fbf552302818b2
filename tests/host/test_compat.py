"""nodes/compat.py against the real v0.3.64 objects and against faithful fakes of the newer ComfyUI forms.

Each fake reproduces a newer signature or attribute exactly as read from a newer ComfyUI file (named as file@commit in
its test's docstring); where the newer body matters, the fake copies it. No newer ComfyUI can run here, so these fakes
are how the newer forms are tested.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import inspect
import types
from typing import Any

import pytest
import torch
from support.newer_comfy import newer_fix_empty_latent_channels, newer_samplings
from support.nodes import module
from support.tiny_models import build


@pytest.fixture(scope="module")
def compat(pack):
    return module("nodes.compat")


@pytest.fixture(scope="module")
def tiny(pack):
    cache: dict[str, object] = {}

    def get(name: str):
        if name not in cache:
            cache[name] = build(name)
        return cache[name]

    return get


# ------------------------------------------------------------------------------------------------ V3 node clones


class NewerHiddenHolder:
    """comfy_api/latest/_io.py@58a8a96c ``HiddenHolder``: ``from_dict`` and the newer ``from_v3_data``."""

    def __init__(self, unique_id, prompt, extra_pnginfo, dynprompt, auth_token_comfy_org, api_key_comfy_org,
                 comfy_usage_source=None, **kwargs):  # fmt: skip
        self.unique_id = unique_id
        self.prompt = prompt
        self.extra_pnginfo = extra_pnginfo
        self.dynprompt = dynprompt
        self.auth_token_comfy_org = auth_token_comfy_org
        self.api_key_comfy_org = api_key_comfy_org
        self.comfy_usage_source = comfy_usage_source

    def __getattr__(self, key):
        return None

    @classmethod
    def from_dict(cls, d):
        d = d or {}
        return cls(unique_id=d.get("UNIQUE_ID"), prompt=d.get("PROMPT"), extra_pnginfo=d.get("EXTRA_PNGINFO"),
                   dynprompt=d.get("DYNPROMPT"), auth_token_comfy_org=d.get("AUTH_TOKEN_COMFY_ORG"),
                   api_key_comfy_org=d.get("API_KEY_COMFY_ORG"), comfy_usage_source=d.get("COMFY_USAGE_SOURCE"))  # fmt: skip

    @classmethod
    def from_v3_data(cls, v3_data):
        return cls.from_dict(v3_data["hidden_inputs"] if v3_data else None)


class NewerNode:
    """A V3 node with the newer ``PREPARE_CLASS_CLONE(cls, v3_data)`` (comfy_api/latest/_io.py@58a8a96c)."""

    hidden = None

    @classmethod
    def PREPARE_CLASS_CLONE(cls, v3_data):  # noqa: N802 - ComfyUI's name
        type_clone = type(f"{cls.__name__}Clone", (cls,), {})
        type_clone.hidden = NewerHiddenHolder.from_v3_data(v3_data)
        return type_clone


def test_node_clone_newer_form_reads_v3_data(compat):
    """comfy_api/latest/_io.py@58a8a96c: ``PREPARE_CLASS_CLONE(v3_data)`` reads ``v3_data["hidden_inputs"]``."""
    with pytest.raises(KeyError, match="hidden_inputs"):
        NewerNode.PREPARE_CLASS_CLONE({"UNIQUE_ID": "7"})  # the v0.3.64 call breaks on the newer form
    clone = compat.prepare_node_clone(NewerNode, {"UNIQUE_ID": "7", "PROMPT": {"1": {}}})
    assert clone.hidden.unique_id == "7" and clone.hidden.prompt == {"1": {}}
    assert issubclass(clone, NewerNode) and clone is not NewerNode


def test_node_clone_v0364_form_takes_the_dict(compat):
    sn = module("nodes.sampler_nodes")
    assert list(inspect.signature(sn.EvoSearchSchedule.PREPARE_CLASS_CLONE).parameters)[0] == "hidden_inputs"
    clone = compat.prepare_node_clone(sn.EvoSearchSchedule, {"UNIQUE_ID": "7"})
    assert clone.hidden.unique_id == "7"
    (spec,) = clone.execute(mode="preset_sd21", strategy="evosearch", budget=10.0, evolution_steps="", population="",
                            steps=50, potential="max", lam=10.0).result  # fmt: skip
    assert spec.mode == "preset_sd21"


# ------------------------------------------------------------------------------------------------ optional V3 features


@dataclasses.dataclass
class NewerSchema:
    """The fields of comfy_api/latest/_io.py@58a8a96c ``Schema`` (defaults simplified, names and order as read)."""

    node_id: str
    display_name: str = None
    category: str = "sd"
    inputs: list = dataclasses.field(default_factory=list)
    outputs: list = dataclasses.field(default_factory=list)
    hidden: list = dataclasses.field(default_factory=list)
    description: str = ""
    search_aliases: list = dataclasses.field(default_factory=list)
    is_input_list: bool = False
    is_output_node: bool = False
    is_deprecated: bool = False
    is_experimental: bool = False
    is_dev_only: bool = False
    is_api_node: bool = False
    price_badge: object = None
    not_idempotent: bool = False
    enable_expand: bool = False
    accept_all_inputs: bool = False
    essentials_category: str = None
    has_intermediate_output: bool = False


FEATURES = dict(not_idempotent=True, search_aliases=["evolutionary search"], essentials_category="Sampling",
                has_intermediate_output=False)  # fmt: skip


def test_schema_extras_pass_newer_fields(compat):
    """comfy_api/latest/_io.py@58a8a96c: ``Schema`` has search_aliases, not_idempotent, essentials_category, …"""
    extras = compat.schema_extras(NewerSchema, **FEATURES, no_such_field=1)
    assert extras == FEATURES
    assert NewerSchema(node_id="X", **extras).not_idempotent is True


def test_schema_extras_drop_what_v0364_lacks(compat):
    from comfy_api.latest import io

    fields = {f.name for f in dataclasses.fields(io.Schema)}
    extras = compat.schema_extras(**FEATURES)
    assert set(extras) == set(FEATURES) & fields
    schema = io.Schema(node_id="EvoSearchCompatProbe", **extras)  # registers on this ComfyUI
    assert schema.node_id == "EvoSearchCompatProbe"


class NewerFloatInput:
    """comfy_api/latest/_io.py@58a8a96c ``Float.Input.__init__`` (its keyword arguments, ``advanced`` last)."""

    def __init__(self, id, display_name=None, optional=False, tooltip=None, lazy=None, default=None, min=None,
                 max=None, step=None, round=None, display_mode=None, gradient_stops=None, socketless=None,
                 force_input=None, extra_dict=None, raw_link=None, advanced=None):  # fmt: skip
        self.advanced = advanced


def test_input_extras_advanced(compat):
    """comfy_api/latest/_io.py@58a8a96c: inputs take ``advanced: bool=None``; v0.3.64's do not."""
    assert compat.input_extras(NewerFloatInput, advanced=True) == {"advanced": True}
    from comfy_api.latest import io

    extras = compat.input_extras(io.Float.Input, advanced=True)
    assert ("advanced" in extras) == ("advanced" in inspect.signature(io.Float.Input.__init__).parameters)
    assert io.Float.Input("strength", default=1.0, **extras).id == "strength"


def test_optional_io_types(compat):
    """comfy_api/latest/_io.py@58a8a96c defines ``Autogrow`` and ``DynamicCombo``; missing ones read as None."""
    newer_io = types.SimpleNamespace(Autogrow=type("Autogrow", (), {}), DynamicCombo=type("DynamicCombo", (), {}))
    assert compat.optional_io("Autogrow", newer_io) is newer_io.Autogrow
    assert compat.optional_io("DynamicCombo", newer_io) is newer_io.DynamicCombo
    from comfy_api.latest import io

    assert compat.optional_io("Float") is io.Float
    assert compat.optional_io("NoSuchEvoSearchType") is None


# ------------------------------------------------------------------------------------------------ executor, server


class _Server:
    client_id = None
    last_node_id = None
    last_prompt_id = None
    sockets_metadata: dict = {}

    def send_sync(self, *args, **kwargs):  # noqa: ANN002, ANN003
        pass

    def queue_updated(self) -> None:
        pass


def _newer_execution() -> types.SimpleNamespace:
    """execution.py@cb707e9c: ``CacheType`` members, ``PromptExecutor(server, cache_type, cache_args)`` whose
    ``execute_async`` reads ``cache_args["ram"]`` / ``["ram_inactive"]``, and an async ``caches.outputs.get``."""

    class CacheType(enum.Enum):
        CLASSIC = 0
        LRU = 1
        NONE = 2
        RAM_PRESSURE = 3

    class Outputs:
        def __init__(self) -> None:
            self.store: dict[str, Any] = {}

        async def get(self, node_id):
            return self.store.get(node_id)

    class PromptExecutor:
        def __init__(self, server, cache_type=False, cache_args=None):
            self.cache_args = cache_args
            self.cache_type = cache_type
            self.server = server
            self.caches = types.SimpleNamespace(outputs=Outputs())

        def execute(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):  # noqa: B006 - ComfyUI's signature
            asyncio.run(self.execute_async(prompt, prompt_id, extra_data, execute_outputs))

        async def execute_async(self, prompt, prompt_id, extra_data={}, execute_outputs=[]):  # noqa: B006
            int(self.cache_args["ram"] * (1024**3))  # TypeError on cache_args=None, as in the newer executor
            int(self.cache_args["ram_inactive"] * (1024**3))
            for node_id in prompt:
                self.caches.outputs.store[node_id] = types.SimpleNamespace(ui={}, outputs=[[f"out-{node_id}"]])

    return types.SimpleNamespace(CacheType=CacheType, PromptExecutor=PromptExecutor)


def test_prompt_executor_newer_form(compat):
    """execution.py@cb707e9c needs ``cache_args`` (with ``ram``, ``ram_inactive``: main.py@4f8cf3e2) and awaits
    ``caches.outputs.get``; ``CacheType.DEPENDENCY_AWARE`` is gone."""
    newer = _newer_execution()
    with pytest.raises(TypeError):
        newer.PromptExecutor(_Server(), cache_type=newer.CacheType.CLASSIC).execute({"3": {}}, "p")
    executor = compat.make_prompt_executor(_Server(), "CLASSIC", newer)
    assert executor.cache_type is newer.CacheType.CLASSIC
    executor.execute({"3": {}}, "p")
    assert compat.cached_node_outputs(executor, "3") == [["out-3"]]
    assert compat.cached_node_outputs(executor, "4") is None
    with pytest.raises(ValueError, match=r"DEPENDENCY_AWARE.*\['CLASSIC', 'LRU', 'NONE', 'RAM_PRESSURE'\]"):
        compat.make_prompt_executor(_Server(), "DEPENDENCY_AWARE", newer)


def test_prompt_executor_v0364_form(compat):
    import execution

    assert "cache_args" not in inspect.signature(execution.PromptExecutor).parameters
    executor = compat.make_prompt_executor(_Server(), "CLASSIC")
    assert isinstance(executor, execution.PromptExecutor) and executor.cache_type is execution.CacheType.CLASSIC
    prompt = {"1": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 32, "batch_size": 2}}}
    executor.execute(prompt, "p", {}, ["1"])
    assert executor.success, executor.status_messages
    ((latent,),) = compat.cached_node_outputs(executor, "1")  # the synchronous get of v0.3.64's caches
    assert latent["samples"].shape == (2, 4, 4, 8)


def test_server_flags_follow_the_parser(compat):
    """A parser with ``--disable-assets`` (later releases whose assets system is on by default) gets it; one with
    only the opt-in ``--enable-assets`` (comfy/cli_args.py@f90acc3b) gets nothing."""
    on_by_default = argparse.ArgumentParser()
    on_by_default.add_argument("--cpu", action="store_true")
    on_by_default.add_argument("--disable-assets", action="store_true")
    assert compat.server_flags(on_by_default) == ["--disable-assets"]
    opt_in = argparse.ArgumentParser()
    opt_in.add_argument("--enable-assets", action="store_true")
    assert compat.server_flags(opt_in) == []


def test_server_flags_start_this_comfyui(compat):
    from comfy.cli_args import parser

    flags = compat.server_flags()
    args = parser.parse_args(["--cpu", "--listen", "127.0.0.1", "--disable-auto-launch", *flags])  # no SystemExit
    assert args.cpu and all(parser.parse_known_args([f])[1] == [] for f in flags)


# ------------------------------------------------------------------------------------------------ latents


@pytest.fixture()
def wan22_16x(tiny, monkeypatch):
    """Tiny Wan 2.2 5B with the newer latent format's ``spacial_downscale_ratio = 16`` (latent_formats.py@9a9a69fd)."""
    bundle = tiny("wan22_5b")
    monkeypatch.setattr(bundle.model.get_model_object("latent_format"), "spacial_downscale_ratio", 16, raising=False)
    return bundle


EMPTY_LATENT_IMAGE = {"samples": torch.zeros((1, 4, 8, 8)), "downscale_ratio_spacial": 8}  # newer EmptyLatentImage


def test_fix_empty_latent_passes_the_compression_keys(compat, wan22_16x):
    """nodes.py@5aabaf51: EmptyLatentImage emits ``downscale_ratio_spacial: 8``; the fix resizes it to Wan 2.2's."""
    calls = []

    def spy(model, latent_image, downscale_ratio_spacial=None, downscale_ratio_temporal=None):
        calls.append((downscale_ratio_spacial, downscale_ratio_temporal))
        return newer_fix_empty_latent_channels(model, latent_image, downscale_ratio_spacial, downscale_ratio_temporal)

    out = compat.fix_empty_latent(wan22_16x.model, dict(EMPTY_LATENT_IMAGE, downscale_ratio_temporal=4), fix=spy)
    assert calls == [(8, 4)] and out.shape == (1, 48, 1, 4, 4)

    def spacial_only(model, latent_image, downscale_ratio_spacial=None):  # an intermediate release's signature
        calls.append(downscale_ratio_spacial)
        return latent_image

    compat.fix_empty_latent(wan22_16x.model, dict(EMPTY_LATENT_IMAGE, downscale_ratio_temporal=4), fix=spacial_only)
    assert calls[-1] == 8


def test_fix_empty_latent_v0364_ignores_the_keys(compat, tiny):
    import comfy.sample

    assert "downscale_ratio_spacial" not in inspect.signature(comfy.sample.fix_empty_latent_channels).parameters
    out = compat.fix_empty_latent(tiny("wan22_5b").model, EMPTY_LATENT_IMAGE)
    assert out.shape == (1, 48, 1, 8, 8)  # channels and frame axis fixed; v0.3.64 cannot know the ratio


def test_strip_compression_keys(compat):
    """nodes.py@5aabaf51 ``common_ksampler`` pops both keys from its output."""
    latent = dict(EMPTY_LATENT_IMAGE, downscale_ratio_temporal=4, noise_mask=torch.ones(1, 8, 8), batch_index=[3])
    out = compat.strip_compression_keys(latent)
    assert set(out) == {"samples", "noise_mask", "batch_index"} and out["samples"] is latent["samples"]
    assert "downscale_ratio_spacial" in latent, "the input is not changed"


def test_one_frame_latents_are_images(compat, tiny):
    wan = tiny("wan21").model.get_model_object("latent_format")
    qwen = tiny("qwen_image").model.get_model_object("latent_format")
    sd = tiny("sd15").model.get_model_object("latent_format")
    assert type(qwen) is type(wan), "Qwen-Image and Wan 2.1 share one latent format"
    assert not compat.is_video_latent(qwen, torch.zeros(1, 16, 1, 4, 4))
    assert compat.is_video_latent(wan, torch.zeros(1, 16, 2, 4, 4))
    assert not compat.is_video_latent(sd, torch.zeros(1, 4, 8, 8))
    decoded = torch.rand(2, 1, 32, 32, 3)
    assert compat.as_scored_images(decoded, qwen, torch.zeros(2, 16, 1, 4, 4)).shape == (2, 32, 32, 3)
    video = torch.rand(2, 5, 32, 32, 3)
    assert compat.as_scored_images(video, wan, torch.zeros(2, 16, 2, 4, 4)) is video


class NewerTAEHVPreviewer:
    """latent_preview.py@d914cd96 ``TAEHVPreviewerImpl.decode_latent_to_preview``: ``x0[:1, :, :1]`` into a video
    VAE decode returning ``[B, T, H, W, 3]``, then frame 0."""

    def __init__(self) -> None:
        self.seen: list[tuple[int, ...]] = []

    def decode_latent_to_preview(self, x0):
        samples = x0[:1, :, :1]
        self.seen.append(tuple(samples.shape))
        if samples.dim() != 5:
            raise ValueError(f"a video VAE decodes [B, C, T, H, W], got {tuple(samples.shape)}")
        return torch.zeros(1, 1, samples.shape[-2] * 8, samples.shape[-1] * 8, 3)[0][0]


def test_preview_frame_keeps_the_frame_axis_for_video_previewers(compat):
    """latent_preview.py@d914cd96: TAEHV previews need a 5-D latent; a 4-D frame loses a spatial row."""
    previewer = NewerTAEHVPreviewer()
    video = torch.randn(2, 16, 3, 4, 6)
    frame = compat.preview_frame(previewer, video)
    assert frame.shape == (1, 16, 1, 4, 6) and torch.equal(frame[0, :, 0], video[0, :, 1])
    assert previewer.decode_latent_to_preview(frame).shape == (32, 48, 3)
    with pytest.raises(ValueError):
        previewer.decode_latent_to_preview(video[:1, :, 1])  # what a 4-D middle frame would give it


def test_preview_frame_v0364_previewers(compat, tiny):
    import latent_preview
    from comfy.taesd.taesd import TAESD

    fmt = tiny("wan21").model.get_model_object("latent_format")
    rgb = latent_preview.Latent2RGBPreviewer(fmt.latent_rgb_factors, fmt.latent_rgb_factors_bias)
    video = torch.randn(1, 16, 3, 4, 4, generator=torch.Generator().manual_seed(0))
    as_video = rgb.decode_latent_to_preview(compat.preview_frame(rgb, video))
    as_still = rgb.decode_latent_to_preview(video[:, :, 1])
    assert list(as_video.getdata()) == list(as_still.getdata()), "the middle frame, in either layout"
    stills = latent_preview.TAESDPreviewerImpl(TAESD(latent_channels=16))
    assert compat.preview_frame(stills, video).shape == (1, 16, 4, 4), "an image TAESD takes 4-D"
    image = torch.randn(3, 4, 8, 8)
    assert torch.equal(compat.preview_frame(rgb, image), image[:1])


# ------------------------------------------------------------------------------------------------ model sampling


def _check_coefficients(compat, sampling, sigma: float) -> tuple[float, float]:
    """(α, c) from compat, checked against the sampling's own noise_scaling: x = α·x0 + c·ε."""
    alpha, c = compat.state_coefficients(sampling, sigma)
    g = torch.Generator().manual_seed(1)
    eps, x0 = torch.randn(2, 4, 3, 3, generator=g), torch.randn(2, 4, 3, 3, generator=g)
    x = sampling.noise_scaling(torch.tensor(sigma), eps, x0, False)
    assert torch.allclose(x, alpha * x0 + c * eps, atol=1e-6)
    return alpha, c


def test_flow_noise_scale_newer(compat):
    """comfy/model_sampling.py@38a99a82: x = σ·(s·ε) + (1 − σ)·x0."""
    flow, const, *_ = newer_samplings()
    scaled = flow(const, noise_scale=0.7)
    assert compat.flow_noise_scale(scaled) == pytest.approx(0.7)
    assert _check_coefficients(compat, scaled, 0.4) == pytest.approx((0.6, 0.28))
    assert compat.flow_noise_scale(flow(const)) == 1.0


def test_state_coefficients_v0364(compat, tiny):
    for arch, want in (("flux", (0.6, 0.4)), ("sd15", (1.0, 0.4)), ("sd21v", (1.0, 0.4)), ("sd3", (0.6, 0.4))):
        sampling = tiny(arch).model.get_model_object("model_sampling")
        assert compat.flow_noise_scale(sampling) == 1.0
        assert _check_coefficients(compat, sampling, 0.4) == pytest.approx(want), arch


def test_samplings_that_ignore_the_initial_noise(compat, tiny):
    """comfy/model_sampling.py@38a99a82: IMG_TO_IMG_FLOW and IMG_TO_IMG_VELOCITY return the latent unchanged."""
    import comfy.model_sampling as ms

    flow, const, img_flow, img_velocity = newer_samplings()
    assert compat.ignores_initial_noise(flow(img_flow)) and compat.ignores_initial_noise(flow(img_velocity))
    assert not compat.ignores_initial_noise(flow(const, noise_scale=0.5))
    for arch in ("sd15", "sd21v", "flux", "wan22_5b", "ltxv"):
        assert not compat.ignores_initial_noise(tiny(arch).model.get_model_object("model_sampling")), arch

    class V0364ImgToImg(ms.ModelSamplingDiscrete, ms.IMG_TO_IMG):  # v0.3.64's X0-based image-to-image sampling
        pass

    assert not compat.ignores_initial_noise(V0364ImgToImg())


# ------------------------------------------------------------------------------------------------ memory


def test_free_memory_prefers_the_patcher(compat, tiny, monkeypatch):
    """comfy/model_patcher.py@e59d85a0: ``ModelPatcher.get_free_memory(device)`` = model_management's + dynamic VRAM."""
    import comfy.model_management as mm

    monkeypatch.setattr(mm, "get_free_memory", lambda dev=None, torch_free_too=False: 3_000_000)

    class NewerPatcher:
        load_device = torch.device("cpu")

        def get_free_memory(self, device):
            return mm.get_free_memory(device) + 500  # what comfy-aimdo could release

    assert compat.free_memory(NewerPatcher()) == 3_000_500
    real = tiny("sd15").model
    assert not hasattr(real, "get_free_memory")
    assert compat.free_memory(real) == 3_000_000 == compat.free_memory(real, real.load_device)


def test_models_to_restore_includes_the_diffusion_model(compat, tiny):
    """comfy/sampler_helpers.py (v0.3.64 and @53757775): the guider's ``loaded_models`` are the additional ones only."""
    import comfy.model_patcher
    import comfy.sample
    import comfy.samplers

    bundle = tiny("sd15")
    model = bundle.model.clone()
    extra = comfy.model_patcher.ModelPatcher(torch.nn.Linear(2, 2), torch.device("cpu"), torch.device("cpu"))
    model.set_additional_models("evosearch_test", [extra])
    seen = {}

    class Capture(comfy.samplers.KSAMPLER):
        def sample(self, model_wrap, sigmas, extra_args, callback, noise, *args, **kwargs):  # noqa: ANN002, ANN003
            seen["restore"] = compat.models_to_restore(model_wrap)
            seen["loaded"] = list(model_wrap.loaded_models)
            seen["patcher"] = model_wrap.model_patcher
            return noise

    latent = bundle.empty_latent(1)["samples"]
    comfy.sample.sample_custom(model, torch.zeros_like(latent), 1.0, Capture(None), torch.tensor([1.0, 0.0]),
                               bundle.positive, bundle.negative, latent, disable_pbar=True, seed=0)  # fmt: skip
    assert seen["patcher"] is model and model not in seen["loaded"], "loaded_models leaves the diffusion model out"
    assert seen["restore"][0] is model and seen["restore"][1:] == seen["loaded"]
    assert any(m is extra for m in seen["restore"])
    doubled = types.SimpleNamespace(model_patcher=model, loaded_models=[extra, model, extra])
    assert compat.models_to_restore(doubled) == [model, extra]


# ------------------------------------------------------------------------------------------------ the pack's use


def test_sampler_node_schema_uses_newer_features(compat, monkeypatch):
    """With the newer ``Schema`` (comfy_api/latest/_io.py@58a8a96c) the EvoSearch Sampler is ``not_idempotent``: its
    ``run`` output is filled by the sampling node downstream, so two identical sampler nodes must not share one."""
    from comfy_api.latest import io

    sn = module("nodes.sampler_nodes")
    monkeypatch.setattr(io, "Schema", NewerSchema)
    schema = sn.EvoSearchSampler.define_schema()
    assert isinstance(schema, NewerSchema) and schema.not_idempotent and "best of n" in schema.search_aliases
    monkeypatch.undo()
    assert sn.EvoSearchSampler.define_schema().node_id == "EvoSearchSampler"  # and v0.3.64's Schema still builds


def test_process_redraw_coefficients_follow_the_noise_scale(compat):
    """comfy/model_sampling.py@38a99a82: with ``noise_scale`` s the state is (1 − σ)·x0 + σ·s·ε; the process's
    coefficients (what the re-draw mutation uses) must match its own initial state."""
    import comfy.samplers

    cp = module("nodes.comfy_process")
    flow, const, *_ = newer_samplings()
    sigmas = torch.tensor([1.0, 0.5, 0.0])
    for sampling, s in ((flow(const, noise_scale=0.7), 0.7), (flow(const), 1.0)):
        wrap = types.SimpleNamespace(inner_model=types.SimpleNamespace(model_sampling=sampling))
        process = cp.ComfyProcess(wrap, sigmas, comfy.samplers.ksampler("euler_ancestral"), {}, torch.zeros(1, 1),
                                  torch.zeros(1, 1), None, True)  # fmt: skip
        assert process.signal_scale(1) == pytest.approx(0.5) and process.noise_scale(1) == pytest.approx(0.5 * s)
        noise = torch.randn(3, 1, generator=torch.Generator().manual_seed(2))
        assert process.noise_scale(0) == pytest.approx(s)  # σ_0 = 1: the state is pure (scaled) noise
        assert torch.allclose(process.initial_state(noise), process.noise_scale(0) * noise)
