"""Distil any ComfyUI VAE's decoder into ComfyUI's TAESD decoder architecture, cheaply, on a CPU.

Generic over the teacher and its latents: :func:`distil` takes a *teacher* (model-space latents → images
``[B,3,H,W]`` in 0..1, e.g. :func:`vae_teacher` around a ``comfy.sd.VAE``) and a pool of model-space latents; it
returns a ``comfy.taesd.taesd`` ``Decoder`` that :func:`save_taesd` writes with the keys ComfyUI's VAE detection reads
(``taesd_decoder.*``, ``vae_scale``, ``vae_shift``: ``comfy.sd.VAE(sd=…)`` and the Load VAE node build a ``TAESD``
from them). ``tools/train_taesd.py`` applies it to the digit demo.

**Resolution.** TAESD's decoder always upsamples 8×. A teacher with another compression (the demo VAE: 4×) is matched
in the teacher's own resolution: the student's output is resized (bilinear, antialiased — what the demo reward and
most rewards do to their input) to the teacher's size before the loss, plus a small loss at the student's size
against the bilinearly enlarged teacher, so the student's image itself stays faithful.

**Two stages, so a CPU can afford it.** A TAESD decoder step costs ~1.1 GMAC per 8×8 latent, most of it in the last
two (32² and 64²) stages. Every ``Block`` is residual (``relu(branch(x) + x)``); with its branch's last conv at zero
it is ``relu``, the identity on the non-negative input it then gets. Stage 1 (``fast_steps``) trains the decoder
with blocks 13–15 and 18 held at that identity and conv 17 at the identity kernel, and skips them in the forward
pass (:func:`fast_forward`, exactly the full decoder's output with those layers at identity, about 1/7 of the cost).
Stage 2 (``full_steps``) fine-tunes every layer through the real ``Decoder.forward``, starting from the identities
(zero-initialised residual branches, a standard start for residual nets). Every random number comes from generators
seeded by ``DistillConfig.seed``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

logger = logging.getLogger("evosearch.taesd_distill")

__all__ = [
    "IDENTITY_BLOCKS",
    "DistillConfig",
    "distil",
    "evaluate",
    "fast_forward",
    "graft_identities",
    "new_decoder",
    "save_taesd",
    "taesd_state_dict",
    "vae_teacher",
]

#: Indices (in ``comfy.taesd.taesd.Decoder``'s ``nn.Sequential``) of the blocks stage 1 holds at identity, and of the
#: conv after the last upsample that it holds at the identity kernel.
IDENTITY_BLOCKS = (13, 14, 15, 18)
IDENTITY_CONV = 17
#: TAESD's decoder upsamples by this factor (three ×2 stages).
TAESD_UPSCALE = 8

Teacher = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class DistillConfig:
    """Hyper-parameters of :func:`distil` (the defaults made the shipped demo decoder)."""

    seed: int = 0
    batch: int = 8
    #: Stage 1: steps of the fast forward (identity blocks skipped), AdamW, cosine schedule.
    fast_steps: int = 900
    fast_lr: float = 2e-3
    #: Stage 2: steps through the full decoder, every layer trained (0: none; on the digit demo 30 steps, ~1 min,
    #: did not improve on stage 1's held-out numbers).
    full_steps: int = 0
    full_lr: float = 3e-4
    #: Loss = L1 + MSE at the teacher's resolution, + ``big_weight`` · MSE at the student's own resolution
    #: (against the bilinearly enlarged teacher), + ``mean_weight`` · |Δ mean brightness| per image.
    big_weight: float = 0.25
    mean_weight: float = 1.0
    log_every: int = 100


# ---------------------------------------------------------------------------------------------------- architecture
def new_decoder(latent_channels: int, seed: int) -> torch.nn.Module:
    """A ComfyUI TAESD ``Decoder`` with PyTorch's default init from ``seed`` and every block's branch ending at zero."""
    import comfy.taesd.taesd

    decoder = comfy.taesd.taesd.Decoder(latent_channels=latent_channels)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in decoder.modules():
            if isinstance(module, torch.nn.Conv2d):
                fan_in = module.weight[0].numel()
                bound = 1.0 / math.sqrt(fan_in)  # kaiming_uniform(a=√5), torch's Conv2d default
                module.weight.copy_((torch.rand(module.weight.shape, generator=gen) * 2 - 1) * bound)
                if module.bias is not None:
                    module.bias.copy_((torch.rand(module.bias.shape, generator=gen) * 2 - 1) * bound)
        for module in decoder:
            if _is_block(module):
                _zero_branch_end(module)
    return decoder.float()


def _is_block(module: torch.nn.Module) -> bool:
    return hasattr(module, "conv") and hasattr(module, "skip") and hasattr(module, "fuse")


def _zero_branch_end(block: torch.nn.Module) -> None:
    last = block.conv[-1]
    last.weight.zero_()
    if last.bias is not None:
        last.bias.zero_()


@torch.no_grad()
def graft_identities(decoder: torch.nn.Module) -> None:
    """Set the layers :func:`fast_forward` skips to identity: blocks' branches end at zero, conv 17 = identity."""
    for index in IDENTITY_BLOCKS:
        _zero_branch_end(decoder[index])
    conv = decoder[IDENTITY_CONV]
    conv.weight.zero_()
    channels = conv.weight.shape[0]
    conv.weight[:, :, 1, 1] = torch.eye(channels, dtype=conv.weight.dtype)


