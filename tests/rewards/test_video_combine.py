"""Frame-sampled video rewards and weighted combinations."""

from __future__ import annotations

import pytest
import torch
from support import reward_fixtures as rf

from rewards import Colorfulness, CombinedReward, FrameSampled, reward_traits
from rewards.combine import normalise
from rewards.video import frame_indices


class Counting:
    """An image-only reward that records its calls: score = mean red channel."""

    name = "red"
    accepts_video = False

    def __init__(self, prompt=None):
        self.calls, self.prompt = [], prompt

    def score(self, images, prompts):
        self.calls.append((tuple(images.shape), list(prompts)))
        return images[..., 0].mean(dim=(1, 2))


def test_frame_indices():
    assert frame_indices(81, 5) == [0, 20, 40, 60, 80]
    assert frame_indices(4, 8) == [0, 1, 2, 3]
    assert frame_indices(4, 0) == [0, 1, 2, 3]
    assert frame_indices(81, 0, "first_middle_last") == [0, 40, 80]
    assert frame_indices(1, 3, "first_middle_last") == [0]
    with pytest.raises(ValueError, match="frame policy"):
        frame_indices(5, 2, "random")


@pytest.mark.parametrize("aggregate", ["mean", "mean_minus_std"])
def test_video_scores_one_batch_and_aggregates(aggregate, gen):
    inner = Counting()
    reward = FrameSampled(inner, frames=3, aggregate=aggregate, lam=0.5)
    video = rf.images(gen, b=2, t=7, h=16, w=24)
    scores = reward.score(video, ["p1", "p2"])
    assert inner.calls == [((6, 16, 24, 3), ["p1"] * 3 + ["p2"] * 3)], "one inner call for all sampled frames"
    per_frame = video[:, [0, 3, 6], ..., 0].mean(dim=(2, 3))
    expected = per_frame.mean(1) - (0.5 * per_frame.std(1, unbiased=False) if aggregate == "mean_minus_std" else 0)
    assert torch.allclose(scores, expected, atol=1e-6)


def test_video_wrapper_passes_stills_and_traits(gen):
    inner = Counting(prompt="a cat")
    reward = FrameSampled(inner, frames=4)
    assert reward_traits(reward).accepts_video and reward.prompt == "a cat"
    stills = rf.images(gen, b=2)
    assert torch.allclose(reward.score(stills), inner.score(stills, ["a cat"] * 2))
    reward.prompt = "a dog"
    assert inner.prompt == "a dog"


def test_normalisations():
    x = torch.tensor([3.0, 1.0, 2.0, 2.0])
    assert torch.allclose(normalise(x, "rank"), torch.tensor([1.0, 0.0, 0.5, 0.5]))
    z = normalise(x, "zscore")
    assert abs(z.mean()) < 1e-6 and abs(z.std(unbiased=False) - 1) < 1e-5
    assert torch.equal(normalise(x, "raw"), x)
    assert normalise(torch.tensor([float("nan"), 1.0]), "rank")[0] == 0.0


def test_combination_weights_and_flags(gen):
    a, b = Counting(prompt="x"), Colorfulness()
    combo = CombinedReward([a, b], [3.0, -1.0], "raw")
    images = rf.images(gen, b=3)
    expected = (3 * a.score(images, ["x"] * 3) - b.score(images)) / 4
    assert torch.allclose(combo.score(images), expected, atol=1e-5)
    assert not combo.batch_relative and not combo.accepts_video and combo.prompt == "x"
    assert CombinedReward([a, b], normalisation="rank").batch_relative
    assert reward_traits(CombinedReward([b, Colorfulness()])).accepts_video


def test_guard_floor_demotes_failures(gen):
    primary = Counting()
    guard = Colorfulness()
    images = rf.images(gen, b=4)
    g = guard.score(images)
    floor = float(g.median())
    combo = CombinedReward([primary], guard=guard, floor=floor, normalisation="raw")
    out = combo.score(images, "p")
    passing, failing = g >= floor, g < floor
    assert out[passing].min() > out[failing].max()
    assert torch.allclose(out[passing], primary.score(images, ["p"] * 4)[passing])


def test_combination_errors():
    with pytest.raises(ValueError, match="at least one reward"):
        CombinedReward([])
    with pytest.raises(ValueError, match="weights"):
        CombinedReward([Colorfulness()], [1.0, 2.0])
    with pytest.raises(ValueError, match="normalisation"):
        CombinedReward([Colorfulness()], normalisation="softmax")
    with pytest.raises(ValueError, match="floor"):
        CombinedReward([Colorfulness()], guard=Colorfulness())
