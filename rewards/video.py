"""Score videos with any image reward: sample K frames per video, score them in one batch, aggregate.

The practical default of docs/rewards.md §2 ("Video from image rewards"): frames are taken uniformly over the clip
(``"uniform"``: indices ``round(linspace(0, T−1, K))``) or as first/middle/last (``"first_middle_last"``), scored as
one ``[B·K, H, W, 3]`` batch with each video's prompt repeated, and reduced per video to the mean, or to
``mean − λ·std`` (population std over the K frames), which also rewards temporal consistency. Stills
(``[B, H, W, 3]``) go straight to the image reward.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .protocol import check_images, prompt_list, reward_traits

__all__ = ["FrameSampled", "frame_indices", "FRAME_POLICIES", "AGGREGATES"]

FRAME_POLICIES = ("uniform", "first_middle_last")
AGGREGATES = ("mean", "mean_minus_std")


def frame_indices(total: int, frames: int, policy: str = "uniform") -> list[int]:
    """Which of ``total`` frames to score: ``frames`` uniform ones (all when ``frames`` ≤ 0 or ≥ total), or 3 fixed."""
    if total <= 0:
        raise ValueError("a video needs at least one frame")
    if policy == "first_middle_last":
        return sorted({0, (total - 1) // 2, total - 1})
    if policy != "uniform":
        raise ValueError(f"frame policy must be one of {FRAME_POLICIES}, got {policy!r}")
    if frames <= 0 or frames >= total:
        return list(range(total))
    return torch.linspace(0, total - 1, frames).round().long().tolist()


class FrameSampled:
    """A video reward made from an image reward (see the module docstring).

    ``frames`` K (0 = every frame), ``policy`` ``"uniform"`` or ``"first_middle_last"``, ``aggregate`` ``"mean"`` or
    ``"mean_minus_std"`` with weight ``lam`` (λ ≥ 0).
    """

    accepts_video = True

    def __init__(
        self, reward: Any, frames: int = 8, policy: str = "uniform", aggregate: str = "mean", lam: float = 0.5
    ) -> None:
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {AGGREGATES}, got {aggregate!r}")
        if lam < 0:
            raise ValueError(f"lam (λ of mean − λ·std) must be ≥ 0, got {lam}")
        frame_indices(2, frames, policy)  # validates the policy
        self.reward = reward
        self.frames = int(frames)
        self.policy = policy
        self.aggregate = aggregate
        self.lam = float(lam)
        self.name = reward_traits(reward).name  # stills pass straight through, so the image reward's name
        count = "all" if self.frames <= 0 else str(self.frames)
        frames = f"{count} uniform frames" if policy == "uniform" else "first/middle/last frames"
        self.video_policy = f"{frames}, {aggregate}" + (f" (λ={self.lam:g})" if aggregate == "mean_minus_std" else "")

    @property
    def prompt(self) -> str | None:
        return getattr(self.reward, "prompt", None)

    @prompt.setter
    def prompt(self, value: str | None) -> None:
        self.reward.prompt = value

    @property
    def device(self) -> torch.device | None:
        return reward_traits(self.reward).device

    @property
    def dtype(self) -> torch.dtype | None:
        return reward_traits(self.reward).dtype

    def modules(self) -> list[torch.nn.Module]:
        return list(reward_traits(self.reward).modules)

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        check_images(images, accepts_video=True, who=self.name)
        b = images.shape[0]
        prompts = prompt_list(prompts if prompts is not None else self.prompt, b)
        if images.dim() == 4:
            return torch.as_tensor(self.reward.score(images, prompts))
        idx = frame_indices(images.shape[1], self.frames, self.policy)
        k = len(idx)
        frames = images[:, idx].reshape(b * k, *images.shape[2:])
        per_frame = torch.as_tensor(self.reward.score(frames, [p for p in prompts for _ in range(k)]))
        per_frame = per_frame.float().reshape(b, k)
        mean = per_frame.mean(dim=1)
        if self.aggregate == "mean":
            return mean
        return mean - self.lam * per_frame.std(dim=1, unbiased=False)
