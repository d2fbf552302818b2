"""Handwritten-digit rewards for the demo model: a small CNN classifier trained here on scikit-learn's digits.

* :class:`DigitClassifier`: a three-layer CNN (≈90 k parameters) over 32×32 grey images, ink white on black.
* :class:`DigitReward`: the reward protocol around it (:mod:`rewards.protocol`). Kinds:

  - ``"digit"``: ``log p(target | image)``, the log-probability of the target digit (≤ 0, higher is better).
  - ``"digit_bold"`` / ``"digit_thin"``: the same plus a penalty when the image's *ink* (mean brightness, a proxy for
    stroke thickness) leaves a band: the top or bottom decile of the target digit's training images. The unconditional
    demo model rarely draws such a digit, so search has room to help.

The weights and the per-digit ink bands live in one safetensors file (``assets/demo/digit_classifier.safetensors``),
written by ``tools/train_demo.py``. Torch and safetensors only: no ComfyUI imports.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .protocol import check_images

__all__ = [
    "CLASSIFIER_SIZE",
    "DEFAULT_CLASSIFIER_PATH",
    "REWARD_KINDS",
    "DigitClassifier",
    "DigitReward",
    "InkBands",
    "images_to_input",
    "ink_amount",
    "load_digit_classifier",
]

#: The classifier's input side; images of any other size are resized (bilinear, antialiased) to it.
CLASSIFIER_SIZE = 32
#: The shipped classifier, next to the demo diffusion model.
DEFAULT_CLASSIFIER_PATH = Path(__file__).resolve().parents[1] / "assets" / "demo" / "digit_classifier.safetensors"
#: Reward kinds understood by :class:`DigitReward`.
REWARD_KINDS = ("digit", "digit_bold", "digit_thin")


class DigitClassifier(nn.Module):
    """Conv(16)-pool-Conv(32)-pool-Conv(64)-pool-FC(64)-FC(10) over ``[B,1,32,32]`` ink in 0..1; returns logits."""

    def __init__(self, width: int = 16, hidden: int = 64, dropout: float = 0.2) -> None:
        super().__init__()
        self.config = {"width": width, "hidden": hidden, "dropout": dropout}
        w = width
        self.features = nn.Sequential(
            nn.Conv2d(1, w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(w, 2 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(2 * w, 4 * w, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )  # fmt: skip
        self.head = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w * 4 * 4, hidden), nn.ReLU(), nn.Linear(hidden, 10)
        )

    def forward(self, ink: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(ink))


def images_to_input(images: torch.Tensor, size: int = CLASSIFIER_SIZE) -> torch.Tensor:
    """ComfyUI IMAGE ``[B,H,W,3]`` in 0..1 → classifier input ``[B,1,size,size]`` (grey = channel mean)."""
    grey = images.float().clamp(0, 1).mean(dim=-1)[:, None]
    if grey.shape[-2:] != (size, size):
        grey = F.interpolate(grey, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return grey


def ink_amount(images: torch.Tensor) -> torch.Tensor:
    """Mean brightness of each image ``[B,H,W,3]`` at the classifier's resolution: ``Tensor[B]`` in 0..1."""
    return images_to_input(images).flatten(1).mean(dim=1)


@dataclass(frozen=True)
class InkBands:
    """Per-digit ink bands ``[10, 2]`` (low, high) for the bold and thin reward kinds, measured on training data."""

    bold: torch.Tensor
    thin: torch.Tensor

    def band(self, kind: str, digit: int) -> tuple[float, float]:
        table = {"digit_bold": self.bold, "digit_thin": self.thin}[kind]
        lo, hi = table[digit].tolist()
        return float(lo), float(hi)

    def to_json(self) -> str:
        return json.dumps({"bold": self.bold.tolist(), "thin": self.thin.tolist()})

    @classmethod
    def from_json(cls, text: str) -> InkBands:
        data = json.loads(text)
        return cls(bold=torch.tensor(data["bold"]), thin=torch.tensor(data["thin"]))

    @classmethod
    def from_data(cls, ink: torch.Tensor, labels: torch.Tensor) -> InkBands:
        """Bold = [q90, q99] and thin = [q1, q10] of each digit's ink over the given images."""
        bold, thin = [], []
        for d in range(10):
            q = torch.quantile(ink[labels == d].double(), torch.tensor([0.01, 0.10, 0.90, 0.99], dtype=torch.double))
            thin.append([q[0].item(), q[1].item()])
            bold.append([q[2].item(), q[3].item()])
        return cls(bold=torch.tensor(bold, dtype=torch.float32), thin=torch.tensor(thin, dtype=torch.float32))


