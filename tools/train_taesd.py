"""Distil the digit demo's VAE decoder into ComfyUI's TAESD architecture: a scoring VAE for the demo (minutes, CPU).

    COMFYUI_PATH=/path/to/ComfyUI python tools/train_taesd.py --out assets/demo --seed 0

Writes ``taesd_digits.safetensors`` (and ``taesd_report.json``, also in the file's metadata): ``taesd_decoder.*``
+ ``vae_scale`` (0.18215) + ``vae_shift`` (0), the keys ``comfy.sd.VAE`` (and so the Load VAE node, for a file in
``models/vae/``) detects as TAESD. It decodes the demo's
8×8×4 latents to **64×64** images (TAESD always upsamples 8×; the demo VAE 4× to 32×32). The digit reward resizes
any image to its 32×32 input (bilinear, antialiased), so the scoring path needs no adapter; the decoder is trained
on exactly that view (``tools/taesd_distill.py``). It is a decoder only (no ``taesd_encoder.*``: not for VAE Encode).

Latents (model space, i.e. what the UNet and the samplers see):

* posterior samples of the training digits (augmented views, encoded by the demo VAE), as the UNet was trained on;
* every x0 prediction along trajectories of the demo UNet (recommended sampler: dpmpp_2m_sde, karras, 20 steps,
  cfg 1) — the final samples and the blurry early predictions that x0-fitness searches score.

Held-out numbers use the held-out digits and trajectories from other seeds. Teacher = the shipped demo VAE.

Another model/VAE pair (e.g. a second demo model) is one :func:`distil_model` call with its MODEL, conditioning,
empty-latent maker and VAE; the distillation itself (:mod:`tools.taesd_distill`) takes any teacher and latent pool.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import importlib.util
import json
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

logger = logging.getLogger("evosearch.train_taesd")

TAESD_FILE = "taesd_digits.safetensors"  #: = nodes.demo_model.TAESD_FILE (importable without ComfyUI)
REPORT_FILE = "taesd_report.json"


@dataclasses.dataclass(frozen=True)
class LatentConfig:
    """Which latents the decoder is distilled on (digit demo)."""

    #: Augmented views per training digit, each a posterior sample (mean + std·ε) of the demo VAE's encoder.
    posterior_copies: int = 3
    #: Demo-UNet trajectories whose every x0 prediction joins the pool (20 per trajectory at 20 steps).
    trajectories: int = 192
    heldout_trajectories: int = 48
    #: Held-out x0 predictions are taken every this many steps (the full decoder is slow to evaluate).
    heldout_every: int = 4
    steps: int = 20
    sampler: str = "dpmpp_2m_sde"
    scheduler: str = "karras"
    #: Use only the first N digits of each split (0 = all; the quick budget uses a few).
    subset: int = 0


QUICK_DISTILL = {"batch": 4, "fast_steps": 2, "full_steps": 1, "log_every": 0}
QUICK_LATENTS = LatentConfig(posterior_copies=1, trajectories=2, heldout_trajectories=3, steps=3, subset=16)


def _boot(comfyui: str | Path | None) -> ModuleType:
    """ComfyUI + this pack as ``evosearch_pack`` (reuses an already booted one, e.g. under pytest)."""
    if "evosearch_pack" in sys.modules:
        return sys.modules["evosearch_pack"]
    spec = importlib.util.spec_from_file_location("_evosearch_comfy_env", Path(__file__).with_name("comfy_env.py"))
    assert spec is not None and spec.loader is not None
    env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(env)
    return env.boot_comfyui(comfyui)


# ----------------------------------------------------------------------------------------------------------- latents
@torch.no_grad()
def posterior_latents(vae: Any, latent_format: Any, images: torch.Tensor, gen: torch.Generator | None) -> torch.Tensor:
    """Model-space latents of ``images`` ``[N,H,W,3]`` through an ``AutoencoderKL`` VAE's encoder: posterior samples
    (``gen`` given) or means (``gen`` None)."""
    ae = vae.first_stage_model
    out = []
    for chunk in images.split(256):
        moments = ae.quant_conv(ae.encoder(chunk.movedim(-1, 1).float() * 2 - 1))
        mean, logvar = moments.chunk(2, dim=1)
        if gen is not None:
            mean = mean + torch.exp(0.5 * logvar.clamp(-30, 20)) * torch.randn(mean.shape, generator=gen)
        z = mean
        out.append(latent_format.process_in(z))
    return torch.cat(out)


@torch.no_grad()
def trajectory_latents(
    model: Any, positive: list, negative: list, empty_latent: Any, n: int, *, steps: int, sampler: str,
    scheduler: str, cfg: float = 1.0, seed: int = 0, chunk: int = 64,
) -> torch.Tensor:  # fmt: skip
    """Every x0 prediction (model space) of ``n`` trajectories of ``comfy.sample.sample`` (what KSampler runs):
    ``[steps, n, C, h, w]``, the last row being the final samples.

    ``empty_latent(batch)`` gives the LATENT dict to sample; chunk ``i`` uses noise seed ``seed + i``.
    """
    import comfy.sample

    chunks: list[torch.Tensor] = []
    for i, start in enumerate(range(0, n, chunk)):
        batch = min(chunk, n - start)
        latent = empty_latent(batch)["samples"]
        noise = comfy.sample.prepare_noise(latent, seed + i)
        rows: list[torch.Tensor] = []

        def capture(_step: int, x0: torch.Tensor, _x: torch.Tensor, _total: int, rows: list = rows) -> None:
            rows.append(x0.detach().float().cpu().clone())

        comfy.sample.sample(model, noise, steps, cfg, sampler, scheduler, positive, negative, latent,
                            callback=capture, disable_pbar=True, seed=seed + i)  # fmt: skip
        chunks.append(torch.stack(rows))
    return torch.cat(chunks, dim=1)


def digit_latents(bundle: Any, lat: LatentConfig, seed: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The digit demo's own latents: posterior samples of augmented training digits (training) and the encoder
    means of the held-out digits (held-out), model space."""
    data = importlib.import_module("evosearch_pack.tools.demo_data")
    split = data.load_digit_split(seed)
    train, test = split.train_digits, split.test_digits
    if lat.subset:
        train, test = train[: lat.subset], test[: lat.subset]
    fmt = bundle.model.model.latent_format
    gen = torch.Generator().manual_seed(seed + 101)
    views = torch.cat([data.augment_render(train, gen) for _ in range(lat.posterior_copies)])
    posterior = posterior_latents(bundle.vae, fmt, views, gen)
    return posterior, {"heldout_digits": posterior_latents(bundle.vae, fmt, data.render(test), None)}


