"""The search loop: accounting, determinism, special cases, callbacks, bad input (issue 2)."""

from __future__ import annotations

import logging

import pytest
import torch

import evosearch as es
from evosearch.toys import ddpm_sigmas, paper_toy, ring_reward

GMM = paper_toy()
SIGMAS = ddpm_sigmas(20)
T = 20


def toy_process(sampler="ddpm", **kw):
    return es.KDiffusionProcess(GMM, SIGMAS, sampler=sampler, **kw)


SCHEDULES = {
    "evosearch": es.Schedule(evolution_steps=[0, 5, 10, 15], population=[8, 4, 5, 3, 6]),
    "evosearch_late_start": es.Schedule(evolution_steps=[3, 12], population=[5, 7, 2]),
    "best_of_n": es.Schedule.best_of_n(9),
    "particles_x0": es.Schedule.particles(6, [5, 10, 15], lam=1.0),
    "particles_rollout": es.Schedule.particles(5, [4, 12], fitness="rollout", lam=1.0),
    "evosearch_x0": es.Schedule(evolution_steps=[4, 10, 16], population=[7, 5, 6, 4], fitness="x0"),
}


@pytest.mark.parametrize("name", SCHEDULES)
@pytest.mark.parametrize("sampler", ["ddpm", "euler_ancestral"])
def test_counted_nfe_equals_the_formula(name, sampler):
    schedule = SCHEDULES[name]
    calls = []

    def denoiser(x, sigma):
        calls.append(x.shape[0])
        return GMM(x, sigma)

    process = es.KDiffusionProcess(denoiser, SIGMAS, sampler=sampler)
    result = es.search(process, ring_reward, (2,), schedule, seed=3, chunk_size=4, mutation=es.Mutation(elites=2))
    assert result.nfe == sum(calls) == schedule.nfe(T)
    assert result.reward_calls == schedule.reward_calls(T)
    assert result.history[-1].nfe == result.nfe


def test_official_sd21_schedule_counts_5000_nfe():
    sigmas = ddpm_sigmas(50)
    process = es.KDiffusionProcess(GMM, sigmas, sampler="ddpm")
    schedule = es.Schedule.preset("sd21")
    result = es.search(process, ring_reward, (2,), schedule, seed=0, mutation=es.Mutation.official("sd21"))
    assert result.nfe == 5000 and result.reward_calls == 150
    assert [r.individuals for r in result.history] == [42, 26, 26, 26, 30]
    assert [r.step for r in result.history] == [0, 0, 20, 30, 40]


@pytest.mark.parametrize("name", SCHEDULES)
def test_same_seed_is_bit_identical_for_every_chunk_size(name):
    schedule = SCHEDULES[name]
    results = [
        es.search(toy_process(), ring_reward, (2,), schedule, seed=11, chunk_size=c, mutation=es.Mutation(elites=1))
        for c in (None, 1, 3, 7)
    ]
    for other in results[1:]:
        assert torch.equal(other.best, results[0].best)
        assert torch.equal(other.samples, results[0].samples)
        assert torch.equal(other.rewards, results[0].rewards)


def test_different_seeds_differ_and_same_seed_repeats():
    schedule = SCHEDULES["evosearch"]
    a = es.search(toy_process(), ring_reward, (2,), schedule, seed=1)
    b = es.search(toy_process(), ring_reward, (2,), schedule, seed=1)
    c = es.search(toy_process(), ring_reward, (2,), schedule, seed=2)
    assert torch.equal(a.samples, b.samples)
    assert not torch.equal(a.samples, c.samples)


def test_no_global_rng_is_used():
    torch.manual_seed(0)
    before = torch.get_rng_state()
    es.search(toy_process(), ring_reward, (2,), SCHEDULES["evosearch"], seed=5)
    assert torch.equal(torch.get_rng_state(), before)


def test_best_of_n_equals_independent_sampling():
    n = 6
    result = es.search(toy_process(), ring_reward, (2,), es.Schedule.best_of_n(n), seed=4)
    # Each individual alone (a population of one, run through the sampler by hand with its own streams)
    singles = []
    for i in range(n):
        noise = es.normal_rows([es.derive_seed(4, "init", i)], (2,))
        stream = es.IndividualNoise([es.derive_seed(4, "sde", 0, i)], (2,))
        x = es.sample_ddpm(GMM, noise * SIGMAS[0], SIGMAS, noise_sampler=stream)
        singles.append(x)
    singles = torch.cat(singles)
    rewards = ring_reward(singles)
    order = torch.sort(rewards, descending=True, stable=True).indices
    assert torch.equal(result.samples, singles[order])
    assert result.best_reward == pytest.approx(float(rewards.max()))
    assert torch.equal(result.best, singles[order[:1]])


