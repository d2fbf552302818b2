"""Train the shapes text-to-image model from a seed on the CPU: a tiny VAE, then a UNet and CLIP text encoder jointly.

    COMFYUI_PATH=/path/to/ComfyUI python tools/train_shapes.py --out assets/shapes --seed 0

Stages (each seeded from ``--seed``, each writing into ``--out``):

1. **vae** (``vae.safetensors``): ComfyUI's ``AutoencoderKL`` (32×32×3 ↔ 8×8×4) on freshly rendered scenes,
   reconstruction + small KL loss; latents standardised per channel and the scale folded into the (post-)quant convs
   so that ``latent · 0.18215`` has zero mean and unit variance (as ``tools/train_demo.py`` does). Its metadata holds
   the held-out PSNR and the verifier's accuracy on rendered and on VAE round-tripped scenes.
2. **unet** (``unet.safetensors``, ``text_encoder.safetensors``): ComfyUI's SD1.5 ``BaseModel`` (ε-prediction) and
   ComfyUI's ``CLIPTextModel`` trained together on the VAE's latents of ``scenes`` rendered scenes, each step with
   fresh random captions (:class:`tools.shapes_data.CaptionSampler`; 10 % empty for classifier-free guidance),
   tokenised by ComfyUI's SD1 CLIP tokenizer; Min-SNR-γ weighted ε-loss; EMA weights for both.
3. **eval** (``training_report.json``, ``samples.png``): the plain sampler through ``comfy.sample.sample`` on the
   GenEval-style prompt set of ``tools/eval_shapes.py``, judged by the ``shapes`` verifier.

``--round 1`` (with ``--stages unet,eval``) continues the UNet and text encoder already in ``--out`` on fresh seeded
scenes, captions and noise; the shipped weights are round 0 plus round 1 (assets/shapes/README.md).

One CPU thread by default; with the same torch version and thread count the weights are reproducible bit for bit.
``--quick`` runs every stage with a token budget (the test suite does this).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import importlib
import json
import logging
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("evosearch.train_shapes")

UNET_FILE = "unet.safetensors"
VAE_FILE = "vae.safetensors"
TEXT_ENCODER_FILE = "text_encoder.safetensors"
REPORT_FILE = "training_report.json"
STAGES = ("vae", "unet", "eval")


@dataclass(frozen=True)
class TrainConfig:
    """Budgets and hyper-parameters of every stage.

    The defaults produced round 0 of the shipped weights; round 1 continued it with ``--stages unet,eval --round 1
    --unet-steps 1500`` (assets/shapes/README.md).
    """

    seed: int = 0
    threads: int = 1
    # vae
    vae_steps: int = 1000
    vae_batch: int = 32
    vae_lr: float = 2e-3
    vae_kl_weight: float = 1e-4
    #: Scenes rendered for the verifier's accuracy check on VAE round trips (each with ~6 labelled prompts).
    vae_check_scenes: int = 300
    # unet + text encoder
    scenes: int = 15000
    unet_steps: int = 1800
    unet_batch: int = 32
    unet_lr: float = 1e-3
    text_lr: float = 5e-4
    ema_decay: float = 0.998
    min_snr_gamma: float = 5.0
    caption_dropout: float = 0.1
    caption_drop_colour: float = 0.15
    #: 0 trains the UNet and text encoder from scratch; r ≥ 1 continues from the ones already in ``--out`` (a warm
    #: restart of the cosine schedule) on fresh scenes, captions and noise (streams seeded ``seed + 1000·r``).
    continue_round: int = 0
    # eval
    eval_prompts_per_category: int = 8
    eval_seeds: int = 4
    eval_steps: int = 20
    eval_cfg: float = 4.0
    eval_sampler: str = "dpmpp_2m_sde"
    eval_scheduler: str = "karras"


#: A token budget that exercises every code path in seconds (tests).
QUICK = TrainConfig(
    vae_steps=2, vae_batch=8, vae_check_scenes=6, scenes=64, unet_steps=2, unet_batch=8, eval_prompts_per_category=1,
    eval_seeds=1, eval_steps=2,
)  # fmt: skip


def _boot(comfyui: str | Path | None) -> ModuleType:
    from train_demo import _boot as boot  # type: ignore[import-not-found]  (same folder when run as a script)

    return boot(comfyui)


def _modules() -> dict[str, ModuleType]:
    names = {
        "demo": "evosearch_pack.tools.train_demo",
        "data": "evosearch_pack.tools.shapes_data",
        "model": "evosearch_pack.nodes.shapes_model",
        "cases": "evosearch_pack.rewards.shapes.cases",
        "render": "evosearch_pack.rewards.shapes.render",
        "reward": "evosearch_pack.rewards.shapes_reward",
        "eval": "evosearch_pack.tools.eval_shapes",
    }
    return {k: importlib.import_module(v) for k, v in names.items()}


# ---------------------------------------------------------------------------------------------------------------- vae
def _vae_from_file(path: Path, m: dict[str, ModuleType]) -> torch.nn.Module:
    from comfy.ldm.models.autoencoder import AutoencoderKL
    from safetensors.torch import load_file

    config = json.loads(m["model"].demo_model.read_metadata(path)["vae_config"])
    vae = AutoencoderKL(ddconfig=config["ddconfig"], embed_dim=config["embed_dim"])
    vae.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return vae.eval()


@torch.no_grad()
def _round_trip(vae: torch.nn.Module, images: torch.Tensor, m: dict[str, ModuleType]) -> torch.Tensor:
    out = []
    for chunk in images.split(256):
        mean, _ = m["demo"]._vae_moments(vae, chunk.permute(0, 3, 1, 2) * 2 - 1)
        out.append(((vae.decode(mean).clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1))
    return torch.cat(out)


def verifier_accuracy(images: torch.Tensor, cases: list, m: dict[str, ModuleType]) -> dict[str, Any]:
    """The verifier's strict verdicts on ``images`` (one per case) against each case's ground truth."""
    reward = m["reward"].ShapesReward()
    passes = reward.passes(images, [c.prompt.text for c in cases])
    truth = torch.tensor([c.truth for c in cases])
    right = passes == truth
    by_kind: dict[str, list[float]] = {}
    for c, r in zip(cases, right.tolist()):
        by_kind.setdefault(c.kind, []).append(float(r))
    return {
        "accuracy": round(right.float().mean().item(), 4),
        "cases": len(cases),
        "true_positive_rate": round(passes[truth].float().mean().item(), 4),
        "true_negative_rate": round((~passes[~truth]).float().mean().item(), 4),
        "by_kind": {k: round(sum(v) / len(v), 4) for k, v in sorted(by_kind.items())},
    }


def train_vae(cfg: TrainConfig, out: Path, m: dict[str, ModuleType]) -> dict[str, Any]:
    from comfy.ldm.models.autoencoder import AutoencoderKL

    demo, model_mod, data = m["demo"], m["model"], m["data"]
    torch.manual_seed(cfg.seed + 2)
    vae = AutoencoderKL(ddconfig=copy.deepcopy(model_mod.VAE_DDCONFIG), embed_dim=model_mod.VAE_EMBED_DIM)
    demo.torch_default_init(vae)
    vae.float().train()
    gen = torch.Generator().manual_seed(cfg.seed + 21)
    pool = data.make_scenes(max(cfg.vae_batch * 8, min(8192, cfg.vae_steps * cfg.vae_batch)), seed=cfg.seed + 22)
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    n = pool.images.shape[0]
    loss_avg = float("nan")
    for step in range(cfg.vae_steps):
        idx = torch.randint(0, n, (cfg.vae_batch,), generator=gen)
        x = pool.images[idx].permute(0, 3, 1, 2) * 2 - 1
        mean, logvar = demo._vae_moments(vae, x)
        z = mean + torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen)
        rec = vae.decode(z)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1.0 - logvar).mean()
        mse = (rec - x).pow(2).mean()
        loss = mse + 0.5 * (rec - x).abs().mean() + cfg.vae_kl_weight * kl
        for group in opt.param_groups:
            group["lr"] = cfg.vae_lr * demo._cosine_lr(step, cfg.vae_steps, warmup=30)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss_avg = mse.item() if step == 0 else 0.95 * loss_avg + 0.05 * mse.item()
        if step % 100 == 0:
            logger.info("vae step %d/%d mse %.4f kl %.3f", step, cfg.vae_steps, mse.item(), kl.item())
    vae.eval()
    with torch.no_grad():
        x = pool.images.permute(0, 3, 1, 2) * 2 - 1
        mu = torch.cat([demo._vae_moments(vae, c)[0] for c in x.split(512)])
        ch_mean, ch_std = mu.mean(dim=(0, 2, 3)), mu.std(dim=(0, 2, 3)).clamp_min(1e-4)
        demo._fold_latent_standardisation(vae, ch_mean, ch_std, 1.0 / demo.pack_latent_scale())
        vae.load_state_dict({k: v.float() for k, v in demo._half_state(vae).items()})  # measure what ships
    config = {"ddconfig": model_mod.VAE_DDCONFIG, "embed_dim": model_mod.VAE_EMBED_DIM}
    path = out / VAE_FILE
    demo._save(path, demo._half_state(vae), {"vae_config": config, "seed": str(cfg.seed)})
    metrics = vae_metrics(path, cfg, m)
    metrics.update({"train_mse_ema": round(loss_avg, 5), "steps": cfg.vae_steps, "training_scenes": n})
    demo._save(path, demo._half_state(vae), {"vae_config": config, "metrics": metrics, "seed": str(cfg.seed)})
    logger.info("vae: %s", {k: v for k, v in metrics.items() if k != "verifier"})
    return metrics


def vae_metrics(path: Path, cfg: TrainConfig, m: dict[str, ModuleType]) -> dict[str, Any]:
    """Held-out reconstruction error and the verifier's accuracy on rendered vs round-tripped scenes."""
    vae = _vae_from_file(path, m)
    rng = np.random.default_rng(cfg.seed + 23)
    cases = m["cases"].verification_cases(cfg.vae_check_scenes, rng)
    rendered = m["render"].render([c.scene for c in cases])
    decoded = _round_trip(vae, rendered, m)
    mse = (decoded - rendered).pow(2).mean().item()
    return {
        "heldout_mse_0_1": round(mse, 6),
        "heldout_psnr_db": round(10 * math.log10(1.0 / max(mse, 1e-12)), 2),
        "verifier": {"rendered": verifier_accuracy(rendered, cases, m), "vae_round_trip":
                     verifier_accuracy(decoded, cases, m)},
    }  # fmt: skip


