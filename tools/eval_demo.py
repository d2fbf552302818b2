"""Measure the demo model as a plain ComfyUI sampler sees it: how often does an unconditional sample satisfy a reward?

    COMFYUI_PATH=/path/to/ComfyUI python tools/eval_demo.py --samples 2048 --steps 20 --sampler dpmpp_2m_sde --scheduler karras

Samples with ``comfy.sample.sample`` (what the KSampler node calls; cfg 1), decodes with the demo VAE, classifies
with the demo classifier, and reports the class histogram, the share of confidently recognised digits and, per target
digit, the success rate of each reward kind (``p(target) > 0.9``, and the ink band for the bold/thin kinds).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import torch

logger = logging.getLogger("evosearch.eval_demo")


def _pack(comfyui: str | Path | None = None) -> ModuleType:
    if "evosearch_pack" not in sys.modules:
        spec = importlib.util.spec_from_file_location("_evosearch_comfy_env", Path(__file__).with_name("comfy_env.py"))
        assert spec is not None and spec.loader is not None
        env = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(env)
        env.boot_comfyui(comfyui)
    return sys.modules["evosearch_pack"]


@torch.no_grad()
def sample_images(
    bundle: Any, n: int, *, steps: int, sampler: str, scheduler: str, seed: int, chunk: int = 128
) -> torch.Tensor:
    """``n`` unconditional samples ``[n,32,32,3]`` through ``comfy.sample.sample`` + ``vae.decode``, in chunks."""
    import comfy.sample

    images = []
    for start in range(0, n, chunk):
        batch = min(chunk, n - start)
        latent = bundle.empty_latent(batch)["samples"]
        noise = comfy.sample.prepare_noise(latent, seed + start)
        samples = comfy.sample.sample(
            bundle.model, noise, steps, 1.0, sampler, scheduler, bundle.positive, bundle.negative, latent,
            seed=seed + start, disable_pbar=True,
        )  # fmt: skip
        images.append(bundle.vae.decode(samples).cpu())
    return torch.cat(images)


def success_table(images: torch.Tensor, classifier: torch.nn.Module, bands: Any, threshold: float = 0.9) -> dict:
    """Class histogram, confident share, and per-digit success rates of the three reward kinds."""
    digits = importlib.import_module("evosearch_pack.rewards.digits")
    x = digits.images_to_input(images)
    probs = torch.softmax(classifier(x).float(), dim=1)
    ink = digits.ink_amount(images)
    top_p, top = probs.max(dim=1)
    table: dict[str, Any] = {
        "samples": len(images),
        "class_histogram": torch.bincount(top, minlength=10).tolist(),
        "confident_share": round((top_p > threshold).float().mean().item(), 4),
        "mean_ink": round(ink.mean().item(), 4),
        "per_digit": {},
    }
    rates = {"digit": [], "digit_bold": [], "digit_thin": []}
    for d in range(10):
        confident = probs[:, d] > threshold
        row = {"digit": confident.float().mean().item()}
        for kind in ("digit_bold", "digit_thin"):
            lo, hi = bands.band(kind, d)
            row[kind] = (confident & (ink >= lo) & (ink <= hi)).float().mean().item()
        for k, v in row.items():
            rates[k].append(v)
        table["per_digit"][str(d)] = {k: round(v, 4) for k, v in row.items()}
    table["mean_over_digits"] = {k: round(sum(v) / 10, 4) for k, v in rates.items()}
    return table


def save_grid(images: torch.Tensor, path: Path, columns: int = 16) -> None:
    """Write ``images`` ``[N,H,W,3]`` as a PNG grid (1-pixel gaps)."""
    from PIL import Image

    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    canvas = torch.full((rows * (h + 1) + 1, columns * (w + 1) + 1, 3), 0.25)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[i]
    array = (canvas.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    Image.fromarray(array).save(path)


def unconditional_report(
    directory: str | Path, *, n: int, steps: int, sampler: str, scheduler: str, seed: int = 0, grid: bool = True
) -> dict[str, Any]:
    """Load the demo from ``directory``, sample ``n`` images and return :func:`success_table` plus the settings."""
    _pack()
    demo = importlib.import_module("evosearch_pack.nodes.demo_model")
    digits = importlib.import_module("evosearch_pack.rewards.digits")
    directory = Path(directory)
    bundle = demo.load_demo(directory, dtype=torch.float32, vae_dtype=torch.float32)
    classifier, bands, _ = digits.load_digit_classifier(directory / "digit_classifier.safetensors")
    images = sample_images(bundle, n, steps=steps, sampler=sampler, scheduler=scheduler, seed=seed)
    if grid:
        save_grid(images[:128], directory / "samples.png")
    report = {"sampler": sampler, "scheduler": scheduler, "steps": steps, "cfg": 1.0, "seed": seed}
    report.update(success_table(images, classifier, bands))
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(__file__).resolve().parents[1] / "assets" / "demo")
    parser.add_argument("--comfyui", default=None, help="ComfyUI source tree (default: $COMFYUI_PATH)")
    parser.add_argument("--samples", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sampler", default="dpmpp_2m_sde")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    _pack(args.comfyui)
    report = unconditional_report(
        args.dir, n=args.samples, steps=args.steps, sampler=args.sampler, scheduler=args.scheduler, seed=args.seed,
        grid=False,
    )  # fmt: skip
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
