"""Find the objects in a shapes image: colour segmentation, connected components, template-fit shape classification.

Weight-free and batch-invariant (each image is parsed on its own). Steps, at :data:`WORK_SIZE`² (other sizes are
resized with area averaging):

1. **Colour.** Each pixel is read as a mix ``(1−α)·background + α·c_k`` of the background and palette colour ``c_k``
   (the renderer's anti-aliasing model): ``α_k`` is the projection of the pixel on that line, ``ρ_k`` its distance
   from it. A pixel belongs to colour ``k`` when ``α_k ≥ ½`` and ``ρ_k < RESIDUAL_MAX``, choosing the smallest ``ρ``.
2. **Components.** 8-connected components of each colour's pixels (label propagation by 3×3 max-pooling), at least
   :data:`MIN_PIXELS` pixels each.
3. **Soft mask.** ``α_k · exp(−ρ_k²/2·0.12²)`` over the component grown by one pixel: sub-pixel area and centroid.
4. **Shape.** The renderer draws each shape (:func:`rewards.shapes.render.coverage`) with the component's area and
   centroid at five scales (0.85-1.17); the soft IoU of the best scale is the fit. ``p(triangle)`` is its share of
   ``softmax(IoU/0.03)``; the rest is split between circle and square by the mask's four-fold anisotropy
   (:func:`squareness`), which survives a decoder rounding a small square's corners where the IoUs nearly tie. A
   component is *recognised* as its most probable shape when its best IoU ≥ :data:`MIN_IOU` (else it is a blob).
5. **Colour probabilities** from the mean colour of the component's pixels: ``softmax(−d²/2·0.1²)`` over the palette.
6. **Objectness** ``smoothstep(pixels; 6, 16) · smoothstep(IoU; 0.4, 0.7)`` weighs a detection in the dense score.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .grammar import COLOURS, SHAPES
from .render import AREA_FACTOR, BACKGROUND, PALETTE, coverage

__all__ = ["MIN_IOU", "MIN_PIXELS", "WORK_SIZE", "Detection", "connected_components", "perceive", "squareness"]

WORK_SIZE = 32
RESIDUAL_MAX = 0.25
MIN_PIXELS = 10
MIN_IOU = 0.6
SCALES = (0.85, 0.93, 1.0, 1.08, 1.17)
_SHAPE_TEMPERATURE = 0.03
#: Squareness between a disc (0; ≈0.07 after the shapes VAE) and an axis-aligned square (0.43; ≈0.33 after the VAE).
SQUARENESS_SPLIT = 0.2
_SQUARENESS_TEMPERATURE = 0.03
_COLOUR_SIGMA = 0.1
_RESIDUAL_SIGMA = 0.12
_TEMPLATE_SUPERSAMPLE = 4
WINDOW = 24


@dataclass(frozen=True)
class Detection:
    """One connected component of one colour, as the verifier sees it."""

    colour: str
    shape: str | None
    x: float
    y: float
    area: float
    pixels: int
    iou: tuple[float, ...]
    shape_probs: tuple[float, ...]
    colour_probs: tuple[float, ...]
    objectness: float

    @property
    def size(self) -> float:
        return math.sqrt(max(self.area, 1e-6))

    @property
    def recognised(self) -> bool:
        """Large enough and shaped enough to count as an object (its ``shape`` is not ``None``)."""
        return self.shape is not None

    def match(self, shape: str, colour: str | None) -> float:
        """Soft match in 0..1 to "a ``colour`` ``shape``" (any colour when ``colour`` is None)."""
        p = self.objectness * self.shape_probs[SHAPES.index(shape)]
        return p * self.colour_probs[COLOURS.index(colour)] if colour is not None else p


def _smoothstep(v: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    t = ((v - lo) / (hi - lo)).clamp(0, 1)
    return t * t * (3 - 2 * t)


def connected_components(mask: torch.Tensor) -> torch.Tensor:
    """8-connected component labels ``[N,H,W]`` (0 = outside the mask; a component's label is its largest pixel
    index + 1) of a boolean ``[N,H,W]`` mask, by iterated 3×3 max-pooling."""
    _, h, w = mask.shape
    keep = mask.float()
    ids = torch.arange(1, h * w + 1, dtype=torch.float32, device=mask.device).view(1, h, w) * keep
    for _ in range(h * w):
        grown = F.max_pool2d(ids[:, None], 3, 1, 1)[:, 0] * keep
        if torch.equal(grown, ids):
            break
        ids = grown
    return ids.long()


def _to_work(images: torch.Tensor) -> torch.Tensor:
    x = images.detach().float().clamp(0, 1)
    if x.shape[1:3] != (WORK_SIZE, WORK_SIZE):
        x = F.interpolate(x.permute(0, 3, 1, 2), size=(WORK_SIZE, WORK_SIZE), mode="area").permute(0, 2, 3, 1)
    return x


def _colour_mix(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per pixel and palette colour: mix fraction α ``[B,H,W,K]`` and distance ρ from the background→colour line."""
    bg = torch.tensor(BACKGROUND, device=x.device)
    cols = torch.tensor([PALETTE[c] for c in COLOURS], device=x.device)  # [K,3]
    axis = cols - bg  # [K,3]
    rel = x - bg  # [B,H,W,3]
    alpha = (rel @ axis.T) / axis.pow(2).sum(dim=1)  # [B,H,W,K]
    alpha_c = alpha.clamp(0, 1)
    residual = (rel[..., None, :] - alpha_c[..., None] * axis).norm(dim=-1)  # [B,H,W,K]
    return alpha_c, residual