# ------------------------------------------------------------------------------------------------------ unet + text
class _TrainableCLIPLayer(torch.nn.Module):
    """Out-of-place forward for ComfyUI's ``CLIPLayer`` (its ``x +=`` residuals break autograd); same parameters."""

    def forward(self, x: torch.Tensor, mask: Any = None, optimized_attention: Any = None) -> torch.Tensor:
        x = x + self.self_attn(self.layer_norm1(x), mask, optimized_attention)
        return x + self.mlp(self.layer_norm2(x))


def build_text_model(config: dict[str, Any], demo: ModuleType) -> torch.nn.Module:
    """ComfyUI's ``CLIPTextModel`` for training: PyTorch default init, CLIP's N(0, 0.02)/N(0, 0.01) embeddings."""
    import comfy.clip_model
    import comfy.ops

    text = comfy.clip_model.CLIPTextModel(config, torch.float32, "cpu", comfy.ops.disable_weight_init)
    demo.torch_default_init(text)
    with torch.no_grad():
        text.text_model.embeddings.token_embedding.weight.normal_(0, 0.02)
        text.text_model.embeddings.position_embedding.weight.normal_(0, 0.01)
    for layer in text.text_model.encoder.layers:
        layer.__class__ = type("TrainableCLIPLayer", (_TrainableCLIPLayer, type(layer)), {})
    return text.float().train()


