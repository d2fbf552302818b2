"""The one place that knows both ComfyUI generations: v0.3.64 (what the pack is tested against in-process and through
the real server) and the newer API that later releases changed.

Every function detects the newer form by a signature or an attribute, never by a version string, and works on both.
Each docstring names the two forms. The pack's nodes, and the test support layer, call these instead of touching the
changed APIs directly, so a newer ComfyUI needs changes here only.

Groups: V3 node plumbing (class clones, optional schema features), the executor and the server, latents (compression
keys, video or one-frame image, previews), model sampling (flow noise scale, state coefficients, samplings that
ignore the initial noise), memory (free memory of a patcher, which models to put back after scoring).
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import logging
from collections.abc import Callable, Mapping
from typing import Any

import torch

log = logging.getLogger("evosearch.comfy")

__all__ = [
    "COMPRESSION_KEYS",
    "prepare_node_clone",
    "schema_extras",
    "input_extras",
    "optional_io",
    "make_prompt_executor",
    "cached_node_outputs",
    "server_flags",
    "fix_empty_latent",
    "strip_compression_keys",
    "is_video_latent",
    "as_scored_images",
    "preview_frame",
    "flow_noise_scale",
    "state_coefficients",
    "ignores_initial_noise",
    "free_memory",
    "models_to_restore",
]

#: Keys a newer LATENT dict may carry: the VAE compression its empty latent was sized for. Core samplers pass them to
#: ``fix_empty_latent_channels`` and drop them from their outputs.
COMPRESSION_KEYS = ("downscale_ratio_spacial", "downscale_ratio_temporal")


def _parameters(fn: Callable[..., object]) -> Mapping[str, inspect.Parameter]:
    try:
        return inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return {}


def _accepts(fn: Callable[..., object], name: str) -> bool:
    params = _parameters(fn)
    return name in params or any(p.kind == p.VAR_KEYWORD for p in params.values())


# ---------------------------------------------------------------------------------------------------- V3 nodes


def prepare_node_clone(node_cls: type, hidden: Mapping[str, Any] | None = None) -> type:
    """The class clone ComfyUI executes a V3 node on, with its hidden inputs (``cls.hidden``) filled in.

    ``hidden`` maps hidden-input ids (``io.Hidden`` values: ``"UNIQUE_ID"``, ``"PROMPT"``, ``"EXTRA_PNGINFO"``, …) to
    values, as ComfyUI's executor collects them.

    * v0.3.64: ``PREPARE_CLASS_CLONE(hidden_inputs)`` takes that dict itself.
    * newer (comfy_api/latest/_io.py@58a8a96c): ``PREPARE_CLASS_CLONE(v3_data)`` takes a ``V3Data`` dict and reads
      ``v3_data["hidden_inputs"]`` (a KeyError on the old dict).
    """
    hidden = dict(hidden or {})
    params = list(_parameters(node_cls.PREPARE_CLASS_CLONE))
    if params and params[0] == "v3_data":
        return node_cls.PREPARE_CLASS_CLONE({"hidden_inputs": hidden})
    return node_cls.PREPARE_CLASS_CLONE(hidden)


def _io_module() -> Any:
    from comfy_api.latest import io

    return io


def schema_extras(schema_cls: type | None = None, **features: Any) -> dict[str, Any]:
    """The subset of ``features`` (``io.Schema`` keyword arguments) the installed ``io.Schema`` accepts.

    * v0.3.64: ``io.Schema`` has no ``search_aliases``, ``not_idempotent``, ``essentials_category`` or
      ``has_intermediate_output``; they are dropped (logged at debug level) so the node still registers.
    * newer (comfy_api/latest/_io.py@58a8a96c): all four are ``Schema`` fields and are passed through.

    Use as ``io.Schema(node_id=…, …, **schema_extras(not_idempotent=True, search_aliases=[…]))``.
    """
    schema_cls = schema_cls or _io_module().Schema
    kept = {k: v for k, v in features.items() if _accepts(schema_cls, k)}
    dropped = sorted(set(features) - set(kept))
    if dropped:
        log.debug("io.Schema of this ComfyUI has no %s; left out", ", ".join(dropped))
    return kept


def input_extras(input_cls: type, **features: Any) -> dict[str, Any]:
    """The subset of ``features`` an input class (``io.Float.Input``, …) accepts, e.g. ``advanced=True``.

    * v0.3.64: inputs have no ``advanced`` argument; it is dropped and the widget shows as a normal one.
    * newer (comfy_api/latest/_io.py@58a8a96c): ``Input.__init__(…, advanced: bool=None)`` hides it behind the
      node's "advanced" toggle.
    """
    return {k: v for k, v in features.items() if _accepts(input_cls.__init__, k)}


def optional_io(name: str, io_module: Any | None = None) -> Any | None:
    """An ``io`` type that only newer releases have (``"Autogrow"``, ``"DynamicCombo"``, …), or ``None``.

    * v0.3.64: neither ``io.Autogrow`` nor ``io.DynamicCombo`` exists (only the unfinished ``AutogrowDynamic``).
    * newer (comfy_api/latest/_io.py@58a8a96c): both exist and register dynamic-input handlers.

    Callers fall back to fixed inputs when it is ``None``.
    """
    return getattr(io_module if io_module is not None else _io_module(), name, None)


# ---------------------------------------------------------------------------------------------------- executor, server


#: What newer releases' main.py passes as ``cache_args`` for a classic cache (main.py@4f8cf3e2): the RAM-pressure
#: thresholds are only read, and are 0, when the cache is not the RAM-pressure one.
CLASSIC_CACHE_ARGS = {"lru": 0, "ram": 0.0, "ram_inactive": 0.0}


def make_prompt_executor(server: Any, cache: str = "CLASSIC", execution_module: Any | None = None) -> Any:
    """ComfyUI's ``execution.PromptExecutor`` for ``server`` with the cache type named ``cache``.

    * v0.3.64: ``PromptExecutor(server, cache_type=False, cache_size=None)``; ``CacheType`` is CLASSIC, LRU,
      DEPENDENCY_AWARE.
    * newer (execution.py@cb707e9c): ``PromptExecutor(server, cache_type=False, cache_args=None)`` and
      ``execute_async`` reads ``cache_args["ram"]`` and ``["ram_inactive"]`` (a TypeError on ``None``); ``CacheType``
      is CLASSIC, LRU, NONE, RAM_PRESSURE. The arguments main.py@4f8cf3e2 passes are given.
    """
    execution = execution_module if execution_module is not None else importlib.import_module("execution")
    members = [m.name for m in execution.CacheType]
    if cache not in members:
        raise ValueError(f"cache type {cache!r} is not one of this ComfyUI's execution.CacheType members {members}")
    kwargs: dict[str, Any] = {"cache_type": execution.CacheType[cache]}
    if "cache_args" in _parameters(execution.PromptExecutor):
        kwargs["cache_args"] = dict(CLASSIC_CACHE_ARGS)
    return execution.PromptExecutor(server, **kwargs)


def cached_node_outputs(executor: Any, node_id: str) -> Any:
    """The cached outputs of ``node_id`` after ``executor.execute`` (``None`` if it has none).

    * v0.3.64: ``executor.caches.outputs.get(node_id)`` returns the entry (a ``CacheEntry`` or the outputs).
    * newer (execution.py@cb707e9c): ``caches.outputs.get`` is a coroutine function; it is awaited here.
    """
    entry = executor.caches.outputs.get(node_id)
    if inspect.isawaitable(entry):
        entry = asyncio.run(entry)
    return entry.outputs if hasattr(entry, "outputs") else entry


#: Start flags that turn off newer server subsystems a headless test or batch server does not need, each passed only
#: where ComfyUI's argument parser defines it.
_OPTIONAL_SERVER_FLAGS = ("--disable-assets",)


def server_flags(parser: Any | None = None) -> list[str]:
    """Extra ``main.py`` flags this ComfyUI needs for a headless server with no optional subsystems.

    * v0.3.64: no assets system and no ``--disable-assets`` flag; nothing is added.
    * newer: releases whose assets system is on by default stop at startup when its packages are missing unless
      ``--disable-assets`` is given; the flag is added wherever the parser knows it. Where the system is opt-in
      (``--enable-assets``, comfy/cli_args.py@f90acc3b) there is no such flag and nothing is added.

    ``parser`` is ComfyUI's ``comfy.cli_args.parser`` (read when omitted).
    """
    if parser is None:
        from comfy.cli_args import parser
    flags = []
    for flag in _OPTIONAL_SERVER_FLAGS:
        _, unknown = parser.parse_known_args([flag])
        if not unknown:
            flags.append(flag)
    return flags


# ---------------------------------------------------------------------------------------------------- latents


def fix_empty_latent(
    model: Any, latent: Mapping[str, Any], fix: Callable[..., torch.Tensor] | None = None
) -> torch.Tensor:
    """``comfy.sample.fix_empty_latent_channels`` of a LATENT dict, with the compression keys it carries if accepted.

    * v0.3.64: ``fix_empty_latent_channels(model, latent_image)`` fixes channels and adds a frame axis for 3-D
      models; it takes no compression keys (nor does any v0.3.64 node emit them).
    * newer (nodes.py@5aabaf51 ``common_ksampler``, comfy_extras/nodes_custom_sampler.py@be91880b
      ``SamplerCustomAdvanced``): empty latents carry ``downscale_ratio_spacial`` (8 from EmptyLatentImage) and
      samplers pass it and ``downscale_ratio_temporal`` on, so an empty latent is resized to the model's own VAE
      compression (``latent_format.spacial_downscale_ratio``, 16 for Wan 2.2: comfy/latent_formats.py@9a9a69fd).
      A sampler that does not would sample a latent twice too large for Wan 2.2 or Flux 2.

    Keys the installed function does not accept are left out (logged at debug level).
    """
    if fix is None:
        import comfy.sample

        fix = comfy.sample.fix_empty_latent_channels
    kwargs = {k: latent[k] for k in COMPRESSION_KEYS if k in latent and _accepts(fix, k)}
    ignored = [k for k in COMPRESSION_KEYS if k in latent and k not in kwargs]
    if ignored:
        log.debug("this ComfyUI's fix_empty_latent_channels takes no %s; not passed", ", ".join(ignored))
    return fix(model, latent["samples"], **kwargs)


def strip_compression_keys(latent: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a LATENT dict without :data:`COMPRESSION_KEYS`, as core samplers return their outputs.

    * v0.3.64: the keys never appear; the copy equals the input.
    * newer (nodes.py@5aabaf51, comfy_extras/nodes_custom_sampler.py@be91880b): ``common_ksampler`` and
      ``SamplerCustomAdvanced`` pop both from their output, because the sampled latent has the model's real size; a
      later node would otherwise resize it again.
    """
    return {k: v for k, v in latent.items() if k not in COMPRESSION_KEYS}


