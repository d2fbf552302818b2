"""Mutation and selection operators (docs/method.md §3–4)."""

from __future__ import annotations

import math

import pytest
import torch

import evosearch as es


def _normal(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("beta", [0.0, 0.2, 0.3, 0.7, 1.0])
def test_initial_mutation_keeps_unit_gaussian_statistics(beta):
    x = _normal((4000, 64), 0)
    child = es.mutate_initial(x, beta, _normal((4000, 64), 1))
    assert abs(float(child.mean())) < 0.01
    assert abs(float(child.var()) - 1.0) < 0.02
    # the child is a local move: its correlation with the parent is sqrt(1 - beta^2)
    corr = float((x * child).mean() / (x.std() * child.std()))
    assert corr == pytest.approx(math.sqrt(1 - beta**2), abs=0.02)


def test_initial_mutation_keeps_sigma_scaled_statistics():
    sigma_max = 14.6
    x = _normal((2000, 32), 2) * sigma_max
    child = es.mutate_initial(x, 0.3, _normal((2000, 32), 3) * sigma_max)
    assert float(child.std()) == pytest.approx(sigma_max, rel=0.02)


def test_initial_mutation_rejects_beta_out_of_range():
    with pytest.raises(ValueError, match=r"beta must be in \[0, 1\]"):
        es.mutate_initial(torch.zeros(2, 2), 1.5, torch.zeros(2, 2))


@pytest.mark.parametrize("alpha", [1.0, 0.4])  # 1: k-diffusion (x = x0 + σε); 0.4: rectified flow at σ = 0.6
def test_redraw_preserves_the_marginal(alpha):
    sigma = 0.6 if alpha != 1.0 else 2.5
    x0 = _normal((6000, 16), 4) * 0.5 + 1.0
    eps = _normal((6000, 16), 5)
    x = alpha * x0 + sigma * eps
    child = es.mutate_redraw(x, x0, alpha, sigma, 0.5, _normal((6000, 16), 6))
    assert float(child.mean()) == pytest.approx(float(x.mean()), abs=0.02)
    assert float(child.var()) == pytest.approx(float(x.var()), rel=0.03)
    # signal kept exactly, noise part correlated sqrt(1 - 0.25) with the parent's
    noise_part = (child - alpha * x0) / sigma
    assert float((noise_part * eps).mean()) == pytest.approx(math.sqrt(0.75), abs=0.02)


def test_redraw_limits():
    x0, eps = _normal((8, 4), 7), _normal((8, 4), 8)
    x = x0 + 2.0 * eps
    assert torch.allclose(es.mutate_redraw(x, x0, 1.0, 2.0, 0.0, _normal((8, 4), 9)), x, atol=1e-6)
    fresh = _normal((8, 4), 9)
    assert torch.allclose(es.mutate_redraw(x, x0, 1.0, 2.0, 1.0, fresh), x0 + 2.0 * fresh, atol=1e-6)


def test_additive_mutation_adds_step_noise():
    x = torch.zeros(5000, 8)
    child = es.mutate_additive(x, 0.5, 2.0, _normal((5000, 8), 10))
    assert float(child.std()) == pytest.approx(1.0, rel=0.03)


def test_elites_are_the_best_and_nan_is_worst():
    rewards = torch.tensor([0.1, float("nan"), 0.9, -2.0, 0.5])
    assert es.elite_indices(rewards, 3).tolist() == [2, 4, 0]
    assert es.elite_indices(rewards, 5).tolist()[-1] == 1


def test_tournament_of_whole_pool_always_picks_the_best():
    rewards = torch.tensor([0.3, 0.1, 0.8, 0.2])
    winners = es.tournament_select(rewards, 50, 4, torch.Generator().manual_seed(0))
    assert winners.tolist() == [2] * 50


def test_tournament_of_one_is_uniform():
    rewards = torch.arange(10.0)
    winners = es.tournament_select(rewards, 20000, 1, torch.Generator().manual_seed(0))
    counts = torch.bincount(winners, minlength=10).float() / 20000
    assert torch.allclose(counts, torch.full((10,), 0.1), atol=0.01)


def test_tournament_contestants_are_distinct():
    # with size = pool - 1 the worst can never win, the best wins unless it is the one left out (prob 1/pool)
    rewards = torch.arange(5.0)
    winners = es.tournament_select(rewards, 20000, 4, torch.Generator().manual_seed(1))
    assert 0 not in winners.tolist()
    assert float((winners == 4).float().mean()) == pytest.approx(4 / 5, abs=0.01)


def test_tournament_size_out_of_range():
    with pytest.raises(ValueError, match=r"tournament size 6 must be in \[1, 5\]"):
        es.tournament_select(torch.arange(5.0), 3, 6, torch.Generator())


def test_fk_potentials():
    r = torch.tensor([1.0, 2.0])
    prev = torch.tensor([3.0, 0.0])
    log_w, carried = es.fk_potential(r, prev, "max", 2.0)
    assert log_w.tolist() == [6.0, 4.0] and carried.tolist() == [3.0, 2.0]
    log_w, carried = es.fk_potential(r, prev, "diff", 2.0)
    assert log_w.tolist() == [-4.0, 4.0] and carried.tolist() == [1.0, 2.0]
    log_w, carried = es.fk_potential(r, prev, "add", 1.0)
    assert log_w.tolist() == [4.0, 2.0]


def test_multinomial_resample_follows_weights():
    log_w = torch.log(torch.tensor([0.7, 0.2, 0.1, 0.0]))
    picks = es.multinomial_resample(log_w, 20000, torch.Generator().manual_seed(0))
    freq = torch.bincount(picks, minlength=4).float() / 20000
    assert torch.allclose(freq, torch.tensor([0.7, 0.2, 0.1, 0.0]), atol=0.015)
    uniform = es.multinomial_resample(torch.full((3,), float("-inf")), 3000, torch.Generator().manual_seed(0))
    assert set(uniform.tolist()) == {0, 1, 2}


def test_mutation_settings_validation():
    with pytest.raises(ValueError, match="intermediate must be one of"):
        es.Mutation(intermediate="gaussian")
    with pytest.raises(ValueError, match="tournament sizes >= 1 must be whole numbers"):
        es.Mutation(tournament=2.5)
    with pytest.raises(ValueError, match="elites must be an integer"):
        es.Mutation(elites=-1)
    with pytest.raises(TypeError, match="unknown mutation/selection setting"):
        es.Mutation().with_overrides(mutation_rate=0.1)
    assert es.Mutation(tournament=0.5).tournament_for(10) == 5
    assert es.Mutation(tournament=3).tournament_for(10) == 3
    assert es.Mutation(elites=None, elite_fraction=0.2).elites_for(26) == 6
    official = es.Mutation.official("sd21")
    assert (official.beta, official.elites, official.intermediate) == (0.2, 5, "additive")
