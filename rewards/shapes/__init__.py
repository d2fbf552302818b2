"""The shapes world: a prompt grammar, a procedural renderer and a GenEval-style verifier reward (no weights).

* :mod:`.grammar` — :func:`parse` natural prompts into a :class:`ScenePrompt` (GenEval's six categories).
* :mod:`.render` — :func:`sample_scene` for a prompt and :func:`render` scenes as 32×32 RGB images.
* :mod:`.perception` — :func:`perceive`: colour segmentation, connected components, template-fit shapes.
* :mod:`.verify` — :func:`holds` (strict verdict) and :func:`dense_score` on any object list.
* :mod:`.cases` — random prompts per category and labelled verification cases.

The reward itself, :class:`rewards.shapes_reward.ShapesReward` (kind ``shapes``), sits beside this package.

Torch, numpy and the standard library only: no ComfyUI imports.
"""

from .grammar import (
    CATEGORIES,
    COLOURS,
    MAX_OBJECTS,
    RELATIONS,
    SHAPES,
    ObjectGroup,
    Relation,
    ScenePrompt,
    parse,
    phrase,
)
from .perception import Detection, perceive
from .render import IMAGE_SIZE, Scene, SceneObject, render, sample_scene
from .verify import dense_score, holds

__all__ = [
    "CATEGORIES",
    "COLOURS",
    "IMAGE_SIZE",
    "MAX_OBJECTS",
    "RELATIONS",
    "SHAPES",
    "Detection",
    "ObjectGroup",
    "Relation",
    "Scene",
    "SceneObject",
    "ScenePrompt",
    "dense_score",
    "holds",
    "parse",
    "perceive",
    "phrase",
    "render",
    "sample_scene",
]