@torch.no_grad()
def perceive(images: torch.Tensor) -> list[list[Detection]]:
    """The detections of every image of ``[B,H,W,3]`` float 0..1 (see the module docstring)."""
    x = _to_work(images).cpu()
    b, h, w, _ = x.shape
    k = len(COLOURS)
    alpha, residual = _colour_mix(x)
    eligible = (alpha >= 0.5) & (residual < RESIDUAL_MAX)
    score = torch.where(eligible, residual, torch.full_like(residual, math.inf))
    best = score.argmin(dim=-1)
    has = eligible.any(dim=-1)
    masks = torch.stack([has & (best == c) for c in range(k)], dim=1)  # [B,K,H,W]
    labels = connected_components(masks.reshape(b * k, h, w)).reshape(b, k, h, w)
    soft_all = (alpha * torch.exp(-residual.pow(2) / (2 * _RESIDUAL_SIGMA**2))).permute(0, 3, 1, 2)  # [B,K,H,W]

    owners, colours, comps = [], [], []
    for bi in range(b):
        for c in range(k):
            lab = labels[bi, c]
            ids, counts = torch.unique(lab[lab > 0], return_counts=True)
            for cid, cnt in zip(ids.tolist(), counts.tolist()):
                if cnt >= MIN_PIXELS:
                    owners.append(bi)
                    colours.append(c)
                    comps.append(lab == cid)
    results: list[list[Detection]] = [[] for _ in range(b)]
    if not comps:
        return results
    core = torch.stack(comps)  # [N,H,W]
    owner = torch.tensor(owners)
    colour = torch.tensor(colours)
    support = F.max_pool2d(core[:, None].float(), 3, 1, 1)[:, 0]
    soft = soft_all[owner, colour] * support  # [N,H,W]
    area = soft.sum(dim=(1, 2)).clamp_min(1e-6)
    grid = torch.arange(WORK_SIZE, dtype=torch.float32) + 0.5
    cx = (soft.sum(dim=1) * grid).sum(dim=1) / area
    cy = (soft.sum(dim=2) * grid).sum(dim=1) / area
    ious = _template_ious(soft, area, cx, cy)  # [N,S]
    best_iou = ious.max(dim=1).values
    square = squareness(soft, cx, cy)
    shape_p = _shape_probs(ious, square)
    best_shape = shape_p.argmax(dim=1)
    pixels = core.flatten(1).sum(dim=1)
    objectness = _smoothstep(pixels.float(), 6, 16) * _smoothstep(best_iou, 0.4, 0.7)
    mean_rgb = (x[owner] * core[..., None]).sum(dim=(1, 2)) / pixels[:, None].clamp_min(1)
    palette = torch.tensor([PALETTE[c] for c in COLOURS])
    colour_p = torch.softmax(-(mean_rgb[:, None] - palette[None]).pow(2).sum(-1) / (2 * _COLOUR_SIGMA**2), dim=1)
    for i in range(len(comps)):
        recognised = bool(best_iou[i] >= MIN_IOU)
        results[int(owner[i])].append(
            Detection(
                colour=COLOURS[int(colour[i])],
                shape=SHAPES[int(best_shape[i])] if recognised else None,
                x=float(cx[i]),
                y=float(cy[i]),
                area=float(area[i]),
                pixels=int(pixels[i]),
                iou=tuple(round(float(v), 4) for v in ious[i]),
                shape_probs=tuple(float(v) for v in shape_p[i]),
                colour_probs=tuple(float(v) for v in colour_p[i]),
                objectness=float(objectness[i]),
            )
        )
    return results