@torch.no_grad()
def _encode_scenes(cfg: TrainConfig, out: Path, m: dict[str, ModuleType]):
    vae = _vae_from_file(out / VAE_FILE, m)
    scenes = m["data"].make_scenes(cfg.scenes, seed=cfg.seed + 31 + 1000 * cfg.continue_round)
    means, stds = [], []
    for chunk in scenes.images.split(512):
        mu, logvar = m["demo"]._vae_moments(vae, chunk.permute(0, 3, 1, 2) * 2 - 1)
        means.append(mu)
        stds.append(torch.exp(0.5 * logvar))
    return torch.cat(means), torch.cat(stds), scenes.prompts


def _tokenizer(m: dict[str, ModuleType]):
    tokenizer = m["model"].ShapesTokenizer()

    def tokenize(text: str) -> list[int]:
        return [t for t, _w in tokenizer.tokenize_with_weights(text)["l"][0]]

    return tokenize


def train_unet(cfg: TrainConfig, out: Path, m: dict[str, ModuleType]) -> dict[str, Any]:
    demo, model_mod, data = m["demo"], m["model"], m["data"]
    t0 = time.perf_counter()
    lat_mean, lat_std, prompts = _encode_scenes(cfg, out, m)
    encode_s = time.perf_counter() - t0
    torch.manual_seed(cfg.seed + 3)
    model = model_mod.demo_model.build_unet(model_mod.UNET_CONFIG, dtype=torch.float32)
    unet = model.diffusion_model
    demo.torch_default_init(unet)
    demo._zero_output_layers(unet)
    unet.float().train()
    text = build_text_model(model_mod.TEXT_CONFIG, demo)
    previous_ids = _continue_from(out, unet, text, m) if cfg.continue_round > 0 else torch.zeros(0, dtype=torch.long)
    ema_unet = copy.deepcopy(unet).eval().requires_grad_(False)
    ema_text = copy.deepcopy(text).eval().requires_grad_(False)
    sampling = model.model_sampling
    sigmas = sampling.sigmas.float()
    stream = cfg.seed + 1000 * cfg.continue_round
    gen = torch.Generator().manual_seed(stream + 41)
    captions = data.CaptionSampler(
        np.random.default_rng(stream + 42), dropout=cfg.caption_dropout, drop_colour=cfg.caption_drop_colour
    )
    tokens = data.TokenCache(_tokenizer(m))
    tokens([""])  # the unconditional caption is always in the vocabulary
    opt = torch.optim.AdamW(
        [
            {"params": list(unet.parameters()), "lr": cfg.unet_lr},
            {"params": list(text.parameters()), "lr": cfg.text_lr},
        ],
        weight_decay=0.0,
    )
    base_lr = [cfg.unet_lr, cfg.text_lr]
    params = [p for g in opt.param_groups for p in g["params"]]
    n = lat_mean.shape[0]
    loss_avg = float("nan")
    for step in range(cfg.unet_steps):
        idx = torch.randint(0, n, (cfg.unet_batch,), generator=gen)
        z_vae = lat_mean[idx] + lat_std[idx] * torch.randn(lat_mean[idx].shape, generator=gen)
        x0 = model.process_latent_in(z_vae)
        context = text(tokens([captions(prompts[i]) for i in idx.tolist()]))[0]  # [B,77,width], last layer, final LN
        t = torch.randint(0, len(sigmas), (cfg.unet_batch,), generator=gen)
        sigma = sigmas[t]
        eps = torch.randn(x0.shape, generator=gen)
        x = x0 + eps * sigma.view(-1, 1, 1, 1)
        pred = unet(sampling.calculate_input(sigma, x), sampling.timestep(sigma).float(), context=context)
        per_sample = (pred - eps).pow(2).mean(dim=(1, 2, 3))
        if cfg.min_snr_gamma > 0:
            snr = sigma.pow(-2)
            per_sample = per_sample * snr.clamp(max=cfg.min_snr_gamma) / snr
        loss = per_sample.mean()
        factor = demo._cosine_lr(step, cfg.unet_steps, warmup=100)
        for group, lr in zip(opt.param_groups, base_lr):
            group["lr"] = lr * factor
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        decay = min(cfg.ema_decay, (1 + step) / (10 + step))
        with torch.no_grad():
            for ema, live in ((ema_unet, unet), (ema_text, text)):
                for pe, p in zip(ema.parameters(), live.parameters()):
                    pe.lerp_(p, 1 - decay)
        loss_avg = loss.item() if step == 0 else 0.98 * loss_avg + 0.02 * loss.item()
        if step % 100 == 0:
            logger.info("unet step %d/%d loss %.4f (avg %.4f)", step, cfg.unet_steps, loss.item(), loss_avg)
    seen = torch.unique(torch.cat([tokens.seen_ids(), previous_ids.long()]))
    metrics = {
        "train_loss_ema": round(loss_avg, 5),
        "round": cfg.continue_round,
        "steps": cfg.unet_steps,
        "batch": cfg.unet_batch,
        "unet_parameters": sum(p.numel() for p in ema_unet.parameters()),
        "text_parameters_stored": sum(p.numel() for p in ema_text.parameters())
        - (ema_text.text_model.embeddings.token_embedding.weight.shape[0] - len(seen)) * model_mod.TEXT_WIDTH,
        "training_scenes": n,
        "distinct_captions": len(tokens.cache),
        "vocabulary_tokens": len(seen),
        "encode_seconds": round(encode_s, 1),
    }
    common = {"metrics": metrics, "seed": str(cfg.seed)}
    demo._save(
        out / UNET_FILE,
        demo._half_state(ema_unet),
        {"unet_config": model_mod.UNET_CONFIG, "model_type": "EPS", "latent_format": "SD15", **common},
    )
    text_state = model_mod.sparse_text_state(demo._half_state(ema_text), seen)
    text_state["token_ids"] = text_state["token_ids"].to(torch.int32)
    demo._save(out / TEXT_ENCODER_FILE, text_state,
               {"text_config": model_mod.TEXT_CONFIG, "tokenizer": "comfy/sd1_tokenizer (ComfyUI's SD1 CLIP)", **common})  # fmt: skip
    logger.info("unet: %s", metrics)
    return metrics


