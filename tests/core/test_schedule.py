"""Schedules: validation messages, the NFE formula (docs/method.md §5), presets and the budget planner."""

from __future__ import annotations

import pytest

import evosearch as es


def test_official_presets_match_method_md_budgets():
    assert es.Schedule.preset("sd21").nfe(50) == 5000
    assert es.Schedule.preset("wan").nfe(50) == 1000
    assert es.Schedule.preset("flux").nfe(50) == 1465
    assert es.Schedule.preset("sd21").reward_calls() == 150
    assert es.Schedule.preset("sd21").equal_budget_best_of_n(50) == 100
    assert es.pool_sizes(es.Schedule.preset("sd21")) == [42, 68, 94, 120]


def test_special_case_costs():
    assert es.Schedule.best_of_n(7).nfe(20) == 140
    assert es.Schedule.particles(5, [4, 8]).nfe(20) == 100
    assert es.Schedule.particles(5, [4, 8]).reward_calls() == 15
    rollout = es.Schedule.particles(5, [4, 8], fitness="rollout")
    assert rollout.nfe(20) == 5 * 20 + 5 * 16 + 5 * 12


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(evolution_steps=[0, 30, 20], population=[4, 2, 2, 2]), "strictly increasing"),
        (dict(evolution_steps=[0, 20, 20], population=[4, 2, 2, 2]), "strictly increasing"),
        (dict(evolution_steps=[-1, 20], population=[4, 2, 2]), "evolution_steps[0] must be >= 0"),
        (dict(evolution_steps=[0, 20], population=[4, 2]), "population must have len(evolution_steps) + 1 = 3"),
        (dict(evolution_steps=[0, 20], population=[4, 0, 2]), "population[1] must be >= 1"),
        (dict(evolution_steps=[0, 20], population=[4, 2, 2], strategy="greedy"), "strategy must be one of"),
        (dict(evolution_steps=[0, 2.5], population=[4, 2, 2]), "list of integers"),
    ],
)
def test_bad_schedules_name_the_parameter(kwargs, message):
    with pytest.raises(ValueError) as err:
        es.Schedule(**kwargs)
    assert message in str(err.value)


def test_out_of_range_evolution_step_names_value_and_range():
    schedule = es.Schedule(evolution_steps=[0, 10, 50], population=[4, 2, 2, 2])
    with pytest.raises(ValueError, match=r"evolution_steps\[2\]=50 is out of range .* \[0, 49\]"):
        schedule.nfe(50)


def test_particles_validation():
    with pytest.raises(ValueError, match="potential must be one of"):
        es.Schedule.particles(4, [5], potential="softmax")
    with pytest.raises(ValueError, match="resample steps must be >= 1 with x0 fitness"):
        es.Schedule.particles(4, [0, 5])
    with pytest.raises(ValueError, match="lam"):
        es.Schedule.particles(4, [5], lam=-1)


@pytest.mark.parametrize("budget", [100, 173, 999, 1000, 4321, 5000, 15000])
@pytest.mark.parametrize("evolution_steps", [[0, 20, 30, 40], [0, 10, 20, 30, 40], [5, 45], [0]])
def test_planner_stays_within_budget_and_close(budget, evolution_steps):
    steps = 50
    minimum = steps + sum(steps - s for s in evolution_steps)
    if budget < minimum:
        with pytest.raises(ValueError, match="budget_nfe"):
            es.Schedule.plan(budget, steps, evolution_steps, fitness="rollout")
        return
    plan = es.Schedule.plan(budget, steps, evolution_steps, fitness="rollout")  # the paper's planner
    assert plan.evolution_steps == tuple(evolution_steps)
    assert plan.nfe(steps) <= budget
    assert budget - plan.nfe(steps) < steps - evolution_steps[-1], "the planner must spend the budget it can"


def test_planner_follows_the_rule_of_thumb():
    plan = es.Schedule.plan(5000, 50, [0, 20, 30, 40], fitness="rollout")
    k_start, *children = plan.population
    assert k_start >= 2 * min(children) - 1
    assert max(children) - min(children) <= 2


def test_planner_rejects_budget_below_one_trajectory():
    with pytest.raises(ValueError, match=r"budget_nfe=49 is below one trajectory \(50 NFE"):
        es.Schedule.plan(49, 50)


def test_planner_special_cases():
    assert es.Schedule.plan(1000, 50, strategy="best_of_n") == es.Schedule.best_of_n(20)
    particles = es.Schedule.plan(1000, 50, [0, 20, 30], strategy="particles")
    assert particles.population[0] == 20 and particles.evolution_steps == (20, 30)


def test_rescaled_preset():
    schedule = es.Schedule.preset("sd21", steps=25)
    assert schedule.evolution_steps == (0, 10, 15, 20)
    assert schedule.population == (42, 26, 26, 26, 30)
    tiny = es.Schedule.preset("wan", steps=4)
    assert list(tiny.evolution_steps) == sorted(set(tiny.evolution_steps))
    assert len(tiny.population) == len(tiny.evolution_steps) + 1
    tiny.validate(4)


def test_describe_reports_budget_and_equal_best_of_n():
    text = es.Schedule.preset("sd21").describe(50)
    assert "5,000 NFE" in text and "Best-of-100" in text and "×100" in text


