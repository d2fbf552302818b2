"""Reward scoring cost on this machine: tiny models, and full-size CLIP ViT-L/14, ImageReward and (``--vlm``) the
SigLIP aesthetic v2.5, VQAScore and HPSv3 architectures in fp32 and bf16.

Random weights only (nothing is downloaded): each model is built on the ``meta`` device and materialised through the
production loader (:func:`rewards.weights.load_into`: key/shape check, dtype cast, ``assign=True``) from a seeded
random state dict. A batch of 8 images (512×512, smooth random content) is scored once per configuration after a
one-image warm-up; the table gives seconds per image, and for bf16 the score difference to fp32 on the same weights.

    python bench/rewards_speed.py            # tiny, CLIP ViT-L/14, ImageReward (full-size part: ~1–3 min on 2 cores)
    python bench/rewards_speed.py --tiny     # tiny models only
    python bench/rewards_speed.py --only-vlm --vlm            # SigLIP aesthetic v2.5, VQAScore, HPSv3 (see
    python bench/rewards_speed.py --only-vlm --vlm vqascore   #   bench/rewards_speed_vlm.py), one image per call
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rewards.clip_rewards import Aesthetic, ClipScore, HPSv2, PickScore  # noqa: E402
from rewards.heads import LinearStack  # noqa: E402
from rewards.imagereward import ImageReward, ImageRewardArch, ImageRewardModel  # noqa: E402
from rewards.weights import load_into, meta_module  # noqa: E402

log = logging.getLogger("evosearch.bench")
PROMPT = "an astronaut riding a horse on mars, highly detailed"
#: Full-size rows in bench/rewards_speed_vlm.py (opt-in: minutes per image on a CPU).
VLM_ROWS = ("aesthetic_v25", "vqascore", "hpsv3")


#: Key prefixes of reward heads: random weights wide enough to spread the scores, kept in fp32 as the loaders do.
HEADS = ("mlp.", "layers.")


def random_state(
    module: torch.nn.Module,
    gen: torch.Generator,
    dtype: torch.dtype = torch.float32,
    heads: tuple[str, ...] = HEADS,
) -> dict[str, torch.Tensor]:
    """Seeded random weights for every key of a (meta) module: N(0, 0.02) matrices, unit norms, zero biases, and
    reward heads scaled like a trained head (ImageReward's own init makes every score ≈ −0.16, docs/rewards.md §2).

    Each tensor is cast to ``dtype`` (heads: fp32) as soon as it is drawn, so a 2 B model in bf16 never holds an
    fp32 copy of itself."""
    sd = {}
    for key, t in module.state_dict().items():
        if key.endswith("bias"):
            value = torch.zeros(t.shape)
        elif t.dim() == 1 and ("norm" in key.lower() or "ln" in key):
            value = torch.ones(t.shape)
        elif t.dim() == 0:
            value = torch.tensor(4.6052)  # CLIP logit_scale = log 100
        elif key.startswith(heads):  # reward heads: wide enough to spread the scores
            value = torch.randn(t.shape, generator=gen) * (2.0 / t.shape[-1] ** 0.5)
        else:
            value = torch.randn(t.shape, generator=gen) * 0.02
        sd[key] = (
            value if not value.is_floating_point() else value.to(torch.float32 if key.startswith(heads) else dtype)
        )
    return sd


def materialise(
    factory: Callable[[], torch.nn.Module], dtype: torch.dtype, seed: int = 0, heads: tuple[str, ...] = HEADS
) -> torch.nn.Module:
    """Meta build + seeded random weights through the production loader (heads kept in fp32, as the loaders do)."""
    model = meta_module(factory)
    sd = random_state(model, torch.Generator().manual_seed(seed), dtype, heads)
    return load_into(model, sd, who="bench", expected="", dtype=dtype, keep_fp32=lambda k: k.startswith(heads))


def clip_config(size: str):
    from transformers import CLIPConfig

    if size == "tiny":
        text = dict(hidden_size=48, intermediate_size=96, num_attention_heads=2, num_hidden_layers=2)
        vision = dict(hidden_size=64, intermediate_size=128, num_attention_heads=2, num_hidden_layers=2, patch_size=8)
        return CLIPConfig(
            text_config={**text, "hidden_act": "quick_gelu"},
            vision_config={**vision, "image_size": 32, "hidden_act": "quick_gelu"},
            projection_dim=32,
        )
    # OpenAI CLIP ViT-L/14 (openai/clip-vit-large-patch14)
    text = dict(hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12)
    vision = dict(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24, patch_size=14)
    return CLIPConfig(
        text_config={**text, "hidden_act": "quick_gelu"},
        vision_config={**vision, "image_size": 224, "hidden_act": "quick_gelu"},
        projection_dim=768,
    )


TINY_BLIP = ImageRewardArch(
    vision_width=64,
    vision_layers=2,
    vision_heads=2,
    vision_mlp=128,
    image_size=32,
    patch_size=8,
    text_width=48,
    text_layers=2,
    text_heads=2,
    text_mlp=96,
    max_positions=40,
)


def images(n: int, gen: torch.Generator, size: int = 512) -> torch.Tensor:
    low = torch.rand(n, 3, 16, 16, generator=gen)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).permute(0, 2, 3, 1).contiguous()


def timed(reward, x: torch.Tensor, warmup: torch.Tensor | None = None) -> tuple[float, torch.Tensor]:
    """Seconds for one ``score`` call on ``x`` after a warm-up call (on ``warmup``, default the first image)."""
    with torch.no_grad():
        reward.score(x[:1] if warmup is None else warmup, PROMPT)
        start = time.perf_counter()
        scores = reward.score(x, PROMPT)
        return time.perf_counter() - start, scores


def tiny_rewards() -> dict[str, object]:
    from transformers import CLIPModel

    clip = materialise(lambda: CLIPModel(clip_config("tiny")), torch.float32)
    head = materialise(lambda: LinearStack((32, 24, 16, 8, 4, 1)), torch.float32)
    blip = materialise(lambda: ImageRewardModel(TINY_BLIP, (48, 64, 32, 16, 8, 1)), torch.float32)
    return {
        "clipscore": ClipScore(clip, PROMPT),
        "hpsv2": HPSv2(clip, PROMPT),
        "pickscore": PickScore(clip, PROMPT),
        "aesthetic": Aesthetic(clip, head, PROMPT),
        "imagereward": ImageReward(blip, PROMPT),
    }


def bench_tiny(x: torch.Tensor, threads: list[int]) -> Iterator[tuple]:
    rewards = tiny_rewards()
    for n in threads:
        torch.set_num_threads(n)
        for name, reward in rewards.items():
            times = []
            for _ in range(5):
                seconds, _ = timed(reward, x)
                times.append(seconds)
            yield f"tiny {name}", f"{n} thread{'s' if n > 1 else ''}", "fp32", min(times) / len(x) * 1e3, ""


def bench_full(x: torch.Tensor) -> Iterator[tuple]:
    from transformers import CLIPModel

    builders = {
        "CLIP ViT-L/14 (CLIPScore)": (lambda: CLIPModel(clip_config("full")), ClipScore),
        "ImageReward v1.0": (lambda: ImageRewardModel(ImageRewardArch()), ImageReward),
    }
    for label, (factory, wrap) in builders.items():
        results = {}
        for dtype in (torch.float32, torch.bfloat16):
            start = time.perf_counter()
            model = materialise(factory, dtype, seed=1)
            built = time.perf_counter() - start
            params = sum(p.numel() for p in model.parameters()) / 1e6
            seconds, scores = timed(wrap(model, PROMPT), x)
            results[dtype] = scores
            note = f"{params:.0f} M params, built+loaded in {built:.1f} s"
            if dtype == torch.bfloat16:
                ref = results[torch.float32]
                diff = (scores - ref).abs()
                same = int(scores.argmax()) == int(ref.argmax())
                rank = torch.corrcoef(
                    torch.stack([scores.argsort().argsort().float(), ref.argsort().argsort().float()])
                )[0, 1]
                note = (
                    f"|Δ| max {diff.max():.2e}, mean {diff.mean():.2e} (scores ≈{ref.abs().mean():.3f}); "
                    f"rank corr {rank:.3f}, same best: {same}"
                )
            yield (
                label,
                f"{torch.get_num_threads()} threads",
                str(dtype).removeprefix("torch."),
                seconds / len(x) * 1e3,
                note,
            )
            del model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tiny", action="store_true", help="tiny models only")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument(
        "--vlm",
        nargs="*",
        choices=VLM_ROWS,
        default=None,
        help="also (or with --only-vlm: only) the full-size rows of these rewards (all three if none is named); "
        "slow on a CPU: about an hour on one core",
    )
    parser.add_argument("--only-vlm", action="store_true", help="skip the tiny, CLIP and ImageReward rows")
    parser.add_argument("--vlm-batch", type=int, default=1, help="images per scoring call for the --vlm rows")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    threads = torch.get_num_threads()
    x = images(args.batch, torch.Generator().manual_seed(0))
    load = "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()) if hasattr(os, "getloadavg") else ""
    print(
        f"batch of {args.batch} images, 512×512, scored once after a 1-image warm-up; torch {torch.__version__}, "
        f"{threads} CPU threads; {load}"
    )
    print(f"{'model':<28} {'threads':<10} {'dtype':<9} {'ms/image':>10}  notes")
    print("-" * 110)

    def emit(rows: Iterator[tuple]) -> None:
        for m, t, d, ms, n in rows:
            print(f"{m:<28} {t:<10} {d:<9} {ms:>10.1f}  {n}", flush=True)

    if not args.only_vlm:
        emit(bench_tiny(x, sorted({1, threads})))
        torch.set_num_threads(threads)
        if not args.tiny:
            emit(bench_full(x))
    if args.vlm is not None:
        from bench.rewards_speed_vlm import bench_vlm

        print(f"full-size VLM/SigLIP rows: {args.vlm_batch} image(s) of 512×512 per call, after a 64×64 warm-up")
        emit(bench_vlm(x[: args.vlm_batch], args.vlm or list(VLM_ROWS), materialise, timed, PROMPT))


if __name__ == "__main__":
    main()
