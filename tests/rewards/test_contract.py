"""The contract every registered reward kind must meet (rewards/protocol.py), run over the whole registry.

Each kind is loaded from tiny weights in its official layout (conftest ``reward_root``) through ``load_reward``.
A new kind without a tiny fixture fails ``test_every_kind_has_a_fixture``.
"""

from __future__ import annotations

import pytest
import torch
from support import reward_fixtures as rf

from rewards import FrameSampled, get_kind, reward_kinds, reward_traits

KINDS = reward_kinds()


def test_every_kind_has_a_fixture(reward_root):
    for kind in KINDS:
        spec = get_kind(kind)
        if spec.needs_weights and not rf.unavailable(kind):
            assert (reward_root / spec.folder).is_dir(), f"no tiny fixture for reward kind {kind!r}"


@pytest.fixture(scope="module", params=KINDS)
def loaded(request, tiny_reward):
    if reason := rf.unavailable(request.param):
        pytest.skip(reason)
    kind = request.param
    return kind, tiny_reward(kind, prompt=rf.kind_prompt(kind, "a red apple on a table"))


def _inputs(reward, gen, b=3):
    traits = reward_traits(reward)
    if traits.accepts_video and traits.name == "videoreward":
        return rf.images(gen, b=b, h=40, w=64, t=5)
    return rf.images(gen, b=b, h=40, w=56)


def test_scores_shape_dtype_finite(loaded, gen):
    kind, reward = loaded
    x = _inputs(reward, gen)
    scores = reward.score(x, [rf.kind_prompt(kind, "a red apple on a table")] * 3)
    assert isinstance(scores, torch.Tensor) and scores.shape == (3,)
    assert scores.dtype == torch.float32 and torch.isfinite(scores).all(), kind


def test_traits_and_modules(loaded):
    kind, reward = loaded
    traits = reward_traits(reward)
    assert traits.name and traits.prompt == rf.kind_prompt(kind, "a red apple on a table")
    assert traits.accepts_video == get_kind(kind).accepts_video
    assert all(isinstance(m, torch.nn.Module) for m in traits.modules)
    assert bool(traits.modules) == get_kind(kind).needs_weights
    for m in traits.modules:
        assert not any(p.requires_grad for p in m.parameters()), "reward weights must not require grad"
        assert not any(t.is_meta for t in [*m.parameters(), *m.buffers()]), "meta tensors left after loading"


def test_prompt_attribute_and_broadcast(loaded, gen):
    kind, reward = loaded
    x = _inputs(reward, gen)
    explicit = reward.score(x, [rf.kind_prompt(kind, "a red apple on a table")] * 3)
    assert torch.allclose(reward.score(x, rf.kind_prompt(kind, "a red apple on a table")), explicit, atol=1e-5)
    assert torch.allclose(reward.score(x, None), explicit, atol=1e-5), "prompts=None must use reward.prompt"


def test_batch_invariance(loaded, gen):
    """A sample's score does not depend on the other members of its batch (order, size)."""
    kind, reward = loaded
    x = _inputs(reward, gen, b=4)
    generic = ("a red apple on a table", "a blue car", "a red apple on a table", "a dog")
    prompts = [rf.kind_prompt(kind, p) for p in generic]
    full = reward.score(x, prompts)
    alone = torch.stack([reward.score(x[i : i + 1], [prompts[i]])[0] for i in range(4)])
    flipped = reward.score(x.flip(0), prompts[::-1]).flip(0)
    assert torch.allclose(full, alone, atol=1e-4, rtol=1e-4), kind
    assert torch.allclose(full, flipped, atol=1e-4, rtol=1e-4), kind


def test_deterministic(loaded, gen):
    kind, reward = loaded
    x = _inputs(reward, gen)
    cat = rf.kind_prompt(kind, "a cat")
    assert torch.equal(reward.score(x, cat), reward.score(x, cat))


def test_non_square_orientation_matters(loaded, gen):
    """Portrait and landscape inputs both work, and a transposed image is a different image."""
    kind, reward = loaded
    if reward_traits(reward).name == "videoreward":
        x = rf.images(gen, b=1, h=64, w=40, t=4)
        assert reward.score(x, rf.kind_prompt(kind, "a cat")).shape == (1,)
        return
    tall = rf.images(gen, b=2, h=72, w=40)
    assert reward.score(tall, rf.kind_prompt(kind, "a cat")).shape == (2,)
    if get_kind(kind).needs_weights:
        wide = tall.transpose(1, 2).contiguous()
        cat = rf.kind_prompt(kind, "a cat")
        assert not torch.allclose(reward.score(tall, cat), reward.score(wide, cat))


def test_video_input(loaded, gen):
    kind, reward = loaded
    video = rf.images(gen, b=2, h=32, w=48, t=6)
    if not reward_traits(reward).accepts_video:
        with pytest.raises(ValueError, match="image-only"):
            reward.score(video, rf.kind_prompt(kind, "a cat"))
        reward = FrameSampled(reward, frames=3)
    scores = reward.score(video, rf.kind_prompt(kind, "a cat"))
    assert scores.shape == (2,) and torch.isfinite(scores).all()


def test_bf16_close_to_fp32(loaded, tiny_reward, gen):
    kind, reward = loaded
    if not get_kind(kind).needs_weights:
        pytest.skip(f"{kind} has no weights")
    low = tiny_reward(kind, dtype="bf16", prompt=rf.kind_prompt(kind, "a red apple on a table"))
    assert low.dtype == torch.bfloat16
    x = _inputs(reward, gen)
    a, b = reward.score(x), low.score(x)
    assert b.dtype == torch.float32
    scale = a.abs().max().clamp_min(1.0)
    assert ((a - b).abs().max() / scale) < 0.1, (kind, a, b)
