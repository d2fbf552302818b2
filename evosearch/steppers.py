"""Built-in stochastic samplers in the k-diffusion convention (x = x0 + σ·ε, ``model(x, σ) -> x0``).

Both have the k-diffusion sampler signature ``fn(model, x, sigmas, extra_args=None, callback=None, disable=None,
noise_sampler=None, **hyper)``, so any other function with that signature (ComfyUI's samplers included) can stand in
for them. Each also has a ``*_noise_std(sigma, sigma_next)`` giving the standard deviation of the fresh noise the step
injects, which the paper's additive intermediate mutation uses (docs/method.md §4).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

__all__ = [
    "ancestral_step",
    "sample_euler_ancestral",
    "sample_ddpm",
    "euler_ancestral_noise_std",
    "ddpm_noise_std",
    "BUILTIN_SAMPLERS",
]


def ancestral_step(sigma: float, sigma_next: float, eta: float = 1.0) -> tuple[float, float]:
    """Split a step σ → σ_next into a deterministic part down to σ_down and fresh noise of std σ_up.

    σ_up = min(σ_next, η·√(σ_next²(σ² − σ_next²)/σ²)), σ_down = √(σ_next² − σ_up²): the ancestral sampling step of
    Song et al. (2021) / k-diffusion. With η = 1 this is the DDPM-like stochastic step; η = 0 is deterministic.
    """
    if sigma_next == 0 or eta == 0:
        return sigma_next, 0.0
    sigma_up = min(sigma_next, eta * math.sqrt(max(sigma_next**2 * (sigma**2 - sigma_next**2) / sigma**2, 0.0)))
    sigma_down = math.sqrt(max(sigma_next**2 - sigma_up**2, 0.0))
    return sigma_down, sigma_up


def euler_ancestral_noise_std(sigma: float, sigma_next: float, eta: float = 1.0, s_noise: float = 1.0) -> float:
    """Std of the noise one Euler-ancestral step adds (σ_up · s_noise)."""
    return ancestral_step(sigma, sigma_next, eta)[1] * s_noise


def _ddpm_coefficients(sigma: float, sigma_next: float) -> tuple[float, float, float]:
    """Posterior q(x_next | x, x0) of DDPM (Ho et al. 2020, eq. 6-7) written in σ space.

    Returns (c_x0, c_x, std) with x_next = c_x0·x0 + c_x·x + std·z. In VP terms ᾱ = 1/(1+σ²); the VP posterior mean
    √ᾱ'β/(1−ᾱ)·x0 + √α(1−ᾱ')/(1−ᾱ)·x_vp and variance (1−ᾱ')/(1−ᾱ)·β are mapped back by x = x_vp/√ᾱ.
    """
    abar = 1.0 / (1.0 + sigma**2)
    abar_next = 1.0 / (1.0 + sigma_next**2)
    alpha = abar / abar_next
    beta = 1.0 - alpha
    c_x0 = math.sqrt(abar_next) * beta / (1.0 - abar) / math.sqrt(abar_next)
    c_x = math.sqrt(alpha) * (1.0 - abar_next) / (1.0 - abar) * math.sqrt(abar) / math.sqrt(abar_next)
    variance = (1.0 - abar_next) / (1.0 - abar) * beta / abar_next
    return c_x0, c_x, math.sqrt(max(variance, 0.0))


def ddpm_noise_std(sigma: float, sigma_next: float) -> float:
    """Std of the noise one DDPM ancestral step adds, in σ space."""
    return _ddpm_coefficients(sigma, sigma_next)[2]


def _default_noise(x: torch.Tensor) -> Callable[..., torch.Tensor]:
    def noise_sampler(sigma: object = None, sigma_next: object = None) -> torch.Tensor:
        raise ValueError(
            "evosearch's built-in samplers need an explicit noise_sampler (the engine passes per-individual streams); "
            "no global RNG is used"
        )

    return noise_sampler


@torch.no_grad()
def sample_euler_ancestral(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: dict | None = None,
    callback: Callable[[dict], None] | None = None,
    disable: bool | None = None,
    eta: float = 1.0,
    s_noise: float = 1.0,
    noise_sampler: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """Euler ancestral sampling (Karras et al. 2022, Alg. 2 with ancestral noise; as in k-diffusion)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or _default_noise(x)
    s_in = x.new_ones([x.shape[0]])
    sigma_list = sigmas.tolist()
    for i in range(len(sigma_list) - 1):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        sigma_down, sigma_up = ancestral_step(sigma, sigma_next, eta)
        # Euler method to σ_down along d = (x − x0)/σ, i.e. x0 + (σ_down/σ)(x − x0); then fresh noise of std σ_up.
        x = torch.lerp(denoised, x, sigma_down / sigma)
        if sigma_next > 0 and sigma_up > 0:
            x = x.add_(noise_sampler(sigmas[i], sigmas[i + 1]), alpha=s_noise * sigma_up)
    return x


@torch.no_grad()
def sample_ddpm(
    model: Callable[..., torch.Tensor],
    x: torch.Tensor,
    sigmas: torch.Tensor,
    extra_args: dict | None = None,
    callback: Callable[[dict], None] | None = None,
    disable: bool | None = None,
    noise_sampler: Callable[..., torch.Tensor] | None = None,
) -> torch.Tensor:
    """DDPM ancestral sampling (Ho et al. 2020) on an arbitrary σ grid: sample the posterior q(x_next | x, x̂0)."""
    extra_args = extra_args or {}
    noise_sampler = noise_sampler or _default_noise(x)
    s_in = x.new_ones([x.shape[0]])
    sigma_list = sigmas.tolist()
    for i in range(len(sigma_list) - 1):
        sigma, sigma_next = sigma_list[i], sigma_list[i + 1]
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": denoised})
        c_x0, c_x, std = _ddpm_coefficients(sigma, sigma_next)
        x = torch.add(x * c_x, denoised, alpha=c_x0)
        if sigma_next > 0 and std > 0:
            x = x.add_(noise_sampler(sigmas[i], sigmas[i + 1]), alpha=std)
    return x


BUILTIN_SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "euler_ancestral": sample_euler_ancestral,
    "ddpm": sample_ddpm,
}
