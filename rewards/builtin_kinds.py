"""The built-in reward kinds and their loaders (registered on first use of :mod:`rewards.registry`).

Sources and licences are the official ones (docs/rewards.md §2); weights are never redistributed or downloaded here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .errors import BadRewardFile
from .model_cache import shared_model
from .registry import RewardKind, find_weights, get_kind, register_kind

__all__: list[str] = []


def _load_imagereward(path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, arch: Any = None) -> Any:
    from .imagereward import ImageReward, load_imagereward

    expected = get_kind("imagereward").expected()
    model = shared_model(
        "imagereward",
        path,
        {"dtype": str(dtype), "arch": arch},
        lambda: load_imagereward(str(path), dtype=dtype, arch=arch, expected=expected),
    )
    return ImageReward(model, prompt)


def _clip(path: Path, dtype: torch.dtype, activation: str, heads: Any, kind: str) -> Any:
    from .clip import load_clip_model

    return load_clip_model(path, dtype=dtype, activation=activation, heads=heads, expected=get_kind(kind).expected())


def _load_clipscore(
    path: Path,
    *,
    dtype: torch.dtype,
    prompt: str | None,
    roots: tuple,
    activation: str = "quick_gelu",
    heads: Any = None,
) -> Any:
    from .clip_rewards import ClipScore

    return ClipScore(_clip(path, dtype, activation, heads, "clipscore"), prompt)


def _load_hps(
    path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, activation: str = "gelu", heads: Any = None
) -> Any:
    from .clip_rewards import HPSv2

    return HPSv2(_clip(path, dtype, activation, heads, "hpsv2"), prompt)


def _load_pickscore(
    path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, activation: str = "gelu", heads: Any = None
) -> Any:
    from .clip_rewards import PickScore

    return PickScore(_clip(path, dtype, activation, heads, "pickscore"), prompt)


def _load_aesthetic_head(path: Path) -> torch.nn.Module:
    from .heads import LinearStack, linear_stack_dims
    from .weights import load_into, meta_module, read_state_dict

    expected = get_kind("aesthetic").expected()
    sd = read_state_dict(path)
    who = f"LAION aesthetic head ({path})"
    dims = linear_stack_dims(sd, "", who, expected)
    return load_into(meta_module(lambda: LinearStack(dims)), sd, who=who, expected=expected, dtype=torch.float32)


def _load_aesthetic(
    path: Path,
    *,
    dtype: torch.dtype,
    prompt: str | None,
    roots: tuple,
    backbone: str | None = None,
    activation: str = "quick_gelu",
    heads: Any = None,
) -> Any:
    """Head from ``aesthetic/``; CLIP ViT-L/14 from ``backbone`` (a path or a name in ``clipscore/``)."""
    from .clip_rewards import Aesthetic

    head = shared_model("aesthetic-head", path, {}, lambda: _load_aesthetic_head(path))
    clip_path = find_weights("clipscore", roots, backbone)
    model = _clip(clip_path, dtype, activation, heads, "clipscore")
    if head.dims[0] != model.config.projection_dim:
        raise BadRewardFile(
            f"LAION aesthetic: the head {path.name} takes {head.dims[0]}-d embeddings but the CLIP model "
            f"{clip_path.name} gives {model.config.projection_dim}-d ones; the official head needs CLIP ViT-L/14 "
            "(768-d) in models/rewards/clipscore/."
        )
    return Aesthetic(model, head, prompt)


def _load_colorfulness(path: None, *, dtype: torch.dtype, prompt: str | None, roots: tuple) -> Any:
    from .simple import Colorfulness

    return Colorfulness(prompt)


def _load_videoreward(path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, **options: Any) -> Any:
    from .videoreward import load_videoreward

    return load_videoreward(path, dtype=dtype, prompt=prompt, roots=roots, **options)


register_kind(
    RewardKind(
        name="imagereward",
        title="ImageReward v1.0",
        folder="imagereward",
        files=("ImageReward.pt", "ImageReward.safetensors"),
        source="https://huggingface.co/THUDM/ImageReward (file ImageReward.pt)",
        licence="Apache-2.0",
        loader=_load_imagereward,
        size="1.8 GB",
        description="Human-preference reward on BLIP (the paper's guidance reward); about −2…2, prompt-aware.",
    )
)
register_kind(
    RewardKind(
        name="clipscore",
        title="CLIPScore (OpenAI CLIP ViT-L/14)",
        folder="clipscore",
        files=("clip-vit-large-patch14", "ViT-L-14.pt", "open_clip_model.safetensors", "open_clip_pytorch_model.bin"),
        source="https://huggingface.co/openai/clip-vit-large-patch14 (whole folder) or OpenAI's ViT-L-14.pt",
        licence="MIT",
        loader=_load_clipscore,
        size="1.7 GB",
        description="Cosine of CLIP ViT-L/14 image and prompt embeddings (≈0.26–0.36); also the aesthetic backbone.",
    )
)
register_kind(
    RewardKind(
        name="hpsv2",
        title="HPS v2.1",
        folder="hpsv2",
        files=("HPS_v2.1_compressed.pt", "HPS_v2_compressed.pt"),
        source="https://huggingface.co/xswu/HPSv2 (file HPS_v2.1_compressed.pt)",
        licence="Apache-2.0",
        loader=_load_hps,
        size="2.0 GB",
        description="Human Preference Score v2.1 (ViT-H/14, padded not cropped); ≈0.2–0.35.",
    )
)
register_kind(
    RewardKind(
        name="pickscore",
        title="PickScore v1",
        folder="pickscore",
        files=("PickScore_v1",),
        source="https://huggingface.co/yuvalkirstain/PickScore_v1 (whole folder)",
        licence="code MIT; weights licence not declared on the model card",
        loader=_load_pickscore,
        size="3.9 GB",
        description="PickScore v1 (ViT-H/14 trained on Pick-a-Pic); logit_scale·cosine ≈18–23.",
    )
)
register_kind(
    RewardKind(
        name="aesthetic",
        title="LAION improved aesthetic predictor",
        folder="aesthetic",
        files=("sac+logos+ava1-l14-linearMSE.pth",),
        source="https://github.com/christophschuhmann/improved-aesthetic-predictor (sac+logos+ava1-l14-linearMSE.pth)",
        licence="Apache-2.0",
        loader=_load_aesthetic,
        size="3.7 MB",
        needs_prompt=False,
        description="Aesthetic score ≈1–10 from an MLP on the CLIP ViT-L/14 image embedding (needs clipscore/ too).",
    )
)
register_kind(
    RewardKind(
        name="videoreward",
        title="VideoReward (VideoAlign)",
        folder="videoreward",
        files=("VideoReward",),
        source="https://huggingface.co/KwaiVGI/VideoReward (folder) + https://huggingface.co/Qwen/Qwen2-VL-2B-Instruct",
        licence="code MIT; Qwen2-VL-2B-Instruct Apache-2.0",
        loader=_load_videoreward,
        size="4.4 GB with the Qwen2-VL base",
        accepts_video=True,
        description="Video reward model (Qwen2-VL-2B + head): VQ + MQ + TA, normalised; needs a GPU in practice.",
    )
)
register_kind(
    RewardKind(
        name="colorfulness",
        title="Colorfulness (no weights)",
        folder="colorfulness",
        files=(),
        source="built in (Hasler & Süsstrunk 2003)",
        licence="this pack's",
        loader=_load_colorfulness,
        accepts_video=True,
        needs_prompt=False,
        description="Hasler–Süsstrunk colourfulness; needs no model, useful for first runs and tests.",
    )
)


def _load_vqascore(path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, **options: Any) -> Any:
    from .vqascore import load_vqascore

    return load_vqascore(path, dtype=dtype, prompt=prompt, **options)


def _load_hpsv3(path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, **options: Any) -> Any:
    from .hpsv3 import load_hpsv3

    return load_hpsv3(path, dtype=dtype, prompt=prompt, roots=roots, **options)


def _load_aesthetic_v25(path: Path, *, dtype: torch.dtype, prompt: str | None, roots: tuple, **options: Any) -> Any:
    from .aesthetic_v25 import load_aesthetic_v25

    return load_aesthetic_v25(path, dtype=dtype, prompt=prompt, roots=roots, **options)


def _load_shapes(path: None, *, dtype: torch.dtype, prompt: str | None, roots: tuple) -> Any:
    from .shapes_reward import ShapesReward

    return ShapesReward(prompt)


register_kind(
    RewardKind(
        name="vqascore",
        title="VQAScore (Qwen2-VL / Qwen2.5-VL instruct)",
        folder="vqascore",
        files=("Qwen2.5-VL-7B-Instruct", "Qwen2.5-VL-3B-Instruct", "Qwen2-VL-7B-Instruct", "Qwen2-VL-2B-Instruct"),
        source="https://huggingface.co/Qwen/Qwen2.5-VL-7B-Instruct (whole folder; or another Qwen2-VL / Qwen2.5-VL "
        "instruct folder)",
        licence="Qwen2.5-VL-7B, Qwen2-VL-2B/7B-Instruct: Apache-2.0 (Qwen2.5-VL-3B: Qwen Research licence); method "
        "after t2v_metrics (Apache-2.0); the pack ships no weights",
        loader=_load_vqascore,
        size="16.6 GB for Qwen2.5-VL-7B-Instruct, 4.4 GB for Qwen2-VL-2B-Instruct",
        description='log P("Yes") of a VLM asked whether the image shows the prompt (≤ 0); optional per-part questions '
        "that must all hold (sum of logs); needs a GPU in practice.",
    )
)
register_kind(
    RewardKind(
        name="hpsv3",
        title="HPSv3",
        folder="hpsv3",
        files=("HPSv3.safetensors",),
        source="https://huggingface.co/MizzenAI/HPSv3 (file HPSv3.safetensors) + "
        "https://huggingface.co/Qwen/Qwen2-VL-7B-Instruct (config.json, tokenizer.json) + prompt_template.txt",
        licence="weights Apache-2.0 (model card), code MIT; Qwen2-VL-7B-Instruct Apache-2.0; the pack ships no weights",
        loader=_load_hpsv3,
        size="16.6 GB",
        description="Human Preference Score v3 (Qwen2-VL-7B + RankNet head): the predicted μ, prompt-aware; needs a "
        "GPU with ≥ 20 GB in bf16.",
    )
)
register_kind(
    RewardKind(
        name="aesthetic_v25",
        title="Aesthetic predictor v2.5 (SigLIP)",
        folder="aesthetic_v25",
        files=("aesthetic_predictor_v2_5.pth",),
        source="https://github.com/discus0434/aesthetic-predictor-v2-5 (models/aesthetic_predictor_v2_5.pth) + "
        "https://huggingface.co/google/siglip-so400m-patch14-384 (whole folder, in aesthetic_v25/)",
        licence="head weights AGPL-3.0 (published with the AGPL-3.0 predictor); SigLIP so400m Apache-2.0; this pack "
        "ships neither their code nor their weights (own implementation)",
        loader=_load_aesthetic_v25,
        size="2.6 MB head + 3.5 GB SigLIP so400m",
        needs_prompt=False,
        description="Aesthetic score ≈1–10 (5.5+ is great) from an MLP on the SigLIP so400m image embedding; "
        "ignores the prompt.",
    )
)
register_kind(
    RewardKind(
        name="shapes",
        title="Shapes verifier (no weights)",
        folder="shapes",
        files=(),
        source="built in (GenEval-style verifier for the EvoSearch Shapes Model)",
        licence="this pack's",
        loader=_load_shapes,
        accepts_video=True,
        description="Parses a shapes image (colours, components, shapes, counts, positions) and checks the prompt; "
        "score = ½·dense + ½·pass in 0..1, passes() gives the strict verdict.",
    )
)
