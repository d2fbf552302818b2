"""ComfyUI-side management of reward models: the ``rewards`` model folder, loading, and scoring under
``comfy.model_management`` (docs/comfyui.md §5).

* :func:`register_reward_folder` registers ``models/rewards`` with ``folder_paths`` (so ``extra_model_paths.yaml`` can
  add ``rewards: /path``); one sub-folder per reward kind (see :mod:`rewards.registry`).
* :func:`score_images` is what every node and the search sampler call to score a batch: it loads the reward's modules
  through ``load_models_gpu`` (one ``ModelPatcher`` per module, cached on the module, so rewards sharing a CLIP model
  share one patcher), moves the images to the reward's device and dtype, scores under ``no_grad`` and returns CPU
  float32 scores. Any object with a ``score`` method works, with or without modules.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import comfy.model_management as mm
import comfy.model_patcher
import folder_paths
import torch

from ..rewards.protocol import check_images, check_scores, prompt_list, reward_traits
from ..rewards.registry import WEIGHT_SUFFIXES, get_kind, list_weights, reward_kinds

__all__ = [
    "FOLDER",
    "AUTO",
    "register_reward_folder",
    "reward_roots",
    "model_choices",
    "official_choice",
    "resolve_model",
    "resolve_dtype",
    "score_images",
    "reward_accepts_video",
    "patcher_for",
]

log = logging.getLogger("evosearch")

FOLDER = "rewards"
AUTO = "auto"
#: Activation memory asked for per scored image when loading a reward, on top of ComfyUI's minimum inference reserve
#: (≈1 GB). CLIP ViT-H/14 at 224 px in 16-bit needs a few MB per image; asking for more would evict the diffusion
#: model on every scoring round.
MEMORY_PER_IMAGE = 16 * 1024 * 1024


def register_reward_folder() -> None:
    """Add ``<models>/rewards`` to ``folder_paths`` (after any ``rewards:`` paths from extra_model_paths.yaml)."""
    default = os.path.join(folder_paths.models_dir, FOLDER)
    folder_paths.add_model_folder_path(FOLDER, default)
    paths, extensions = folder_paths.folder_names_and_paths[FOLDER]
    if not extensions:
        folder_paths.folder_names_and_paths[FOLDER] = (paths, set(WEIGHT_SUFFIXES))


def reward_roots() -> list[str]:
    """Every registered ``rewards`` folder, in ComfyUI's order."""
    register_reward_folder()
    return folder_paths.get_folder_paths(FOLDER)


def official_choice(kind_name: str) -> str | None:
    """The combo entry of a kind's official file (``"imagereward/ImageReward.pt"``); ``None`` for weight-free kinds."""
    kind = get_kind(kind_name)
    return f"{kind.folder}/{kind.files[0]}" if kind.needs_weights else None


def model_choices(kinds: list[str] | None = None) -> list[str]:
    """``"auto"``, then per kind its installed weight files or model folders and its official file name even when it is
    not installed, as ``"<kind folder>/<name>"``.

    Listing the official names keeps workflows that name them valid on any machine (the frontend's Missing Models
    dialog offers a file only when a widget names it); loading one that is not installed raises the loader's
    :class:`~rewards.errors.MissingRewardFile` at run time, which names the file, the folders searched and the source.
    """
    roots = reward_roots()
    out = [AUTO]
    for name in kinds or reward_kinds():
        kind = get_kind(name)
        if not kind.needs_weights:
            continue
        for entry in [f"{kind.folder}/{p.name}" for p in list_weights(kind, roots)] + [official_choice(name)]:
            if entry not in out:
                out.append(entry)
    return out


def resolve_model(kind_name: str, choice: str, node: str) -> str | None:
    """The ``name`` to pass to :func:`rewards.load_reward` for a combo choice (``None`` = first expected file)."""
    kind = get_kind(kind_name)
    if not choice or choice == AUTO or not kind.needs_weights:
        return None
    folder, _, name = choice.partition("/")
    if folder != kind.folder or not name:
        raise ValueError(
            f"{node}: model {choice!r} is in rewards/{folder}/, but reward kind {kind_name!r} reads "
            f"rewards/{kind.folder}/. "
            f"Pick a file from rewards/{kind.folder}/ or 'auto'."
        )
    return name


def resolve_dtype(name: str, device: torch.device | None = None) -> torch.dtype:
    """``auto`` → bf16 (or fp16) where the device computes it fast, fp32 on the CPU; else the named dtype."""
    if name == "fp32":
        return torch.float32
    if name == "bf16":
        return torch.bfloat16
    if name == "fp16":
        return torch.float16
    if name != AUTO:
        raise ValueError(f"dtype must be auto, fp32, bf16 or fp16, got {name!r}")
    device = device or mm.get_torch_device()
    if mm.is_device_cpu(device):
        return torch.float32
    if mm.should_use_bf16(device):
        return torch.bfloat16
    return torch.float16 if mm.should_use_fp16(device) else torch.float32


class _RewardModule(torch.nn.Module):
    """Container giving ModelPatcher a plain module (a transformers model's ``device`` property cannot be set)."""

    def __init__(self, inner: torch.nn.Module) -> None:
        super().__init__()
        self.inner = inner


def patcher_for(module: torch.nn.Module) -> comfy.model_patcher.ModelPatcher:
    """The ModelPatcher of a reward module, created once and kept on the module (shared by every reward using it)."""
    patcher = module.__dict__.get("_evosearch_patcher")
    if patcher is None:
        patcher = comfy.model_patcher.ModelPatcher(
            _RewardModule(module), load_device=mm.get_torch_device(), offload_device=mm.unet_offload_device()
        )
        object.__setattr__(module, "_evosearch_patcher", patcher)
    return patcher


def reward_accepts_video(reward: Any) -> bool:
    """Whether ``reward.score`` takes ``[B, T, H, W, 3]`` videos (protocol attribute ``accepts_video``)."""
    return reward_traits(reward).accepts_video


def _target_device(traits: Any, patchers: list, images: torch.Tensor) -> torch.device:
    if traits.device is not None:
        return traits.device
    if patchers:
        return patchers[0].load_device
    return images.device


def score_images(reward: Any, images: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    """Score ``images`` (``[B,H,W,3]``, or ``[B,T,H,W,3]`` for a video reward) → CPU float32 ``Tensor[B]``.

    ``prompts``: one per sample (or one for all); ``None`` uses the reward's ``prompt`` attribute. The reward's
    modules are loaded to the compute device through ``comfy.model_management.load_models_gpu`` (fully, with room
    for activations) and offloaded by ComfyUI when other models need the memory. The images go to the reward's
    ``device`` (else the load device) and ``dtype`` (if it declares a floating one).
    """
    traits = reward_traits(reward)
    check_images(images, accepts_video=traits.accepts_video, who=traits.name)
    b = images.shape[0]
    prompts = prompt_list(prompts if prompts is not None else (traits.prompt or None), b)
    patchers = [patcher_for(m) for m in traits.modules]
    if patchers:
        frames = images.shape[1] if images.dim() == 5 else 1
        mm.load_models_gpu(patchers, memory_required=MEMORY_PER_IMAGE * b * min(frames, 16), force_full_load=True)
        traits = reward_traits(reward)  # the device may have changed with the load
    device = _target_device(traits, patchers, images)
    dtype = traits.dtype if traits.dtype is not None and traits.dtype.is_floating_point else torch.float32
    with torch.no_grad():
        scores = reward.score(images.to(device=device, dtype=dtype), prompts)
    return check_scores(scores, b, traits.name).detach().to("cpu", torch.float32)
