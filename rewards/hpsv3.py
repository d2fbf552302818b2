"""HPSv3 (Ma et al. 2025, "HPSv3: Towards Wide-Spectrum Human Preference Score", arXiv 2508.03789;
github.com/MizzenAI/HPSv3), rebuilt on transformers 5 without the ``hpsv3`` package.

HPSv3 is Qwen2-VL-7B-Instruct fully fine-tuned as a preference model: a special token ``<|Reward|>`` is added to the
tokenizer (id = the base vocabulary size, 151657; the embeddings grow to 151658 rows) and a RankNet head reads the
last hidden state at that token::

    rm_head = Sequential(Linear(3584, 1024), ReLU, Dropout(0.05), Linear(1024, 16), ReLU, Linear(16, 2))

(keys ``rm_head.{0,3,5}.{weight,bias}``, kept in fp32 as the official code does). Its two outputs are the mean μ and
the uncertainty σ of the predicted preference distribution (trained with an uncertainty-aware ranking loss); the
official inferencer returns μ as the score ("we select miu as the final output"), and so does this reward.

The checkpoint ``HPSv3.safetensors`` (huggingface.co/MizzenAI/HPSv3) is the whole model's state dict in the
transformers-4.4x layout (``visual.*``, ``model.embed_tokens``, ``model.layers.N``, ``model.norm``, ``lm_head.weight``
(unused here), ``rm_head.*``; files saved by newer transformers, ``model.visual.*`` / ``model.language_model.*``, load
too). The architecture and tokenizer come from the base ``Qwen2-VL-7B-Instruct`` folder's ``config.json`` and
``tokenizer.json`` (its weights are not needed). Preprocessing as in the official ``prepare_batch``: every image is
resized to exactly 256·28·28 pixels (``min_pixels = max_pixels = 200704``: 448×448 for a square image, 256 image
tokens), then the Qwen2-VL image patches (:mod:`rewards.qwen2vl_image`).

The prompt is HPSv3's instruction (``INSTRUCTION`` followed by ``prompt_with_special_token`` in
``hpsv3/dataset/data_collator_qwen.py``: the rating criteria, "Textual prompt - {text_prompt}", and the request that
ends in ``<|Reward|>``). That text is part of HPSv3's code, not of its checkpoint, and this pack does not copy it: the
user saves it as ``prompt_template.txt`` beside the checkpoint (:data:`TEMPLATE_FILE`). Only the text up to
``<|Reward|>`` reaches the reward (the model is causal), so what follows the token does not change the score.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .base import ModelReward
from .errors import BadRewardFile, MissingRewardFile
from .model_cache import shared_model
from .protocol import check_images, prompt_list
from .qwen2vl_image import image_batch
from .qwen2vl_model import (
    IMAGE_PAD,
    chat_ids,
    image_norm,
    load_tokenizer,
    pad_rows,
    read_vlm_config,
    require_transformers_5,
    token_id,
    vlm_model,
    vlm_state,
)
from .weights import load_into, meta_module, module_device_dtype, read_state_dict

__all__ = ["HPSv3", "HPSv3Model", "load_hpsv3", "REWARD_TOKEN", "TEMPLATE_FILE", "PIXELS", "SOURCE"]

log = logging.getLogger("evosearch.rewards")

REWARD_TOKEN = "<|Reward|>"
#: HPSv3's instruction, saved by the user beside the checkpoint; ``{text_prompt}`` marks where the prompt goes.
TEMPLATE_FILE = "prompt_template.txt"
#: The official ``min_pixels = max_pixels`` of ``HPSv3RewardInferencer.prepare_batch``.
PIXELS = 256 * 28 * 28
BASE = "Qwen2-VL-7B-Instruct"
SOURCE = (
    "https://huggingface.co/MizzenAI/HPSv3 (HPSv3.safetensors) + https://huggingface.co/Qwen/Qwen2-VL-7B-Instruct "
    "(config.json and tokenizer.json)"
)
WHO = "HPSv3"
_HEAD = re.compile(r"^rm_head\.(\d+)\.weight$")


class HPSv3Model(nn.Module):
    """Qwen2-VL backbone (``qwen``) + RankNet head (``rm_head``); ``forward`` gives ``[B, 2]`` (μ, σ) float32."""

    def __init__(self, config: Any, head: tuple[int, int, int] = (1024, 16, 2)) -> None:
        super().__init__()
        self.qwen = vlm_model(config)
        hidden = config.text_config.hidden_size
        self.rm_head = nn.Sequential(
            nn.Linear(hidden, head[0]),
            nn.ReLU(),
            nn.Dropout(0.05),
            nn.Linear(head[0], head[1]),
            nn.ReLU(),
            nn.Linear(head[1], head[2]),
        )

    def forward(self, batch: dict[str, torch.Tensor], reward_id: int) -> torch.Tensor:
        hidden = self.qwen(**batch, use_cache=False).last_hidden_state
        at = batch["input_ids"] == reward_id
        if not bool((at.sum(dim=1) == 1).all()):
            raise ValueError(f"HPSv3: every prompt must contain {REWARD_TOKEN} exactly once")
        head_dtype = self.rm_head[0].weight.dtype
        return self.rm_head(hidden[at].to(head_dtype)).float()


def _head_dims(state: dict[str, torch.Tensor], who: str) -> tuple[int, int, int]:
    found = {int(m.group(1)): v.shape[0] for k, v in state.items() if (m := _HEAD.match(k))}
    if sorted(found) != [0, 3, 5]:
        raise BadRewardFile(
            f"{who}: the reward head has layers {sorted(found)}; HPSv3's released head is rm_head.{{0,3,5}} "
            f"(Linear, ReLU, Dropout, Linear, ReLU, Linear). Expected HPSv3.safetensors from {SOURCE}."
        )
    return found[0], found[3], found[5]


def _build(path: Path, base: Path, dtype: torch.dtype) -> HPSv3Model:
    who = f"{WHO} ({path})"
    config = read_vlm_config(base, f"{WHO} base model", SOURCE)
    sd = read_state_dict(path)
    state = vlm_state(sd, "qwen.")
    state.pop("lm_head.weight", None)  # the LM head is not used by the reward
    state.update({k: v for k, v in sd.items() if k.startswith("rm_head.")})
    embed = state.get("qwen.language_model.embed_tokens.weight")
    if embed is None or "rm_head.0.weight" not in state:
        raise BadRewardFile(
            f"{who}: not an HPSv3 checkpoint (no model.embed_tokens.weight or rm_head.0.weight; first keys: "
            f"{', '.join(list(sd)[:5])}). Expected HPSv3.safetensors from {SOURCE}."
        )
    config.text_config.vocab_size = embed.shape[0]
    head = _head_dims(state, who)
    log.info("loading HPSv3 %s with the architecture of %s (%s)", path, base, dtype)
    model = meta_module(lambda: HPSv3Model(config, head))
    return load_into(
        model,
        state,
        who=who,
        expected=f"Expected HPSv3.safetensors from {SOURCE}.",
        dtype=dtype,
        ignore=(r"position_ids$", r"rotary_emb\.inv_freq$"),
        keep_fp32=lambda k: k.startswith("rm_head."),
    )


def _base_dir(path: Path, roots: Sequence[Path], base: str | None) -> Path:
    name = base or BASE
    direct = Path(name).expanduser()
    if direct.is_absolute():
        candidates = [direct]
    else:
        candidates = [path.parent / name, *(Path(r) / "hpsv3" / name for r in roots)]
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise MissingRewardFile(
        "HPSv3 base model (config.json + tokenizer.json)",
        [name + "/"],
        list(dict.fromkeys(c.parent for c in candidates)),
        SOURCE,
    )


def _template(folder: Path) -> str:
    path = folder / TEMPLATE_FILE
    if not path.is_file():
        raise MissingRewardFile(
            "HPSv3 prompt template",
            [TEMPLATE_FILE],
            [folder],
            "github.com/MizzenAI/HPSv3: save the text of INSTRUCTION followed by prompt_with_special_token from "
            "hpsv3/dataset/data_collator_qwen.py (MIT) in this file, keeping its {text_prompt} slot and the "
            f"{REWARD_TOKEN} token",
        )
    text = path.read_text(encoding="utf-8")
    missing = [t for t in ("{text_prompt}", REWARD_TOKEN) if t not in text]
    if missing:
        raise BadRewardFile(
            f"HPSv3: {path} lacks {missing}; it must hold HPSv3's INSTRUCTION + prompt_with_special_token text"
        )
    if text.count(REWARD_TOKEN) != 1:
        raise BadRewardFile(f"HPSv3: {path} must contain {REWARD_TOKEN} exactly once")
    return text


def load_hpsv3(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    prompt: str | None = None,
    roots: Sequence[str | Path] = (),
    base: str | None = None,
    pixels: int = PIXELS,
) -> HPSv3:
    """HPSv3 from ``HPSv3.safetensors`` and the base folder (``base``: a path or a name beside the checkpoint or in
    ``hpsv3/``; default ``Qwen2-VL-7B-Instruct``). ``pixels`` is the resized area of every image (official 200704)."""
    require_transformers_5(WHO)
    path = Path(path)
    if not path.is_file():
        raise MissingRewardFile(WHO, ["HPSv3.safetensors"], [path.parent], SOURCE)
    base_dir = _base_dir(path, [Path(r) for r in roots], base)
    template = _template(path.parent)
    tokenizer = load_tokenizer(base_dir, f"{WHO} base model", SOURCE, special=[REWARD_TOKEN])
    model = shared_model(
        "hpsv3", path, {"dtype": str(dtype), "base": str(base_dir)}, lambda: _build(path, base_dir, dtype)
    )
    mean, std = image_norm(base_dir)
    return HPSv3(model, tokenizer, template, prompt=prompt, pixels=pixels, mean=mean, std=std)


class HPSv3(ModelReward):
    """HPSv3's μ for each image and prompt (higher = more preferred by humans; unbounded, prompt-aware)."""

    name = "hpsv3"

    def __init__(
        self,
        model: HPSv3Model,
        tokenizer: Any,
        template: str,
        *,
        prompt: str | None = None,
        pixels: int = PIXELS,
        mean: Sequence[float] = (0.48145466, 0.4578275, 0.40821073),
        std: Sequence[float] = (0.26862954, 0.26130258, 0.27577711),
    ) -> None:
        self.model, self.tokenizer, self.template, self.prompt = model, tokenizer, template, prompt
        self.pixels = int(pixels)
        self.mean, self.std = tuple(mean), tuple(std)
        self.reward_id = token_id(tokenizer, REWARD_TOKEN, WHO)
        rows = model.qwen.language_model.embed_tokens.weight.shape[0]
        if self.reward_id >= rows:
            raise BadRewardFile(
                f"HPSv3: the tokenizer gives {REWARD_TOKEN} id {self.reward_id} but the checkpoint has {rows} "
                "embeddings; the base tokenizer must be Qwen2-VL-7B-Instruct's (151657 tokens)."
            )
        self.image_id = token_id(tokenizer, IMAGE_PAD, WHO)
        pad = tokenizer.token_to_id("<|endoftext|>")
        self.pad_id = pad if pad is not None else token_id(tokenizer, "<|im_end|>", WHO)

    def inputs(self, images: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The model's batch: right-padded ids, mask, ``mm_token_type_ids``, image patches and grids."""
        pixels, grids, tokens = image_batch(
            images, min_pixels=self.pixels, max_pixels=self.pixels, mean=self.mean, std=self.std
        )
        rows = [
            chat_ids(self.tokenizer, n, self.template.replace("{text_prompt}", prompt))
            for n, prompt in zip(tokens, prompts)
        ]
        return {**pad_rows(rows, self.pad_id, self.image_id), "pixel_values": pixels, "image_grid_thw": grids}

    def rewards(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """``{"mu": [B], "sigma": [B]}`` float32: the head's two outputs (μ is the score)."""
        check_images(images, accepts_video=False, who=self.name)
        prompts = prompt_list(prompts if prompts is not None else self.prompt, images.shape[0])
        if images.shape[0] == 0:
            return {"mu": torch.zeros(0), "sigma": torch.zeros(0)}
        device, dtype = module_device_dtype(self.model)
        batch = {k: v.to(device) for k, v in self.inputs(images.to(device), prompts).items()}
        batch["pixel_values"] = batch["pixel_values"].to(dtype)
        out = self.model(batch, self.reward_id)
        return {"mu": out[:, 0], "sigma": out[:, 1] if out.shape[1] > 1 else torch.zeros_like(out[:, 0])}

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        return self.rewards(images, prompts)["mu"]