def fast_forward(decoder: torch.nn.Module, z: torch.Tensor) -> torch.Tensor:
    """The decoder's output with the :data:`IDENTITY_BLOCKS` and conv 17 at identity, without computing them.

    Layers 0–12 (to the conv after the second upsample), then block 13 = ``relu`` (blocks 14, 15 and 18 repeat it, a
    no-op on non-negative input), the last upsample, conv 17 = identity, and the output conv 19.
    """
    h = decoder[: IDENTITY_BLOCKS[0]](z)
    h = F.relu(h)
    h = decoder[16](h)  # nn.Upsample(scale_factor=2)
    return decoder[19](h)


# ----------------------------------------------------------------------------------------------------- teacher/loss
def vae_teacher(vae: Any, latent_format: Any) -> Teacher:
    """A teacher from a ``comfy.sd.VAE``: model-space latents → ``vae.decode`` → images ``[B,3,H,W]`` in 0..1."""

    @torch.no_grad()
    def teach(z: torch.Tensor) -> torch.Tensor:
        images = vae.decode(latent_format.process_out(z.float()))
        return images.movedim(-1, 1).float().clamp(0, 1).clone()

    return teach


def _losses(student: torch.Tensor, target: torch.Tensor, cfg: DistillConfig) -> tuple[torch.Tensor, dict[str, float]]:
    """Loss of student images ``[B,3,8h,8w]`` (raw: ComfyUI clamps to 0..1 after decoding) vs teacher ``[B,3,H,W]``."""
    small = F.interpolate(student, size=target.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
    diff = small - target
    l1, mse = diff.abs().mean(), diff.pow(2).mean()
    big_target = F.interpolate(target, size=student.shape[-2:], mode="bilinear", align_corners=False)
    big = (student - big_target).pow(2).mean()
    mean_gap = (small.mean(dim=(1, 2, 3)) - target.mean(dim=(1, 2, 3))).abs().mean()
    loss = l1 + mse + cfg.big_weight * big + cfg.mean_weight * mean_gap
    return loss, {"l1": l1.item(), "mse": mse.item(), "big_mse": big.item(), "mean_gap": mean_gap.item()}


def _lr(step: int, total: int, warmup: int, floor: float = 0.05) -> float:
    warm = min(1.0, (step + 1) / max(1, warmup))
    return warm * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * step / max(1, total))))


