"""The ``shapes`` reward: a GenEval-style verifier for the shapes world, weight-free, on the reward protocol.

``score(images, prompts)`` is the search signal, ``passes(images, prompts)`` the strict verdict:

* ``passes``: ``BoolTensor[B]``, GenEval's rules on the recognised detections
  (:func:`rewards.shapes.verify.holds`);
* ``dense``: soft satisfaction of every constraint, in 0..1 (:func:`rewards.shapes.verify.dense_score`);
* ``score = ½·dense + ½·passes`` in 0..1: every passing image outranks every failing one, and the dense part orders
  images within each side (a failing image that meets more constraints scores higher).

Each image is parsed on its own (batch-invariant). Videos ``[B,T,H,W,3]`` are scored per frame: the score is the
mean over frames, a video passes when every frame does. Prompts follow :mod:`rewards.shapes.grammar`; an empty
prompt falls back to the reward's own ``prompt``; an unparseable one raises a ``ValueError`` listing accepted forms.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import torch

from .protocol import check_images, prompt_list
from .shapes.grammar import ScenePrompt, parse
from .shapes.perception import Detection, perceive
from .shapes.verify import dense_score, holds

__all__ = ["ShapesReward", "parse_cached"]


@functools.lru_cache(maxsize=1024)
def parse_cached(prompt: str) -> ScenePrompt:
    """:func:`rewards.shapes.grammar.parse`, memoised (a search scores the same prompt thousands of times)."""
    return parse(prompt)


class ShapesReward:
    """GenEval-style verifier reward for shape scenes (see the module docstring)."""

    name = "shapes"
    accepts_video = True
    device = None
    dtype = None

    def __init__(self, prompt: str | None = None) -> None:
        if prompt:
            parse_cached(prompt)  # fail early, naming the prompt
        self.prompt = prompt

    def modules(self) -> list[torch.nn.Module]:
        return []

    def _prompts(self, images: torch.Tensor, prompts: Sequence[str] | str | None) -> list[ScenePrompt]:
        check_images(images, accepts_video=True, who="shapes reward")
        texts = prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])
        parsed = []
        for text in texts:
            text = text or self.prompt or ""
            if not text.strip():
                raise ValueError(
                    "shapes reward: no prompt to verify against; set the prompt (e.g. 'a red circle left of a blue "
                    "square') on EvoSearch Load Reward or pass one per image"
                )
            parsed.append(parse_cached(text))
        return parsed

    @staticmethod
    def _frames(images: torch.Tensor) -> tuple[torch.Tensor, int]:
        if images.dim() == 5:
            b, t = images.shape[:2]
            return images.reshape(b * t, *images.shape[2:]), t
        return images, 1

    @torch.no_grad()
    def details(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> dict[str, Any]:
        """Per image: ``score``, ``dense`` (float ``[B]``), ``passes`` (bool ``[B]``), ``detections`` (per frame)."""
        parsed = self._prompts(images, prompts)
        frames, t = self._frames(images)
        detections: list[list[Detection]] = perceive(frames)
        per_frame = [parsed[i // t] for i in range(len(detections))]
        dense = torch.tensor([dense_score(p, d) for p, d in zip(per_frame, detections)], dtype=torch.float32)
        ok = torch.tensor([holds(p, [x for x in d if x.recognised]) for p, d in zip(per_frame, detections)])
        dense = dense.reshape(-1, t).mean(dim=1)
        ok = ok.reshape(-1, t).all(dim=1)
        return {"score": 0.5 * dense + 0.5 * ok.float(), "dense": dense, "passes": ok, "detections": detections}

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        """``Tensor[B]`` float32 in 0..1, higher is better: ``½·dense + ½·passes``."""
        return self.details(images, prompts)["score"]

    def passes(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        """``BoolTensor[B]``: the strict GenEval-style verdict for each image."""
        return self.details(images, prompts)["passes"]

    def __repr__(self) -> str:
        return f"ShapesReward(prompt={self.prompt!r})"
