"""The SigLIP-based aesthetic predictor v2.5 (github.com/discus0434/aesthetic-predictor-v2-5), written for this pack.

The predictor scores an image 1–10 (its authors consider 5.5+ a great score) from the SigLIP so400m-patch14-384
image embedding, with no prompt:

    score = head(e / ‖e‖),   e = SiglipVisionModel(pixels).pooler_output   (1152-d, the attention-pooling head)

and ``head`` = Linear 1152→1024, Dropout, Linear 1024→128, Dropout, Linear 128→64, Dropout, Linear 64→16, Dropout,
Linear 16→1, no activations (dropout is inactive at inference). The published head file
``aesthetic_predictor_v2_5.pth`` (2.6 MB) is a plain state dict ``scoring_head.{0,2,4,6,8}.{weight,bias}`` in bf16;
the head runs in fp32 here. Pixels as ``SiglipImageProcessor`` makes them for so400m: both sides to 384 (no crop, the
aspect ratio is not kept), bicubic, mean = std = 0.5 (read from the folder's ``preprocessor_config.json`` if present).

On disk (``models/rewards/aesthetic_v25/``): the head file and the ``siglip-so400m-patch14-384/`` folder
(``config.json`` + ``model.safetensors`` of the full ``SiglipModel``; only ``vision_model.*`` is loaded, into
transformers' ``SiglipVisionModel``). The predictor's own code is AGPL-3.0; this module is an independent
implementation from the published architecture, and the pack ships neither that code nor the weights.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelReward
from .errors import BadRewardFile, MissingRewardFile
from .feature_cache import cached
from .model_cache import shared_model
from .preprocess import normalize, resize_square, to_nchw
from .protocol import check_images, prompt_list
from .weights import load_into, meta_module, module_device_dtype, read_hf_folder, read_state_dict

__all__ = [
    "AestheticV25",
    "ScoringHead",
    "load_aesthetic_v25",
    "load_siglip_vision",
    "siglip_vision_state",
    "BACKBONE",
    "SOURCE",
]

log = logging.getLogger("evosearch.rewards")

BACKBONE = "siglip-so400m-patch14-384"
SOURCE = (
    "https://github.com/discus0434/aesthetic-predictor-v2-5 (models/aesthetic_predictor_v2_5.pth) + "
    "https://huggingface.co/google/siglip-so400m-patch14-384 (the whole folder)"
)
WHO = "Aesthetic predictor v2.5"
_HEAD = re.compile(r"^scoring_head\.(\d+)\.weight$")
_IGNORED = (r"^text_model\.", r"^logit_(scale|bias)$", r"position_ids$")


class ScoringHead(nn.Module):
    """Linear layers ``dims[0]→…→dims[-1]`` with a Dropout between each pair (keys ``scoring_head.{0,2,4,…}``)."""

    def __init__(self, dims: Sequence[int] = (1152, 1024, 128, 64, 16, 1)) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            if i:
                layers.append(nn.Dropout(0.0))
            layers.append(nn.Linear(a, b))
        self.scoring_head = nn.Sequential(*layers)
        self.dims = tuple(dims)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scoring_head(x)


def _head_dims(sd: dict[str, torch.Tensor], who: str) -> tuple[int, ...]:
    weights = sorted((int(m.group(1)), v) for k, v in sd.items() if (m := _HEAD.match(k)))
    if not weights or [i for i, _ in weights] != list(range(0, 2 * len(weights), 2)):
        raise BadRewardFile(
            f"{who}: expected the head layout scoring_head.{{0,2,4,6,8}} (Linear, Dropout, …), found keys "
            f"{', '.join(list(sd)[:6])}. Expected aesthetic_predictor_v2_5.pth from {SOURCE}."
        )
    return (weights[0][1].shape[1], *(w.shape[0] for _, w in weights))


def _load_head(path: Path) -> ScoringHead:
    who = f"{WHO} head ({path})"
    sd = read_state_dict(path)
    dims = _head_dims(sd, who)
    expected = f"Expected aesthetic_predictor_v2_5.pth from {SOURCE}."
    return load_into(meta_module(lambda: ScoringHead(dims)), sd, who=who, expected=expected, dtype=torch.float32)


def _vision_config(folder: Path) -> Any:
    from transformers import SiglipConfig, SiglipVisionConfig

    config_file = folder / "config.json"
    if not config_file.is_file():
        raise MissingRewardFile(f"{WHO} SigLIP backbone", ["config.json"], [folder], SOURCE)
    data = json.loads(config_file.read_text(encoding="utf-8"))
    if data.get("model_type") == "siglip":
        return SiglipConfig.from_dict(data).vision_config
    if data.get("model_type") == "siglip_vision_model":
        return SiglipVisionConfig.from_dict(data)
    raise BadRewardFile(
        f"{WHO}: {config_file} is a {data.get('model_type')!r} model, not SigLIP; expected google's "
        f"siglip-so400m-patch14-384 folder from {SOURCE}."
    )


def load_siglip_vision(folder: str | Path, dtype: torch.dtype = torch.float32) -> Any:
    """transformers' ``SiglipVisionModel`` from a SigLIP folder (full ``SiglipModel`` weights or vision-only ones)."""
    from transformers import SiglipVisionModel

    folder = Path(folder)
    config = _vision_config(folder)
    sd = read_hf_folder(folder)
    if not any(k.startswith("vision_model.") for k in sd):
        raise BadRewardFile(
            f"{WHO}: {folder} has no vision_model.* weights (first keys: {', '.join(list(sd)[:5])}); expected a "
            f"SigLIP checkpoint from {SOURCE}."
        )
    log.info("loading SigLIP vision tower %s (%s)", folder, dtype)
    model = meta_module(lambda: SiglipVisionModel(config))
    return load_into(
        model,
        siglip_vision_state(sd, model),
        who=f"SigLIP ({folder})",
        expected=f"Expected {BACKBONE}/ from {SOURCE}.",
        dtype=dtype,
        ignore=_IGNORED,
    )


