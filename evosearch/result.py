"""What a search returns and what its callback receives."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .mutation import Mutation
from .schedule import Schedule

__all__ = ["GenerationRecord", "SearchEvent", "SearchResult", "StopSearch"]


class StopSearch(Exception):
    """Raise from a search callback to end the search early and get the best result found so far."""


@dataclass(frozen=True)
class GenerationRecord:
    """One generation: born at ``step``; NFE and reward calls so far; its own and the global best reward."""

    generation: int
    step: int
    individuals: int
    nfe: int
    reward_calls: int
    best_reward: float
    generation_best: float
    mean_reward: float
    seconds: float

    def to_dict(self) -> dict[str, float | int]:
        return dict(self.__dict__)


@dataclass
class SearchEvent:
    """Passed to the search callback after every model step (``kind="step"``) and generation (``"generation"``).

    ``x``/``denoised`` hold the current chunk's states and x0 predictions on step events; ``best`` the best sample
    scored so far (``None`` before the first score). ``nfe / total_nfe`` is the search's progress.
    """

    kind: str
    step: int
    nfe: int
    total_nfe: int
    generation: int
    best_reward: float
    x: torch.Tensor | None = None
    denoised: torch.Tensor | None = None
    best: torch.Tensor | None = None
    record: GenerationRecord | None = None


@dataclass
class SearchResult:
    """The outcome of :func:`evosearch.search`.

    ``best`` is the best clean sample ever scored (``[1, *shape]``); ``samples``/``rewards`` the final population,
    best first. ``nfe`` counts model evaluations per individual per step; ``reward_calls`` the individuals scored.
    """

    best: torch.Tensor
    best_reward: float
    samples: torch.Tensor
    rewards: torch.Tensor
    nfe: int
    reward_calls: int
    history: list[GenerationRecord]
    seconds: float
    schedule: Schedule
    mutation: Mutation
    seed: int
    steps: int
    stopped: bool = False
    extras: dict = field(default_factory=dict)

    @property
    def method(self) -> str:
        return self.schedule.strategy

    def report(self) -> dict[str, object]:
        """A JSON-friendly summary: method, compute spent, and the per-generation curve."""
        return {
            "method": self.schedule.strategy,
            "schedule": self.schedule.to_dict(),
            "mutation": self.mutation.to_dict() if self.schedule.strategy == "evosearch" else None,
            "seed": self.seed,
            "steps": self.steps,
            "nfe": self.nfe,
            "planned_nfe": self.schedule.nfe(self.steps),
            "budget_multiple": round(self.nfe / self.steps, 3),
            "equal_budget_best_of_n": self.nfe // self.steps,
            "reward_calls": self.reward_calls,
            "seconds": round(self.seconds, 3),
            "best_reward": self.best_reward,
            "final_rewards": [float(r) for r in self.rewards],
            "stopped_early": self.stopped,
            "history": [r.to_dict() for r in self.history],
            **self.extras,
        }