def test_evosearch_first_generation_is_best_of_k_start():
    evo = es.search(toy_process(), ring_reward, (2,), SCHEDULES["evosearch"], seed=9)
    bon = es.search(toy_process(), ring_reward, (2,), es.Schedule.best_of_n(8), seed=9)
    assert evo.history[0].generation_best == pytest.approx(bon.best_reward)
    assert evo.best_reward >= bon.best_reward


def test_elites_are_never_lost_with_deterministic_rollouts():
    # eta = 0: rolling an elite's noise out again gives the same sample, so with elites the best never drops.
    process = toy_process("euler_ancestral", eta=0.0)
    schedule = es.Schedule(evolution_steps=[0, 0 + 1], population=[6, 4, 4])
    with pytest.raises(ValueError, match="stochastic sampler"):
        es.search(process, ring_reward, (2,), schedule, seed=0)
    schedule = es.Schedule(evolution_steps=[0], population=[6, 4])
    result = es.search(process, ring_reward, (2,), schedule, seed=0, elites=2)
    parent_best = result.history[0].generation_best
    assert result.history[1].generation_best >= parent_best
    assert torch.isclose(result.rewards, torch.tensor(parent_best)).any(), "the elite's re-roll must reproduce it"
    assert result.rewards[:1].item() == pytest.approx(result.best_reward)


def test_children_restart_from_the_archived_pre_step_state():
    """No off-by-one (docs/method.md §9): an elite child's first model call sees exactly the state its parent's
    rollout fed to the same step."""
    seen: dict[int, list[torch.Tensor]] = {}
    step_of = {float(s): i for i, s in enumerate(SIGMAS)}

    def denoiser(x, sigma):
        seen.setdefault(step_of[float(sigma[0])], []).append(x.clone())
        return GMM(x, sigma)

    process = es.KDiffusionProcess(denoiser, SIGMAS, sampler="ddpm")
    schedule = es.Schedule(evolution_steps=[0, 10], population=[5, 3, 3])
    es.search(process, ring_reward, (2,), schedule, seed=2, elites=3, chunk_size=None)
    calls_at_10 = seen[10]
    # rollouts evaluated at step 10: initial (5), children of gen 1 (3), children of gen 2 = 3 pure elites
    assert [c.shape[0] for c in calls_at_10] == [5, 3, 3]
    earlier = torch.cat(calls_at_10[:2])
    for row in calls_at_10[2]:
        assert (earlier == row).all(dim=1).any(), "elite child did not restart from an archived pre-step state"


def test_global_best_is_the_best_ever_scored():
    scored = []

    def reward(x0):
        r = ring_reward(x0)
        scored.append(r)
        return r

    result = es.search(toy_process(), reward, (2,), SCHEDULES["evosearch"], seed=6)
    assert result.best_reward == pytest.approx(float(torch.cat(scored).max()))
    assert float(ring_reward(result.best)[0]) == pytest.approx(result.best_reward)
    assert result.samples.shape == (6, 2) and torch.all(result.rewards[:-1] >= result.rewards[1:])


def test_population_and_chunk_sizes_never_drop_individuals():
    schedule = es.Schedule(evolution_steps=[0, 7], population=[7, 5, 11])
    for chunk in (1, 2, 3, 4, 6, 100):
        counted = []

        def reward(x0):
            counted.append(x0.shape[0])
            return ring_reward(x0)

        result = es.search(toy_process(), reward, (2,), schedule, seed=1, chunk_size=chunk, elites=1)
        assert sum(counted) == 23 and result.samples.shape[0] == 11
        assert max(counted) <= chunk


def test_callback_events_and_progress():
    events = []
    schedule = SCHEDULES["evosearch"]
    result = es.search(toy_process(), ring_reward, (2,), schedule, seed=0, callback=events.append, chunk_size=5)
    steps = [e for e in events if e.kind == "step"]
    generations = [e for e in events if e.kind == "generation"]
    assert len(generations) == len(schedule.population)
    assert all(e.total_nfe == schedule.nfe(T) for e in events)
    assert [e.nfe for e in steps] == sorted(e.nfe for e in steps)
    assert generations[-1].nfe == result.nfe
    assert generations[-1].best is not None and generations[-1].record is not None


def test_callback_exception_stops_the_search():
    calls = []

    def denoiser(x, sigma):
        calls.append(1)
        return GMM(x, sigma)

    def callback(event):
        if event.kind == "step" and event.nfe >= 30:
            raise KeyboardInterrupt

    process = es.KDiffusionProcess(denoiser, SIGMAS, sampler="ddpm")
    with pytest.raises(KeyboardInterrupt):
        es.search(process, ring_reward, (2,), SCHEDULES["evosearch"], seed=0, callback=callback, chunk_size=2)
    assert len(calls) <= 30 // 2 + 1, "the search must stop within one model call of the callback raising"


