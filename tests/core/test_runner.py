"""The trajectory runner and what it measures (issue 9): no cuts, measured sampler facts, honest accounting,
x0-fitness reporting, dtype, memory, one import identity."""

from __future__ import annotations

import json
import math

import pytest
import torch
from support.samplers import sample_heun_ancestral, sample_multistep_sde

import evosearch as es
from evosearch.runner import OUT_OF_MEMORY
from evosearch.selection import elite_indices, tournament_select
from evosearch.toys import ddpm_sigmas, paper_toy, ring_reward

GMM = paper_toy()
T = 10
SIGMAS = ddpm_sigmas(T)


def generation_scores(result_events):
    return [e.scores for e in result_events if e.kind == "generation"]


@pytest.mark.parametrize("sampler", ["ddpm", "euler_ancestral", sample_multistep_sde])
def test_first_generation_is_best_of_k_start_bit_for_bit(sampler):
    """No cut at the evolution steps: the first generation's trajectories are exactly Best-of-k_start's."""
    evo = es.Schedule(evolution_steps=[0, 3, 6, 8], population=[6, 3, 3, 3, 3], fitness="rollout")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler=sampler)
    evo_events, bon_events = [], []
    es.search(process, ring_reward, (2,), evo, seed=4, chunk_size=4, callback=evo_events.append)
    bon = es.search(process, ring_reward, (2,), es.Schedule.best_of_n(6), seed=4, callback=bon_events.append)
    first = generation_scores(evo_events)[0]
    assert torch.equal(first, generation_scores(bon_events)[0])
    assert float(first.max()) == bon.best_reward


def test_a_cut_would_change_a_multistep_sampler():
    """The property above is not vacuous: stopping and restarting the multistep sampler at a step changes its path."""
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler=sample_multistep_sde)
    noise = es.normal_rows([1, 2], (2,))
    whole = process.run(noise * SIGMAS[0], 0, T, es.IndividualNoise([7, 8], (2,)))
    streams = es.IndividualNoise([7, 8], (2,))
    cut = process.run(process.run(noise * SIGMAS[0], 0, 5, streams), 5, T, streams)
    assert not torch.allclose(whole, cut)


def test_best_of_n_equals_each_individual_alone():
    n = 5
    result = es.search(es.KDiffusionProcess(GMM, SIGMAS, sampler=sample_multistep_sde), ring_reward, (2,),
                       es.Schedule.best_of_n(n), seed=9, chunk_size=2)  # fmt: skip
    singles = []
    for i in range(n):
        x = es.normal_rows([es.derive_seed(9, "init", i)], (2,)) * SIGMAS[0]
        stream = es.IndividualNoise([es.derive_seed(9, "sde", 0, i)], (2,))
        singles.append(sample_multistep_sde(GMM, x, SIGMAS, noise_sampler=stream))
    singles = torch.cat(singles)
    order = torch.sort(ring_reward(singles), descending=True, stable=True).indices
    assert torch.equal(result.samples, singles[order])


@pytest.mark.parametrize("intermediate", ["redraw", "additive"])
def test_mutated_children_are_the_mutation_of_their_tournament_winners(intermediate):
    """Children born at s_0 start from mutate(winner's archived pre-step state, winner's x0 prediction, own noise)."""
    seen: dict[int, list[tuple[torch.Tensor, torch.Tensor]]] = {}
    step_of = {float(s): i for i, s in enumerate(SIGMAS)}

    def denoiser(x, sigma):
        out = GMM(x, sigma)
        seen.setdefault(step_of[float(sigma[0])], []).append((x.clone(), out.clone()))
        return out

    s0, k0, k1 = 4, 7, 5
    schedule = es.Schedule(evolution_steps=[s0], population=[k0, k1], fitness="rollout")
    mutation = es.Mutation(intermediate=intermediate, strength=0.6, elites=2, tournament=3)
    process = es.KDiffusionProcess(denoiser, SIGMAS, sampler="ddpm")
    events = []
    es.search(process, ring_reward, (2,), schedule, seed=13, mutation=mutation, callback=events.append)
    (parents_x, parents_x0), (children_x, _) = seen[s0]  # the parents' rollout, then the children's first call
    rewards = generation_scores(events)[0]
    elites = elite_indices(rewards, 2)
    winners = tournament_select(rewards, k1 - 2, 3, torch.Generator().manual_seed(es.derive_seed(13, "select", 0)))
    eps = es.normal_rows([es.derive_seed(13, "mutate", 1, 2 + i) for i in range(k1 - 2)], (2,))
    if intermediate == "redraw":
        mutated = es.mutate_redraw(parents_x[winners], parents_x0[winners], 1.0, float(SIGMAS[s0]), 0.6, eps)
    else:
        mutated = es.mutate_additive(parents_x[winners], es.steppers.ddpm_noise_std(
            float(SIGMAS[s0]), float(SIGMAS[s0 + 1])), 0.6, eps)  # fmt: skip
    assert torch.allclose(children_x, torch.cat([parents_x[elites], mutated]), atol=1e-6)


