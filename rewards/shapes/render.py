"""Procedural shape scenes: sample a scene that satisfies a prompt, and render scenes as 32×32 RGB images.

Geometry (pixels, origin at the top-left corner, pixel ``i`` covers ``[i, i+1)``), one size parameter ``R`` per object:

* circle: radius ``R``;
* square: axis-aligned, side ``1.8·R``;
* triangle: upright isosceles, base ``2.3·R``, height ``2.1·R``; its position is its centroid (``h/3`` above the base).

An object's ``(x, y)`` is the centroid of its area, which is what the verifier measures. Coverage is
anti-aliased by 4×4 supersampling; colours come from :data:`PALETTE` with a small per-object tint; the background is
:data:`BACKGROUND`. Objects never overlap (a gap of at least :data:`GAP` pixels between their bounding circles), and a
relation is drawn within ±:data:`RELATION_MAX_ANGLE_DEG` of its axis, so every caption of a rendered scene is
unambiguous.

Every random choice comes from the ``numpy.random.Generator`` passed in. Torch and numpy only (no ComfyUI).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .grammar import COLOURS, SHAPES, ScenePrompt

__all__ = [
    "AREA_FACTOR",
    "BACKGROUND",
    "IMAGE_SIZE",
    "PALETTE",
    "Scene",
    "SceneObject",
    "coverage",
    "render",
    "sample_scene",
]

IMAGE_SIZE = 32
#: RGB in 0..1 of each colour word (well separated; the verifier segments by distance to these).
PALETTE: dict[str, tuple[float, float, float]] = {
    "red": (0.86, 0.14, 0.12),
    "green": (0.12, 0.64, 0.22),
    "blue": (0.16, 0.32, 0.90),
    "yellow": (0.96, 0.80, 0.08),
}
BACKGROUND: tuple[float, float, float] = (0.94, 0.94, 0.92)
#: Area of each shape in units of R².
AREA_FACTOR: dict[str, float] = {"circle": math.pi, "square": 1.8**2, "triangle": 2.3 * 2.1 / 2}
#: Radius of the circle around the centroid that holds the shape, in units of R.
BOUND_FACTOR: dict[str, float] = {"circle": 1.0, "square": 0.9 * math.sqrt(2), "triangle": 1.4}
_TRI_B, _TRI_H = 2.3, 2.1
GAP = 1.5
MARGIN = 1.0
RELATION_MAX_ANGLE_DEG = 15.0
MAX_TINT = 0.05
#: Size range (R, pixels) by the number of objects in the scene.
SIZE_RANGE: dict[int, tuple[float, float]] = {1: (4.0, 6.5), 2: (3.7, 5.5), 3: (3.5, 4.8), 4: (3.5, 4.4)}
SUPERSAMPLE = 4


@dataclass(frozen=True)
class SceneObject:
    """One object: ``shape``, ``colour`` word, centroid ``(x, y)`` in pixels, size ``r`` and an RGB tint."""

    shape: str
    colour: str
    x: float
    y: float
    r: float
    tint: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def size(self) -> float:
        """√area in pixels (the scale the verifier's relation margins use)."""
        return math.sqrt(AREA_FACTOR[self.shape]) * self.r

    @property
    def rgb(self) -> tuple[float, float, float]:
        return tuple(min(1.0, max(0.0, c + t)) for c, t in zip(PALETTE[self.colour], self.tint))  # type: ignore


@dataclass(frozen=True)
class Scene:
    """A list of objects and the prompt it was drawn for."""

    objects: tuple[SceneObject, ...]
    prompt: ScenePrompt | None = None


def _extent(shape: str, r: float) -> tuple[float, float, float, float]:
    """(left, right, up, down) extents from the centroid."""
    if shape == "circle":
        return r, r, r, r
    if shape == "square":
        return 0.9 * r, 0.9 * r, 0.9 * r, 0.9 * r
    return _TRI_B / 2 * r, _TRI_B / 2 * r, 2 * _TRI_H / 3 * r, _TRI_H / 3 * r


def coverage(
    shapes: torch.Tensor, x: torch.Tensor, y: torch.Tensor, r: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor,
    supersample: int = SUPERSAMPLE,
) -> torch.Tensor:  # fmt: skip
    """Anti-aliased coverage ``[N, len(ys), len(xs)]`` in 0..1 of ``N`` shapes on a pixel grid.

    ``shapes`` holds indices into :data:`SHAPES`; ``x, y, r`` are ``[N]`` centroids and sizes; ``xs``/``ys`` are the
    left/top edges of the grid's pixels. Each pixel averages ``supersample²`` point samples.
    """
    s = supersample
    offsets = (torch.arange(s, dtype=torch.float32) + 0.5) / s
    px = (xs.float()[:, None] + offsets[None]).reshape(-1)  # [W·s]
    py = (ys.float()[:, None] + offsets[None]).reshape(-1)  # [H·s]
    dx = px[None, None, :] - x.float()[:, None, None]  # [N,1,W·s]
    dy = py[None, :, None] - y.float()[:, None, None]  # [N,H·s,1]
    rr = r.float()[:, None, None]
    circle = dx.pow(2) + dy.pow(2) <= rr.pow(2)
    half = 0.9 * rr
    square = (dx.abs() <= half) & (dy.abs() <= half)
    # upright triangle: base at dy = h/3, apex at dy = -2h/3; inside where |dx| ≤ (b/2)·(dy + 2h/3)/h
    h, b = _TRI_H * rr, _TRI_B * rr
    depth = dy + 2 * h / 3
    triangle = (depth >= 0) & (dy <= h / 3) & (dx.abs() <= b / 2 * depth / h)
    k = shapes.long()[:, None, None]
    inside = torch.where(k == 0, circle, torch.where(k == 1, square, triangle))
    n, hs, ws = inside.shape
    return inside.float().reshape(n, hs // s, s, ws // s, s).mean(dim=(2, 4))


def render(scenes: Sequence[Scene], size: int = IMAGE_SIZE) -> torch.Tensor:
    """Render scenes as ``[B, size, size, 3]`` float images in 0..1 (ComfyUI IMAGE layout)."""
    grid = torch.arange(size, dtype=torch.float32)
    images = torch.tensor(BACKGROUND, dtype=torch.float32).expand(len(scenes), size, size, 3).clone()
    flat = [(b, o) for b, scene in enumerate(scenes) for o in scene.objects]
    if not flat:
        return images
    scale = size / IMAGE_SIZE
    shapes = torch.tensor([SHAPES.index(o.shape) for _, o in flat])
    xs = torch.tensor([o.x * scale for _, o in flat])
    ys = torch.tensor([o.y * scale for _, o in flat])
    rs = torch.tensor([o.r * scale for _, o in flat])
    colours = torch.tensor([o.rgb for _, o in flat], dtype=torch.float32)
    owners = torch.tensor([b for b, _ in flat])
    for start in range(0, len(flat), 512):
        sl = slice(start, start + 512)
        cov = coverage(shapes[sl], xs[sl], ys[sl], rs[sl], grid, grid)[..., None]  # [n,H,W,1]
        for i in range(cov.shape[0]):
            b = int(owners[start + i])
            images[b] = images[b] * (1 - cov[i]) + colours[start + i] * cov[i]
    return images.clamp(0, 1)


# -------------------------------------------------------------------------------------------------------- sampling
def _fits(shape: str, x: float, y: float, r: float) -> bool:
    left, right, up, down = _extent(shape, r)
    lo, hi = MARGIN, IMAGE_SIZE - MARGIN
    return x - left >= lo and x + right <= hi and y - up >= lo and y + down <= hi


def _clear(obj: tuple[str, float, float, float], placed: list[tuple[str, float, float, float]]) -> bool:
    s, x, y, r = obj
    for s2, x2, y2, r2 in placed:
        if math.hypot(x - x2, y - y2) < BOUND_FACTOR[s] * r + BOUND_FACTOR[s2] * r2 + GAP:
            return False
    return True


def _free_position(shape: str, r: float, placed: list, rng: np.random.Generator) -> tuple[float, float] | None:
    left, right, up, down = _extent(shape, r)
    for _ in range(200):
        x = rng.uniform(MARGIN + left, IMAGE_SIZE - MARGIN - right)
        y = rng.uniform(MARGIN + up, IMAGE_SIZE - MARGIN - down)
        if _clear((shape, x, y, r), placed):
            return x, y
    return None


_AXIS = {"left of": (-1.0, 0.0), "right of": (1.0, 0.0), "above": (0.0, -1.0), "below": (0.0, 1.0)}


def _related_positions(
    kinds: tuple[str, str], sizes: tuple[float, float], relation: str, rng: np.random.Generator
) -> list[tuple[float, float]] | None:
    """Positions of (subject, reference) with the subject ``relation`` the reference, within the angle limit."""
    ux, uy = _AXIS[relation]
    for _ in range(200):
        angle = math.radians(rng.uniform(-RELATION_MAX_ANGLE_DEG, RELATION_MAX_ANGLE_DEG))
        dx = ux * math.cos(angle) - uy * math.sin(angle)
        dy = ux * math.sin(angle) + uy * math.cos(angle)
        least = BOUND_FACTOR[kinds[0]] * sizes[0] + BOUND_FACTOR[kinds[1]] * sizes[1] + GAP
        dist = rng.uniform(least, max(least, IMAGE_SIZE * 0.75))
        xr = rng.uniform(0, IMAGE_SIZE)
        yr = rng.uniform(0, IMAGE_SIZE)
        xs, ys = xr + dx * dist, yr + dy * dist
        if _fits(kinds[0], xs, ys, sizes[0]) and _fits(kinds[1], xr, yr, sizes[1]):
            return [(xs, ys), (xr, yr)]
    return None


def _tint(rng: np.random.Generator) -> tuple[float, float, float]:
    return tuple(float(v) for v in rng.uniform(-MAX_TINT, MAX_TINT, size=3))  # type: ignore[return-value]


def _draw_objects(prompt: ScenePrompt, rng: np.random.Generator) -> list[tuple[str, str]]:
    """(shape, colour) of every object the prompt asks for; unspecified colours drawn at random."""
    out = []
    for g in prompt.groups:
        for _ in range(g.count):
            out.append((g.shape, g.colour or COLOURS[int(rng.integers(len(COLOURS)))]))
    return out


def sample_scene(prompt: ScenePrompt, rng: np.random.Generator, *, max_tries: int = 100) -> Scene:
    """A random scene holding exactly the objects ``prompt`` asks for, laid out so that it satisfies the prompt.

    Unspecified colours are random; sizes come from :data:`SIZE_RANGE` by the number of objects; a relation is drawn
    within ±:data:`RELATION_MAX_ANGLE_DEG` of its axis. The scene is checked against the prompt with
    :func:`rewards.shapes.verify.holds` (e.g. a random colour must not add a fourth object to "three red circles").
    """
    from .verify import holds

    n = prompt.total_objects
    lo, hi = SIZE_RANGE[n]
    for _ in range(max_tries):
        kinds = _draw_objects(prompt, rng)
        sizes = [float(rng.uniform(lo, hi)) for _ in kinds]
        placed: list[tuple[str, float, float, float]] = []
        positions: list[tuple[float, float]] = []
        if prompt.relation is not None:
            r = prompt.relation
            pair = _related_positions((kinds[r.subject][0], kinds[r.reference][0]), (sizes[r.subject],
                                      sizes[r.reference]), r.kind, rng)  # fmt: skip
            if pair is None or not _clear((kinds[r.subject][0], *pair[0], sizes[r.subject]),
                                          [(kinds[r.reference][0], *pair[1], sizes[r.reference])]):  # fmt: skip
                continue
            positions = [pair[0], pair[1]] if r.subject == 0 else [pair[1], pair[0]]
            placed = [(kinds[i][0], *positions[i], sizes[i]) for i in range(2)]
        ok = True
        for i in range(len(positions), len(kinds)):
            pos = _free_position(kinds[i][0], sizes[i], placed, rng)
            if pos is None:
                ok = False
                break
            positions.append(pos)
            placed.append((kinds[i][0], *pos, sizes[i]))
        if not ok:
            continue
        order = rng.permutation(len(kinds))
        objects = tuple(
            SceneObject(kinds[i][0], kinds[i][1], positions[i][0], positions[i][1], sizes[i], _tint(rng)) for i in order
        )
        if holds(prompt, objects):
            return Scene(objects, prompt)
    raise ValueError(f"shapes renderer: could not lay out a scene for {prompt.text!r} in {max_tries} tries")
