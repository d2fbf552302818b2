"""The shapes verifier: ≥ 98 % agreement with the renderer's ground truth on matching and contradicting prompts,
the reward protocol (score, passes), batch invariance, and GenEval's rules on hand-made object lists."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch

from rewards import check_scores, load_reward, reward_kinds, reward_traits
from rewards.shapes.cases import MUTATIONS, verification_cases
from rewards.shapes.grammar import parse
from rewards.shapes.perception import connected_components, perceive
from rewards.shapes.render import Scene, SceneObject, render
from rewards.shapes.verify import dense_score, holds, relation_holds
from rewards.shapes_reward import ShapesReward

#: Required by issue 10; measured 1.000 on this set (914 cases) and on 1,817 others (assets/shapes/README.md).
MIN_ACCURACY = 0.98


@pytest.fixture(scope="module")
def cases():
    return verification_cases(150, np.random.default_rng(2024))


@pytest.fixture(scope="module")
def verdicts(cases):
    images = render([c.scene for c in cases])
    return images, ShapesReward().details(images, [c.prompt.text for c in cases])


def test_verifier_agrees_with_the_ground_truth(cases, verdicts):
    _, details = verdicts
    truth = torch.tensor([c.truth for c in cases])
    right = details["passes"] == truth
    accuracy = right.float().mean().item()
    kinds = collections.Counter(c.kind for c in cases)
    assert set(kinds) >= {"match", "match_no_colour", *MUTATIONS}, kinds
    assert truth.sum() > 200 and (~truth).sum() > 400, "both matching and contradicting prompts are tested"
    wrong = [f"{cases[i].kind}: {cases[i].prompt.text}" for i in torch.nonzero(~right).flatten().tolist()]
    assert accuracy >= MIN_ACCURACY, f"accuracy {accuracy:.4f} on {len(cases)} cases; wrong: {wrong[:10]}"


def test_dense_score_separates_true_from_false(cases, verdicts):
    _, details = verdicts
    truth = torch.tensor([c.truth for c in cases])
    dense, score = details["dense"], details["score"]
    assert 0 <= dense.min() and dense.max() <= 1 and 0 <= score.min() and score.max() <= 1
    assert dense[truth].mean() > 0.9 and dense[~truth].mean() < 0.7
    torch.testing.assert_close(score, 0.5 * dense + 0.5 * details["passes"].float())
    assert score[details["passes"]].min() >= 0.5 > score[~details["passes"]].max()


def test_passes_and_score_follow_the_protocol(verdicts):
    images, _ = verdicts
    reward = ShapesReward("a red circle")
    traits = reward_traits(reward)
    assert traits.name == "shapes" and traits.prompt == "a red circle" and traits.modules == ()
    passes = reward.passes(images[:5])
    assert passes.dtype == torch.bool and passes.shape == (5,)
    scores = check_scores(reward.score(images[:5]), 5)
    assert scores.dtype == torch.float32
    assert reward.score(images[:5].double(), ["a red circle"] * 5).shape == (5,)


def test_scores_are_batch_invariant(cases, verdicts):
    images, details = verdicts
    prompts = [c.prompt.text for c in cases[:16]]
    reward = ShapesReward()
    alone = torch.cat([reward.score(images[i : i + 1], [prompts[i]]) for i in range(16)])
    torch.testing.assert_close(alone, details["score"][:16])
    order = torch.randperm(16, generator=torch.Generator().manual_seed(0))
    shuffled = reward.score(images[:16][order], [prompts[i] for i in order.tolist()])
    torch.testing.assert_close(shuffled, details["score"][:16][order])


def test_larger_images_and_videos_are_accepted(verdicts, cases):
    images, details = verdicts
    big = torch.nn.functional.interpolate(images[:8].permute(0, 3, 1, 2), scale_factor=2, mode="nearest")
    big = big.permute(0, 2, 3, 1)
    prompts = [c.prompt.text for c in cases[:8]]
    reward = ShapesReward()
    assert torch.equal(reward.passes(big, prompts), details["passes"][:8])
    video = torch.stack([images[:8], images[:8]], dim=1)
    assert torch.equal(reward.passes(video, prompts), details["passes"][:8])
    torch.testing.assert_close(reward.score(video, prompts), details["score"][:8])


def test_registered_as_a_weight_free_kind():
    assert "shapes" in reward_kinds()
    reward = load_reward("shapes", prompt="two blue squares")
    assert isinstance(reward, ShapesReward) and reward.prompt == "two blue squares"
    with pytest.raises(ValueError, match="cannot parse prompt 'a purple cat'"):
        load_reward("shapes", prompt="a purple cat")
    with pytest.raises(ValueError, match="no prompt to verify against"):
        ShapesReward().score(torch.zeros(1, 32, 32, 3), [""])


def _obj(shape, colour, x, y, r=4.0):
    return SceneObject(shape, colour, x, y, r)


def test_geneval_rules_on_object_lists():
    red_left = [_obj("circle", "red", 8, 16), _obj("square", "blue", 24, 17)]
    assert holds(parse("a red circle left of a blue square"), red_left)
    assert holds(parse("a blue square right of a red circle"), red_left)
    assert not holds(parse("a red circle right of a blue square"), red_left)
    assert not holds(parse("a red circle above a blue square"), red_left)
    assert holds(parse("a red circle and a blue square"), red_left)
    assert not holds(parse("a blue circle and a red square"), red_left), "colour attribution is checked per object"
    assert holds(parse("a circle"), red_left), "other objects are allowed, as in GenEval"
    three = [_obj("circle", "red", x, 16) for x in (6, 16, 26)]
    assert holds(parse("three red circles"), three) and holds(parse("a red circle"), three)
    assert not holds(parse("two red circles"), three), "numbers are exact"
    assert not holds(parse("four red circles"), three)
    mixed = [*three[:2], _obj("circle", "blue", 16, 28)]
    assert holds(parse("two red circles and a circle"), mixed) and not holds(
        parse("two red circles and a circle"), three
    )
    assert not holds(parse("a circle and a red circle"), three[:1]), "groups need disjoint objects"
    diagonal = [_obj("circle", "red", 8, 8), _obj("square", "blue", 20, 20)]
    assert relation_holds("left of", diagonal[0], diagonal[1]) and relation_holds("above", diagonal[0], diagonal[1])


def test_dense_score_rewards_partial_satisfaction():
    prompt = parse("a red circle left of a blue square")
    images = render([
        Scene((_obj("circle", "red", 8, 16), _obj("square", "blue", 24, 16))),  # right
        Scene((_obj("circle", "red", 24, 16), _obj("square", "blue", 8, 16))),  # wrong relation
        Scene((_obj("circle", "red", 8, 16),)),  # missing object
        Scene(()),  # empty
    ])  # fmt: skip
    dense = [dense_score(prompt, d) for d in perceive(images)]
    assert dense[0] > 0.95 and dense[0] > dense[1] > dense[2] > dense[3] == 0.0, dense


def test_connected_components_are_8_connected():
    mask = torch.zeros(1, 6, 6, dtype=torch.bool)
    mask[0, 0, 0] = mask[0, 1, 1] = mask[0, 4, 4] = mask[0, 4, 5] = True
    labels = connected_components(mask)[0]
    assert labels[0, 0] == labels[1, 1] != labels[4, 4] == labels[4, 5] and labels[2, 2] == 0
