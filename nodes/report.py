"""Turning a search run into node outputs: population LATENT, scores, JSON report and a reward-vs-NFE plot.

The plot is drawn with Pillow (a ComfyUI dependency) so the pack needs no plotting library.
"""

from __future__ import annotations

import json
import math

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from .search_sampler import RunRecord

__all__ = ["population_latent", "report_json", "reward_plot", "plot_curves"]

_COLORS = [(214, 39, 40), (31, 119, 180), (44, 160, 44), (255, 127, 14), (148, 103, 189)]


def population_latent(run: RunRecord, template: dict, top_k: int = 0) -> tuple[dict, list[float]]:
    """The final population of every searched latent as one LATENT batch (best first per latent) and its scores;
    with ``top_k`` > 0, the ``top_k`` distinct good options of each latent instead."""
    out = {k: v for k, v in template.items() if k not in ("samples", "noise_mask", "batch_index")}
    out["samples"], scores = run.options(int(top_k))
    return out, scores


def report_json(run: RunRecord) -> str:
    """The run's report (method, NFE, decodes, reward calls, seconds, per-generation curve) as strict, indented JSON
    (no NaN or infinity: values that do not exist are null)."""
    return json.dumps(run.report(), indent=1, allow_nan=False)


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def plot_curves(
    curves: list[tuple[str, list[float], list[float]]], title: str, width: int = 640, height: int = 400
) -> Image.Image:
    """A line chart of ``(label, xs, ys)`` curves with labelled axes (x: NFE, y: reward)."""
    img = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(img)
    font, small = _font(14), _font(11)
    left, right, top, bottom = 70, width - 20, 40, height - 50
    xs = [x for _, cx, _ in curves for x in cx]
    ys = [y for _, _, cy in curves for y in cy if math.isfinite(y)]
    draw.text((left, 10), title, fill="black", font=font)
    if not xs or not ys:
        draw.text((left, height // 2), "no data", fill="black", font=font)
        return img
    x0, x1 = 0.0, max(xs) * 1.05 or 1.0
    y0, y1 = min(ys), max(ys)
    pad = (y1 - y0) * 0.08 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def px(x: float, y: float) -> tuple[float, float]:
        return left + (x - x0) / (x1 - x0) * (right - left), bottom - (y - y0) / (y1 - y0) * (bottom - top)

    draw.rectangle([left, top, right, bottom], outline=(80, 80, 80))
    for i in range(5):
        yv = y0 + (y1 - y0) * i / 4
        _, yy = px(x0, yv)
        draw.line([left, yy, right, yy], fill=(230, 230, 230))
        draw.text((5, yy - 6), f"{yv:.3g}", fill="black", font=small)
        xv = x0 + (x1 - x0) * i / 4
        xx, _ = px(xv, y0)
        draw.text((xx - 10, bottom + 5), f"{xv:,.0f}", fill="black", font=small)
    draw.text(((left + right) // 2 - 60, height - 22), "NFE (model evaluations)", fill="black", font=small)
    draw.text((5, top - 18), "reward", fill="black", font=small)
    for k, (label, cx, cy) in enumerate(curves):
        color = _COLORS[k % len(_COLORS)]
        points = [px(x, y) for x, y in zip(cx, cy) if math.isfinite(y)]
        if len(points) > 1:
            draw.line(points, fill=color, width=2)
        for x, y in points:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=color)
        draw.text((left + 10, top + 8 + 16 * k), label, fill=color, font=small)
    return img


def _value(v: float | None) -> float:
    return float("nan") if v is None else float(v)


def reward_plot(run: RunRecord) -> torch.Tensor:
    """Reward vs NFE — the best so far and each generation's mean — as a ComfyUI IMAGE ``[1, H, W, 3]``.

    With x0 fitness, generations before the last are scored on x0 predictions: their points are the proxy (said in
    the legend), the last point the finished samples' reward.
    """
    curves = []
    for i, result in enumerate(run.results):
        suffix = f" (latent {i})" if len(run.results) > 1 else ""
        proxy = " (x0 proxy before the last)" if any(r.proxy for r in result.history) else ""
        nfe = [float(r.nfe) for r in result.history]
        curves.append((f"best so far{proxy}{suffix}", nfe, [_value(r.best_reward) for r in result.history]))
        curves.append((f"generation mean{suffix}", nfe, [_value(r.mean_reward) for r in result.history]))
    title = run.results[0].schedule.strategy_class.title
    img = plot_curves(curves, f"{title}: reward vs compute ({sum(r.nfe for r in run.results):,} NFE)")
    return torch.from_numpy(np.asarray(img, dtype=np.float32) / 255.0)[None]
