"""VideoReward (VideoAlign; Liu et al. 2025, arXiv 2501.13918, github.com/KwaiVGI/VideoAlign) under transformers 5.

VideoReward is Qwen2-VL-2B-Instruct fine-tuned with LoRA (r 64, α 128) on the language model, a fully trained vision
tower and merger, three added tokens ``<|VQ_reward|> <|MQ_reward|> <|TA_reward|>`` and ``rm_head = Linear(1536, 3)``.
The prompt (VideoAlign's "detailed_special" template) places the three tokens after the questions on visual quality,
motion quality and text alignment; head output *i* at token *i* is that dimension's reward, normalised with
``model_config.json``'s ``inference_config`` means/stds. Overall = VQ+MQ+TA. The template is part of VideoAlign's code,
not of its checkpoint, and this pack does not copy it: the user saves its text as ``prompt_template.txt`` in the
VideoReward folder (see :data:`TEMPLATE_FILE`).

On disk (``models/rewards/videoreward/``): the VideoReward folder (``model_config.json`` and ``checkpoint-N/`` with
``adapter_model.safetensors`` + ``non_lora_state_dict.pth``, or a full ``model.pth``) and the base
``Qwen2-VL-2B-Instruct`` folder (config.json, safetensors shards, tokenizer.json). The LoRA is merged into the base
weights at load time; keys of the transformers 4.45 layout (``model.layers``, ``visual``) are mapped to 5.x
(``language_model``, ``visual`` of ``Qwen2VLModel``), and M-RoPE gets ``mm_token_type_ids``. Needs transformers ≥ 5.
"""

from __future__ import annotations

import json
import logging
import math
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
from .qwen2vl_video import VIDEO_MIN_PIXELS, video_patches
from .weights import load_into, meta_module, module_device_dtype, read_hf_folder, read_state_dict

__all__ = ["VideoReward", "VideoRewardModel", "load_videoreward", "DIMENSIONS"]

log = logging.getLogger("evosearch.rewards")

DIMENSIONS = ("overall", "VQ", "MQ", "TA")
REWARD_TOKENS = ("<|VQ_reward|>", "<|MQ_reward|>", "<|TA_reward|>")
#: Normalisation used when model_config.json has no inference_config (the released model's values, docs/rewards.md §2).
DEFAULT_NORM = {
    "VQ_mean": 3.6757,
    "VQ_std": 2.2476,
    "MQ_mean": 1.1646,
    "MQ_std": 1.3811,
    "TA_mean": 2.8105,
    "TA_std": 2.5121,
}
SYSTEM = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
SOURCE = "https://huggingface.co/KwaiVGI/VideoReward + https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct"


def _require_transformers_5() -> None:
    import transformers

    if int(transformers.__version__.split(".")[0]) < 5:
        raise ImportError(
            f"VideoReward needs transformers >= 5 (found {transformers.__version__}): its Qwen2-VL loading follows "
            "the 5.x module layout. Upgrade transformers or use a frame-sampled image reward for video."
        )


class VideoRewardModel(nn.Module):
    """``Qwen2VLModel`` + ``rm_head``; ``forward`` returns the three raw rewards ``[B, 3]`` (VQ, MQ, TA)."""

    def __init__(self, config: Any, output_dim: int = 3) -> None:
        super().__init__()
        from transformers import Qwen2VLModel

        self.qwen = Qwen2VLModel(config)
        self.rm_head = nn.Linear(config.text_config.hidden_size, output_dim, bias=False)
        self.output_dim = output_dim

    def forward(self, batch: dict[str, torch.Tensor], reward_ids: Sequence[int]) -> torch.Tensor:
        hidden = self.qwen(**batch, use_cache=False).last_hidden_state
        ids = batch["input_ids"]
        mask = torch.zeros_like(ids, dtype=torch.bool)
        for token in reward_ids:
            mask |= ids == token
        if not bool((mask.sum(dim=1) == len(reward_ids)).all()):
            raise ValueError("VideoReward: every prompt must contain each reward token exactly once")
        logits = self.rm_head(hidden[mask].to(self.rm_head.weight.dtype)).float()
        logits = logits.view(ids.shape[0], len(reward_ids), -1)
        return logits.diagonal(dim1=1, dim2=2) if logits.shape[-1] == len(reward_ids) else logits[..., 0]