def is_video_latent(latent_format: Any, latent: torch.Tensor) -> bool:
    """Whether ``latent`` (VAE or model space) is a video: a 3-D latent format and more than one latent frame.

    Both versions give video and image models of one VAE family the same latent format: a Qwen-Image image latent
    is ``[B, 16, 1, H, W]`` in Wan 2.1's format (comfy/supported_models.py, v0.3.64 and newer), and a Wan one-frame
    latent is a still too. One latent frame decodes to one frame, which is scored as an image.
    """
    return getattr(latent_format, "latent_dimensions", 2) == 3 and latent.dim() == 5 and latent.shape[2] > 1


def as_scored_images(images: torch.Tensor, latent_format: Any, latent: torch.Tensor) -> torch.Tensor:
    """The decode of ``latent`` in the layout a reward scores: ``[B, H, W, 3]`` for stills, ``[B, T, H, W, 3]`` videos.

    A one-frame 5-D latent (Qwen-Image, or Wan with length 1) decodes to ``[B, 1, H, W, 3]``; it is a still image
    (see :func:`is_video_latent`) and loses the frame axis. Same in both versions.
    """
    if images.dim() == 5 and images.shape[1] == 1 and not is_video_latent(latent_format, latent):
        return images[:, 0]
    return images


def _previews_stills_only(previewer: Any) -> bool:
    taesd = getattr(previewer, "taesd", None)
    if taesd is None:
        return False
    try:
        from comfy.taesd.taesd import TAESD
    except ImportError:  # pragma: no cover - every ComfyUI with previews has it
        return False
    return isinstance(taesd, TAESD)


