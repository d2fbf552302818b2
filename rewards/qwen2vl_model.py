"""Qwen2-VL and Qwen2.5-VL checkpoints on transformers 5: config, weights in either key layout, tokenizer, chat text.

Shared by VQAScore (:mod:`rewards.vqascore`) and HPSv3 (:mod:`rewards.hpsv3`); VideoReward has its own variant of the
key mapping because its checkpoints add PEFT prefixes.

* **Config**: ``config.json`` of a Hugging Face folder; ``model_type`` ``qwen2_vl`` → ``Qwen2VLModel``,
  ``qwen2_5_vl`` → ``Qwen2_5_VLModel`` (the legacy flat layout of the Hub configs is read by transformers itself).
* **Weights**: the Hub folders store transformers-4.4x keys (``model.embed_tokens``, ``model.layers.N``,
  ``model.norm``, ``visual.*``, ``lm_head.weight``); files saved by transformers ≥ 4.52 use ``model.language_model.*``
  and ``model.visual.*``. :func:`vlm_key` maps both to the ``Qwen2VLModel`` / ``Qwen2_5_VLModel`` keys
  (``language_model.*``, ``visual.*``) and keeps ``lm_head.weight`` apart.
* **Tokenizer**: the folder's ``tokenizer.json`` through the ``tokenizers`` library (nothing fetched from a hub).
* **Chat text**: Qwen's chat template for one user turn holding one image and a text, with the default system prompt
  and the generation prompt: ``<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n<|im_start|>user\\n
  <|vision_start|><|image_pad|>×n<|vision_end|>TEXT<|im_end|>\\n<|im_start|>assistant\\n``, as
  ``processor.apply_chat_template(..., add_generation_prompt=True)`` renders it for both model families.

Needs transformers ≥ 5 (multimodal RoPE reads ``mm_token_type_ids``: 0 text, 1 image).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from .errors import BadRewardFile, MissingRewardFile
from .preprocess import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD

__all__ = [
    "MODEL_TYPES",
    "SYSTEM",
    "require_transformers_5",
    "read_vlm_config",
    "vlm_model",
    "vlm_key",
    "vlm_state",
    "load_tokenizer",
    "image_norm",
    "token_id",
    "chat_ids",
    "pad_rows",
]

#: ``model_type`` in config.json → the transformers model class (backbone without the LM head).
MODEL_TYPES = {"qwen2_vl": "Qwen2VLModel", "qwen2_5_vl": "Qwen2_5_VLModel"}
_CONFIGS = {"qwen2_vl": "Qwen2VLConfig", "qwen2_5_vl": "Qwen2_5_VLConfig"}
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
IMAGE_PAD = "<|image_pad|>"


def require_transformers_5(who: str) -> None:
    """An ``ImportError`` saying what to do unless transformers ≥ 5 is installed."""
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        raise ImportError(
            f"{who} needs transformers >= 5 (found {transformers.__version__}): its Qwen2-VL loading follows the "
            "5.x module layout. Upgrade transformers (pip install 'transformers>=5')."
        )


def read_vlm_config(folder: Path, who: str, source: str) -> Any:
    """The ``Qwen2VLConfig`` / ``Qwen2_5_VLConfig`` of a Hugging Face folder."""
    import transformers

    config_file = folder / "config.json"
    if not config_file.is_file():
        raise MissingRewardFile(who, ["config.json"], [folder], source)
    data = json.loads(config_file.read_text(encoding="utf-8"))
    model_type = data.get("model_type")
    if model_type not in MODEL_TYPES:
        raise BadRewardFile(
            f"{who}: {config_file} is a {model_type!r} model; expected a Qwen2-VL or Qwen2.5-VL checkpoint "
            f"(model_type {' or '.join(MODEL_TYPES)}). Get one from {source}."
        )
    return getattr(transformers, _CONFIGS[model_type]).from_dict(data)


def vlm_model(config: Any) -> torch.nn.Module:
    """``Qwen2VLModel(config)`` or ``Qwen2_5_VLModel(config)`` (build it inside :func:`rewards.weights.meta_module`)."""
    import transformers

    return getattr(transformers, MODEL_TYPES[config.model_type])(config)


def vlm_key(key: str) -> str | None:
    """A checkpoint key of either layout → the backbone's key (``visual.*``, ``language_model.*``), ``lm_head.weight``,
    or ``None`` for keys of other parts (a reward head is handled by its caller)."""
    if key.startswith("lm_head."):
        return key
    for old, new in (
        ("model.language_model.", "language_model."),
        ("model.visual.", "visual."),
        ("model.", "language_model."),
    ):
        if key.startswith(old):
            return new + key[len(old) :]
    if key.startswith(("visual.", "language_model.")):
        return key
    return None


def vlm_state(sd: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    """The backbone's tensors of ``sd`` renamed by :func:`vlm_key` and prefixed (``lm_head.weight`` kept as is)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in sd.items():
        name = vlm_key(key)
        if name is None:
            continue
        out[name if name.startswith("lm_head.") else prefix + name] = value
    return out


def load_tokenizer(folder: Path, who: str, source: str, special: Iterable[str] = ()) -> Any:
    """The folder's ``tokenizer.json`` (``tokenizers.Tokenizer``), with ``special`` tokens added after the vocabulary
    (as ``tokenizer.add_special_tokens`` does in the official training code)."""
    from tokenizers import Tokenizer

    path = folder / "tokenizer.json"
    if not path.is_file():
        raise MissingRewardFile(f"{who} tokenizer", ["tokenizer.json"], [folder], source)
    tokenizer = Tokenizer.from_file(str(path))
    special = list(special)
    if special:
        tokenizer.add_special_tokens(special)
    for name in ("<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", IMAGE_PAD, *special):
        token_id(tokenizer, name, who, path)
    return tokenizer


def token_id(tokenizer: Any, token: str, who: str, path: Path | str = "tokenizer.json") -> int:
    """The id of ``token`` or a ``BadRewardFile`` saying that the tokenizer is not Qwen's."""
    value = tokenizer.token_to_id(token)
    if value is None:
        raise BadRewardFile(f"{who}: {path} has no {token} token; it is not a Qwen2-VL / Qwen2.5-VL tokenizer")
    return int(value)


def image_norm(folder: Path) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """``image_mean`` / ``image_std`` of the folder's ``preprocessor_config.json`` (OpenAI CLIP's if absent)."""
    path = folder / "preprocessor_config.json"
    if not path.is_file():
        return OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
    data = json.loads(path.read_text(encoding="utf-8"))
    return tuple(data.get("image_mean", OPENAI_CLIP_MEAN)), tuple(data.get("image_std", OPENAI_CLIP_STD))


def chat_ids(tokenizer: Any, image_tokens: int, text: str) -> list[int]:
    """Token ids of one chat turn: system prompt, user turn with one image and ``text``, generation prompt."""
    before = tokenizer.encode(SYSTEM + "<|im_start|>user\n<|vision_start|>", add_special_tokens=False).ids
    after = tokenizer.encode(
        "<|vision_end|>" + text + "<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False
    ).ids
    return before + [tokenizer.token_to_id(IMAGE_PAD)] * image_tokens + after


def pad_rows(rows: Sequence[Sequence[int]], pad_id: int, image_id: int) -> dict[str, torch.Tensor]:
    """Right-padded ``input_ids``, ``attention_mask`` and ``mm_token_type_ids`` (1 at image tokens) for the rows."""
    length = max(len(r) for r in rows)
    ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
    types = ((ids == image_id) & mask.bool()).long()
    return {"input_ids": ids, "attention_mask": mask, "mm_token_type_ids": types}