# ------------------------------------------------------------------------------------------------ files


def _checkpoint_dir(folder: Path) -> Path:
    names = ("model.pth", "adapter_model.safetensors", "non_lora_state_dict.pth")
    if any((folder / n).is_file() for n in names):
        return folder
    steps = [
        (int(m.group(1)), p) for p in folder.glob("checkpoint-*") if (m := re.fullmatch(r"checkpoint-(\d+)", p.name))
    ]
    if not steps:
        raise MissingRewardFile(
            "VideoReward",
            ["checkpoint-N/ (adapter_model.safetensors + non_lora_state_dict.pth) or model.pth"],
            [folder],
            SOURCE,
        )
    return max(steps)[1]


def _base_dir(folder: Path, model_config: dict, roots: Sequence[Path], base: str | None) -> Path:
    name = base or Path(str(model_config.get("model_name_or_path") or "Qwen2-VL-2B-Instruct")).name
    direct = Path(name).expanduser()
    candidates = (
        [direct]
        if direct.is_absolute()
        else [folder / name, folder.parent / name, *(Path(r) / "videoreward" / name for r in roots)]
    )
    for c in candidates:
        if (c / "config.json").is_file():
            return c
    raise MissingRewardFile("VideoReward base model", [name + "/"], [c.parent for c in candidates], SOURCE)


def _normalise_key(key: str) -> str | None:
    """A key of any VideoAlign/Qwen2-VL layout → a ``qwen.*`` (``Qwen2VLModel``) or ``rm_head`` key; None: drop it."""
    key = key.removeprefix("base_model.model.")
    key = key.replace(".base_layer.", ".").replace(".modules_to_save.default.", ".")
    if ".original_module." in key or key.startswith("lm_head."):
        return None
    if key.startswith("rm_head."):
        return key
    for old, new in (
        ("model.language_model.", "language_model."),
        ("model.visual.", "visual."),
        ("model.", "language_model."),
    ):
        if key.startswith(old):
            return "qwen." + new + key[len(old) :]
    if key.startswith(("visual.", "language_model.")):
        return "qwen." + key
    return None


def _lora_scale(ckpt: Path, model_config: dict) -> float:
    cfg = model_config.get("peft_lora_config", {})
    if (ckpt / "adapter_config.json").is_file():
        cfg = {**cfg, **json.loads((ckpt / "adapter_config.json").read_text())}
    r, alpha = float(cfg.get("lora_r", cfg.get("r", 64))), float(cfg.get("lora_alpha", 128))
    return alpha / math.sqrt(r) if cfg.get("use_rslora") else alpha / r


def _merge_lora(state: dict[str, torch.Tensor], lora: dict[str, torch.Tensor], scale: float, who: str) -> None:
    for key_a in [k for k in lora if ".lora_A." in k or ".lora_embedding_A" in k]:
        is_embed = ".lora_embedding_A" in key_a
        key_b = (
            key_a.replace("lora_embedding_A", "lora_embedding_B") if is_embed else key_a.replace(".lora_A.", ".lora_B.")
        )
        base_key = re.sub(r"\.lora_(embedding_)?A(\.default)?(\.weight)?$", ".weight", key_a)
        target = _normalise_key(base_key)
        if target is None or target not in state or key_b not in lora:
            raise BadRewardFile(f"{who}: LoRA weight {key_a} has no matching base weight ({target}) or B matrix")
        a, b = lora[key_a].float(), lora[key_b].float()
        delta = (b @ a).t() if is_embed else b @ a
        state[target] = (state[target].float() + scale * delta).to(state[target].dtype)


def _assemble(folder: Path, base: Path, model_config: dict) -> dict[str, torch.Tensor]:
    who = f"VideoReward ({folder})"
    ckpt = _checkpoint_dir(folder)
    state = {k2: v for k, v in read_hf_folder(base).items() if (k2 := _normalise_key(k))}
    if (ckpt / "model.pth").is_file():
        state.update({k2: v for k, v in read_state_dict(ckpt / "model.pth").items() if (k2 := _normalise_key(k))})
        return state
    non_lora = ckpt / "non_lora_state_dict.pth"
    if not non_lora.is_file():
        raise MissingRewardFile("VideoReward", ["non_lora_state_dict.pth"], [ckpt], SOURCE)
    state.update({k2: v for k, v in read_state_dict(non_lora).items() if (k2 := _normalise_key(k))})
    adapter = ckpt / "adapter_model.safetensors"
    if adapter.is_file():
        _merge_lora(state, read_state_dict(adapter), _lora_scale(ckpt, model_config), who)
    return state