def _continue_from(out: Path, unet: torch.nn.Module, text: torch.nn.Module, m: dict[str, ModuleType]) -> torch.Tensor:
    """Load the UNet and text encoder of the previous round from ``out``; return the token ids it stored."""
    from safetensors.torch import load_file

    model_mod = m["model"]
    state = load_file(str(out / UNET_FILE))
    unet.load_state_dict({k.removeprefix("diffusion_model."): v.float() for k, v in state.items()})
    stored = load_file(str(out / TEXT_ENCODER_FILE))
    dense = model_mod.dense_text_state(stored, model_mod.TEXT_CONFIG["vocab_size"])
    missing, unexpected = text.load_state_dict({k: v.float() for k, v in dense.items()}, strict=False)
    if unexpected or [k for k in missing if "text_projection" not in k]:
        raise ValueError(
            f"train_shapes: {out / TEXT_ENCODER_FILE} does not fit the text model ({missing}, {unexpected})"
        )
    logger.info("round continues from %s and %s", out / UNET_FILE, out / TEXT_ENCODER_FILE)
    return stored["token_ids"]


# ---------------------------------------------------------------------------------------------------------------- run
def run(
    cfg: TrainConfig, out: Path, comfyui: str | Path | None = None, stages: tuple[str, ...] = STAGES
) -> dict[str, Any]:
    """Train ``stages`` into ``out`` and return the report (also written to ``out/training_report.json``)."""
    unknown = set(stages) - set(STAGES)
    if unknown:
        raise ValueError(f"unknown stages {sorted(unknown)}; choose from {', '.join(STAGES)}")
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        with torch.inference_mode(False), torch.enable_grad():
            return _run_stages(cfg, Path(out), comfyui, stages)
    finally:
        torch.set_num_threads(threads)


