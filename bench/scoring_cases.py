"""What a scoring-VAE comparison needs from a model, as one object: the digit demo now, other demo models later.

A :class:`ScoringCase` bundles a MODEL, its conditioning, an empty-latent maker, the full VAE, the cheap scoring VAE
and named rewards, plus the sampler settings to draw samples with. The ranking and end-to-end benchmarks
(``bench/scoring_vae.py``) take any case; adding a model is one constructor call like :func:`digit_case`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

__all__ = ["ScoringCase", "digit_case", "load_scoring_vae"]


@dataclass
class ScoringCase:
    """A model with a full VAE, a scoring VAE and rewards to compare them under."""

    name: str
    model: Any  #: MODEL (ModelPatcher)
    positive: list
    negative: list
    empty_latent: Callable[[int], dict]
    vae: Any  #: the full VAE (comfy.sd.VAE)
    scoring_vae: Any  #: the cheap one (comfy.sd.VAE, e.g. a TAESD)
    rewards: dict[str, Any]  #: reward name → reward object (the reward protocol)
    steps: int = 20
    sampler: str = "dpmpp_2m_sde"
    scheduler: str = "karras"
    cfg: float = 1.0
    notes: dict[str, str] = field(default_factory=dict)


def load_scoring_vae(path: str | Path) -> Any:
    """A VAE file loaded the way ComfyUI's Load VAE node loads one from ``models/vae``: ``comfy.sd.VAE(sd=file)``."""
    import comfy.sd
    import comfy.utils

    vae = comfy.sd.VAE(sd=comfy.utils.load_torch_file(str(path)))
    vae.throw_exception_if_invalid()
    return vae


def digit_case(target: int = 3, kinds: tuple[str, ...] = ("digit", "digit_bold")) -> ScoringCase:
    """The shipped digit demo with its TAESD scoring decoder (``assets/demo/taesd_digits.safetensors``, loaded as
    Load VAE loads a file: :func:`nodes.demo_model.load_demo_taesd`)."""
    demo = importlib.import_module("evosearch_pack.nodes.demo_model")
    digits = importlib.import_module("evosearch_pack.rewards.digits")
    bundle = demo.load_demo()
    return ScoringCase(
        name="digits",
        model=bundle.model,
        positive=bundle.positive,
        negative=bundle.negative,
        empty_latent=demo.empty_latent,
        vae=bundle.vae,
        scoring_vae=demo.load_demo_taesd(),
        rewards={kind: digits.DigitReward.load(target=target, kind=kind) for kind in kinds},
        notes={"target": str(target), "vae": "demo AutoencoderKL, 32×32", "scoring_vae": "TAESD, 64×64"},
    )


def decode(vae: Any, latent: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """``vae.decode`` of VAE-space latents in chunks → IMAGE ``[B,H,W,3]`` on the CPU."""
    return torch.cat([vae.decode(part).cpu() for part in latent.split(chunk)])