@torch.no_grad()
def reward_agreement(teacher: Any, decoder: torch.nn.Module, latents: torch.Tensor) -> dict:
    """Spearman correlation of the demo rewards (target 3) between teacher and student decodes of ``latents``."""
    digits = importlib.import_module("evosearch_pack.rewards.digits")
    stats = importlib.import_module("evosearch_pack.bench.ranking")
    full = teacher(latents).movedim(1, -1)
    fast = decoder(latents).clamp(0, 1).movedim(1, -1)
    out = {}
    for kind in ("digit", "digit_bold"):
        reward = digits.DigitReward.load(target=3, kind=kind)
        out[kind] = round(stats.spearman(reward.score(full), reward.score(fast)), 4)
    return out


# --------------------------------------------------------------------------------------------------------------- run
def distil_model(
    model: Any, positive: list, negative: list, empty_latent: Callable[[int], dict], vae: Any, path: Path, *,
    seed: int = 0, lat: LatentConfig | None = None, cfg: Any = None, cfg_scale: float = 1.0,
    extra_train: torch.Tensor | None = None, extra_heldout: dict[str, torch.Tensor] | None = None,
    check: Callable[[Any, torch.nn.Module, dict[str, torch.Tensor]], dict] | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Distil ``vae``'s decoder into a TAESD file at ``path`` for any MODEL/VAE pair, in one call.

    Latents: every x0 prediction along ``lat.trajectories`` trajectories of ``model`` (``lat``'s sampler, steps and
    ``cfg_scale``; noise seeds from ``seed + 50_000``), after ``extra_train`` if given; held out: the trajectories of
    other seeds (x0 predictions every ``lat.heldout_every`` steps, and the final samples) plus ``extra_heldout``.
    ``cfg``: a :class:`tools.taesd_distill.DistillConfig` (default: its defaults with ``seed``). ``check(teacher,
    decoder, pools)`` adds model-specific held-out numbers (e.g. reward agreement). Returns the report, which also
    goes into the file's metadata and ``taesd_report.json`` beside it.
    """
    distill = importlib.import_module("evosearch_pack.tools.taesd_distill")
    lat = lat or LatentConfig()
    cfg = cfg or distill.DistillConfig(seed=seed)
    t0 = time.perf_counter()
    fmt = model.model.latent_format
    sample = {"steps": lat.steps, "sampler": lat.sampler, "scheduler": lat.scheduler, "cfg": cfg_scale}
    paths = trajectory_latents(model, positive, negative, empty_latent, lat.trajectories, seed=seed + 50_000,
                               **sample)  # fmt: skip
    held_paths = trajectory_latents(model, positive, negative, empty_latent, lat.heldout_trajectories,
                                    seed=seed + 60_000, **sample)  # fmt: skip
    train = paths.flatten(0, 1) if extra_train is None else torch.cat([extra_train, paths.flatten(0, 1)])
    pools = {
        "train": train,
        **(extra_heldout or {}),
        "heldout_x0_predictions": held_paths[: -1 : lat.heldout_every].flatten(0, 1),
        "heldout_samples": held_paths[-1],
    }
    latent_seconds = time.perf_counter() - t0
    logger.info("latents: %s in %.0f s", {k: tuple(v.shape) for k, v in pools.items()}, latent_seconds)
    teacher = distill.vae_teacher(vae, fmt)
    with torch.inference_mode(False), torch.enable_grad():
        decoder, log = distill.distil(teacher, pools["train"], cfg)
    # measure the shipped (float16-rounded) weights
    state = distill.taesd_state_dict(decoder, fmt)
    decoder.load_state_dict({k.removeprefix("taesd_decoder."): v.float() for k, v in state.items()
                             if k.startswith("taesd_decoder.")})  # fmt: skip
    heldout = {k: distill.evaluate(decoder, teacher, v) for k, v in pools.items() if k != "train"}
    if check is not None:
        heldout.update(check(teacher, decoder, pools))
    report = {
        "seed": seed,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "latent_config": dataclasses.asdict(lat),
        "latents": {k: int(v.shape[0]) for k, v in pools.items()},
        "latent_seconds": round(latent_seconds, 1),
        "training": log,
        "heldout": heldout,
        "seconds": round(time.perf_counter() - t0, 1),
        "parameters": sum(p.numel() for p in decoder.parameters()),
    }
    meta = {"taesd_config": {"latent_channels": int(train.shape[1]), "upscale": distill.TAESD_UPSCALE},
            **(metadata or {}), "report": report, "seed": str(seed)}  # fmt: skip
    distill.save_taesd(path, state, meta)
    (path.parent / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    logger.info("held-out: %s; total %.0f s", json.dumps(heldout), report["seconds"])
    return report


def run(
    out: Path, *, comfyui: str | Path | None = None, seed: int = 0, threads: int = 1, quick: bool = False,
    **overrides: Any,
) -> dict[str, Any]:  # fmt: skip
    """Distil the shipped demo VAE into ``out/taesd_digits.safetensors``; returns the report (also in the metadata).

    ``overrides``: :class:`tools.taesd_distill.DistillConfig` fields (e.g. ``fast_steps=100``).
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        _boot(comfyui)
        distill = importlib.import_module("evosearch_pack.tools.taesd_distill")
        demo = importlib.import_module("evosearch_pack.nodes.demo_model")
        cfg = distill.DistillConfig(seed=seed, **(QUICK_DISTILL if quick else {}), **overrides)
        lat = QUICK_LATENTS if quick else LatentConfig()
        bundle = demo.load_demo(dtype=torch.float32, vae_dtype=torch.float32)
        posterior, held_digits = digit_latents(bundle, lat, seed)
        return distil_model(
            bundle.model, bundle.positive, bundle.negative, demo.empty_latent, bundle.vae, Path(out) / TAESD_FILE,
            seed=seed, lat=lat, cfg=cfg, extra_train=posterior, extra_heldout=held_digits,
            check=lambda teacher, decoder, pools: {
                "reward_agreement": reward_agreement(teacher, decoder, pools["heldout_samples"])
            },
            metadata={"teacher": "EvoSearch digit demo VAE (assets/demo/vae.safetensors)", "image_size": 64,
                      "teacher_image_size": 32},
        )  # fmt: skip
    finally:
        torch.set_num_threads(previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo")
    parser.add_argument("--comfyui", default=None, help="ComfyUI source tree (default: $COMFYUI_PATH)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="token budgets: checks the code path in seconds")
    parser.add_argument("--fast-steps", type=int, default=None, help="override DistillConfig.fast_steps")
    parser.add_argument("--full-steps", type=int, default=None, help="override DistillConfig.full_steps")
    parser.add_argument("--batch", type=int, default=None, help="override DistillConfig.batch")
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in (("fast_steps", args.fast_steps), ("full_steps", args.full_steps),
                                   ("batch", args.batch)) if v is not None}  # fmt: skip
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_flush_denormal(True)  # part of the recipe, as in tools/train_demo.py
    report = run(args.out, comfyui=args.comfyui, seed=args.seed, threads=args.threads, quick=args.quick, **overrides)
    sys.stdout.write(json.dumps(report["heldout"], indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
