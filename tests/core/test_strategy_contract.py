"""The contract every registered strategy must pass (issue 9), in the spirit of diffusers' shared scheduler tests.

For each (family, fitness) in the registry: counted NFE == the strategy's formula == the report's planned NFE for 1-,
2- and 3-evaluation samplers; bit-identical results for every chunk size; seeds; the best never lost; callbacks and
cancel; clear errors; strict-JSON reports.
"""

from __future__ import annotations

import json
import math

import pytest
import torch
from support.samplers import sample_heun_ancestral, sample_three_evals

import evosearch as es
from evosearch.strategies import registered
from evosearch.toys import ddpm_sigmas, paper_toy, ring_reward

GMM = paper_toy()
T = 12
SIGMAS = ddpm_sigmas(T)


def schedule_for(name: str, fitness: str) -> es.Schedule:
    """A small schedule of every registered strategy (a new strategy adds its line here)."""
    return {
        ("best_of_n", "rollout"): es.Schedule.best_of_n(7),
        ("evosearch", "rollout"): es.Schedule(evolution_steps=[0, 4, 8], population=[6, 4, 5, 3]),
        ("evosearch", "x0"): es.Schedule(evolution_steps=[3, 7, 10], population=[6, 4, 5, 3], fitness="x0"),
        ("evosearch", "graded"): es.Schedule(evolution_steps=[2, 5, 9], population=[6, 6, 5, 4], fitness="graded"),
        ("particles", "x0"): es.Schedule.particles(5, [4, 8], lam=1.0),
        ("particles", "rollout"): es.Schedule.particles(4, [3, 9], fitness="rollout", lam=1.0),
    }[(name, fitness)]


STRATEGIES = sorted(registered())


def test_every_registered_strategy_has_a_contract_schedule():
    for name, fitness in STRATEGIES:
        assert schedule_for(name, fitness).strategy_class is registered()[(name, fitness)]


# ---------------------------------------------------------------------------------------------- test-only samplers
SAMPLERS = {"ddpm": (1, "ddpm"), "heun_ancestral": (2, sample_heun_ancestral), "three": (3, sample_three_evals)}


def counting_process(sampler, calls: list[int], dtype=torch.float32) -> es.KDiffusionProcess:
    def denoiser(x, sigma):
        calls.append(x.shape[0])
        return GMM(x, sigma)

    return es.KDiffusionProcess(denoiser, SIGMAS.to(dtype), sampler=sampler)


# ---------------------------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_counted_nfe_equals_the_formula_and_the_report(key, sampler):
    evals, fn = SAMPLERS[sampler]
    schedule = schedule_for(*key)
    calls: list[int] = []
    process = counting_process(fn, calls)
    events = []
    result = es.search(process, ring_reward, (2,), schedule, seed=3, chunk_size=4, mutation=es.Mutation(elites=1),
                       callback=events.append)  # fmt: skip
    facts = process.facts(schedule.strategy_class.births(schedule, T), (2,))
    assert facts.evals_per_step == (evals,) * (T - 1) + ((1,) if evals == 2 else (evals,))
    assert result.nfe == sum(calls) == schedule.nfe(T, facts) == result.report()["planned_nfe"]
    assert events[-1].total_nfe == result.nfe, "the progress total is the planned NFE"
    assert result.reward_calls == schedule.reward_calls(T)
    if evals == 1:
        assert result.nfe == schedule.nfe(T)


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
@pytest.mark.parametrize("sampler", ["ddpm", "heun_ancestral"])
def test_bit_identical_for_every_chunk_size(key, sampler):
    schedule = schedule_for(*key)
    runs = [
        es.search(
            counting_process(SAMPLERS[sampler][1], []),
            ring_reward,
            (2,),
            schedule,
            seed=11,
            chunk_size=c,
            mutation=es.Mutation(elites=1),
        )  # fmt: skip
        for c in (None, 1, 3)
    ]
    for other in runs[1:]:
        assert torch.equal(other.best, runs[0].best)
        assert torch.equal(other.samples, runs[0].samples) and torch.equal(other.rewards, runs[0].rewards)


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_seeds_repeat_and_differ(key):
    schedule = schedule_for(*key)

    def run(seed):
        return es.search(counting_process("ddpm", []), ring_reward, (2,), schedule, seed=seed)

    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a.samples, b.samples) and torch.equal(a.rewards, b.rewards) and torch.equal(a.best, b.best)
    assert [r.best_reward for r in a.history] == [r.best_reward for r in b.history]
    assert not torch.equal(a.samples, c.samples)


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_the_best_is_never_lost(key):
    """The returned best is the best finished sample scored; the best-so-far curve never falls."""
    schedule = schedule_for(*key)
    finished = []

    def reward(x0):
        scores = ring_reward(x0)
        finished.append((x0.clone(), scores))
        return scores

    result = es.search(counting_process("ddpm", []), reward, (2,), schedule, seed=2)
    curve = [r.best_reward for r in result.history]
    assert all(math.isfinite(v) for v in curve), "a finite best-so-far at every generation"
    finals = [r.best_reward for r in result.history if not r.best_is_proxy]
    assert finals == sorted(finals)
    assert float(ring_reward(result.best)[0]) == pytest.approx(result.best_reward)
    assert result.history[-1].best_reward == pytest.approx(result.best_reward) and not result.history[-1].proxy


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_stop_search_returns_the_best_so_far_and_exceptions_stop_at_once(key):
    schedule = schedule_for(*key)

    def stop_after_first_finished(event):
        if event.kind == "generation" and event.best is not None:
            raise es.StopSearch

    result = es.search(counting_process("ddpm", []), ring_reward, (2,), schedule, seed=0,
                       callback=stop_after_first_finished)  # fmt: skip
    assert result.stopped and result.best is not None and result.nfe <= schedule.nfe(T)
    calls: list[int] = []

    def interrupt(event):
        if event.kind == "step" and event.nfe >= 20:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        es.search(
            counting_process("ddpm", calls), ring_reward, (2,), schedule, seed=0, chunk_size=2, callback=interrupt
        )
    assert sum(calls) <= 20 + 2, "the search stops within one model call of the callback raising"


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_reports_are_strict_json(key):
    schedule = schedule_for(*key)

    def sometimes_nan(x0):
        r = ring_reward(x0)
        r[::3] = float("nan")
        return r

    for reward in (ring_reward, sometimes_nan, lambda x: torch.full((x.shape[0],), float("nan"))):
        result = es.search(counting_process("ddpm", []), reward, (2,), schedule, seed=1)
        text = json.dumps(result.report(), allow_nan=False)
        assert "1e+308" not in text and "Infinity" not in text
        report = json.loads(text)
        assert report["nfe"] == report["planned_nfe"] and len(report["history"]) == len(result.history)


