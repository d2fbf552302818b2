"""Random prompts of each GenEval category, and labelled verification cases (scene, prompt, ground truth).

:func:`random_prompt` is the shapes world's prompt distribution (the training scenes and the evaluation prompts
come from it). :func:`verification_cases` renders scenes for random prompts and pairs each with prompts that match
it (re-phrased, or with colours dropped) and prompts that contradict it (wrong colour, wrong count, wrong relation,
wrong shape, a missing object, swapped colours); the truth of every pair comes from
:func:`rewards.shapes.verify.holds` on the renderer's objects, so a verifier is scored on its perception alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .grammar import (
    CATEGORIES,
    COLOURS,
    MAX_OBJECTS,
    OPPOSITE,
    RELATIONS,
    SHAPES,
    ObjectGroup,
    Relation,
    ScenePrompt,
    parse,
    phrase,
    without_colours,
)
from .render import Scene, sample_scene
from .verify import holds

__all__ = ["MUTATIONS", "Case", "random_prompt", "verification_cases"]

MUTATIONS = ("wrong_colour", "wrong_count", "wrong_relation", "wrong_shape", "missing_object", "swapped_colours")
_PERPENDICULAR = {"left of": ("above", "below"), "right of": ("above", "below"), "above": ("left of", "right of"),
                  "below": ("left of", "right of")}  # fmt: skip


def _pick(rng: np.random.Generator, options: tuple[str, ...] | list[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _two_distinct(rng: np.random.Generator, coloured: bool, same_shape_ok: bool) -> tuple[ObjectGroup, ObjectGroup]:
    while True:
        s1, s2 = _pick(rng, SHAPES), _pick(rng, SHAPES)
        c1 = _pick(rng, COLOURS) if coloured else None
        c2 = _pick(rng, COLOURS) if coloured else None
        if coloured and c1 == c2:
            continue
        if s1 == s2 and not (coloured and same_shape_ok):
            continue
        return ObjectGroup(s1, c1), ObjectGroup(s2, c2)


def random_prompt(rng: np.random.Generator, category: str | None = None) -> ScenePrompt:
    """A random prompt of ``category`` (one of :data:`~rewards.shapes.grammar.CATEGORIES`; None = uniform)."""
    category = category or _pick(rng, CATEGORIES)
    if category == "single_object":
        return ScenePrompt((ObjectGroup(_pick(rng, SHAPES)),))
    if category == "colors":
        return ScenePrompt((ObjectGroup(_pick(rng, SHAPES), _pick(rng, COLOURS)),))
    if category == "counting":
        colour = _pick(rng, COLOURS) if rng.random() < 0.7 else None
        count = int(rng.integers(2, MAX_OBJECTS + 1))
        return ScenePrompt((ObjectGroup(_pick(rng, SHAPES), colour, count, exact=True),))
    if category == "two_object":
        return ScenePrompt(_two_distinct(rng, coloured=False, same_shape_ok=False))
    if category == "color_attr":
        return ScenePrompt(_two_distinct(rng, coloured=True, same_shape_ok=rng.random() < 0.25))
    if category == "position":
        coloured = rng.random() < 0.7
        groups = _two_distinct(rng, coloured=coloured, same_shape_ok=True)
        return ScenePrompt(groups, Relation(_pick(rng, RELATIONS), 0, 1))
    raise ValueError(f"shapes cases: unknown category {category!r}; use one of {', '.join(CATEGORIES)}")


@dataclass(frozen=True)
class Case:
    """A rendered scene, a prompt about it, whether the prompt is true of the scene, and how it was made."""

    scene: Scene
    prompt: ScenePrompt
    truth: bool
    kind: str


def _mutations(prompt: ScenePrompt, scene: Scene, rng: np.random.Generator) -> list[tuple[str, ScenePrompt]]:
    out: list[tuple[str, ScenePrompt]] = []
    groups = list(prompt.groups)
    gi = int(rng.integers(len(groups)))
    g = groups[gi]
    present_colours = {o.colour for o in scene.objects if o.shape == g.shape}
    other_colours = [c for c in COLOURS if c not in present_colours]
    if other_colours:
        out.append(("wrong_colour", _with_group(prompt, gi, replace(g, colour=_pick(rng, other_colours)))))
    if g.exact or g.count > 1:
        counts = [c for c in (g.count - 1, g.count + 1) if 1 <= c and prompt.total_objects - g.count + c <= MAX_OBJECTS]
        if counts:
            out.append(("wrong_count", _with_group(prompt, gi, replace(g, count=_pick(rng, counts), exact=True))))
    elif prompt.total_objects < MAX_OBJECTS and prompt.relation is None:
        out.append(("wrong_count", _with_group(prompt, gi, replace(g, count=2, exact=True))))
    if prompt.relation is not None:
        r = prompt.relation
        kind = OPPOSITE[r.kind] if rng.random() < 0.5 else _pick(rng, _PERPENDICULAR[r.kind])
        out.append(("wrong_relation", ScenePrompt(prompt.groups, replace(r, kind=kind))))
    present_shapes = {o.shape for o in scene.objects if g.colour is None or o.colour == g.colour}
    other_shapes = [s for s in SHAPES if s not in present_shapes]
    if other_shapes:
        out.append(("wrong_shape", _with_group(prompt, gi, replace(g, shape=_pick(rng, other_shapes)))))
    if prompt.relation is None and prompt.total_objects < MAX_OBJECTS:
        present = {(o.shape, o.colour) for o in scene.objects}
        absent = [(s, c) for s in SHAPES for c in COLOURS if (s, c) not in present]
        s, c = absent[int(rng.integers(len(absent)))]
        out.append(("missing_object", ScenePrompt((*groups, ObjectGroup(s, c)))))
    if len(groups) == 2 and all(x.colour for x in groups) and groups[0].colour != groups[1].colour:
        a, b = groups
        swapped = (replace(a, colour=b.colour), replace(b, colour=a.colour))
        out.append(("swapped_colours", ScenePrompt(swapped, prompt.relation)))
    return out


def _with_group(prompt: ScenePrompt, index: int, group: ObjectGroup) -> ScenePrompt:
    groups = list(prompt.groups)
    groups[index] = group
    return ScenePrompt(tuple(groups), prompt.relation)


def verification_cases(n_scenes: int, rng: np.random.Generator) -> list[Case]:
    """Scenes for ``n_scenes`` random prompts (categories in turn), each with matching and contradicting prompts.

    Matching: the prompt re-phrased at random (and parsed back), and without its colours. Contradicting: every
    applicable mutation of :data:`MUTATIONS`. Each case's ``truth`` is recomputed on the scene's true objects (a
    "mutation" that happens to stay true is kept, labelled true).
    """
    cases: list[Case] = []
    for i in range(n_scenes):
        prompt = random_prompt(rng, CATEGORIES[i % len(CATEGORIES)])
        scene = sample_scene(prompt, rng)
        variants = [("match", parse(phrase(prompt, rng))), ("match_no_colour", without_colours(prompt))]
        variants += _mutations(prompt, scene, rng)
        for kind, p in variants:
            cases.append(Case(scene, p, holds(p, scene.objects), kind))
    return cases
