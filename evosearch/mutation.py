"""Mutation and selection settings, and the pure mutation operators (docs/method.md §4).

Three operators, all batched and drawing their randomness from the ``eps`` passed in:

* :func:`mutate_initial` at x_T, on unit noise: x' = √(1−β²)·x + β·ε. If x ~ N(0, I) then so is x', so the child is
  a valid starting noise; in high dimension it is a local move (its cosine with the parent is √(1−β²)).
* :func:`mutate_additive` at an intermediate step, the paper's rule: x' = x + γ·σ_step·ε, with σ_step the std of the
  noise the sampler itself injects at that step (γ = 1 in the paper). It adds variance on top of the state's own
  noise, pushing x off the model's marginal at that σ.
* :func:`mutate_redraw`, marginal-preserving: with the archived x0 prediction x̂0 and ε̂ = (x − α·x̂0)/σ in the model's
  parameterisation x = α·x0 + σ·ε, x' = α·x̂0 + σ·(√(1−β²)·ε̂ + β·ξ). The signal part is kept and a fraction β of the
  noise part is re-drawn; if ε̂ is standard normal, x' has the same distribution as x. It needs no extra model call:
  x̂0 at the parent's state was computed by the first step of the parent's own rollout.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch

__all__ = [
    "Mutation",
    "INTERMEDIATE_MODES",
    "mutate_initial",
    "mutate_additive",
    "mutate_redraw",
]

INTERMEDIATE_MODES = ("redraw", "additive")
#: Automatic islands hold at least this many individuals each.
AUTO_ISLAND_SIZE = 4


def _check_beta(name: str, beta: float) -> float:
    beta = float(beta)
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"{name} must be in [0, 1] (0 = copy the parent, 1 = a fresh draw), got {beta}")
    return beta


def mutate_initial(noise: torch.Tensor, beta: float, eps: torch.Tensor) -> torch.Tensor:
    """Variance-preserving mutation of unit initial noise: √(1−β²)·x + β·ε (EvoSearch, Alg. 1)."""
    beta = _check_beta("beta", beta)
    return noise * math.sqrt(1.0 - beta * beta) + eps * beta


def mutate_additive(x: torch.Tensor, step_noise_std: float, strength: float, eps: torch.Tensor) -> torch.Tensor:
    """The paper's intermediate mutation x + γ·σ_step·ε (γ = ``strength``, 1 in the paper)."""
    return x + eps * (float(strength) * float(step_noise_std))


def mutate_redraw(
    x: torch.Tensor, denoised: torch.Tensor, alpha: float, sigma: float, beta: float, eps: torch.Tensor
) -> torch.Tensor:
    """Re-draw a fraction β of the noise in x = α·x̂0 + σ·ε̂, keeping the signal part and the marginal."""
    beta = _check_beta("strength", beta)
    if sigma <= 0:
        raise ValueError(f"mutate_redraw needs a noisy state (sigma > 0), got sigma={sigma}")
    signal = denoised * float(alpha)
    eps_hat = (x - signal) / float(sigma)
    return signal + (eps_hat * math.sqrt(1.0 - beta * beta) + eps * beta) * float(sigma)


