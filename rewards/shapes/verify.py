"""Check a :class:`~rewards.shapes.grammar.ScenePrompt` against the objects of a scene: strict verdict and dense score.

Objects are anything with ``shape``, ``colour``, ``x``, ``y`` (centroid, pixels, y down) and ``size`` (√area): the
renderer's ground truth (:class:`~rewards.shapes.render.SceneObject`) or what the perception found in an image
(:class:`~rewards.shapes.perception.Detection`). The same rules judge both, so the verifier's accuracy against the
renderer measures its perception alone.

**Strict verdict** (GenEval's rules, Ghosh et al. 2023): the prompt's groups get *disjoint* objects, each of the
group's shape and (if named) colour; "a"/"an"/"the" asks for at least one, a number for exactly that many (no other
object of that description in the image); a relation must hold between the two objects assigned to its groups. Other
objects in the image are allowed. A relation "A left of B" holds when the centroid offset d = c_A − c_B points within
60° of −x (|d_x| > |d|/2, GenEval's rule) and |d_x| exceeds :data:`RELATION_MARGIN` × (size_A + size_B); likewise for
right of (+x), above (−y) and below (+y).

**Dense score** in 0..1 (for search): every object slot of the prompt, the relation and each exact count are one
constraint each; the score is the mean of their soft satisfactions, maximised over assignments of detections to
slots. A slot's satisfaction is the detection's soft match: objectness × p(shape) × p(colour) (see
:mod:`rewards.shapes.perception`); the relation's is ``σ((cos − ½)/0.1) · σ((|d_axis| − margin)/1px)`` on the two
assigned detections; an exact count's is ``1 − min(1, Σ matches of the unassigned detections)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

from .grammar import ScenePrompt

__all__ = ["RELATION_MARGIN", "dense_score", "holds", "relation_holds", "soft_relation"]

#: Axis separation a relation needs, as a fraction of the two objects' summed sizes (GenEval uses 0.1 of box sides).
RELATION_MARGIN = 0.1
#: GenEval's direction rule: the offset's component along the axis must exceed cos(60°) of its length.
RELATION_COS = 0.5
_AXES = {"left of": (-1.0, 0.0), "right of": (1.0, 0.0), "above": (0.0, -1.0), "below": (0.0, 1.0)}


class SceneObjectLike(Protocol):
    shape: str
    colour: str
    x: float
    y: float

    @property
    def size(self) -> float: ...


def _projection(kind: str, a: Any, b: Any) -> tuple[float, float, float]:
    """(offset along the relation's axis, offset length, margin) for subject ``a`` and reference ``b``."""
    ux, uy = _AXES[kind]
    dx, dy = a.x - b.x, a.y - b.y
    return dx * ux + dy * uy, math.hypot(dx, dy), RELATION_MARGIN * (a.size + b.size)


def relation_holds(kind: str, a: SceneObjectLike, b: SceneObjectLike) -> bool:
    """Whether ``a`` lies ``kind`` ``b`` (see the module docstring)."""
    along, length, margin = _projection(kind, a, b)
    return length > 0 and along > RELATION_COS * length and along > margin


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, v))))


def soft_relation(kind: str, a: SceneObjectLike, b: SceneObjectLike) -> float:
    """Soft version of :func:`relation_holds` in 0..1 (½ at each of its two thresholds)."""
    along, length, margin = _projection(kind, a, b)
    cos = along / max(length, 1e-6)
    return _sigmoid((cos - RELATION_COS) / 0.1) * _sigmoid(along - margin)


def _slots(prompt: ScenePrompt) -> list[int]:
    return [gi for gi, g in enumerate(prompt.groups) for _ in range(g.count)]


def holds(prompt: ScenePrompt, objects: Sequence[SceneObjectLike]) -> bool:
    """The strict verdict: does the list of objects satisfy ``prompt``?"""
    groups = prompt.groups
    for g in groups:
        if g.exact and sum(g.matches(o.shape, o.colour) for o in objects) != g.count:
            return False
    slots = _slots(prompt)
    candidates = [[i for i, o in enumerate(objects) if groups[gi].matches(o.shape, o.colour)] for gi in slots]
    first_slot = {gi: slots.index(gi) for gi in range(len(groups))}
    chosen: list[int] = []

    def search(k: int) -> bool:
        if k == len(slots):
            r = prompt.relation
            if r is None:
                return True
            a, b = objects[chosen[first_slot[r.subject]]], objects[chosen[first_slot[r.reference]]]
            return relation_holds(r.kind, a, b)
        for i in candidates[k]:
            if i not in chosen:
                chosen.append(i)
                if search(k + 1):
                    return True
                chosen.pop()
        return False

    return search(0)


class DetectionLike(SceneObjectLike, Protocol):
    def match(self, shape: str, colour: str | None) -> float: ...


def dense_score(prompt: ScenePrompt, detections: Sequence[DetectionLike]) -> float:
    """The dense score in 0..1 (see the module docstring); 1 means every constraint is softly satisfied."""
    groups = prompt.groups
    slots = _slots(prompt)
    match = [[d.match(groups[gi].shape, groups[gi].colour) for d in detections] for gi in range(len(groups))]
    first_slot = {gi: slots.index(gi) for gi in range(len(groups))}
    exact = [gi for gi, g in enumerate(groups) if g.exact]
    n_terms = len(slots) + (prompt.relation is not None) + len(exact)
    best = 0.0
    chosen: list[int | None] = []

    def value() -> float:
        total = sum(match[gi][i] for gi, i in zip(slots, chosen) if i is not None)
        r = prompt.relation
        if r is not None:
            i, j = chosen[first_slot[r.subject]], chosen[first_slot[r.reference]]
            if i is not None and j is not None:
                total += soft_relation(r.kind, detections[i], detections[j])
        for gi in exact:
            mine = {i for g, i in zip(slots, chosen) if g == gi}
            extra = sum(m for i, m in enumerate(match[gi]) if i not in mine)
            total += 1.0 - min(1.0, extra)
        return total

    options = [
        [i for i in sorted(range(len(detections)), key=lambda i: -match[gi][i])[:6] if match[gi][i] > 1e-3] + [None]
        for gi in slots
    ]

    positions: list[int] = []

    def search(k: int) -> None:
        nonlocal best
        if k == len(slots):
            best = max(best, value())
            return
        # slots of one group are interchangeable: take their options in order (combinations, not permutations)
        start = positions[-1] if k and slots[k] == slots[k - 1] else 0
        for p in range(start, len(options[k])):
            i = options[k][p]
            if i is not None and i in chosen:
                continue
            chosen.append(i)
            positions.append(p)
            search(k + 1)
            positions.pop()
            chosen.pop()

    search(0)
    return best / n_terms