def squareness(soft: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Four-fold anisotropy ``−Σw·r⁴cos4θ / Σw·r⁴`` of each mask about its centroid (axis-aligned square ≈ 0.43,
    disc 0): tells a square whose corners a decoder rounded from a disc, where template IoUs nearly tie."""
    grid = torch.arange(WORK_SIZE, dtype=torch.float32) + 0.5
    dx = grid[None, None, :] - cx[:, None, None]
    dy = grid[None, :, None] - cy[:, None, None]
    r4 = (dx.pow(2) + dy.pow(2)).pow(2)
    cos4 = dx.pow(4) + dy.pow(4) - 6 * dx.pow(2) * dy.pow(2)  # r⁴·cos 4θ
    return -(soft * cos4).sum(dim=(1, 2)) / (soft * r4).sum(dim=(1, 2)).clamp_min(1e-6)


def _shape_probs(ious: torch.Tensor, square: torch.Tensor) -> torch.Tensor:
    """``p(shape)`` ``[N,3]``: the triangle's share from the template IoUs (softmax), the rest split between circle
    and square by :func:`squareness` (``σ((q − SQUARENESS_SPLIT)/0.03)`` for the square)."""
    p = torch.softmax(ious / _SHAPE_TEMPERATURE, dim=1)
    tri = p[:, SHAPES.index("triangle")]
    q = torch.sigmoid((square - SQUARENESS_SPLIT) / _SQUARENESS_TEMPERATURE)
    out = torch.empty_like(p)
    out[:, SHAPES.index("triangle")] = tri
    out[:, SHAPES.index("square")] = (1 - tri) * q
    out[:, SHAPES.index("circle")] = (1 - tri) * (1 - q)
    return out


def _template_ious(soft: torch.Tensor, area: torch.Tensor, cx: torch.Tensor, cy: torch.Tensor) -> torch.Tensor:
    """Best soft IoU over :data:`SCALES` of each shape's area-matched template at the centroid: ``[N, len(SHAPES)]``.

    Compared within a :data:`WINDOW`² window around the centroid (both the mask and the template are cut by it).
    """
    n = soft.shape[0]
    s, m = len(SHAPES), len(SCALES)
    half = WINDOW // 2
    x0 = cx.floor().long() - half
    y0 = cy.floor().long() - half
    padded = F.pad(soft, (WINDOW, WINDOW, WINDOW, WINDOW))
    windows = torch.stack(
        [padded[i, y0[i] + WINDOW : y0[i] + 2 * WINDOW, x0[i] + WINDOW : x0[i] + 2 * WINDOW] for i in range(n)]
    )
    shapes = torch.arange(s).repeat_interleave(m).repeat(n)  # [N·S·M]
    factor = torch.tensor([AREA_FACTOR[name] for name in SHAPES]).repeat_interleave(m)
    scale = torch.tensor(SCALES).repeat(s)
    r = (torch.sqrt(area[:, None] / factor[None]) * scale[None]).reshape(-1)
    lx, ly = cx - x0.float(), cy - y0.float()
    grid = torch.arange(WINDOW, dtype=torch.float32)
    out = []
    chunk = 64
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        idx = slice(start * s * m, stop * s * m)
        owner = torch.arange(start, stop).repeat_interleave(s * m)
        t = coverage(shapes[idx], lx[owner], ly[owner], r[idx], grid, grid, supersample=_TEMPLATE_SUPERSAMPLE)
        mask = windows[owner]
        iou = torch.minimum(mask, t).sum(dim=(1, 2)) / torch.maximum(mask, t).sum(dim=(1, 2)).clamp_min(1e-6)
        out.append(iou.view(-1, s, m).amax(dim=2))
    return torch.cat(out)