@dataclass(frozen=True)
class Mutation:
    """Mutation and selection settings of EvoSearch.

    Args:
        beta: β of the initial-noise mutation (paper 0.3, official code 0.2).
        intermediate: ``"redraw"`` (marginal-preserving, default) or ``"additive"`` (the paper's x + σ_step·ε).
        strength: for ``"redraw"``, the fraction β_t of the state's noise re-drawn, in [0, 1]; for ``"additive"``,
            the multiplier γ of σ_step (1 = the paper).
        elites: individuals of the pool that pass unchanged to the next generation (the official code: 5 for SD2.1,
            3 FLUX, 2 Wan). ``None`` = automatic, ⌈elite_fraction·k⌉ of each generation's k children.
        tournament: contestants per tournament: a number ≥ 1 (1 = uniform random parents), or a fraction in (0, 1) of
            the pool (the official code uses ⌊0.9·|pool|⌋, which picks the pool's best ~88% of the time).
        elite_fraction: used when ``elites`` is ``None``.
        max_share: most of a generation's tournament winners one parent may be (1 = no limit). Below 1 selection
            keeps several lineages alive, so the final population holds distinct options instead of one parent's
            near-copies (docs/method.md §12).
        islands: x0-fitness EvoSearch only: split the population into this many islands that select and mutate
            within themselves and never mix; each island is a lineage, so the final population holds ``islands``
            distinct options (docs/method.md §12). 1 = one population; 0 = automatic: one population, or, when a
            caller asks for ``options`` (:meth:`for_options`; the KSampler node's ``top_k``), one island per option
            as far as islands of :data:`AUTO_ISLAND_SIZE` individuals allow.
        options: how many distinct options the caller will take from the search (0 = none asked for); read only by
            automatic ``islands``.
    """

    beta: float = 0.3
    intermediate: str = "redraw"
    strength: float = 1.0
    elites: int | None = None
    tournament: float = 0.9
    elite_fraction: float = 0.2
    max_share: float = 1.0
    islands: int = 0
    options: int = 0

    def __post_init__(self) -> None:
        _check_beta("beta", self.beta)
        if self.intermediate not in INTERMEDIATE_MODES:
            raise ValueError(f"intermediate must be one of {INTERMEDIATE_MODES}, got {self.intermediate!r}")
        if self.intermediate == "redraw":
            _check_beta("strength", self.strength)
        elif not self.strength >= 0:
            raise ValueError(f"strength (γ, the multiplier of σ_step) must be >= 0, got {self.strength}")
        if self.elites is not None and (int(self.elites) != self.elites or self.elites < 0):
            raise ValueError(f"elites must be an integer >= 0 or None (automatic), got {self.elites}")
        if not self.tournament > 0:
            raise ValueError(
                f"tournament must be a size >= 1 or a fraction in (0, 1) of the pool, got {self.tournament}"
            )
        if self.tournament >= 1 and int(self.tournament) != self.tournament:
            raise ValueError(f"tournament sizes >= 1 must be whole numbers, got {self.tournament}")
        if not 0 <= self.elite_fraction <= 1:
            raise ValueError(f"elite_fraction must be in [0, 1], got {self.elite_fraction}")
        if int(self.options) != self.options or self.options < 0:
            raise ValueError(f"options must be a whole number >= 0 (0 = none asked for), got {self.options}")
        if int(self.islands) != self.islands or self.islands < 0:
            raise ValueError(
                f"islands must be a whole number >= 0 (1 = one population, 0 = automatic), got {self.islands}"
            )
        if not 0 < self.max_share <= 1:
            raise ValueError(
                f"max_share (the most of a generation's parents one pool member may be) must be in (0, 1], got "
                f"{self.max_share}"
            )

    @classmethod
    def official(cls, preset: str = "sd21") -> Mutation:
        """The official code's settings: β = 0.2, additive intermediate mutation, tournament ⌊0.9·|pool|⌋."""
        from .schedule import PRESETS

        if preset not in PRESETS:
            raise ValueError(f"preset must be one of {sorted(PRESETS)}, got {preset!r}")
        return cls(
            beta=0.2, intermediate="additive", strength=1.0, elites=int(PRESETS[preset]["elites"]), tournament=0.9
        )

    def with_overrides(self, **overrides: object) -> Mutation:
        """A copy with some fields replaced; unknown names raise a ``TypeError`` naming the valid ones."""
        valid = set(self.__dataclass_fields__)
        unknown = sorted(set(overrides) - valid)
        if unknown:
            raise TypeError(f"unknown mutation/selection setting(s) {unknown}; valid: {sorted(valid)}")
        return replace(self, **overrides)  # type: ignore[arg-type]

    def elites_for(self, children: int) -> int:
        """Elites among ``children`` individuals of a generation."""
        if self.elites is not None:
            return int(self.elites)
        return min(children, math.ceil(self.elite_fraction * children))

    def tournament_for(self, pool: int) -> int:
        """Contestants per tournament for a pool of ``pool`` members."""
        if self.tournament >= 1:
            return int(self.tournament)
        return max(1, min(pool, math.floor(self.tournament * pool)))

    def max_wins_for(self, tournaments: int) -> int | None:
        """How many of ``tournaments`` one pool member may win (``None``: no limit)."""
        if self.max_share >= 1 or tournaments <= 0:
            return None
        return max(1, math.ceil(self.max_share * tournaments))

    def for_options(self, options: int) -> Mutation:
        """These settings for a caller that returns ``options`` distinct options (automatic islands use it)."""
        return replace(self, options=max(0, int(options)))

    def islands_for(self, population: int) -> int:
        """How many islands a population of ``population`` individuals per generation is split into: the set value
        (at most one per two individuals, as an island needs two to select between), or automatically one per option
        asked for, at most one per :data:`AUTO_ISLAND_SIZE` individuals (smaller islands cost the best reward: the
        shapes benchmark, docs/method.md §12)."""
        if self.islands == 0:
            return max(1, min(self.options, population // AUTO_ISLAND_SIZE)) if self.options > 1 else 1
        return max(1, min(int(self.islands), population // 2))

    def to_dict(self) -> dict[str, object]:
        return {
            "beta": self.beta,
            "intermediate": self.intermediate,
            "strength": self.strength,
            "elites": self.elites,
            "tournament": self.tournament,
            "elite_fraction": self.elite_fraction,
            "max_share": self.max_share,
            "islands": self.islands,
            "options": self.options,
        }