def _build(folder: Path, base: Path, configs: dict, dtype: torch.dtype) -> VideoRewardModel:
    """The merged model, with the base tokenizer (plus the three reward tokens) as ``model.tokenizer``."""
    from tokenizers import Tokenizer
    from transformers import Qwen2VLConfig

    model_config = configs.get("model_config", {})
    state = _assemble(folder, base, model_config)
    config = Qwen2VLConfig.from_dict(json.loads((base / "config.json").read_text()))
    vocab_key = "qwen.language_model.embed_tokens.weight"
    if vocab_key in state:
        config.text_config.vocab_size = state[vocab_key].shape[0]
    if "rm_head.weight" not in state:
        raise BadRewardFile(
            f"VideoReward ({folder}): no rm_head.weight in the checkpoint. Expected VideoAlign's files from {SOURCE}."
        )
    output_dim = state["rm_head.weight"].shape[0]
    log.info("loading VideoReward %s on %s (%s)", folder, base, dtype)
    model = meta_module(lambda: VideoRewardModel(config, output_dim))
    load_into(
        model,
        state,
        who=f"VideoReward ({folder})",
        expected=f"Expected VideoAlign's checkpoint from {SOURCE}.",
        dtype=dtype,
        keep_fp32=lambda k: k.startswith("rm_head."),
    )
    tokenizer = Tokenizer.from_file(str(base / "tokenizer.json"))
    tokenizer.add_special_tokens(list(REWARD_TOKENS))
    model.tokenizer = tokenizer
    return model


def load_videoreward(
    path: str | Path,
    *,
    dtype: torch.dtype = torch.bfloat16,
    prompt: str | None = None,
    roots: Sequence[str | Path] = (),
    base: str | None = None,
    source_fps: float = 16.0,
    dimension: str = "overall",
    min_pixels: int = VIDEO_MIN_PIXELS,
) -> VideoReward:
    """Load VideoReward from its folder (``model_config.json`` + checkpoint) and the Qwen2-VL base folder.

    ``base`` is the base folder (path or name; default: the last part of ``model_name_or_path`` beside the VideoReward
    folder or in ``videoreward/``). ``source_fps`` is the frame rate of the videos that will be scored (Wan 2.1: 16);
    ``dimension`` one of :data:`DIMENSIONS`.
    """
    _require_transformers_5()
    folder = Path(path)
    config_file = folder / "model_config.json"
    if not config_file.is_file():
        raise MissingRewardFile("VideoReward", ["model_config.json"], [folder], SOURCE)
    configs = json.loads(config_file.read_text())
    base_dir = _base_dir(folder, configs.get("model_config", {}), [Path(r) for r in roots], base)
    template = _template(folder)
    model = shared_model(
        "videoreward",
        folder,
        {"dtype": str(dtype), "base": str(base_dir)},
        lambda: _build(folder, base_dir, configs, dtype),
    )
    return VideoReward(
        model, configs, template, prompt=prompt, source_fps=source_fps, dimension=dimension, min_pixels=min_pixels
    )


#: VideoAlign's "detailed_special" prompt (``DETAILED_PROMPT_WITH_SPECIAL_TOKEN`` in its ``prompt_template.py``), saved
#: by the user beside ``model_config.json``; ``{text_prompt}`` marks where the prompt goes.
TEMPLATE_FILE = "prompt_template.txt"


def _template(folder: Path) -> str:
    path = folder / TEMPLATE_FILE
    if not path.is_file():
        raise MissingRewardFile(
            "VideoReward prompt template",
            [TEMPLATE_FILE],
            [folder],
            "github.com/KwaiVGI/VideoAlign: copy the text of DETAILED_PROMPT_WITH_SPECIAL_TOKEN from "
            "prompt_template.py (MIT) into this file, keeping its {text_prompt} slot and the three reward tokens",
        )
    text = path.read_text(encoding="utf-8")
    missing = [t for t in ("{text_prompt}", *REWARD_TOKENS) if t not in text]
    if missing:
        raise BadRewardFile(f"VideoReward: {path} lacks {missing}; it must be VideoAlign's detailed_special template")
    return text


