"""What a search returns and what its callback receives.

Reports are strict JSON: every number is finite; a value that does not exist (the mean of a generation whose rewards
were all NaN, the best reward before anything was scored) is ``None``, never ±inf, NaN or a 1e308 placeholder.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from .mutation import Mutation
from .schedule import Schedule

__all__ = [
    "GenerationRecord",
    "SearchEvent",
    "SearchResult",
    "StopSearch",
    "distinct_options",
    "finite_or_none",
    "strict_json",
]


class StopSearch(Exception):
    """Raise from a search callback to end the search early and get the best result found so far."""


def finite_or_none(value: object) -> float | None:
    """``value`` as a float if it is a finite number, else ``None``."""
    if value is None:
        return None
    value = float(value)  # type: ignore[arg-type]
    return value if math.isfinite(value) else None


def strict_json(value: object) -> object:
    """A copy of ``value`` (dicts, lists, tuples, numbers) with every non-finite float replaced by ``None``."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def distinct_options(
    samples: torch.Tensor,
    rewards: torch.Tensor,
    k: int,
    candidates: int | None = None,
    lineages: torch.Tensor | None = None,
) -> torch.Tensor:
    """Indices of ``k`` good and mutually distinct samples, best first.

    Among the ``candidates`` best (default 4·k) the best sample is taken, then repeatedly the one farthest (L2) from
    all taken so far: a de-duplicated top-k that keeps the best and spreads the rest over the good ones, so a
    population of near-copies of one winner is not returned as k "options". With ``lineages`` (a label per sample,
    e.g. the island it evolved on) the best of each lineage is taken first, best lineages first, and only then the
    farthest of the rest (docs/method.md §12).
    """
    n = int(samples.shape[0])
    k = max(0, min(int(k), n))
    if k == 0:
        return torch.empty(0, dtype=torch.long)
    key = rewards.detach().to("cpu", torch.float64)
    key = torch.where(torch.isnan(key), torch.full_like(key, float("-inf")), key)
    order = torch.sort(key, descending=True, stable=True).indices
    pool = order[: min(n, candidates or 4 * k)]
    first = [int(order[0])]
    if lineages is not None:
        labels = lineages.detach().to("cpu")
        heads: dict[int, int] = {}
        for i in order.tolist():  # best first, so a lineage's first sample is its best
            heads.setdefault(int(labels[i]), i)
        first = list(heads.values())[:k]
        pool = torch.cat([torch.tensor(first), pool[~torch.isin(pool, torch.tensor(first))]])
    features = samples[pool.to(samples.device)].detach().flatten(1).to("cpu", torch.float64)
    distance = torch.cdist(features, features)
    chosen = list(range(len(first)))
    nearest = distance[chosen].min(dim=0).values
    for _ in range(k - len(chosen)):
        nearest[chosen] = -1.0
        nxt = int(nearest.argmax())
        chosen.append(nxt)
        nearest = torch.minimum(nearest, distance[nxt])
    picked = pool[torch.tensor(chosen)]
    return picked[torch.sort(key[picked], descending=True, stable=True).indices]


@dataclass(frozen=True)
class GenerationRecord:
    """One generation: logged at ``step``; NFE and reward calls so far; the best so far and its own best and mean.

    ``best_reward`` is the best finished sample's reward so far, or — before any sample has finished (x0 fitness) —
    the best x0-prediction reward so far, flagged by ``best_is_proxy``. ``proxy`` says this generation was scored on
    x0 predictions. Values that do not exist are ``None``.
    """

    generation: int
    step: int
    individuals: int
    nfe: int
    reward_calls: int
    best_reward: float | None
    generation_best: float | None
    mean_reward: float | None
    seconds: float
    proxy: bool = False
    best_is_proxy: bool = False

    def to_dict(self) -> dict[str, object]:
        return strict_json(asdict(self))  # type: ignore[return-value]


