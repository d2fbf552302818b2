"""Train the EvoSearch demo from a seed on the CPU: digit classifier, tiny VAE, tiny SD1.5-style UNet (minutes).

    COMFYUI_PATH=/path/to/ComfyUI python tools/train_demo.py --out assets/demo --seed 0

Stages (each seeded from ``--seed``, each writing one safetensors file into ``--out``):

1. **classifier** (``digit_classifier.safetensors``): :class:`rewards.digits.DigitClassifier` on the training split,
   with affine, blur, gain and noise augmentation; held-out accuracy and the per-digit ink bands go into its metadata.
2. **vae** (``vae.safetensors``): ComfyUI's ``AutoencoderKL`` (32×32×3 ↔ 8×8×4), reconstruction + small KL loss; the
   latents are then standardised per channel and the scale folded into ``quant_conv``/``post_quant_conv`` so that
   ``latent · 0.18215`` (SD1.5's latent format) has zero mean and unit variance.
3. **unet** (``unet.safetensors``): ComfyUI's SD1.5 ``BaseModel`` (ε-prediction), trained in ComfyUI's model space on
   the shipped VAE's latents with its own ``model_sampling`` (1000 discrete timesteps, scaled-linear betas); EMA weights.
4. **eval** (``training_report.json``): ComfyUI's sampler on the trained model, decoded and classified.

Everything runs on the CPU with ``--threads`` threads; with the same torch version and thread count the weights are
reproducible bit for bit. ``--quick`` runs every stage with a token budget (the test suite does this).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib.util
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger("evosearch.train_demo")

UNET_FILE = "unet.safetensors"
VAE_FILE = "vae.safetensors"
CLASSIFIER_FILE = "digit_classifier.safetensors"
REPORT_FILE = "training_report.json"


@dataclass(frozen=True)
class TrainConfig:
    """Budgets and hyper-parameters of every stage (the defaults produced the shipped weights)."""

    seed: int = 0
    threads: int = 1
    #: Use only the first N digits of each split (0 = all); the quick budget uses a few to stay fast.
    subset: int = 0
    # classifier
    classifier_epochs: int = 30
    classifier_batch: int = 128
    classifier_lr: float = 3e-3
    # vae
    vae_steps: int = 600
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-4
    # unet
    latent_copies: int = 8
    unet_steps: int = 2000
    unet_batch: int = 64
    unet_lr: float = 1e-3
    ema_decay: float = 0.998
    #: Min-SNR-γ loss weighting (Hang et al. 2023): weight = min(SNR, γ)/SNR on the ε loss; 0 disables it.
    min_snr_gamma: float = 5.0
    #: Augmentation of the latents' source images (milder than the classifier's: the prior should stay on-data).
    latent_rotate_deg: float = 5.0
    latent_shift_px: float = 1.0
    # eval
    eval_samples: int = 256
    eval_steps: int = 20
    #: (sampler, scheduler) pairs measured after training, cfg 1; the first one also draws samples.png.
    eval_settings: tuple[tuple[str, str], ...] = (("dpmpp_2m_sde", "karras"), ("euler_ancestral", "normal"))


#: A token budget that exercises every code path in seconds (tests).
QUICK = TrainConfig(
    subset=48, classifier_epochs=1, vae_steps=2, vae_batch=8, latent_copies=1, unet_steps=2, unet_batch=8, eval_samples=4,
    eval_steps=2, eval_settings=(("euler_ancestral", "normal"),),
)  # fmt: skip


# ------------------------------------------------------------------------------------------------------------ helpers
def _boot(comfyui: str | Path | None) -> ModuleType:
    """ComfyUI + this pack as ``evosearch_pack`` (reuses an already booted one, e.g. under pytest)."""
    if "evosearch_pack" in sys.modules:
        return sys.modules["evosearch_pack"]
    spec = importlib.util.spec_from_file_location("_evosearch_comfy_env", Path(__file__).with_name("comfy_env.py"))
    assert spec is not None and spec.loader is not None
    env = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(env)
    return env.boot_comfyui(comfyui)


def torch_default_init(module: torch.nn.Module) -> None:
    """Give every layer PyTorch's default initialisation (ComfyUI's layers skip ``reset_parameters``)."""
    for sub in module.modules():
        for base in type(sub).__mro__:
            if base.__module__.startswith("torch.nn.modules") and "reset_parameters" in base.__dict__:
                base.reset_parameters(sub)
                break


def _split(cfg: TrainConfig, data: ModuleType):
    """The seeded digit split, cut to ``cfg.subset`` digits per side when set."""
    split = data.load_digit_split(cfg.seed)
    if not cfg.subset:
        return split
    k = cfg.subset
    return data.DigitSplit(split.train_digits[:k], split.train_labels[:k], split.test_digits[:k], split.test_labels[:k])


def _cosine_lr(step: int, total: int, warmup: int, floor: float = 0.1) -> float:
    warm = min(1.0, (step + 1) / max(1, warmup))
    return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * step / max(1, total))))


def _half_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to(torch.float16).contiguous() for k, v in module.state_dict().items()}


def _save(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()}
    save_file(tensors, str(path), metadata=meta)
    logger.info("wrote %s (%.1f kB)", path, path.stat().st_size / 1024)


# --------------------------------------------------------------------------------------------------------- classifier
def _classifier_augment(digits: torch.Tensor, gen: torch.Generator, data: ModuleType) -> torch.Tensor:
    """Training views for the classifier: a wider affine warp, random blur, ink gain and pixel noise."""
    images = data.augment_render(digits, gen, max_rotate_deg=15.0, scale_range=(0.85, 1.15), max_shift_px=3.0)
    x = images[..., 0][:, None]
    n = x.shape[0]
    sigma = torch.rand(n, generator=gen) * 1.0  # blur σ in pixels, 0..1
    coords = torch.arange(-2, 3, dtype=torch.float32)
    kernels = torch.exp(-(coords[None] ** 2) / (2 * sigma[:, None].clamp_min(1e-3) ** 2))
    kernels = kernels / kernels.sum(dim=1, keepdim=True)
    x = F.conv2d(F.pad(x.transpose(0, 1), (2, 2, 0, 0), mode="replicate"), kernels[:, None, None, :], groups=n)
    x = F.conv2d(F.pad(x, (0, 0, 2, 2), mode="replicate"), kernels[:, None, :, None], groups=n).transpose(0, 1)
    gain = 0.75 + 0.5 * torch.rand(n, 1, 1, 1, generator=gen)
    x = x * gain + 0.04 * torch.randn(x.shape, generator=gen)
    return x.clamp(0, 1)


def train_classifier(cfg: TrainConfig, out: Path, pack: ModuleType) -> dict[str, Any]:
    digits_mod = pack.rewards.digits
    data = pack.tools.demo_data
    split = _split(cfg, data)
    torch.manual_seed(cfg.seed + 1)
    model = digits_mod.DigitClassifier()
    gen = torch.Generator().manual_seed(cfg.seed + 11)
    n = len(split.train_labels)
    steps_per_epoch = math.ceil(n / cfg.classifier_batch)
    total = cfg.classifier_epochs * steps_per_epoch
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.classifier_lr, weight_decay=1e-4)
    step, loss_avg = 0, float("nan")
    model.train()
    for _epoch in range(cfg.classifier_epochs):
        order = torch.randperm(n, generator=gen)
        for b in range(steps_per_epoch):
            idx = order[b * cfg.classifier_batch : (b + 1) * cfg.classifier_batch]
            x = _classifier_augment(split.train_digits[idx], gen, data)
            loss = F.cross_entropy(model(x), split.train_labels[idx], label_smoothing=0.05)
            for group in opt.param_groups:
                group["lr"] = cfg.classifier_lr * _cosine_lr(step, total, warmup=20, floor=0.02)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_avg = loss.item() if step == 0 else 0.95 * loss_avg + 0.05 * loss.item()
            step += 1
    model.eval()
    with torch.no_grad():
        test_clean = data.render(split.test_digits)
        test_aug = data.augment_render(split.test_digits, torch.Generator().manual_seed(cfg.seed + 12))
        acc_clean = (model(digits_mod.images_to_input(test_clean)).argmax(1) == split.test_labels).float().mean().item()
        acc_aug = (model(digits_mod.images_to_input(test_aug)).argmax(1) == split.test_labels).float().mean().item()
        train_ink = digits_mod.ink_amount(data.render(split.train_digits))
    bands = digits_mod.InkBands.from_data(train_ink, split.train_labels)
    metrics = {
        "train_loss_ema": round(loss_avg, 4),
        "heldout_accuracy": round(acc_clean, 4),
        "heldout_accuracy_augmented": round(acc_aug, 4),
        "heldout_size": len(split.test_labels),
        "train_size": n,
        "steps": step,
    }
    state = {k: v.detach().float().contiguous() for k, v in model.state_dict().items()}
    _save(
        out / CLASSIFIER_FILE,
        state,
        {"classifier_config": model.config, "ink_bands": bands.to_json(), "metrics": metrics, "seed": str(cfg.seed)},
    )
    logger.info("classifier: %s", metrics)
    return metrics


# ---------------------------------------------------------------------------------------------------------------- vae
def _vae_moments(vae: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    mean, logvar = vae.quant_conv(vae.encoder(x)).chunk(2, dim=1)
    return mean, logvar.clamp(-30.0, 20.0)


@torch.no_grad()
def _fold_latent_standardisation(
    vae: torch.nn.Module, mean: torch.Tensor, std: torch.Tensor, target_std: float
) -> None:
    """Rescale so that encoder means become ``(μ − mean)·target_std/std`` per channel, and undo it in the decoder."""
    c = mean.numel()
    k = target_std / std
    qw, qb = vae.quant_conv.weight, vae.quant_conv.bias  # [2c, 2c_z, 1, 1]: first c outputs are means, then log-vars
    qw[:c] *= k.view(c, 1, 1, 1)
    qb[:c] = (qb[:c] - mean) * k
    qb[c:] += 2.0 * torch.log(k)
    pw, pb = vae.post_quant_conv.weight, vae.post_quant_conv.bias  # [z, c, 1, 1]: z = pw·(z'/k + mean) + pb
    pb += (pw[:, :, 0, 0] * mean[None]).sum(dim=1)
    pw /= k.view(1, c, 1, 1)


def train_vae(cfg: TrainConfig, out: Path, pack: ModuleType) -> dict[str, Any]:
    from comfy.ldm.models.autoencoder import AutoencoderKL

    demo = pack.nodes.demo_model
    data = pack.tools.demo_data
    split = _split(cfg, data)
    torch.manual_seed(cfg.seed + 2)
    vae = AutoencoderKL(ddconfig=copy.deepcopy(demo.VAE_DDCONFIG), embed_dim=demo.VAE_EMBED_DIM)
    torch_default_init(vae)
    vae.float().train()
    gen = torch.Generator().manual_seed(cfg.seed + 21)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    n = len(split.train_labels)
    loss_avg = float("nan")
    for step in range(cfg.vae_steps):
        idx = torch.randint(0, n, (cfg.vae_batch,), generator=gen)
        x = data.augment_render(split.train_digits[idx], gen).permute(0, 3, 1, 2) * 2 - 1
        mean, logvar = _vae_moments(vae, x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        rec = vae.decode(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        mse = (rec - x).pow(2).mean()
        loss = mse + 0.5 * (rec - x).abs().mean() + cfg.vae_kl_weight * kl
        for group in opt.param_groups:
            group["lr"] = cfg.vae_lr * _cosine_lr(step, cfg.vae_steps, warmup=30)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = mse.item() if step == 0 else 0.95 * loss_avg + 0.05 * mse.item()
        if step % 50 == 0:
            logger.info("vae step %d/%d mse %.4f kl %.3f", step, cfg.vae_steps, mse.item(), kl.item())
    vae.eval()
    with torch.no_grad():
        train_x = data.render(split.train_digits).permute(0, 3, 1, 2) * 2 - 1
        mu, _ = _vae_moments(vae, train_x)
        ch_mean, ch_std = mu.mean(dim=(0, 2, 3)), mu.std(dim=(0, 2, 3)).clamp_min(1e-4)
        scale = pack_latent_scale()
        _fold_latent_standardisation(vae, ch_mean, ch_std, 1.0 / scale)
        # measure the shipped (float16-rounded) weights
        vae.load_state_dict({k: v.float() for k, v in _half_state(vae).items()})
        test_x = data.render(split.test_digits).permute(0, 3, 1, 2) * 2 - 1
        mu_test, _ = _vae_moments(vae, test_x)
        rec = vae.decode(mu_test)
        mse01 = ((rec.clamp(-1, 1) - test_x) / 2).pow(2).mean().item()
        model_space = _vae_moments(vae, train_x)[0] * scale
    metrics = {
        "train_mse_ema": round(loss_avg, 5),
        "heldout_mse_0_1": round(mse01, 6),
        "heldout_psnr_db": round(10 * math.log10(1.0 / max(mse01, 1e-12)), 2),
        "model_space_latent_mean": [round(v, 3) for v in model_space.mean(dim=(0, 2, 3)).tolist()],
        "model_space_latent_std": [round(v, 3) for v in model_space.std(dim=(0, 2, 3)).tolist()],
        "steps": cfg.vae_steps,
    }
    config = {"ddconfig": demo.VAE_DDCONFIG, "embed_dim": demo.VAE_EMBED_DIM}
    _save(out / VAE_FILE, _half_state(vae), {"vae_config": config, "metrics": metrics, "seed": str(cfg.seed)})
    logger.info("vae: %s", metrics)
    return metrics


def pack_latent_scale() -> float:
    """SD1.5's latent scale factor, read from ComfyUI (0.18215)."""
    import comfy.latent_formats

    return float(comfy.latent_formats.SD15().scale_factor)