def load_digit_classifier(path: str | Path | None = None) -> tuple[DigitClassifier, InkBands, dict[str, str]]:
    """Load the classifier (eval mode, float32, CPU), its ink bands and the file's metadata."""
    from safetensors import safe_open
    from safetensors.torch import load_file

    path = Path(path) if path is not None else DEFAULT_CLASSIFIER_PATH
    if not path.is_file():
        raise FileNotFoundError(
            f"digit classifier weights not found at {path}; they ship in assets/demo/ "
            "(re-create them with `python tools/train_demo.py`)"
        )
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
    if "classifier_config" not in metadata or "ink_bands" not in metadata:
        raise ValueError(f"{path} is not a digit classifier file: its metadata lacks classifier_config/ink_bands")
    model = DigitClassifier(**json.loads(metadata["classifier_config"]))
    model.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return model.eval().requires_grad_(False), InkBands.from_json(metadata["ink_bands"]), metadata


class DigitReward:
    """Reward = log-probability that an image shows ``target`` (kind ``"digit"``), optionally with an ink band.

    For ``"digit_bold"``/``"digit_thin"`` the score is ``log p(target) − ink_weight · d / w`` where ``d`` is how far the
    image's ink lies outside the target digit's band and ``w`` the band's width (0 inside the band). A sample
    *satisfies* the reward when ``p(target) > threshold`` and (for the band kinds) its ink is inside the band; see
    :meth:`satisfied`. Scores are computed per image, so they do not depend on the rest of the batch.
    """

    accepts_video = False
    dtype = None

    def __init__(
        self,
        classifier: DigitClassifier,
        bands: InkBands,
        *,
        target: int = 3,
        kind: str = "digit",
        ink_weight: float = 2.0,
        threshold: float = 0.9,
    ) -> None:
        if not 0 <= int(target) <= 9:
            raise ValueError(f"DigitReward: target must be a digit 0..9, got {target!r}")
        if kind not in REWARD_KINDS:
            raise ValueError(f"DigitReward: kind must be one of {', '.join(REWARD_KINDS)}, got {kind!r}")
        if ink_weight < 0:
            raise ValueError(f"DigitReward: ink_weight must be ≥ 0, got {ink_weight}")
        self.classifier = classifier.eval().requires_grad_(False)
        self.bands = bands
        self.target = int(target)
        self.kind = kind
        self.ink_weight = float(ink_weight)
        self.threshold = float(threshold)
        self.band = bands.band(kind, self.target) if kind != "digit" else None
        style = {"digit": "", "digit_bold": "bold ", "digit_thin": "thin "}[kind]
        self.name = f"{kind}:{self.target}"
        self.prompt = f"a {style}handwritten digit {self.target}"

    @classmethod
    def load(cls, path: str | Path | None = None, **kwargs: object) -> DigitReward:
        """Build the reward from the shipped classifier file (or ``path``); ``kwargs`` go to the constructor."""
        classifier, bands, _ = load_digit_classifier(path)
        return cls(classifier, bands, **kwargs)  # type: ignore[arg-type]

    @property
    def device(self) -> torch.device:
        return next(self.classifier.parameters()).device

    def modules(self) -> list[nn.Module]:
        return [self.classifier]

    # -------------------------------------------------------------------------------------------------- measurements
    @torch.no_grad()
    def log_probs(self, images: torch.Tensor) -> torch.Tensor:
        """``[B,10]`` log-probabilities of every digit."""
        check_images(images, accepts_video=False, who=f"DigitReward({self.name})")
        x = images_to_input(images.to(self.device))
        return torch.log_softmax(self.classifier(x).float(), dim=1)

    def ink_penalty(self, ink: torch.Tensor) -> torch.Tensor:
        """Distance of ``ink`` outside the band in band widths (0 inside; all zeros for kind ``"digit"``)."""
        if self.band is None:
            return torch.zeros_like(ink)
        lo, hi = self.band
        width = max(hi - lo, 1e-6)
        return (F.relu(lo - ink) + F.relu(ink - hi)) / width

    @torch.no_grad()
    def details(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Per-image ``score``, ``prob`` (of the target), ``ink``, ``in_band`` and ``satisfied``."""
        logp = self.log_probs(images)[:, self.target]
        ink = ink_amount(images.to(self.device))
        penalty = self.ink_penalty(ink)
        prob = logp.exp()
        in_band = penalty == 0
        return {
            "score": logp - self.ink_weight * penalty,
            "prob": prob,
            "ink": ink,
            "in_band": in_band,
            "satisfied": (prob > self.threshold) & in_band,
        }

    def satisfied(self, images: torch.Tensor) -> torch.Tensor:
        """``BoolTensor[B]``: confident target digit (``p > threshold``) with ink inside the band (band kinds)."""
        return self.details(images)["satisfied"]

    # ---------------------------------------------------------------------------------------------------- protocol
    def score(self, images: torch.Tensor, prompts: Sequence[str] | None = None) -> torch.Tensor:
        """``Tensor[B]`` rewards for ``[B,H,W,3]`` images in 0..1 (prompts are ignored: the target is fixed)."""
        return self.details(images)["score"]

    def __repr__(self) -> str:
        band = "" if self.band is None else f", band=({self.band[0]:.3f}, {self.band[1]:.3f})"
        return f"DigitReward(target={self.target}, kind={self.kind!r}{band})"