def _run_stages(cfg: TrainConfig, out: Path, comfyui: str | Path | None, stages: tuple[str, ...]) -> dict[str, Any]:
    if "evosearch_pack" not in sys.modules:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        _boot(comfyui)
    m = _modules()
    out.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {}
    if (out / REPORT_FILE).is_file() and set(stages) != set(STAGES):
        report = json.loads((out / REPORT_FILE).read_text())
    report.update({"config": dataclasses.asdict(cfg), "torch": torch.__version__, "threads": cfg.threads})
    seconds = report.setdefault("seconds", {})
    cpu_seconds = report.setdefault("cpu_seconds", {})
    for name in STAGES:
        if name not in stages:
            continue
        t0, c0 = time.perf_counter(), time.process_time()
        key = f"unet_round{cfg.continue_round}" if name == "unet" and cfg.continue_round else name
        if name == "vae":
            report[key] = train_vae(cfg, out, m)
        elif name == "unet":
            report[key] = train_unet(cfg, out, m)
        else:
            report[key] = m["eval"].evaluate(
                out, prompts_per_category=cfg.eval_prompts_per_category, seeds=cfg.eval_seeds, steps=cfg.eval_steps,
                cfg=cfg.eval_cfg, sampler=cfg.eval_sampler, scheduler=cfg.eval_scheduler, seed=cfg.seed,
                grid=out / "samples.png",
            )  # fmt: skip
        seconds[key] = round(time.perf_counter() - t0, 1)
        cpu_seconds[key] = round(time.process_time() - c0, 1)
    seconds["total"] = round(sum(v for k, v in seconds.items() if k != "total"), 1)
    cpu_seconds["total"] = round(sum(v for k, v in cpu_seconds.items() if k != "total"), 1)
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    logger.info("done in %.0f s (%.0f s CPU); report in %s", seconds["total"], cpu_seconds["total"], out / REPORT_FILE)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "shapes")
    parser.add_argument("--comfyui", default=None, help="ComfyUI source tree (default: $COMFYUI_PATH)")
    parser.add_argument("--seed", type=int, default=TrainConfig.seed)
    parser.add_argument("--threads", type=int, default=TrainConfig.threads)
    parser.add_argument("--quick", action="store_true", help="token budgets: checks the code path in seconds")
    parser.add_argument("--unet-steps", type=int, default=None, help="override the UNet training steps")
    parser.add_argument("--vae-steps", type=int, default=None, help="override the VAE training steps")
    parser.add_argument("--scenes", type=int, default=None, help="override the number of training scenes")
    parser.add_argument("--round", type=int, default=0, help="0: train from scratch; r ≥ 1: continue (see TrainConfig)")
    parser.add_argument("--stages", default=",".join(STAGES), help="comma-separated subset of " + ",".join(STAGES))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_flush_denormal(True)
    cfg = QUICK if args.quick else TrainConfig()
    cfg = dataclasses.replace(cfg, seed=args.seed, threads=args.threads)
    overrides = {
        "unet_steps": args.unet_steps,
        "vae_steps": args.vae_steps,
        "scenes": args.scenes,
        "continue_round": args.round,
    }
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    run(cfg, args.out, args.comfyui, tuple(s.strip() for s in args.stages.split(",") if s.strip()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
