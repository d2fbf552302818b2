"""Test-only k-diffusion samplers that no table in the pack knows: their facts must be measured."""

from __future__ import annotations

import torch

import evosearch as es


@torch.no_grad()
def sample_heun_ancestral(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """A stochastic Heun sampler: two evaluations per step, one on the last (like DPM++ SDE); test-only."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = model(x, sigma * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigma, "denoised": denoised})
        sigma_down, sigma_up = es.ancestral_step(float(sigma), float(sigma_next), 1.0)
        d = (x - denoised) / sigma
        x_next = x + d * (sigma_down - sigma)
        if sigma_next > 0:
            d2 = (x_next - model(x_next, sigma_down * s_in, **extra_args)) / sigma_down
            x_next = x + (d + d2) / 2 * (sigma_down - sigma)
            x_next = x_next + noise_sampler(sigma, sigma_next) * sigma_up
        x = x_next
    return x


@torch.no_grad()
def sample_three_evals(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
    """Three evaluations every step (like seeds_3), noise on all but the last step; test-only."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    for i in range(len(sigmas) - 1):
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        mid = (sigma * sigma_next) ** 0.5 if sigma_next > 0 else sigma / 2
        x_mid = denoised + (x - denoised) * (mid / sigma)
        denoised = (denoised + model(x_mid, mid * s_in, **extra_args) + model(x_mid, mid * s_in, **extra_args)) / 3
        sigma_down, sigma_up = es.ancestral_step(sigma, sigma_next, 1.0)
        x = denoised + (x - denoised) * (sigma_down / sigma)
        if sigma_next > 0:
            x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigma_up
    return x


@torch.no_grad()
def sample_multistep_sde(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0):
    """A second-order multistep SDE sampler in the shape of DPM++ 2M SDE: every step after the first extrapolates
    from the previous x0 prediction (history a cut would drop). Test-only."""
    extra_args = extra_args or {}
    s_in = x.new_ones([x.shape[0]])
    old_denoised, h_last = None, None
    for i in range(len(sigmas) - 1):
        denoised = model(x, sigmas[i] * s_in, **extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
        if sigmas[i + 1] == 0:
            x = denoised
            continue
        t, s = -sigmas[i].log(), -sigmas[i + 1].log()
        h = s - t
        eta_h = eta * h
        x = sigmas[i + 1] / sigmas[i] * (-eta_h).exp() * x + (-h - eta_h).expm1().neg() * denoised
        if old_denoised is not None:
            r = h_last / h
            x = x + 0.5 * (-h - eta_h).expm1().neg() * (1 / r) * (denoised - old_denoised)
        x = x + noise_sampler(sigmas[i], sigmas[i + 1]) * sigmas[i + 1] * (-2 * eta_h).expm1().neg().sqrt()
        old_denoised, h_last = denoised, h
    return x