# ------------------------------------------------------------------------------------------------------------ train
def _stage(
    decoder: torch.nn.Module,
    forward: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor],
    params: list[torch.nn.Parameter],
    teacher: Teacher,
    latents: torch.Tensor,
    steps: int,
    lr: float,
    cfg: DistillConfig,
    gen: torch.Generator,
    name: str,
) -> dict[str, Any]:
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    started = time.perf_counter()
    avg: dict[str, float] = {}
    decoder.train()
    for step in range(steps):
        idx = torch.randint(0, latents.shape[0], (cfg.batch,), generator=gen)
        z = latents[idx]
        target = teacher(z)
        loss, parts = _losses(forward(decoder, z), target, cfg)
        for group in opt.param_groups:
            group["lr"] = lr * _lr(step, steps, warmup=max(1, steps // 20))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        avg = parts if not avg else {k: 0.95 * avg[k] + 0.05 * v for k, v in parts.items()}
        if cfg.log_every and (step % cfg.log_every == 0 or step == steps - 1):
            logger.info("%s step %d/%d loss %.4f l1 %.4f mean_gap %.4f (%.0f s)", name, step, steps, loss.item(),
                        avg["l1"], avg["mean_gap"], time.perf_counter() - started)  # fmt: skip
    decoder.eval()
    return {"steps": steps, "seconds": round(time.perf_counter() - started, 1),
            **{f"{k}_ema": round(v, 5) for k, v in avg.items()}}  # fmt: skip


def distil(teacher: Teacher, latents: torch.Tensor, cfg: DistillConfig) -> tuple[torch.nn.Module, dict[str, Any]]:
    """Train a TAESD decoder (latent channels from ``latents``) to reproduce ``teacher`` on ``latents`` (model space).

    Returns the decoder (float32, eval mode) and a log of both stages. Call it with autograd enabled (not inside
    ``torch.inference_mode``).
    """
    if latents.dim() != 4:
        raise ValueError(f"distil: latents must be [N, C, h, w] image latents, got shape {tuple(latents.shape)}")
    decoder = new_decoder(latents.shape[1], cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    skipped = {id(p) for i in (*IDENTITY_BLOCKS, IDENTITY_CONV) for p in decoder[i].parameters()}
    fast_params = [p for p in decoder.parameters() if id(p) not in skipped]
    log: dict[str, Any] = {"config": asdict(cfg), "latents": int(latents.shape[0])}
    log["fast"] = _stage(decoder, fast_forward, fast_params, teacher, latents, cfg.fast_steps, cfg.fast_lr, cfg, gen,
                         "fast")  # fmt: skip
    graft_identities(decoder)
    with torch.no_grad():  # the graft is exact: the full decoder now computes what stage 1 trained
        z = latents[:4]
        gap = (decoder(z) - fast_forward(decoder, z)).abs().max().item()
    if gap > 1e-4:
        raise RuntimeError(f"distil: the identity graft changed the output by {gap:.2e} (expected rounding only)")
    log["graft_max_abs_change"] = gap
    if cfg.full_steps:
        log["full"] = _stage(decoder, lambda d, x: d(x), list(decoder.parameters()), teacher, latents,
                             cfg.full_steps, cfg.full_lr, cfg, gen, "full")  # fmt: skip
    return decoder, log


@torch.no_grad()
def evaluate(decoder: torch.nn.Module, teacher: Teacher, latents: torch.Tensor, chunk: int = 64) -> dict[str, float]:
    """Student vs teacher on ``latents`` at the teacher's resolution, after ComfyUI's clamp: PSNR, |Δ brightness|."""
    se, gaps, n = 0.0, [], 0
    for part in latents.split(chunk):
        target = teacher(part)
        student = decoder(part).clamp(0, 1)
        small = F.interpolate(student, size=target.shape[-2:], mode="bilinear", align_corners=False, antialias=True)
        se += (small - target).pow(2).mean(dim=(1, 2, 3)).sum().item()
        gaps.append((small.mean(dim=(1, 2, 3)) - target.mean(dim=(1, 2, 3))).abs())
        n += part.shape[0]
    mse = se / max(n, 1)
    return {"mse": round(mse, 6), "psnr_db": round(10 * math.log10(1.0 / max(mse, 1e-12)), 2),
            "mean_abs_brightness_gap": round(torch.cat(gaps).mean().item(), 5), "latents": n}  # fmt: skip


# -------------------------------------------------------------------------------------------------------------- save
def taesd_state_dict(decoder: torch.nn.Module, latent_format: Any, dtype: torch.dtype = torch.float16) -> dict:
    """The keys ``comfy.sd.VAE`` detects as TAESD: ``taesd_decoder.*`` plus ``vae_scale`` / ``vae_shift``.

    ``TAESD.decode`` computes ``decoder((x − vae_shift) · vae_scale)`` on VAE-space latents, i.e. the model-space
    latent ``latent_format.process_in(x)`` the decoder was trained on, so they are the latent format's scale and shift.
    """
    state = {f"taesd_decoder.{k}": v.detach().to(dtype).contiguous() for k, v in decoder.state_dict().items()}
    state["vae_scale"] = torch.tensor(float(latent_format.scale_factor))
    state["vae_shift"] = torch.tensor(float(getattr(latent_format, "shift_factor", 0.0) or 0.0))
    return state


def save_taesd(path: Path, state: dict[str, torch.Tensor], metadata: dict[str, Any]) -> None:
    """Write ``state`` with JSON-encoded ``metadata`` as a safetensors file."""
    import json

    from safetensors.torch import save_file

    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(path), metadata={k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
    logger.info("wrote %s (%.0f kB)", path, path.stat().st_size / 1024)