def test_an_unknown_sampler_is_classified_and_counted():
    """A stochastic two-evaluation sampler no table knows: evaluations, noise std and stochasticity are measured."""
    calls: list[int] = []

    def denoiser(x, sigma):
        calls.append(x.shape[0])
        return GMM(x, sigma)

    process = es.KDiffusionProcess(denoiser, SIGMAS, sampler=sample_heun_ancestral)
    facts = process.facts((0, 5), (2,))
    assert facts.evals_per_step == (2,) * (T - 1) + (1,) and facts.calls(5) == 2 * 4 + 1
    expected = [es.ancestral_step(float(SIGMAS[i]), float(SIGMAS[i + 1]), 1.0)[1] for i in range(T)]
    assert facts.noise_std == pytest.approx(expected, rel=1e-5, abs=1e-7)
    assert facts.is_stochastic(after=1) and not facts.global_rng
    assert not calls, "measuring the sampler makes no model call"
    schedule = es.Schedule(evolution_steps=[0, 5], population=[4, 2, 2], fitness="rollout")
    result = es.search(process, ring_reward, (2,), schedule, seed=0)
    assert result.nfe == sum(calls) == 4 * 19 + 2 * 19 + 2 * 9


def test_a_deterministic_sampler_is_measured_as_such():
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="euler_ancestral", eta=0.0)
    assert not process.facts(noise=True).is_stochastic() and process.step_noise_std(2) == 0.0
    with pytest.raises(ValueError, match="need a stochastic sampler.*injects no noise"):
        es.search(process, ring_reward, (2,), es.Schedule(evolution_steps=[0, 4], population=[4, 2, 2]), seed=0)


def test_randomness_outside_the_noise_sampler_is_detected(caplog):
    def global_rng_sampler(model, x, sigmas, extra_args=None, callback=None, disable=None, noise_sampler=None):
        for i in range(len(sigmas) - 1):
            denoised = model(x, sigmas[i] * x.new_ones([x.shape[0]]))
            if callback is not None:
                callback({"x": x, "i": i, "sigma": sigmas[i], "denoised": denoised})
            x = denoised + (x - denoised) * sigmas[i + 1] / sigmas[i] + torch.randn_like(x) * 0.1 * sigmas[i + 1]
        return x

    facts = es.KDiffusionProcess(GMM, SIGMAS, sampler=global_rng_sampler).facts()
    assert facts.global_rng and facts.is_stochastic() and "global RNG" in facts.notes[0]


