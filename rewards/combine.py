"""Weighted combinations of rewards, with a floor on a guard reward against reward hacking.

Scores of different rewards live on different scales (ImageReward ≈ −2…2, CLIPScore ≈ 0.3, PickScore ≈ 20,
aesthetic ≈ 1–10), so each member is first normalised:

* ``"raw"``: as returned; the combination is ``Σ wᵢ·sᵢ``. Batch-invariant.
* ``"zscore"``: ``(sᵢ − mean) / std`` within the scored batch (std floored at 1e-6).
* ``"rank"``: the rank within the batch scaled to 0..1 (ties share their mean rank), the "average rank across
  verifiers" of ComfyUI-InferenceTimeScaling.

``zscore`` and ``rank`` make a score depend on the rest of the batch; the object says so with
``batch_relative = True`` so a search can score whole populations at once (or refuse). Weights are divided by their
sum of absolute values, so the combination stays on the members' normalised scale.

Guard (optional): a second reward with a ``floor``. A sample whose guard score is below the floor loses
``penalty × (1 + shortfall)``, so it ranks below every sample that passes, and among failing samples the one closest
to the floor ranks first. Typical use: maximise an aesthetic or preference reward but keep CLIPScore ≥ 0.22 so the
image stays on-prompt (docs/rewards.md §6).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .feature_cache import feature_scope
from .protocol import check_images, check_scores, prompt_list, reward_traits

__all__ = ["CombinedReward", "NORMALISATIONS", "normalise"]

NORMALISATIONS = ("rank", "zscore", "raw")


def _ranks(x: torch.Tensor) -> torch.Tensor:
    """Ranks 0..1 with ties averaged (NaN counts as the worst)."""
    n = x.numel()
    if n < 2:
        return torch.full_like(x, 0.5)
    key = torch.nan_to_num(x, nan=float("-inf"))
    order = key.argsort(stable=True)
    ranks = torch.empty(n, dtype=torch.float32, device=x.device)
    ranks[order] = torch.arange(n, dtype=torch.float32, device=x.device)
    for value in key.unique():
        tie = key == value
        if int(tie.sum()) > 1:
            ranks[tie] = ranks[tie].mean()
    return ranks / (n - 1)


def normalise(scores: torch.Tensor, mode: str) -> torch.Tensor:
    """One member's scores under a normalisation of :data:`NORMALISATIONS`."""
    scores = scores.float()
    if mode == "raw":
        return scores
    if mode == "zscore":
        if scores.numel() < 2:
            return torch.zeros_like(scores)
        return (scores - scores.mean()) / scores.std(unbiased=False).clamp_min(1e-6)
    if mode == "rank":
        return _ranks(scores)
    raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {mode!r}")


class CombinedReward:
    """``Σ wᵢ·normalise(rewardᵢ)`` (weights divided by Σ|wᵢ|), optionally guarded by ``guard ≥ floor``."""

    def __init__(
        self,
        rewards: Sequence[Any],
        weights: Sequence[float] | None = None,
        normalisation: str = "rank",
        guard: Any = None,
        floor: float | None = None,
        penalty: float = 1000.0,
        prompt: str | None = None,
    ) -> None:
        if not rewards:
            raise ValueError("CombinedReward needs at least one reward")
        weights = [1.0] * len(rewards) if weights is None else [float(w) for w in weights]
        if len(weights) != len(rewards):
            raise ValueError(f"got {len(weights)} weights for {len(rewards)} rewards")
        total = sum(abs(w) for w in weights)
        if total == 0:
            raise ValueError("at least one reward weight must be non-zero")
        if normalisation not in NORMALISATIONS:
            raise ValueError(f"normalisation must be one of {NORMALISATIONS}, got {normalisation!r}")
        if guard is not None and floor is None:
            raise ValueError("a guard reward needs a floor")
        self.rewards = list(rewards)
        self.weights = [w / total for w in weights]
        self.normalisation = normalisation
        self.guard = guard
        self.floor = None if floor is None else float(floor)
        self.penalty = float(penalty)
        self._prompt = prompt
        members = [reward_traits(r) for r in self.rewards + ([guard] if guard is not None else [])]
        self.accepts_video = all(t.accepts_video for t in members)
        self.batch_relative = normalisation != "raw"
        names = " + ".join(f"{w:.2g}·{t.name}" for w, t in zip(self.weights, members))
        guard_name = f" | {members[-1].name} ≥ {self.floor:g}" if guard is not None else ""
        self.name = f"{names} ({normalisation}){guard_name}"

    @property
    def prompt(self) -> str | None:
        """The combination's own prompt, else the first member's."""
        if self._prompt:
            return self._prompt
        return next((p for r in self.rewards if (p := getattr(r, "prompt", None))), None)

    @prompt.setter
    def prompt(self, value: str | None) -> None:
        self._prompt = value

    device = None
    dtype = None

    def modules(self) -> list[torch.nn.Module]:
        seen: dict[int, torch.nn.Module] = {}
        for r in self.rewards + ([self.guard] if self.guard is not None else []):
            for m in reward_traits(r).modules:
                seen.setdefault(id(m), m)
        return list(seen.values())

    def _member(self, reward: Any, images: torch.Tensor, prompts: list[str], who: str) -> torch.Tensor:
        return check_scores(reward.score(images, prompts), images.shape[0], who).to(images.device)

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        """Combined scores ``[B]``. Every member scores the same batch against the same prompts: those passed here,
        else :attr:`prompt` (the combination's own, else the first member's). Members sharing a CLIP model share its
        image forward."""
        check_images(images, accepts_video=self.accepts_video, who=self.name)
        b = images.shape[0]
        prompts = prompt_list(prompts if prompts is not None else self.prompt, b)
        with feature_scope():
            total = torch.zeros(b, device=images.device)
            for w, reward in zip(self.weights, self.rewards):
                member = self._member(reward, images, prompts, reward_traits(reward).name)
                total = total + w * normalise(member, self.normalisation)
            if self.guard is not None:
                g = self._member(self.guard, images, prompts, "guard " + reward_traits(self.guard).name)
                shortfall = (self.floor - g).clamp_min(0)
                total = torch.where(g < self.floor, total - self.penalty * (1 + shortfall), total)
        return total
