"""The demo's digit-classifier reward on its own (no ComfyUI): protocol, batch invariance, held-out accuracy."""

from __future__ import annotations

import pytest
import torch

from rewards import check_scores, reward_traits
from rewards.digits import REWARD_KINDS, DigitReward, images_to_input, ink_amount, load_digit_classifier

#: Held-out accuracy of the shipped classifier is 0.986 (assets/demo/README.md); fail well before a real regression.
MIN_HELDOUT_ACCURACY = 0.95


@pytest.fixture(scope="module")
def split():
    pytest.importorskip("sklearn", reason="the held-out digits come from scikit-learn's bundled data set")
    from tools.demo_data import load_digit_split

    return load_digit_split(seed=0)


@pytest.fixture(scope="module")
def heldout_images(split):
    from tools.demo_data import render

    return render(split.test_digits), split.test_labels


@pytest.fixture(scope="module")
def classifier():
    return load_digit_classifier()


def _images(n: int, seed: int = 0, size: int = 32) -> torch.Tensor:
    return torch.rand(n, size, size, 3, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("kind", REWARD_KINDS)
def test_score_follows_the_protocol(kind):
    reward = DigitReward.load(target=3, kind=kind)
    traits = reward_traits(reward)
    assert traits.accepts_video is False
    assert traits.name == f"{kind}:3" and "3" in traits.prompt
    assert traits.modules and all(isinstance(m, torch.nn.Module) for m in traits.modules)
    scores = check_scores(reward.score(_images(5), ["x"] * 5), 5)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all()
    if kind == "digit":
        assert (scores <= 0).all(), "log-probabilities are never positive"


@pytest.mark.parametrize("kind", REWARD_KINDS)
def test_scores_are_batch_invariant(kind, heldout_images):
    images = heldout_images[0][:12]
    reward = DigitReward.load(target=7, kind=kind)
    together = reward.score(images, None)
    alone = torch.cat([reward.score(images[i : i + 1], None) for i in range(len(images))])
    shuffled = torch.randperm(len(images), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(reward.score(images[shuffled], None), together[shuffled], atol=1e-5, rtol=1e-5)


def test_heldout_accuracy(classifier, heldout_images):
    model, _, metadata = classifier
    images, labels = heldout_images
    with torch.no_grad():
        accuracy = (model(images_to_input(images)).argmax(1) == labels).float().mean().item()
    assert accuracy >= MIN_HELDOUT_ACCURACY, f"held-out accuracy {accuracy:.3f} (metadata: {metadata.get('metrics')})"


def test_reward_ranks_the_target_digit_first(heldout_images):
    images, labels = heldout_images
    reward = DigitReward.load(target=3)
    scores = reward.score(images, None)
    is_three = labels == 3
    assert scores[is_three].mean() > -0.5 > scores[~is_three].mean()
    # a confident 3 satisfies the plain kind
    assert reward.satisfied(images)[is_three].float().mean() > 0.8


def test_any_image_size_is_accepted(heldout_images):
    images = heldout_images[0][:4]
    big = torch.nn.functional.interpolate(images.permute(0, 3, 1, 2), size=64, mode="nearest").permute(0, 2, 3, 1)
    reward = DigitReward.load(target=0)
    torch.testing.assert_close(reward.score(big, None), reward.score(images, None), atol=0.5, rtol=0)


def test_ink_bands_make_bold_and_thin_rare_and_distinct(classifier, heldout_images):
    _, bands, _ = classifier
    images, labels = heldout_images
    ink = ink_amount(images)
    for d in range(10):
        (tlo, thi), (blo, bhi) = bands.band("digit_thin", d), bands.band("digit_bold", d)
        assert 0 <= tlo < thi < blo < bhi <= 1
        in_bold = ((ink >= blo) & (ink <= bhi))[labels == d].float().mean().item()
        assert in_bold < 0.35, f"digit {d}: {in_bold:.2f} of held-out images are 'bold'"


def test_band_penalty_is_zero_inside_and_grows_outside():
    reward = DigitReward.load(target=3, kind="digit_bold", ink_weight=2.0)
    lo, hi = reward.band
    ink = torch.tensor([lo - (hi - lo), (lo + hi) / 2, hi + 2 * (hi - lo)])
    torch.testing.assert_close(reward.ink_penalty(ink), torch.tensor([1.0, 0.0, 2.0]), atol=1e-4, rtol=0)
    assert DigitReward.load(target=3).ink_penalty(ink).abs().sum() == 0


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="target must be a digit"):
        DigitReward.load(target=10)
    with pytest.raises(ValueError, match="kind must be one of"):
        DigitReward.load(kind="digit_italic")
    reward = DigitReward.load()
    with pytest.raises(ValueError, match="image-only"):
        reward.score(torch.rand(1, 2, 32, 32, 3), None)
    with pytest.raises(FileNotFoundError, match="train_demo"):
        load_digit_classifier("/nonexistent/classifier.safetensors")