@dataclass
class SearchEvent:
    """Passed to the search callback after every model step (``kind="step"``) and generation (``"generation"``).

    ``x``/``denoised`` hold the current chunk's states and x0 predictions on step events; ``best`` the best finished
    sample so far (``None`` before the first one); ``best_reward`` the best so far (the x0 proxy while
    ``best_is_proxy``; ``None`` before anything was scored). ``nfe / total_nfe`` is the search's progress.
    Generation events carry the generation's ``record`` and its ``scores`` (in trajectory order).
    """

    kind: str
    step: int
    nfe: int
    total_nfe: int
    generation: int
    best_reward: float | None
    x: torch.Tensor | None = None
    denoised: torch.Tensor | None = None
    best: torch.Tensor | None = None
    record: GenerationRecord | None = None
    best_is_proxy: bool = False
    scores: torch.Tensor | None = None


@dataclass
class SearchResult:
    """The outcome of :func:`evosearch.search`.

    ``best`` is the best finished sample ever scored (``[1, *shape]``); ``samples``/``rewards`` the final population,
    best first. ``nfe`` counts model evaluations per individual (failed out-of-memory attempts excluded, see
    ``discarded_nfe``) and equals ``planned_nfe``, the strategy's formula with the sampler's measured evaluations per
    step; ``reward_calls`` the individuals scored.
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
    planned_nfe: int | None = None
    trajectory_nfe: int | None = None
    sampler: str = ""
    sampler_facts: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    memory: dict = field(default_factory=dict)
    reward_seconds: float = 0.0
    discarded_nfe: int = 0
    fame_samples: torch.Tensor | None = None
    fame_rewards: torch.Tensor | None = None
    lineages: torch.Tensor | None = None

    @property
    def method(self) -> str:
        return self.schedule.strategy

    @property
    def fitness(self) -> str | None:
        return self.schedule.fitness

    def options(self, k: int, candidates: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``k`` distinct good samples (best first) from the best finished samples of the search (see
        :func:`distinct_options`), and their rewards; the final population where no hall of fame was kept, or where
        it evolved on islands (``lineages``: one option per island first)."""
        if self.lineages is not None:
            picked = distinct_options(self.samples, self.rewards, k, candidates, self.lineages)
            return self.samples[picked.to(self.samples.device)], self.rewards[picked]
        samples = self.fame_samples if self.fame_samples is not None else self.samples
        rewards = self.fame_rewards if self.fame_rewards is not None else self.rewards
        picked = distinct_options(samples, rewards, k, candidates)
        return samples[picked.to(samples.device)], rewards[picked]

    def report(self) -> dict[str, object]:
        """A strict-JSON summary: method, compute spent and planned, the per-generation curve, warnings."""
        trajectory = self.trajectory_nfe or self.steps
        report = {
            "method": self.schedule.strategy,
            "fitness": self.schedule.fitness,
            "strategy": self.schedule.strategy_class.title,
            "schedule": self.schedule.to_dict(),
            "mutation": self.mutation.to_dict() if self.schedule.strategy_class.mutates else None,
            "islands": 1 if self.lineages is None else int(self.lineages.max()) + 1,  # as run (automatic resolved)
            "seed": self.seed,
            "steps": self.steps,
            "sampler": self.sampler,
            "nfe": self.nfe,
            "planned_nfe": self.planned_nfe,  # None only for samplers that cannot be measured (adaptive ones)
            "budget_multiple": round(self.nfe / trajectory, 3),
            "equal_budget_best_of_n": self.nfe // trajectory,
            "reward_calls": self.reward_calls,
            "seconds": round(self.seconds, 3),
            "reward_seconds": round(self.reward_seconds, 3),
            "best_reward": self.best_reward,
            "final_rewards": [float(r) for r in self.rewards],
            "stopped_early": self.stopped,
            "history": [r.to_dict() for r in self.history],
            "sampler_facts": self.sampler_facts,
            "memory": self.memory,
            "warnings": list(self.warnings),
            **({"discarded_nfe": self.discarded_nfe} if self.discarded_nfe else {}),
            **self.extras,
        }
        return strict_json(report)  # type: ignore[return-value]