class VideoReward(ModelReward):
    """VideoReward as a reward on ``[B, T, H, W, 3]`` videos (stills count as one-frame videos)."""

    name = "videoreward"
    accepts_video = True

    def __init__(
        self,
        model: VideoRewardModel,
        configs: dict,
        template_text: str,
        *,
        prompt: str | None = None,
        source_fps: float = 16.0,
        dimension: str = "overall",
        min_pixels: int = VIDEO_MIN_PIXELS,
    ) -> None:
        if dimension not in DIMENSIONS:
            raise ValueError(f"VideoReward: dimension must be one of {DIMENSIONS}, got {dimension!r}")
        data = configs.get("data_config", {})
        template = data.get("prompt_template_type", "detailed_special")
        if template != "detailed_special":
            raise ValueError(f"VideoReward: prompt template {template!r} is not supported (only detailed_special)")
        tokenizer = model.tokenizer
        self.model, self.tokenizer, self.prompt = model, tokenizer, prompt
        self.template = template_text
        self.fps = data.get("fps", 2.0)
        self.num_frames = data.get("num_frames")
        self.max_pixels = int(data.get("max_frame_pixels") or 200704)
        self.min_pixels = min_pixels
        self.source_fps = float(source_fps)
        self.dimension = dimension
        self.norm = configs.get("inference_config") or DEFAULT_NORM
        self.reward_ids = [tokenizer.token_to_id(t) for t in REWARD_TOKENS]
        self.video_id = tokenizer.token_to_id("<|video_pad|>")
        self.pad_id = tokenizer.token_to_id("<|endoftext|>")

    def _ids(self, prompt: str, video_tokens: int) -> list[int]:
        text = self.template.replace("{text_prompt}", prompt)
        before = self.tokenizer.encode(SYSTEM + "<|im_start|>user\n<|vision_start|>", add_special_tokens=False).ids
        after = self.tokenizer.encode(
            "<|vision_end|>" + text + "<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False
        ).ids
        return before + [self.video_id] * video_tokens + after

    def inputs(self, videos: torch.Tensor, prompts: Sequence[str]) -> dict[str, torch.Tensor]:
        """The model's batch: right-padded ids, attention mask, ``mm_token_type_ids``, patches and grids."""
        patches, grids, rows = [], [], []
        for video, prompt in zip(videos, prompts):
            p, grid = video_patches(
                video,
                source_fps=self.source_fps,
                fps=self.fps,
                num_frames=self.num_frames,
                max_pixels=self.max_pixels,
                min_pixels=self.min_pixels,
            )
            patches.append(p)
            grids.append(grid)
            rows.append(self._ids(prompt, int(grid.prod()) // 4))
        length = max(len(r) for r in rows)
        ids = torch.full((len(rows), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, r in enumerate(rows):
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        return {
            "input_ids": ids,
            "attention_mask": mask,
            "mm_token_type_ids": (ids == self.video_id).long() * 2,
            "pixel_values_videos": torch.cat(patches),
            "video_grid_thw": torch.stack(grids),
        }

    def rewards(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> dict[str, torch.Tensor]:
        """All normalised rewards ``{"VQ", "MQ", "TA", "overall"}``, each ``[B]`` float32."""
        check_images(images, accepts_video=True, who=self.name)
        videos = images if images.dim() == 5 else images[:, None]
        prompts = prompt_list(prompts if prompts is not None else self.prompt, videos.shape[0])
        device, dtype = module_device_dtype(self.model)
        batch = {k: v.to(device) for k, v in self.inputs(videos.to(device), prompts).items()}
        batch["pixel_values_videos"] = batch["pixel_values_videos"].to(dtype)
        raw = self.model(batch, self.reward_ids)
        out = {
            d: (raw[:, i] - self.norm[f"{d}_mean"]) / self.norm[f"{d}_std"] for i, d in enumerate(("VQ", "MQ", "TA"))
        }
        out["overall"] = out["VQ"] + out["MQ"] + out["TA"]
        return out

    def score(self, images: torch.Tensor, prompts: Sequence[str] | str | None = None) -> torch.Tensor:
        return self.rewards(images, prompts)[self.dimension]
