"""The shapes renderer: deterministic from a seed, every sampled scene satisfies its prompt, geometry as documented."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rewards.shapes.cases import random_prompt
from rewards.shapes.grammar import CATEGORIES, parse
from rewards.shapes.render import AREA_FACTOR, BACKGROUND, PALETTE, Scene, SceneObject, coverage, render, sample_scene
from rewards.shapes.verify import holds


def _scenes(seed: int, n: int = 60) -> list[Scene]:
    rng = np.random.default_rng(seed)
    return [sample_scene(random_prompt(rng, CATEGORIES[i % len(CATEGORIES)]), rng) for i in range(n)]


def test_same_seed_same_scenes_and_pixels():
    a, b = _scenes(5), _scenes(5)
    assert a == b
    assert torch.equal(render(a), render(b))
    assert _scenes(6) != a


def test_every_scene_satisfies_its_prompt_and_fits_the_image():
    for scene in _scenes(1, 120):
        assert holds(scene.prompt, scene.objects), scene.prompt.text
        assert len(scene.objects) == scene.prompt.total_objects
        for o in scene.objects:
            assert 0 < o.x - o.r * 0.9 and o.x + o.r * 0.9 < 32 and 0 < o.y - o.r * 0.9 and o.y + o.r * 0.9 < 32


def test_images_are_comfy_images_with_the_palette_and_background():
    scenes = _scenes(2, 12)
    images = render(scenes)
    assert images.shape == (12, 32, 32, 3) and images.dtype == torch.float32
    assert 0 <= images.min() and images.max() <= 1
    torch.testing.assert_close(images[0, 0, 0], torch.tensor(BACKGROUND))
    one = Scene((SceneObject("square", "blue", 16.0, 16.0, 5.0),))
    torch.testing.assert_close(render([one])[0, 16, 16], torch.tensor(PALETTE["blue"]))


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_coverage_has_the_documented_area_and_centroid(shape):
    grid = torch.arange(32, dtype=torch.float32)
    k = torch.tensor([["circle", "square", "triangle"].index(shape)])
    cov = coverage(k, torch.tensor([15.3]), torch.tensor([16.7]), torch.tensor([6.0]), grid, grid)[0]
    area = cov.sum().item()
    assert math.isclose(area, AREA_FACTOR[shape] * 36, rel_tol=0.02)
    centre = grid + 0.5
    assert abs((cov.sum(0) * centre).sum().item() / area - 15.3) < 0.1
    assert abs((cov.sum(1) * centre).sum().item() / area - 16.7) < 0.1


def test_relations_are_drawn_clearly():
    rng = np.random.default_rng(3)
    prompt = parse("a red circle left of a blue square")
    for _ in range(40):
        a, b = sorted(sample_scene(prompt, rng).objects, key=lambda o: o.colour != "red")
        assert a.x < b.x and abs(a.y - b.y) <= math.tan(math.radians(15.5)) * (b.x - a.x)


def test_unsatisfiable_layouts_fail_loudly():
    with pytest.raises(ValueError, match="could not lay out"):
        sample_scene(parse("four circles"), np.random.default_rng(0), max_tries=0)