# --------------------------------------------------------------------------------------------------------------- unet
@torch.no_grad()
def _encode_training_latents(cfg: TrainConfig, out: Path, pack: ModuleType) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoder means and standard deviations (VAE space) of ``latent_copies`` augmented views of each training digit."""
    from comfy.ldm.models.autoencoder import AutoencoderKL

    demo = pack.nodes.demo_model
    data = pack.tools.demo_data
    split = _split(cfg, data)
    meta = demo.read_metadata(out / VAE_FILE)
    config = json.loads(meta["vae_config"])
    from safetensors.torch import load_file

    vae = AutoencoderKL(ddconfig=config["ddconfig"], embed_dim=config["embed_dim"])
    vae.load_state_dict({k: v.float() for k, v in load_file(str(out / VAE_FILE)).items()})
    vae.eval()
    gen = torch.Generator().manual_seed(cfg.seed + 31)
    means, stds = [], []
    for copy_index in range(cfg.latent_copies):
        views = (
            data.render(split.train_digits)
            if copy_index == 0
            else data.augment_render(
                split.train_digits, gen, max_rotate_deg=cfg.latent_rotate_deg, scale_range=(0.95, 1.05),
                max_shift_px=cfg.latent_shift_px,
            )
        )  # fmt: skip
        for chunk in views.split(512):
            mu, logvar = _vae_moments(vae, chunk.permute(0, 3, 1, 2) * 2 - 1)
            means.append(mu)
            stds.append(torch.exp(0.5 * logvar))
    return torch.cat(means), torch.cat(stds)


def _zero_output_layers(unet: torch.nn.Module) -> None:
    """Zero the last layer of every residual branch and the output conv, as latent-diffusion training does."""
    with torch.no_grad():
        for name, sub in unet.named_modules():
            if name.endswith(("out_layers.3", "proj_out")) or name == "out.2":
                for p in sub.parameters():
                    p.zero_()


def train_unet(cfg: TrainConfig, out: Path, pack: ModuleType) -> dict[str, Any]:
    demo = pack.nodes.demo_model
    t0 = time.perf_counter()
    lat_mean, lat_std = _encode_training_latents(cfg, out, pack)
    encode_s = time.perf_counter() - t0
    torch.manual_seed(cfg.seed + 3)
    model = demo.build_unet(demo.UNET_CONFIG, dtype=torch.float32)
    unet = model.diffusion_model
    torch_default_init(unet)
    _zero_output_layers(unet)
    unet.float().train()
    ema = copy.deepcopy(unet).eval().requires_grad_(False)
    sampling = model.model_sampling
    sigmas = sampling.sigmas.float()
    gen = torch.Generator().manual_seed(cfg.seed + 41)
    opt = torch.optim.AdamW(unet.parameters(), lr=cfg.unet_lr, weight_decay=0.0)
    context = torch.zeros(cfg.unet_batch, 1, demo.CONTEXT_DIM)
    n = lat_mean.shape[0]
    loss_avg = float("nan")
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, n, (cfg.unet_batch,), generator=gen)
        z_vae = lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)
        x0 = model.process_latent_in(z_vae)  # VAE space → model space (×0.18215)
        t = torch.randint(0, len(sigmas), (cfg.unet_batch,), generator=gen)
        sigma = sigmas[t]
        eps = torch.randn(x0.shape, generator=gen)
        x = x0 + eps * sigma.view(-1, 1, 1, 1)  # ComfyUI's EPS model space: x = x0 + σ·ε
        pred = unet(sampling.calculate_input(sigma, x), sampling.timestep(sigma).float(), context=context)
        per_sample = (pred - eps).pow(2).mean(dim=(1, 2, 3))
        if cfg.min_snr_gamma > 0:
            snr = sigma.pow(-2)  # SNR of x = x0 + σ·ε with unit-variance x0
            per_sample = per_sample * snr.clamp(max=cfg.min_snr_gamma) / snr
        loss = per_sample.mean()
        for group in opt.param_groups:
            group["lr"] = cfg.unet_lr * _cosine_lr(step, cfg.unet_steps, warmup=50)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for pe, p in zip(ema.parameters(), unet.parameters()):
                pe.lerp_(p, 1 - decay)
        loss_avg = loss.item() if step == 0 else 0.98 * loss_avg + 0.02 * loss.item()
        if step % 100 == 0:
            logger.info("unet step %d/%d loss %.4f (avg %.4f)", step, cfg.unet_steps, loss.item(), loss_avg)
    n_params = sum(p.numel() for p in ema.parameters())
    metrics = {
        "train_loss_ema": round(loss_avg, 5),
        "steps": cfg.unet_steps,
        "batch": cfg.unet_batch,
        "parameters": n_params,
        "training_latents": n,
        "encode_seconds": round(encode_s, 1),
    }
    _save(
        out / UNET_FILE,
        _half_state(ema),
        {"unet_config": demo.UNET_CONFIG, "model_type": "EPS", "latent_format": "SD15", "metrics": metrics,
         "seed": str(cfg.seed)},
    )  # fmt: skip
    logger.info("unet: %s", metrics)
    return metrics


# ---------------------------------------------------------------------------------------------------------------- run
STAGES = ("classifier", "vae", "unet", "eval")


def run(
    cfg: TrainConfig, out: Path, comfyui: str | Path | None = None, stages: tuple[str, ...] = STAGES
) -> dict[str, Any]:
    """Train ``stages`` into ``out`` and return the report (also written to ``out/training_report.json``).

    Skipped stages reuse the files already in ``out`` (the report keeps their earlier entries).
    """
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        # callers such as ComfyUI nodes or host tests may sit inside inference mode: training needs autograd
        with torch.inference_mode(False), torch.enable_grad():
            return _run_stages(cfg, Path(out), comfyui, stages)
    finally:
        torch.set_num_threads(threads)


def _run_stages(cfg: TrainConfig, out: Path, comfyui: str | Path | None, stages: tuple[str, ...]) -> dict[str, Any]:
    pack = _boot(comfyui)
    import importlib

    importlib.import_module("evosearch_pack.tools.demo_data")
    importlib.import_module("evosearch_pack.rewards.digits")
    importlib.import_module("evosearch_pack.nodes.demo_model")
    evaluate = importlib.import_module("evosearch_pack.tools.eval_demo")
    report: dict[str, Any] = {}
    if (out / REPORT_FILE).is_file() and set(stages) != set(STAGES):
        report = json.loads((out / REPORT_FILE).read_text())
    report.update({"config": dataclasses.asdict(cfg), "torch": torch.__version__, "threads": cfg.threads})
    seconds = report.setdefault("seconds", {})
    cpu_seconds = report.setdefault("cpu_seconds", {})
    for name, stage in (("classifier", train_classifier), ("vae", train_vae), ("unet", train_unet), ("eval", None)):
        if name not in stages:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        if stage is not None:
            report[name] = stage(cfg, out, pack)
        else:
            report[name] = {
                f"{sampler}/{scheduler}": evaluate.unconditional_report(
                    out,
                    n=cfg.eval_samples,
                    steps=cfg.eval_steps,
                    sampler=sampler,
                    scheduler=scheduler,
                    seed=cfg.seed,
                    grid=index == 0,
                )
                for index, (sampler, scheduler) in enumerate(cfg.eval_settings)
            }
        seconds[name] = round(time.perf_counter() - t0, 1)
        cpu_seconds[name] = round(time.process_time() - c0, 1)
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 1)
    cpu_seconds["total"] = round(sum(v for k, v in cpu_seconds.items() if k != "total"), 1)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    logger.info("done in %.0f s (%.0f s CPU); report in %s", seconds["total"], cpu_seconds["total"], out / REPORT_FILE)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo")
    parser.add_argument("--comfyui", default=None, help="ComfyUI source tree (default: $COMFYUI_PATH)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--quick", action="store_true", help="token budgets: checks the code path in seconds")
    parser.add_argument("--unet-steps", type=int, default=None, help="override the UNet training steps")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_flush_denormal(True)  # part of the recipe: denormals flushed to zero (also avoids slow CPU paths)
    cfg = QUICK if args.quick else TrainConfig()
    cfg = dataclasses.replace(cfg, seed=args.seed, threads=args.threads)
    if args.unet_steps is not None:
        cfg = dataclasses.replace(cfg, unet_steps=args.unet_steps)
    run(cfg, args.out, args.comfyui, tuple(s.strip() for s in args.stages.split(",") if s.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
