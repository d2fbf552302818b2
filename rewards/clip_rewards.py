"""Rewards on CLIP embeddings: CLIPScore, HPSv2/2.1, PickScore and the LAION improved aesthetic predictor.

* :class:`ClipScore` — cosine of L2-normalised OpenAI CLIP ViT-L/14 image and text embeddings, no ×100 or ×2.5
  (the paper's guidance reward; typical values 0.26–0.36).
* :class:`HPSv2` — the same cosine on the HPS v2/v2.1 ViT-H/14, with longest-side resize + zero padding instead of a
  centre crop (Wu et al. 2023, github.com/tgxs002/HPSv2; typical values 0.2–0.35).
* :class:`PickScore` — ``logit_scale.exp() · cosine`` on PickScore v1's ViT-H/14 (Kirstain et al. 2023; ≈18–23).
* :class:`Aesthetic` — the LAION improved aesthetic MLP on the normalised CLIP ViT-L/14 image embedding (≈1–10);
  ignores the prompt.

All score a batch with one image forward (and one text forward over the distinct prompts). Inside a
:func:`~rewards.feature_cache.feature_scope` (a combined reward) rewards that share a CLIP model share the image
forward as well.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .base import ModelReward
from .clip import clip_image_features, clip_text_features
from .feature_cache import cached
from .preprocess import clip_pixels
from .protocol import check_images, prompt_list
from .text import ClipTokenizer, clip_tokenizer
from .weights import module_device_dtype

__all__ = ["ClipReward", "ClipScore", "HPSv2", "PickScore", "Aesthetic"]


class ClipReward(ModelReward):
    """Base class: a CLIP model, a tokenizer, a preprocessing mode and the prompt to score against."""

    name = "clip"
    preprocessing = "crop"

    def __init__(self, model: Any, prompt: str | None = None, tokenizer: ClipTokenizer | None = None) -> None:
        self.model = model
        self.prompt = prompt
        self.tokenizer = tokenizer or clip_tokenizer()
        self.image_size = int(model.config.vision_config.image_size)

    def image_embeds(self, images: torch.Tensor) -> torch.Tensor:
        """L2-normalised image embeddings ``[B, P]`` float32 (shared within a feature scope)."""

        def compute() -> torch.Tensor:
            device, dtype = module_device_dtype(self.model)
            pixels = clip_pixels(images.to(device), self.image_size, self.preprocessing).to(dtype)
            return F.normalize(clip_image_features(self.model, pixels).float(), dim=-1)

        return cached(images, ("clip-image", id(self.model), self.preprocessing), compute)

    def text_embeds(self, prompts: Sequence[str]) -> torch.Tensor:
        """L2-normalised text embeddings ``[B, P]`` float32; each distinct prompt is encoded once."""
        unique = list(dict.fromkeys(prompts))
        device = module_device_dtype(self.model)[0]
        ids = self.tokenizer(unique).to(device)
        feats = F.normalize(clip_text_features(self.model, ids).float(), dim=-1)
        index = torch.tensor([unique.index(p) for p in prompts], device=device)
        return feats[index]

    def _check(self, images: torch.Tensor, prompts: Sequence[str] | str | None) -> list[str]:
        check_images(images, accepts_video=False, who=self.name)
        return prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])

    def cosine(self, images: torch.Tensor, prompts: Sequence[str] | str | None) -> torch.Tensor:
        prompts = self._check(images, prompts)
        if images.shape[0] == 0:
            return torch.zeros(0)
        return (self.image_embeds(images) * self.text_embeds(prompts)).sum(dim=-1)

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        return self.cosine(images, prompts)


class ClipScore(ClipReward):
    """CLIPScore: cosine(image, prompt) with OpenAI CLIP ViT-L/14 (Hessel et al. 2021, without the 2.5 weight)."""

    name = "clipscore"


class HPSv2(ClipReward):
    """Human Preference Score v2/v2.1: cosine on the HPS ViT-H/14 with longest-side resize + zero padding."""

    name = "hpsv2"
    preprocessing = "pad"


class PickScore(ClipReward):
    """PickScore v1: ``logit_scale.exp() · cosine`` (github.com/yuvalkirstain/PickScore)."""

    name = "pickscore"

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        cos = self.cosine(images, prompts)
        return self.model.logit_scale.detach().float().exp().to(cos.device) * cos


class Aesthetic(ClipReward):
    """LAION improved aesthetic predictor: ``head(normalise(CLIP ViT-L/14 image embedding))``, roughly 1–10.

    The prompt is ignored (kept only so the reward fits the protocol). The head runs in fp32.
    """

    name = "aesthetic"

    def __init__(self, model: Any, head: nn.Module, prompt: str | None = None) -> None:
        super().__init__(model, prompt)
        self.head = head

    def modules(self) -> list[nn.Module]:
        return [self.model, self.head]

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        self._check(images, prompts)
        if images.shape[0] == 0:
            return torch.zeros(0)
        embeds = self.image_embeds(images)
        head_device = next(self.head.parameters()).device
        return self.head(embeds.to(head_device)).squeeze(-1).to(embeds.device)