@pytest.mark.parametrize("key", STRATEGIES, ids=lambda k: "-".join(k))
def test_bad_input_is_named(key):
    schedule = schedule_for(*key)
    process = counting_process("ddpm", [])
    with pytest.raises(ValueError, match="chunk_size"):
        es.search(process, ring_reward, (2,), schedule, chunk_size=0)
    with pytest.raises(ValueError, match="shape"):
        es.search(process, ring_reward, (0,), schedule)
    with pytest.raises(ValueError, match="seed must be an int"):
        es.search(process, ring_reward, (2,), schedule, seed=1.5)
    with pytest.raises(ValueError, match=r"reward returned shape \(1,\)"):
        es.search(process, lambda x: ring_reward(x)[:1], (2,), schedule)
    if schedule.evolution_steps:
        short = es.KDiffusionProcess(GMM, ddpm_sigmas(3), sampler="ddpm")
        with pytest.raises(ValueError, match=r"out of range for a 3-step sampler"):
            es.search(short, ring_reward, (2,), schedule)
    if schedule.strategy_class.mutates:
        with pytest.raises(ValueError, match="elites=9"):
            es.search(process, ring_reward, (2,), schedule, elites=9)


def test_the_worked_example_of_a_new_strategy(monkeypatch):
    """docs/architecture.md's example strategy: one subclass and a registration make a working strategy."""
    from evosearch.selection import elite_indices
    from evosearch.strategies import registry
    from evosearch.strategies.evosearch_x0 import ProxyGenerations

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_DEFAULT", dict(registry._DEFAULT))
    monkeypatch.setattr(registry, "_PLANNING", dict(registry._PLANNING))

    class Truncation(ProxyGenerations):
        name = "truncation"
        fitness = "x0"
        title = "Truncation selection (x0 fitness)"

        def next_states(self, g):
            best = elite_indices(self.pool.rewards, self.schedule.population[g] // 2 + 1)
            return self.pool.states(best).repeat(2, *[1] * len(self.context.shape))[: self.schedule.population[g]]

        @classmethod
        def needs_stochastic_from(cls, schedule):
            return schedule.evolution_steps[0] if schedule.evolution_steps else None

    es.register_strategy(Truncation)
    assert "truncation" in es.strategy_names()
    schedule = es.Schedule(evolution_steps=[5, 10], population=[8, 8, 8], strategy="truncation")
    calls: list[int] = []
    result = es.search(counting_process("ddpm", calls), ring_reward, (2,), schedule, seed=0, chunk_size=3)
    assert result.nfe == sum(calls) == schedule.nfe(T) == 8 * T and result.reward_calls == 24
    assert result.report()["strategy"] == "Truncation selection (x0 fitness)"
    with pytest.raises(ValueError, match="already registered"):
        es.register_strategy(Truncation)