def siglip_vision_state(sd: dict[str, torch.Tensor], model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Checkpoint keys (``vision_model.*`` of a ``SiglipModel`` file) → the keys of this transformers version's
    ``SiglipVisionModel`` (flat in 5.x, under ``vision_model.`` in 4.x); other keys pass through (to be ignored)."""
    nested = any(k.startswith("vision_model.") for k in model.state_dict())
    if nested:
        return dict(sd)
    return {k.removeprefix("vision_model."): v for k, v in sd.items()}


def _preprocessing(folder: Path, image_size: int) -> tuple[int, tuple[float, ...], tuple[float, ...]]:
    path = folder / "preprocessor_config.json"
    data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    size = data.get("size", {})
    side = int(size.get("height", image_size)) if isinstance(size, dict) else int(size)
    return side, tuple(data.get("image_mean", (0.5,) * 3)), tuple(data.get("image_std", (0.5,) * 3))


def _backbone_dir(path: Path, roots: Sequence[Path], backbone: str | None) -> Path:
    name = backbone or BACKBONE
    direct = Path(name).expanduser()
    candidates = (
        [direct] if direct.is_absolute() else [path.parent / name, *(r / "aesthetic_v25" / name for r in roots)]
    )
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise MissingRewardFile(
        f"{WHO} SigLIP backbone", [name + "/"], list(dict.fromkeys(c.parent for c in candidates)), SOURCE
    )


def load_aesthetic_v25(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.float32,
    prompt: str | None = None,
    roots: Sequence[str | Path] = (),
    backbone: str | None = None,
) -> AestheticV25:
    """The predictor from its head file and the SigLIP folder (``backbone``: a path, or a name beside the head file or
    in ``aesthetic_v25/``; default ``siglip-so400m-patch14-384``)."""
    path = Path(path)
    if not path.is_file():
        raise MissingRewardFile(WHO, ["aesthetic_predictor_v2_5.pth"], [path.parent], SOURCE)
    folder = _backbone_dir(path, [Path(r) for r in roots], backbone)
    head = shared_model("aesthetic-v25-head", path, {}, lambda: _load_head(path))
    model = shared_model("siglip-vision", folder, {"dtype": str(dtype)}, lambda: load_siglip_vision(folder, dtype))
    width = model.config.hidden_size
    if head.dims[0] != width:
        raise BadRewardFile(
            f"{WHO}: the head {path.name} takes {head.dims[0]}-d embeddings but the SigLIP model {folder.name} gives "
            f"{width}-d ones; the official head needs {BACKBONE} (1152-d)."
        )
    size, mean, std = _preprocessing(folder, int(model.config.image_size))
    return AestheticV25(model, head, prompt, size=size, mean=mean, std=std)


class AestheticV25(ModelReward):
    """Aesthetic predictor v2.5: ``head(normalise(SigLIP pooled embedding))``, about 1–10; ignores the prompt."""

    name = "aesthetic_v25"

    def __init__(
        self,
        model: Any,
        head: ScoringHead,
        prompt: str | None = None,
        *,
        size: int = 384,
        mean: Sequence[float] = (0.5, 0.5, 0.5),
        std: Sequence[float] = (0.5, 0.5, 0.5),
    ) -> None:
        self.model, self.head, self.prompt = model, head, prompt
        self.size, self.mean, self.std = int(size), tuple(mean), tuple(std)

    def modules(self) -> list[nn.Module]:
        return [self.model, self.head]

    def pixels(self, images: torch.Tensor) -> torch.Tensor:
        """IMAGE ``[B,H,W,3]`` → normalised ``[B,3,size,size]`` float32, as SigLIP's processor makes them."""
        return normalize(resize_square(to_nchw(images), self.size), self.mean, self.std)

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised pooled SigLIP embeddings ``[B, 1152]`` float32 (shared within a feature scope)."""

        def compute() -> torch.Tensor:
            device, dtype = module_device_dtype(self.model)
            pooled = self.model(pixel_values=self.pixels(images.to(device)).to(dtype)).pooler_output
            return F.normalize(pooled.float(), dim=-1)

        return cached(images, ("siglip-image", id(self.model), self.size), compute)

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        check_images(images, accepts_video=False, who=self.name)
        prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])
        if images.shape[0] == 0:
            return torch.zeros(0)
        embeds = self.image_embeds(images)
        head_device = next(self.head.parameters()).device
        return self.head(embeds.to(head_device)).squeeze(-1).to(embeds.device)
