"""Scoring decoded images with a reward from inside ComfyUI (interim version; model management lands with rewards)."""

from __future__ import annotations

import torch

from ..rewards.protocol import check_scores, prompt_list, reward_traits

__all__ = ["score_images", "reward_accepts_video"]


def reward_accepts_video(reward: object) -> bool:
    """Whether ``reward.score`` takes ``[B,T,H,W,3]`` videos."""
    return reward_traits(reward).accepts_video


def score_images(reward: object, images: torch.Tensor, prompts: list[str] | None = None) -> torch.Tensor:
    """Score ``images`` with ``reward`` against ``prompts`` (default: the reward's own prompt); CPU float32 [B]."""
    traits = reward_traits(reward)
    prompts = prompt_list(prompts if prompts is not None else traits.prompt, images.shape[0])
    with torch.no_grad():
        scores = reward.score(images, prompts)
    return check_scores(scores, images.shape[0], who=traits.name).detach().to("cpu", torch.float32)