def test_stop_search_returns_best_so_far():
    def callback(event):
        if event.kind == "generation" and event.generation == 1:
            raise es.StopSearch

    result = es.search(toy_process(), ring_reward, (2,), SCHEDULES["evosearch"], seed=0, callback=callback)
    assert result.stopped and len(result.history) == 2
    assert result.nfe < SCHEDULES["evosearch"].nfe(T)
    assert float(ring_reward(result.best)[0]) == pytest.approx(result.best_reward)


def test_nan_rewards_count_as_worst_with_a_warning(caplog):
    def reward(x0):
        r = ring_reward(x0)
        r[::2] = float("nan")
        return r

    with caplog.at_level(logging.WARNING, logger="evosearch"):
        result = es.search(toy_process(), reward, (2,), SCHEDULES["evosearch"], seed=0)
    assert "NaN" in caplog.text
    assert result.best_reward == result.best_reward  # not NaN
    assert torch.isnan(result.rewards[-1])


def test_all_nan_rewards_do_not_crash():
    result = es.search(
        toy_process(), lambda x: torch.full((x.shape[0],), float("nan")), (2,), SCHEDULES["evosearch"], seed=0
    )
    assert result.best.shape == (1, 2)


@pytest.mark.parametrize(
    "reward, message",
    [
        (lambda x: ring_reward(x)[:, None], r"reward returned shape \(\d+, 1\)"),
        (lambda x: ring_reward(x)[:1], r"reward returned shape \(1,\)"),
    ],
)
def test_wrong_reward_shape_is_a_value_error(reward, message):
    with pytest.raises(ValueError, match=message):
        es.search(toy_process(), reward, (2,), SCHEDULES["best_of_n"], seed=0)


def test_bad_arguments_name_the_parameter():
    schedule = SCHEDULES["evosearch"]
    with pytest.raises(ValueError, match=r"population\[3\]=3 is smaller than elites=4"):
        es.search(toy_process(), ring_reward, (2,), schedule, seed=0, elites=4)
    with pytest.raises(ValueError, match=r"tournament=20 needs 20 contestants .* pool of 8"):
        es.search(toy_process(), ring_reward, (2,), schedule, seed=0, tournament=20)
    with pytest.raises(ValueError, match="chunk_size"):
        es.search(toy_process(), ring_reward, (2,), schedule, seed=0, chunk_size=0)
    with pytest.raises(ValueError, match="shape"):
        es.search(toy_process(), ring_reward, (0,), schedule, seed=0)
    with pytest.raises(ValueError, match=r"evolution_steps\[2\]=10 is out of range .* \[0, 9\]"):
        es.search(es.KDiffusionProcess(GMM, ddpm_sigmas(10)), ring_reward, (2,), schedule, seed=0)
    with pytest.raises(TypeError, match="unknown mutation/selection setting"):
        es.search(toy_process(), ring_reward, (2,), schedule, seed=0, elitism=3)


@pytest.mark.parametrize(
    "sigmas, message",
    [
        (torch.tensor([3.0, 2.0, 1.0]), "must end in 0"),
        (torch.tensor([3.0, 3.0, 0.0]), r"strictly descending, but sigmas\[0\]=3 <= sigmas\[1\]=3"),
        (torch.tensor([1.0, 2.0, 0.0]), "strictly descending"),
        (torch.tensor([[1.0, 0.0]]), "1-D"),
        (torch.tensor([float("nan"), 0.0]), "finite"),
    ],
)
def test_bad_sigmas(sigmas, message):
    with pytest.raises(ValueError, match=message):
        es.KDiffusionProcess(GMM, sigmas)


def test_custom_k_diffusion_sampler_callable():
    calls = []

    def my_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None, eta=1.0):
        calls.append(len(sigmas))
        return es.sample_euler_ancestral(
            model, x, sigmas, extra_args, callback, disable, eta=eta, noise_sampler=noise_sampler
        )

    process = es.KDiffusionProcess(GMM, SIGMAS, sampler=my_sampler)
    result = es.search(process, ring_reward, (2,), SCHEDULES["evosearch"], seed=0)
    assert result.nfe == SCHEDULES["evosearch"].nfe(T) and calls
    with pytest.raises(ValueError, match="noise_sampler"):
        es.KDiffusionProcess(GMM, SIGMAS, sampler=lambda model, x, sigmas, extra_args=None: x)
    with pytest.raises(ValueError, match="sampler must be one of"):
        es.KDiffusionProcess(GMM, SIGMAS, sampler="heun")