def preview_frame(previewer: Any, x0: torch.Tensor) -> torch.Tensor:
    """The part of ``x0`` (``[B, C, H, W]`` or a video ``[B, C, T, H, W]``) to hand ``previewer``: item 0, middle frame.

    * v0.3.64: ``Latent2RGBPreviewer`` takes 4-D or 5-D (frame 0 of 5-D); the image TAESD previewer takes 4-D only.
    * newer (latent_preview.py@d914cd96): video models (Wan 2.1/2.2, HunyuanVideo, LTXV) preview through
      ``TAEHVPreviewerImpl``, which slices ``x0[:1, :, :1]`` and needs 5-D: a 4-D frame gives no preview, silently.

    A video keeps its frame axis with the one middle frame, unless the previewer decodes stills with an image TAESD.
    """
    sample = x0[:1]
    if sample.dim() != 5:
        return sample
    middle = sample.shape[2] // 2
    if _previews_stills_only(previewer):
        return sample[:, :, middle]
    return sample[:, :, middle : middle + 1]


# ---------------------------------------------------------------------------------------------------- model sampling


def _is_flow(model_sampling: Any) -> bool:
    import comfy.model_sampling

    return isinstance(model_sampling, comfy.model_sampling.CONST)


def flow_noise_scale(model_sampling: Any) -> float:
    """``s`` in a flow model's ``noise_scaling``: x = σ·(s·ε) + (1 − σ)·x0.

    * v0.3.64: ``CONST.noise_scaling`` is σ·ε + (1 − σ)·x0, i.e. s = 1, and no ``noise_scale`` attribute exists.
    * newer (comfy/model_sampling.py@38a99a82): ``CONST.noise_scaling`` reads ``getattr(self, "noise_scale", 1.0)``,
      set by ``ModelSamplingDiscreteFlow.set_noise_scale`` from the model's ``sampling_settings``.
    """
    return float(getattr(model_sampling, "noise_scale", 1.0))


