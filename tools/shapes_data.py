"""Training data of the shapes model: random prompts → rendered scenes, and random captions of those prompts.

Torch and numpy only (no ComfyUI). Scenes come from :func:`rewards.shapes.cases.random_prompt` with the category
mix :data:`TRAIN_CATEGORY_WEIGHTS` and :func:`rewards.shapes.render.sample_scene`; each training step captions a
scene's prompt anew with :class:`CaptionSampler` (a random accepted phrasing, sometimes without its colours, and the
empty caption for classifier-free guidance).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..rewards.shapes.cases import random_prompt
from ..rewards.shapes.grammar import CATEGORIES, ScenePrompt, phrase, without_colours
from ..rewards.shapes.render import render, sample_scene

__all__ = ["TRAIN_CATEGORY_WEIGHTS", "CaptionSampler", "TokenCache", "TrainingScenes", "make_scenes"]

#: How often each GenEval category is drawn for a training scene (compositions get more than single objects).
TRAIN_CATEGORY_WEIGHTS: dict[str, float] = {
    "single_object": 0.10,
    "colors": 0.15,
    "counting": 0.25,
    "two_object": 0.10,
    "color_attr": 0.15,
    "position": 0.25,
}


@dataclass(frozen=True)
class TrainingScenes:
    """``images`` ``[N,32,32,3]`` in 0..1 and the prompt each scene was drawn for."""

    images: torch.Tensor
    prompts: list[ScenePrompt]


def make_scenes(n: int, seed: int, weights: dict[str, float] | None = None) -> TrainingScenes:
    """``n`` scenes for random prompts (category mix ``weights``), rendered; reproducible from ``seed``."""
    weights = weights or TRAIN_CATEGORY_WEIGHTS
    rng = np.random.default_rng(seed)
    p = np.array([weights.get(c, 0.0) for c in CATEGORIES])
    categories = rng.choice(len(CATEGORIES), size=n, p=p / p.sum())
    prompts = [random_prompt(rng, CATEGORIES[int(c)]) for c in categories]
    scenes = [sample_scene(prompt, rng) for prompt in prompts]
    images = torch.cat([render(scenes[i : i + 1024]) for i in range(0, n, 1024)])
    return TrainingScenes(images, prompts)


class CaptionSampler:
    """Random captions: ``""`` with probability ``dropout`` (the unconditional side of CFG), else a random phrasing
    (:func:`rewards.shapes.grammar.phrase`) of the prompt, with its colours dropped with probability ``drop_colour``."""

    def __init__(self, rng: np.random.Generator, *, dropout: float = 0.1, drop_colour: float = 0.15) -> None:
        self.rng = rng
        self.dropout = dropout
        self.drop_colour = drop_colour

    def __call__(self, prompt: ScenePrompt) -> str:
        if self.rng.random() < self.dropout:
            return ""
        if any(g.colour for g in prompt.groups) and self.rng.random() < self.drop_colour:
            prompt = without_colours(prompt)
        return phrase(prompt, self.rng)


class TokenCache:
    """Token ids ``[B,77]`` of captions through a tokenizer function (ComfyUI's SD1 CLIP tokenizer), memoised."""

    def __init__(self, tokenize: Callable[[str], list[int]]) -> None:
        self.tokenize = tokenize
        self.cache: dict[str, list[int]] = {}

    def __call__(self, captions: Sequence[str]) -> torch.Tensor:
        rows = []
        for caption in captions:
            if caption not in self.cache:
                self.cache[caption] = self.tokenize(caption)
            rows.append(self.cache[caption])
        return torch.tensor(rows, dtype=torch.long)

    def seen_ids(self) -> torch.Tensor:
        """Every token id of every caption tokenised so far (sorted)."""
        return torch.tensor(sorted({t for row in self.cache.values() for t in row}), dtype=torch.long)
