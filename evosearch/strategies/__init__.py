"""The registry of search strategies: (family, fitness) → strategy class.

A schedule names a strategy family (``Schedule.strategy``: ``"evosearch"``, ``"best_of_n"``, ``"particles"``) and
how its generations are scored (``Schedule.fitness``); :func:`get_strategy` finds the class that implements the pair.
Each family has one default fitness (used when a schedule leaves ``fitness`` at ``None``). Registering a pair twice is
a ``ValueError``; names fill the ComfyUI combos, so a registered strategy appears in the nodes without other changes.
"""

from __future__ import annotations

from .base import Batch, InitialNoise, Scored, SearchContext, Segment, Strategy, as_cost
from .registry import (
    default_fitness,
    fitness_names,
    get_strategy,
    planning_fitness,
    register_strategy,
    registered,
    strategy_names,
)

__all__ = [
    "Batch",
    "InitialNoise",
    "Scored",
    "SearchContext",
    "Segment",
    "Strategy",
    "as_cost",
    "default_fitness",
    "fitness_names",
    "get_strategy",
    "planning_fitness",
    "register_strategy",
    "registered",
    "strategy_names",
]

# The built-in strategies register themselves on import (one module each; the first of a family is its default).
from . import best_of_n, evosearch_graded, evosearch_rollout, evosearch_x0, particles  # noqa: E402,F401
