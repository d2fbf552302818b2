"""The reward protocol shared by the search nodes and every reward backend.

A reward is any object with a ``score(images, prompts)`` method:

* ``images``: ``Tensor[B, H, W, 3]`` (stills) or ``Tensor[B, T, H, W, 3]`` (videos), float in 0..1, in ComfyUI's IMAGE
  layout (channels last). Any device and dtype; the reward moves them where it needs them.
* ``prompts``: a sequence of ``B`` strings (one per image or video). A single string is broadcast by
  :func:`prompt_list`.
* returns ``Tensor[B]``, higher is better. A score must not depend on the other members of the batch.

Optional attributes a reward may declare (read through :func:`reward_traits`, with the defaults shown):

* ``accepts_video = False``: whether ``score`` takes ``[B, T, H, W, 3]``. Image-only rewards are refused for video
  latents unless wrapped in a frame-sampling video adapter.
* ``device = None`` / ``dtype = None``: where the reward wants to run; ``None`` means "wherever its modules are".
* ``modules()``: the ``torch.nn.Module`` objects holding its weights, so the ComfyUI side can put them under
  ``comfy.model_management`` (moved on and off the GPU next to the diffusion model). Return ``[]`` for none.
* ``name``: a short label for reports.
* ``prompt``: the text the reward scores against when the caller has no prompt of its own (the search nodes only
  see CONDITIONING, never the text, so they pass ``prompt_list(reward.prompt, B)``). ``None``/absent means "".
* ``batch_relative = False``: ``True`` when scores are only comparable within one call (a combination normalised by
  rank or z-score within the batch). Such a reward breaks the batch-invariance rule above on purpose; a search
  should score everything it compares in one call, or use a raw combination.

This module imports torch only (no ComfyUI), so the search engine, the nodes and the tests share it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import torch

__all__ = ["Reward", "RewardTraits", "reward_traits", "prompt_list", "check_images", "check_scores"]


@runtime_checkable
class Reward(Protocol):
    """Anything that scores images (or videos) against prompts; higher is better."""

    def score(self, images: torch.Tensor, prompts: Sequence[str]) -> torch.Tensor:  # pragma: no cover - protocol
        ...


@dataclass(frozen=True)
class RewardTraits:
    """What a reward declares about itself, with the protocol's defaults filled in."""

    name: str
    prompt: str = ""
    accepts_video: bool = False
    device: torch.device | None = None
    dtype: torch.dtype | None = None
    modules: tuple[torch.nn.Module, ...] = field(default_factory=tuple)
    batch_relative: bool = False


def reward_traits(reward: object) -> RewardTraits:
    """Read the optional attributes of a reward object (see the module docstring) with their defaults."""
    if not callable(getattr(reward, "score", None)):
        raise TypeError(
            f"{type(reward).__name__} is not a reward: it needs a score(images, prompts) -> Tensor[B] method "
            "(see rewards/protocol.py)."
        )
    modules_attr = getattr(reward, "modules", None)
    modules = tuple(modules_attr()) if callable(modules_attr) else ()
    device = getattr(reward, "device", None)
    return RewardTraits(
        name=str(getattr(reward, "name", type(reward).__name__)),
        prompt=str(getattr(reward, "prompt", None) or ""),
        accepts_video=bool(getattr(reward, "accepts_video", False)),
        device=torch.device(device) if device is not None else None,
        dtype=getattr(reward, "dtype", None),
        modules=modules,
        batch_relative=bool(getattr(reward, "batch_relative", False)),
    )


def prompt_list(prompts: str | Sequence[str] | None, batch: int) -> list[str]:
    """Normalise ``prompts`` to a list of ``batch`` strings (a single string or a 1-list is broadcast)."""
    if prompts is None:
        return [""] * batch
    if isinstance(prompts, str):
        return [prompts] * batch
    prompts = [str(p) for p in prompts]
    if len(prompts) == 1:
        return prompts * batch
    if len(prompts) != batch:
        raise ValueError(f"got {len(prompts)} prompts for a batch of {batch} images; pass one prompt or one per image")
    return prompts


def check_images(images: torch.Tensor, *, accepts_video: bool, who: str = "reward") -> None:
    """Raise a clear error unless ``images`` is ``[B,H,W,3]`` (or ``[B,T,H,W,3]`` when ``accepts_video``)."""
    if not isinstance(images, torch.Tensor):
        raise TypeError(f"{who}: images must be a torch.Tensor in ComfyUI IMAGE layout, got {type(images).__name__}")
    ok_dims = (4, 5) if accepts_video else (4,)
    if images.dim() not in ok_dims or images.shape[-1] != 3:
        layout = "[B,H,W,3] or [B,T,H,W,3]" if accepts_video else "[B,H,W,3]"
        hint = "" if accepts_video or images.dim() != 5 else " (this reward is image-only: wrap it in a video adapter)"
        raise ValueError(f"{who}: images must be {layout} float 0..1, got shape {tuple(images.shape)}{hint}")


def check_scores(scores: object, batch: int, who: str = "reward") -> torch.Tensor:
    """Return ``scores`` as a float ``Tensor[batch]`` or raise a ``ValueError`` naming the bad shape."""
    scores = torch.as_tensor(scores)
    if scores.dim() == 2 and scores.shape[1] == 1:
        scores = scores[:, 0]
    if scores.shape != (batch,):
        raise ValueError(f"{who} returned scores of shape {tuple(scores.shape)}, expected ({batch},): one per sample")
    return scores.float()