def test_x0_fitness_reports_a_finite_labelled_best_so_far():
    schedule = es.Schedule(evolution_steps=[3, 6, 8], population=[6, 5, 5, 4], fitness="x0")
    result = es.search(es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm"), ring_reward, (2,), schedule, seed=2)
    history = result.history
    assert [r.proxy for r in history] == [True, True, True, False]
    assert [r.best_is_proxy for r in history] == [True, True, True, False]
    assert all(math.isfinite(r.best_reward) for r in history)
    assert history[-1].best_reward == result.best_reward
    report = json.loads(json.dumps(result.report(), allow_nan=False))
    assert report["history"][0]["best_is_proxy"] and report["best_reward"] == result.best_reward


def test_a_failed_out_of_memory_attempt_is_not_counted():
    calls: list[int] = []

    def fragile(x, sigma):
        if x.shape[0] > 2:
            raise OUT_OF_MEMORY("CUDA out of memory (simulated)")
        calls.append(x.shape[0])
        return GMM(x, sigma)

    schedule = es.Schedule(evolution_steps=[0, 5], population=[6, 3, 3], fitness="rollout")
    result = es.search(es.KDiffusionProcess(fragile, SIGMAS, sampler="ddpm"), ring_reward, (2,), schedule, seed=1,
                       chunk_size=6)  # fmt: skip
    assert result.nfe == schedule.nfe(T) == sum(calls)
    attempts, evaluated = [], []

    def fails_later(x, sigma):  # runs out of memory part-way through a trajectory, after some evaluations
        attempts.append(x.shape[0])
        if x.shape[0] > 3 and len(attempts) > 4:
            raise OUT_OF_MEMORY("CUDA out of memory (simulated)")
        evaluated.append(x.shape[0])
        return GMM(x, sigma)

    result = es.search(es.KDiffusionProcess(fails_later, SIGMAS, sampler="ddpm"), ring_reward, (2,), schedule, seed=1,
                       chunk_size=6)  # fmt: skip
    assert result.nfe == schedule.nfe(T) and result.discarded_nfe == sum(evaluated) - result.nfe > 0
    assert result.report()["discarded_nfe"] == result.discarded_nfe


def test_float64_processes_run_in_float64():
    sigmas = ddpm_sigmas(T).double()

    def denoiser64(x, sigma):
        assert x.dtype == torch.float64
        return GMM.denoise(x, sigma).double()

    process = es.KDiffusionProcess(denoiser64, sigmas, sampler="euler_ancestral")
    assert process.dtype == torch.float64
    result = es.search(process, ring_reward, (2,), es.Schedule(evolution_steps=[0, 4], population=[4, 2, 2]), seed=0)
    assert result.best.dtype == torch.float64 and math.isfinite(result.best_reward)
    # a float64 denoiser under float32 states is cast; a non-float output is a TypeError naming both dtypes
    mixed = es.KDiffusionProcess(lambda x, s: GMM.denoise(x, s).double(), ddpm_sigmas(T), sampler="euler_ancestral")
    assert es.search(mixed, ring_reward, (2,), es.Schedule.best_of_n(3), seed=0).best.dtype == torch.float32
    ints = es.KDiffusionProcess(lambda x, s: x.round().long(), ddpm_sigmas(T), sampler="euler_ancestral")
    with pytest.raises(TypeError, match=r"torch\.int64 for states of dtype torch\.float32"):
        es.search(ints, ring_reward, (2,), es.Schedule.best_of_n(3), seed=0)
    with pytest.raises(TypeError, match="dtype must be a floating-point"):
        es.KDiffusionProcess(GMM, ddpm_sigmas(T), dtype=torch.int32)


def test_memory_is_estimated_and_a_schedule_that_cannot_fit_is_refused():
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")
    huge = es.Schedule.plan(10_000_000, T)
    with pytest.raises(es.SearchTooLarge, match=r"stored states .* more than the memory_limit of 1\.0 MB; lower the "
                                                r"budget"):  # fmt: skip
        es.search(process, ring_reward, (64,), huge, seed=0, memory_limit=1 << 20)
    small = es.Schedule(evolution_steps=[0, 5], population=[6, 3, 3], fitness="rollout")
    result = es.search(process, ring_reward, (2,), small, seed=0, memory_limit=1 << 20)
    assert result.report()["memory"]["stored_states"] > 0


def test_pools_keep_only_selectable_states_and_select_the_same():
    """Pruning a greedy tournament's pool keeps a fraction of its states and changes nothing."""
    rewards = torch.randn(200, generator=torch.Generator().manual_seed(0))
    states = torch.arange(200.0)[:, None]
    size, elites, b, n = 200, 4, 180, 30
    pruned, full = es.SelectionPool(keep=max(elites, size - b + 1)), es.SelectionPool(keep=None)
    for chunk in range(0, 200, 16):
        pruned.add(rewards[chunk : chunk + 16], states[chunk : chunk + 16])
        full.add(rewards[chunk : chunk + 16], states[chunk : chunk + 16])
    assert pruned.kept <= size - b + 1 + 1 and full.kept == 200
    for seed in range(5):
        winners = tournament_select(pruned.rewards, n, b, torch.Generator().manual_seed(seed))
        assert torch.equal(pruned.states(winners), full.states(winners))
    assert torch.equal(pruned.states(elite_indices(pruned.rewards, elites)), full.states(elite_indices(rewards, 4)))


def test_one_import_identity_for_the_engine():
    import importlib
    import sys

    from tools.comfy_env import PACK_NAME, load_pack

    load_pack()
    packaged = importlib.import_module(f"{PACK_NAME}.evosearch")
    assert packaged is es and sys.modules[f"{PACK_NAME}.evosearch.schedule"] is sys.modules["evosearch.schedule"]
    schedule = packaged.Schedule.best_of_n(3)
    assert isinstance(schedule, es.Schedule) and isinstance(es.ScheduleSpec(), packaged.ScheduleSpec)


def test_distinct_options_keep_the_best_and_spread_the_rest():
    """Ten near-copies of one good sample and a few other good ones: the options are not the near-copies."""
    g = torch.Generator().manual_seed(0)
    copies = torch.tensor([[1.0, 1.0]]) + 0.01 * torch.randn(10, 2, generator=g)
    others = torch.tensor([[-1.0, 1.0], [1.0, -1.0], [-1.0, -1.0]])
    samples = torch.cat([copies, others])
    rewards = torch.cat([torch.linspace(1.0, 0.9, 10), torch.tensor([0.8, 0.79, 0.78])])
    picked = es.distinct_options(samples, rewards, 4)
    assert picked[0] == 0 and sorted(picked.tolist())[1:] == [10, 11, 12]
    assert torch.all(rewards[picked][:-1] >= rewards[picked][1:]), "options come best first"
    assert (
        es.distinct_options(samples, rewards, 0).numel() == 0
        and es.distinct_options(samples, rewards, 99).numel() == 13
    )


def test_the_hall_of_fame_holds_the_best_finished_samples_and_feeds_options():
    schedule = es.Schedule(evolution_steps=[0, 5], population=[8, 4, 4], fitness="rollout")
    scored = []

    def reward(x0):
        r = ring_reward(x0)
        scored.append((x0.clone(), r))
        return r

    result = es.search(es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm"), reward, (2,), schedule, seed=3, keep_best=6)
    everything = torch.cat([r for _, r in scored])
    assert torch.equal(result.fame_rewards, torch.sort(everything, descending=True).values[:6])
    assert result.fame_rewards[0] == result.best_reward and torch.equal(result.fame_samples[:1], result.best)
    samples, rewards = result.options(3)
    assert samples.shape == (3, 2) and rewards[0] == result.best_reward
    assert result.report()["memory"]["stored_states"] >= 6


def test_capped_tournaments_spread_the_parents_and_prune_exactly():
    rewards = torch.arange(40.0)
    winners = tournament_select(rewards, 20, 36, torch.Generator().manual_seed(1), max_wins=5)
    counts = torch.bincount(winners, minlength=40)
    assert int(counts.max()) <= 5 and int((counts > 0).sum()) >= 4
    uncapped = tournament_select(rewards, 20, 36, torch.Generator().manual_seed(1))
    assert torch.equal(uncapped, tournament_select(rewards, 20, 36, torch.Generator().manual_seed(1), max_wins=20))
    # a pool pruned with the capped bound selects exactly as the full pool
    from evosearch.pool import keep_for

    keep = keep_for(40, 2, 36, 20, max_wins=5)
    pruned, full = es.SelectionPool(keep), es.SelectionPool(None)
    states = torch.arange(40.0)[:, None]
    shuffled = torch.randperm(40, generator=torch.Generator().manual_seed(2))
    for chunk in range(0, 40, 7):
        index = shuffled[chunk : chunk + 7]
        pruned.add(rewards[index], states[index])
        full.add(rewards[index], states[index])
    for seed in range(4):
        picked = tournament_select(full.rewards, 20, 36, torch.Generator().manual_seed(seed), max_wins=5)
        assert torch.equal(pruned.states(picked), full.states(picked))


def test_max_share_limits_children_per_parent_in_a_search():
    schedule = es.Schedule(evolution_steps=[3, 6], population=[12, 12, 12], fitness="x0")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")
    greedy = es.search(process, ring_reward, (2,), schedule, seed=0)
    spread = es.search(process, ring_reward, (2,), schedule, seed=0, max_share=0.25)
    assert math.isfinite(spread.best_reward) and not torch.equal(greedy.samples, spread.samples)
    with pytest.raises(ValueError, match=r"max_share .* must be in \(0, 1\]"):
        es.Mutation(max_share=0.0)


def _pairwise_min(x: torch.Tensor) -> float:
    d = torch.cdist(x.flatten(1).double(), x.flatten(1).double())
    return float(d[~torch.eye(len(x), dtype=torch.bool)].min())


def test_islands_keep_lineages_apart_and_spend_the_same_compute():
    """Islands (issue 10, diverse options): the final population is labelled by island, the options are each island's
    best, best island first; the NFE and the trajectory count do not change, and one island is the old search."""
    schedule = es.Schedule(evolution_steps=[3, 6], population=[16, 16, 16], fitness="x0")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")
    one = es.search(process, ring_reward, (2,), schedule, seed=3)
    four = es.search(process, ring_reward, (2,), schedule, seed=3, islands=4)
    assert four.nfe == one.nfe and four.report()["planned_nfe"] == one.report()["planned_nfe"]
    assert math.isfinite(four.best_reward) and one.lineages is None
    assert sorted(four.lineages.tolist()) == sorted([0, 1, 2, 3] * 4)
    options, rewards = four.options(4)
    heads = {}
    for i in range(len(four.samples)):  # the population is best first
        heads.setdefault(int(four.lineages[i]), i)
    expected = sorted(heads.values())
    assert torch.equal(options, four.samples[expected]) and torch.equal(rewards, four.rewards[expected])
    assert float(rewards[0]) == four.best_reward
    # more options than islands: one per island first, then the farthest of the rest, no repeats
    six, _ = four.options(6)
    assert set(map(tuple, six.tolist())) >= set(map(tuple, options.tolist()))
    assert len({tuple(r) for r in six.tolist()}) == 6
    # the same seed with one island is the old single population, bit for bit
    assert torch.equal(es.search(process, ring_reward, (2,), schedule, seed=3, islands=1).samples, one.samples)


def test_islands_never_mix():
    """Children copy their parents exactly (β = 0, strength 0), so a child's x0 prediction names its parent: with two
    islands the two halves of the next generation share no parent, with one population they do."""
    schedule = es.Schedule(evolution_steps=[3], population=[8, 8], fitness="x0")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")

    def parents(islands: int) -> tuple[set[float], set[float]]:
        events = []
        es.search(process, ring_reward, (2,), schedule, seed=5, islands=islands, beta=0.0, strength=0.0,
                  callback=events.append)  # fmt: skip
        first = next(e.denoised for e in events if e.kind == "step" and e.generation == 1)
        tags = [round(float(v), 5) for v in ring_reward(first)]
        return set(tags[:4]), set(tags[4:])

    low, high = parents(2)
    assert not low & high
    low, high = parents(1)
    assert low & high


def test_automatic_islands_follow_the_options_asked_for():
    auto = es.Mutation()
    assert auto.islands == 0 and auto.islands_for(100) == 1  # no options asked for: one population
    four = auto.for_options(4)
    assert four.options == 4 and four.islands_for(30) == 4  # islands of 7-8
    assert four.islands_for(10) == 2 and four.islands_for(5) == 1  # islands of at least AUTO_ISLAND_SIZE
    assert es.Mutation(islands=2).for_options(4).islands_for(30) == 2  # a set value is kept
    assert es.Mutation(islands=8).islands_for(10) == 5  # at most one island per two individuals
    with pytest.raises(ValueError, match="islands must be a whole number >= 0"):
        es.Mutation(islands=-1)
    schedule = es.Schedule(evolution_steps=[3, 6], population=[16, 16, 16], fitness="x0")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")
    asked = es.search(process, ring_reward, (2,), schedule, seed=3, mutation=es.Mutation().for_options(4))
    assert sorted(asked.lineages.tolist()) == sorted([0, 1, 2, 3] * 4)


def test_more_islands_than_the_population_holds_are_reduced(caplog):
    schedule = es.Schedule(evolution_steps=[3], population=[6, 6], fitness="x0")
    process = es.KDiffusionProcess(GMM, SIGMAS, sampler="ddpm")
    with caplog.at_level("WARNING"):
        result = es.search(process, ring_reward, (2,), schedule, seed=0, islands=5)
    assert math.isfinite(result.best_reward) and "hold only 3 islands" in caplog.text


def test_memory_bound_counts_island_pools_in_full():
    """Island pools keep every member, so the stored-state bound with islands is one generation's pool, whatever
    the pruning bound of one population would be."""
    schedule = es.Schedule(evolution_steps=[30, 50, 70], population=[64, 64, 64, 64], fitness="x0")
    cls = schedule.strategy_class
    one = cls.stored_states(schedule, es.Mutation(), 100, 4)  # greedy tournaments: pools pruned to a few
    four = cls.stored_states(schedule, es.Mutation(islands=4), 100, 4)
    assert four == 2 * 64 + 2 * 64 + 4 * 4 and four > one