def state_coefficients(model_sampling: Any, sigma: float) -> tuple[float, float]:
    """(α, c) of a state at ``sigma`` written x = α·x0 + c·ε, ε ~ N(0, I), for the re-draw mutation.

    EPS / v-prediction (both versions): (1, σ). Flow (CONST): (1 − σ, σ) on v0.3.64, (1 − σ, σ·s) newer, with
    ``s`` from :func:`flow_noise_scale` (comfy/model_sampling.py@38a99a82). Flow ODE steps keep the s-scaled noise
    (x moves along x0 + σ/σ_prev·(x − x0)), so the same coefficients hold at every step.
    """
    sigma = float(sigma)
    if _is_flow(model_sampling):
        return 1.0 - sigma, sigma * flow_noise_scale(model_sampling)
    return 1.0, sigma


def ignores_initial_noise(model_sampling: Any) -> bool:
    """Whether ``model_sampling.noise_scaling`` discards the noise it is given (then an x_T search changes nothing).

    * v0.3.64: every model sampling mixes the noise in (EPS, V_PREDICTION, CONST, X0, IMG_TO_IMG, COSMOS_RFLOW).
    * newer (comfy/model_sampling.py@38a99a82): ``IMG_TO_IMG_FLOW`` and ``IMG_TO_IMG_VELOCITY`` return the latent
      unchanged: the initial noise, and so every initial-noise mutation, has no effect.

    Detected by behaviour (the noise of a probe call does not reach its output), so future samplings of the kind are
    caught too.
    """
    probe = getattr(model_sampling, "noise_scaling", None)
    if probe is None:
        return False
    noise, latent = torch.ones((1, 1, 1, 1)), torch.zeros((1, 1, 1, 1))
    try:
        out = probe(torch.tensor(0.5), noise, latent, False)
    except Exception:  # noqa: BLE001 - an unusual sampling that cannot take a probe: assume it uses the noise
        return False
    return bool(torch.equal(torch.as_tensor(out).float(), latent))


# ---------------------------------------------------------------------------------------------------- memory


def free_memory(patcher: Any, device: Any | None = None) -> float:
    """Bytes free for computing with ``patcher``'s model on ``device`` (its load device by default).

    * v0.3.64: ``comfy.model_management.get_free_memory(device)``.
    * newer (comfy/model_patcher.py@e59d85a0): ``ModelPatcher.get_free_memory(device)`` adds what dynamic VRAM could
      release (comfy-aimdo), and ``model_management.get_free_memory`` tells callers to use it.
    """
    device = device if device is not None else patcher.load_device
    method = getattr(patcher, "get_free_memory", None)
    if callable(method):
        return float(method(device))
    import comfy.model_management

    return float(comfy.model_management.get_free_memory(device))


def models_to_restore(model_wrap: Any) -> list[Any]:
    """The patchers a guider had loaded for sampling: the diffusion model first, then its additional models.

    In both versions (comfy/sampler_helpers.py, v0.3.64 and @53757775) ``prepare_sampling`` loads
    ``[model] + models`` but returns (and the guider keeps as ``model_wrap.loaded_models``) only the additional
    ``models``: ControlNets, GLIGEN, hooks' models. Putting back only those after a reward model had the device
    leaves the diffusion model out. Deduplicated by identity, order kept.
    """
    out: list[Any] = []
    for patcher in [getattr(model_wrap, "model_patcher", None), *(getattr(model_wrap, "loaded_models", None) or [])]:
        if patcher is not None and all(patcher is not seen for seen in out):
            out.append(patcher)
    return out
