"""Analytic test problems: exact Gaussian-mixture denoisers, the paper's ring reward, DDPM σ grids.

The paper's toy experiment (EvoSearch §4.1 / docs/method.md §11): a 2-D mixture of 9 isotropic Gaussians with means
{−4, 0, 4}² and variance 0.3, reward r(x, y) = −|x² + y² − 4|, a 100-step DDPM-type sampler. The paper trains an MLP
denoiser; for a mixture the noised marginal is again a mixture, so the optimal denoiser E[x0 | x_σ] is closed-form
and training noise disappears.
"""

from __future__ import annotations

import math

import torch

__all__ = [
    "GaussianMixture",
    "NearestTargetReward",
    "ddpm_sigmas",
    "hard_mixture",
    "paper_toy",
    "ring_reward",
    "ring_sector_coverage",
]


class GaussianMixture:
    """Isotropic Gaussian mixture with the exact denoiser E[x0 | x = x0 + σ·ε].

    Args:
        means: ``[M, D]`` component means. variance: per-component variance (scalar). weights: ``[M]`` (uniform).
    """

    def __init__(self, means: torch.Tensor, variance: float, weights: torch.Tensor | None = None) -> None:
        self.means = torch.as_tensor(means, dtype=torch.float64)
        if self.means.dim() != 2:
            raise ValueError(f"means must be [M, D], got shape {tuple(self.means.shape)}")
        self.variance = float(variance)
        m = self.means.shape[0]
        w = torch.full((m,), 1.0 / m, dtype=torch.float64) if weights is None else torch.as_tensor(weights).double()
        self.log_weights = torch.log(w / w.sum())

    @property
    def dim(self) -> int:
        return int(self.means.shape[1])

    def posterior(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """Responsibilities p(component | x_σ), ``[B, M]``."""
        x64 = x.to(torch.float64)
        s2 = sigma.to(torch.float64).reshape(-1, 1) ** 2
        total_var = self.variance + s2  # [B, 1]
        sq = torch.cdist(x64, self.means.to(x64.device)) ** 2  # [B, M]
        logits = self.log_weights.to(x64.device) - 0.5 * sq / total_var - 0.5 * self.dim * torch.log(total_var)
        return torch.softmax(logits, dim=1)

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """E[x0 | x_σ] = Σ_k γ_k(x)·(μ_k + v/(v+σ²)·(x − μ_k))."""
        x64 = x.to(torch.float64)
        s2 = sigma.to(torch.float64).reshape(-1, 1) ** 2
        gamma = self.posterior(x, sigma)
        shrink = self.variance / (self.variance + s2)  # [B, 1]
        mean_mu = gamma @ self.means.to(x64.device)  # [B, D]
        return (mean_mu + shrink * (x64 - mean_mu)).to(x.dtype)

    __call__ = denoise

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` exact samples of the mixture."""
        comp = torch.multinomial(self.log_weights.exp(), n, replacement=True, generator=generator)
        noise = torch.randn((n, self.dim), generator=generator, dtype=torch.float64)
        return (self.means[comp] + math.sqrt(self.variance) * noise).float()


def ring_reward(x: torch.Tensor, radius: float = 2.0) -> torch.Tensor:
    """The paper's toy reward −|x² + y² − radius²| (max 0 on the ring)."""
    return -(x[:, 0] ** 2 + x[:, 1] ** 2 - radius**2).abs()


def ddpm_sigmas(
    steps: int = 100, train_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02
) -> torch.Tensor:
    """σ grid of a ``steps``-step sampler over a linear-β DDPM (Ho et al. 2020), ending in 0.

    σ_t = √((1 − ᾱ_t)/ᾱ_t) at ``steps`` evenly spaced training timesteps from the last one down.
    """
    betas = torch.linspace(beta_start, beta_end, train_steps, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1.0 - betas, dim=0)
    timesteps = torch.linspace(train_steps - 1, 0, steps, dtype=torch.float64).round().long()
    sigmas = ((1 - alphas_cumprod[timesteps]) / alphas_cumprod[timesteps]).sqrt()
    return torch.cat([sigmas, sigmas.new_zeros(1)]).float()


def paper_toy() -> GaussianMixture:
    """The paper's 9-component 2-D mixture: means {−4, 0, 4}², variance 0.3."""
    grid = torch.tensor([-4.0, 0.0, 4.0])
    means = torch.cartesian_prod(grid, grid)
    return GaussianMixture(means, 0.3)


def ring_sector_coverage(points: torch.Tensor, sectors: int = 8, tolerance: float = 1.0) -> float:
    """Fraction of the ring's ``sectors`` angular sectors holding a point within ``tolerance`` of the ring reward 0."""
    points = points.reshape(-1, 2).double()
    near = ring_reward(points) >= -tolerance
    angles = torch.atan2(points[near, 1], points[near, 0])
    hit = torch.floor((angles + math.pi) / (2 * math.pi) * sectors).long().clamp(0, sectors - 1)
    return len(set(hit.tolist())) / sectors


class NearestTargetReward:
    """r(x) = −min_k ‖x − t_k‖/√D over a few target points t_k, each in the tail of one mixture component.

    Only the components holding a target can score well, and within them only samples whose own noise is atypically
    small along the target direction: a high-dimensional needle that Best-of-N rarely finds.
    """

    def __init__(self, targets: torch.Tensor) -> None:
        self.targets = targets.float()

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1).float()
        dist = torch.cdist(flat, self.targets.to(flat.device)).min(dim=1).values
        return -dist / math.sqrt(flat.shape[1])


def hard_mixture(
    dim: int = 64, modes: int = 16, targets: int = 2, offset: float = 2.0, seed: int = 0
) -> tuple[GaussianMixture, NearestTargetReward]:
    """A ``dim``-D mixture of ``modes`` unit-variance components (means ±3 per coordinate, far apart) and a reward
    that only ``targets`` of them can satisfy: targets sit ``offset`` standard deviations from their component's
    mean in a random direction. Fixed by ``seed``."""
    g = torch.Generator().manual_seed(seed)
    means = 3.0 * (torch.randint(0, 2, (modes, dim), generator=g).float() * 2 - 1)
    directions = torch.randn((targets, dim), generator=g)
    directions = directions / directions.norm(dim=1, keepdim=True)
    points = means[:targets] + offset * directions
    return GaussianMixture(means, 1.0), NearestTargetReward(points)