def test_default_plan_adapts_generations_to_the_budget():
    big = es.Schedule.plan(15000, 100, fitness="rollout")  # the paper's planner (the default plans docs/method.md §14)
    assert big.evolution_steps == es.default_evolution_steps(100) == (0, 50, 70, 80, 90, 95)
    small = es.Schedule.plan(600, 100, fitness="rollout")
    assert 0 < len(small.evolution_steps) < len(big.evolution_steps)
    assert min(small.population) >= 2 and small.nfe(100) <= 1000
    tiny = es.Schedule.plan(250, 100, fitness="rollout")
    assert tiny.evolution_steps == () and tiny.population == (2,)
    for budget in range(100, 3000, 37):
        assert es.Schedule.plan(budget, 100, fitness="rollout").nfe(100) <= budget


def test_parse_int_list_is_strict():
    assert es.parse_int_list("0, 20,30 40", "evolution_steps") == (0, 20, 30, 40)
    with pytest.raises(ValueError, match=r"evolution_steps: '2\.5' in '0, 2\.5' is not a whole number"):
        es.parse_int_list("0, 2.5", "evolution_steps")
    with pytest.raises(ValueError, match="population is empty"):
        es.parse_int_list(" , ", "population")
    with pytest.raises(ValueError, match="__import__"):
        es.parse_int_list("__import__('os')", "population")


def test_fitness_defaults_and_x0_rules():
    assert es.Schedule(evolution_steps=[0, 5], population=[4, 2, 2]).fitness == "rollout"
    assert es.Schedule.particles(4, [5]).fitness == "x0" and es.Schedule.best_of_n(3).fitness == "rollout"
    with pytest.raises(ValueError, match="fitness must be one of"):
        es.Schedule(evolution_steps=[5], population=[4, 2], fitness="proxy")
    with pytest.raises(ValueError, match="steps must be >= 1 with x0 fitness"):
        es.Schedule(evolution_steps=[0, 5], population=[4, 2, 2], fitness="x0")
    x0 = es.Schedule(evolution_steps=[5, 10], population=[4, 3, 2], fitness="x0")
    assert x0.nfe(20) == 4 * 5 + 3 * 5 + 2 * 10 and x0.reward_calls(20) == 9
    assert "x0 fitness" in x0.describe(20) and x0.to_dict()["fitness"] == "x0"
    planned = es.Schedule.plan(1000, 20, fitness="x0")
    assert planned.nfe(20) == 1000 and set(planned.population) == {50} and min(planned.evolution_steps) >= 1


def test_schedule_spec_fitness_keeps_the_compute():
    steps = 20
    rollout = es.ScheduleSpec(budget=30, fitness="rollout").resolve(steps)
    x0 = es.ScheduleSpec(budget=30, fitness="x0").resolve(steps)
    assert rollout.fitness == "rollout" and x0.fitness == "x0" and x0.strategy == "evosearch"
    assert x0.nfe(steps) == rollout.nfe(steps) // steps * steps
    fk = es.ScheduleSpec(budget=30, strategy="particles").resolve(steps)
    assert fk.fitness == "x0" and fk.nfe(steps) == x0.nfe(steps)
    rollout_particles = es.ScheduleSpec(budget=30, strategy="particles", fitness="rollout").resolve(steps)
    assert rollout_particles.fitness == "rollout" and rollout_particles.nfe(steps) <= rollout.nfe(steps)
    custom = es.ScheduleSpec(mode="custom", evolution_steps=(5, 10), population=(4, 3, 2), fitness="x0")
    assert custom.resolve(steps).nfe(steps) == 55
    with pytest.raises(ValueError, match="steps must be >= 1 with x0 fitness"):
        es.ScheduleSpec(mode="custom", evolution_steps=(0, 10), population=(4, 3, 2), fitness="x0")
    with pytest.raises(ValueError, match="fitness must be one of"):
        es.ScheduleSpec(fitness="best")


def test_schedule_spec_resolves_against_the_sampler_steps():
    spec = es.ScheduleSpec(mode="budget_multiple", budget=20)
    schedule = spec.resolve(30)
    assert schedule.nfe(30) <= 600 and schedule.strategy == "evosearch"
    bon = es.ScheduleSpec(mode="budget_multiple", budget=20, strategy="best_of_n").resolve(30)
    assert bon == es.Schedule.best_of_n(schedule.nfe(30) // 30)
    particles = es.ScheduleSpec(mode="preset_sd21", strategy="particles").resolve(50)
    assert particles.population[0] == 100 and particles.evolution_steps == (20, 30, 40)
    assert es.ScheduleSpec(mode="preset_flux").resolve(25).evolution_steps == (2, 10, 15, 20)
    custom = es.ScheduleSpec(mode="custom", evolution_steps=(0, 10), population=(4, 2, 2))
    with pytest.raises(ValueError, match=r"evolution_steps\[1\]=10 is out of range for a 8-step sampler"):
        custom.resolve(8)
    with pytest.raises(ValueError, match="population must have"):
        es.ScheduleSpec(mode="custom", evolution_steps=(0, 10), population=(4, 2))
    with pytest.raises(ValueError, match="below one trajectory"):
        es.ScheduleSpec(mode="budget_nfe", budget=10).resolve(20)


def test_custom_spec_accepts_no_generations_and_typed_lists():
    """A custom Best-of-N spec has no evolution steps (worked before fractions were added); populations typed as
    text are numbers, not characters."""
    bon = es.ScheduleSpec(mode="custom", strategy="best_of_n", evolution_steps=(), population=(16,))
    assert bon.resolve(20).population == (16,) and bon.resolve(20).nfe(20) == 320
    typed = es.ScheduleSpec(mode="custom", evolution_steps="0, 5", population="16, 8, 8").resolve(20)
    assert typed.population == (16, 8, 8) and typed.evolution_steps == (0, 5)
    with pytest.raises(ValueError, match="population must be a list of integers"):
        es.Schedule(evolution_steps=[0], population="16, x")