def test_report_is_json_friendly():
    import json

    result = es.search(toy_process(), ring_reward, (2,), SCHEDULES["evosearch"], seed=0)
    report = json.loads(json.dumps(result.report()))
    assert report["nfe"] == report["planned_nfe"] == result.nfe
    assert len(report["history"]) == 5 and report["method"] == "evosearch"


def test_evosearch_beats_best_of_n_on_the_paper_toy():
    """End to end on the paper's ring toy (docs/method.md §11) at matched NFE, fixed seeds."""
    process = es.KDiffusionProcess(GMM, ddpm_sigmas(50), sampler="ddpm")
    budget = 40 * 50
    evo, bon = es.Schedule.plan(budget, 50), es.Schedule.best_of_n(40)
    assert evo.nfe(50) <= bon.nfe(50) == budget
    seeds = range(8)
    evo_mean = sum(es.search(process, ring_reward, (2,), evo, seed=s).best_reward for s in seeds) / 8
    bon_mean = sum(es.search(process, ring_reward, (2,), bon, seed=s).best_reward for s in seeds) / 8
    assert evo_mean > bon_mean + 0.3, (evo_mean, bon_mean)


def test_x0_fitness_evosearch_moves_the_population_together():
    """Generation g holds population[g] individuals from s_{g-1} to s_g; x0 scores are proxies, never the best."""
    schedule = SCHEDULES["evosearch_x0"]
    assert schedule.nfe(T) == 7 * 4 + 5 * 6 + 6 * 6 + 4 * 4 and schedule.reward_calls(T) == 22
    result = es.search(toy_process(), ring_reward, (2,), schedule, seed=5, mutation=es.Mutation(elites=2))
    assert [r.step for r in result.history] == [4, 10, 16, 20]
    assert [r.individuals for r in result.history] == [7, 5, 6, 4]
    assert len(result.samples) == 4 and result.best_reward == float(result.rewards[0])
    assert torch.equal(result.best, result.samples[:1]), "the best is a finished sample, not an x0 prediction"


def test_x0_fitness_elites_must_fit_the_generation():
    schedule = es.Schedule(evolution_steps=[12], population=[2, 4], fitness="x0")
    with pytest.raises(ValueError, match="elites=3 at generation 1 .* pool of 2"):
        es.search(toy_process(), ring_reward, (2,), schedule, seed=0, mutation=es.Mutation(elites=3))


def test_x0_fitness_evosearch_beats_best_of_n_on_the_paper_toy():
    """The cheap-fitness variant at matched NFE, fixed seeds (bench/results/demo_proof.md measures it for real)."""
    process = es.KDiffusionProcess(GMM, ddpm_sigmas(50), sampler="ddpm")
    evo = es.Schedule.plan(20 * 50, 50, fitness="x0")
    bon = es.Schedule.best_of_n(20)
    assert evo.nfe(50) == bon.nfe(50) == 1000 and evo.fitness == "x0" and 0 not in evo.evolution_steps
    seeds = range(8)
    evo_mean = sum(es.search(process, ring_reward, (2,), evo, seed=s).best_reward for s in seeds) / 8
    bon_mean = sum(es.search(process, ring_reward, (2,), bon, seed=s).best_reward for s in seeds) / 8
    assert evo_mean > bon_mean + 0.3, (evo_mean, bon_mean)


def test_out_of_memory_halves_the_chunk_and_keeps_the_result():
    from evosearch.search import OUT_OF_MEMORY

    def fragile(x, sigma):
        if x.shape[0] > 3:
            raise OUT_OF_MEMORY("CUDA out of memory (simulated)")
        return GMM(x, sigma)

    schedule = SCHEDULES["evosearch"]
    halved = []
    process = es.KDiffusionProcess(fragile, SIGMAS, sampler="ddpm")
    result = es.search(process, ring_reward, (2,), schedule, seed=8, chunk_size=16, on_oom=halved.append)
    reference = es.search(toy_process(), ring_reward, (2,), schedule, seed=8, chunk_size=2)
    assert halved == [4, 2] or halved[-1] <= 3
    assert torch.equal(result.samples, reference.samples)
    assert result.extras["oom_retries"] == len(halved)

    def hopeless(x, sigma):
        raise OUT_OF_MEMORY("CUDA out of memory (simulated)")

    with pytest.raises(OUT_OF_MEMORY, match="single individual per model call"):
        es.search(es.KDiffusionProcess(hopeless, SIGMAS), ring_reward, (2,), schedule, seed=8, chunk_size=2)
