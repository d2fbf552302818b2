"""The strategy registry: (family, fitness) → strategy class (see the package docstring)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .base import Strategy

__all__ = [
    "default_fitness",
    "fitness_names",
    "get_strategy",
    "planning_fitness",
    "register_strategy",
    "registered",
    "strategy_names",
]

_REGISTRY: dict[tuple[str, str], type[Strategy]] = {}
#: fitness of a schedule that names none (``Schedule(..., fitness=None)``): the paper's choice per family
_DEFAULT: dict[str, str] = {}
#: fitness the planner uses when asked for none (``Schedule.plan``, the Schedule node's ``auto``): the measured best
_PLANNING: dict[str, str] = {}


def register_strategy(cls: type[Strategy], *, default: bool = False, planning: bool = False) -> type[Strategy]:
    """Add ``cls`` under ``(cls.name, cls.fitness)``.

    The first strategy of a family is its default for schedules and for planning; ``default=True`` /
    ``planning=True`` make a later one the default of schedules that name no fitness / of the planner.
    """
    key = (cls.name, cls.fitness)
    if key in _REGISTRY:
        raise ValueError(f"strategy {cls.name!r} with fitness {cls.fitness!r} is already registered ({_REGISTRY[key]})")
    _REGISTRY[key] = cls
    if default or cls.name not in _DEFAULT:
        _DEFAULT[cls.name] = cls.fitness
    if planning or cls.name not in _PLANNING:
        _PLANNING[cls.name] = cls.fitness
    return cls


def strategy_names() -> tuple[str, ...]:
    """Every registered strategy family, in registration order."""
    return tuple(dict.fromkeys(name for name, _ in _REGISTRY))


def fitness_names(name: str | None = None) -> tuple[str, ...]:
    """Fitness modes of one family (or of all), in registration order."""
    return tuple(dict.fromkeys(f for n, f in _REGISTRY if name is None or n == name))


def default_fitness(name: str) -> str:
    """The fitness a schedule of family ``name`` gets when it does not choose one."""
    if name not in _DEFAULT:
        raise ValueError(f"strategy must be one of {strategy_names()}, got {name!r}")
    return _DEFAULT[name]


def planning_fitness(name: str) -> str:
    """The fitness :meth:`Schedule.plan` and the Schedule node's ``auto`` choose for family ``name``."""
    default_fitness(name)
    return _PLANNING[name]


def get_strategy(name: str, fitness: str | None = None) -> type[Strategy]:
    """The class of family ``name`` with ``fitness`` (``None``: the family's default)."""
    if name not in _DEFAULT:
        raise ValueError(f"strategy must be one of {strategy_names()}, got {name!r}")
    fitness = _DEFAULT[name] if fitness is None else fitness
    try:
        return _REGISTRY[(name, fitness)]
    except KeyError:
        raise ValueError(
            f"fitness must be one of {fitness_names(name)} for strategy {name!r} (or None for its default "
            f"{_DEFAULT[name]!r}), got {fitness!r}"
        ) from None


def registered() -> dict[tuple[str, str], type[Strategy]]:
    """A copy of the registry (for contract tests and docs)."""
    return dict(_REGISTRY)
