"""Measure the shapes model as a plain ComfyUI sampler sees it: GenEval-style strict success per category.

    COMFYUI_PATH=/path/to/ComfyUI python tools/eval_shapes.py --prompts-per-category 8 --seeds 8

A fixed, seeded prompt set (:func:`eval_prompts`: ``prompts_per_category`` distinct prompts of each GenEval
category, phrased "a photo of …" as GenEval's prompts are) is sampled through ``comfy.sample.sample`` (what the
KSampler node calls) with CFG against the empty prompt, decoded by the shapes VAE and judged by the ``shapes``
verifier (:class:`rewards.shapes_reward.ShapesReward`). Reports the strict pass rate per category and overall, and
the mean dense score.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

logger = logging.getLogger("evosearch.eval_shapes")


def _pack(comfyui: str | Path | None = None) -> ModuleType:
    if "evosearch_pack" not in sys.modules:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from train_demo import _boot  # type: ignore[import-not-found]

        _boot(comfyui)
    return sys.modules["evosearch_pack"]


def eval_prompts(per_category: int, seed: int = 0) -> list[tuple[str, str]]:
    """``(category, prompt)`` pairs: ``per_category`` distinct prompts of each GenEval category, "a photo of …"."""
    _pack()
    grammar = importlib.import_module("evosearch_pack.rewards.shapes.grammar")
    cases = importlib.import_module("evosearch_pack.rewards.shapes.cases")
    rng = np.random.default_rng(10_000 + seed)
    out: list[tuple[str, str]] = []
    for category in grammar.CATEGORIES:
        seen: set[str] = set()
        for _ in range(1000):
            if len(seen) == per_category:
                break
            text = cases.random_prompt(rng, category).text
            if text not in seen:
                seen.add(text)
                out.append((category, f"a photo of {text}"))
    return out


@torch.no_grad()
def sample_prompt(bundle: Any, prompt: str, n: int, *, steps: int, cfg: float, sampler: str, scheduler: str,
                  seed: int) -> torch.Tensor:  # fmt: skip
    """``n`` images ``[n,32,32,3]`` of ``prompt`` (batch seeds ``seed``) through ``comfy.sample.sample``."""
    import comfy.sample

    positive, negative = bundle.encode(prompt), bundle.encode("")
    latent = bundle.empty_latent(n)["samples"]
    noise = comfy.sample.prepare_noise(latent, seed)
    samples = comfy.sample.sample(
        bundle.model, noise, steps, cfg, sampler, scheduler, positive, negative, latent, seed=seed, disable_pbar=True
    )
    return bundle.vae.decode(samples).cpu().float()


def save_grid(images: torch.Tensor, path: Path, columns: int) -> None:
    """Write ``images`` ``[N,H,W,3]`` as a PNG grid with 1-pixel gaps."""
    from PIL import Image

    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    canvas = torch.full((rows * (h + 1) + 1, columns * (w + 1) + 1, 3), 0.25)
    for i in range(n):
        r, c = divmod(i, columns)
        canvas[1 + r * (h + 1) : 1 + r * (h + 1) + h, 1 + c * (w + 1) : 1 + c * (w + 1) + w] = images[i]
    Image.fromarray((canvas.clamp(0, 1) * 255).round().to(torch.uint8).numpy()).save(path)


def evaluate(
    directory: str | Path | None = None, *, prompts_per_category: int = 8, seeds: int = 4, steps: int = 20,
    cfg: float = 4.0, sampler: str = "dpmpp_2m_sde", scheduler: str = "karras", seed: int = 0,
    grid: Path | None = None, bundle: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """Strict pass rate per category (``prompts_per_category`` prompts × ``seeds`` images each) and overall."""
    _pack()
    shapes_model = importlib.import_module("evosearch_pack.nodes.shapes_model")
    reward_mod = importlib.import_module("evosearch_pack.rewards.shapes_reward")
    if bundle is None:
        bundle = shapes_model.load_shapes(directory, dtype=torch.float32, vae_dtype=torch.float32)
    reward = reward_mod.ShapesReward()
    prompts = eval_prompts(prompts_per_category, seed)
    per_category: dict[str, list[float]] = {}
    dense: dict[str, list[float]] = {}
    images = []
    for k, (category, prompt) in enumerate(prompts):
        batch = sample_prompt(bundle, prompt, seeds, steps=steps, cfg=cfg, sampler=sampler, scheduler=scheduler,
                              seed=seed + 1000 * k)  # fmt: skip
        details = reward.details(batch, [prompt] * seeds)
        per_category.setdefault(category, []).extend(details["passes"].float().tolist())
        dense.setdefault(category, []).extend(details["dense"].tolist())
        images.append(batch)
    if grid is not None:
        save_grid(torch.cat(images), Path(grid), columns=seeds * 4)
    rates = {c: round(float(np.mean(v)), 4) for c, v in per_category.items()}
    return {
        "sampler": sampler, "scheduler": scheduler, "steps": steps, "cfg": cfg, "seed": seed,
        "prompts": len(prompts), "images_per_prompt": seeds,
        "pass_rate": rates,
        "pass_rate_overall": round(float(np.mean([x for v in per_category.values() for x in v])), 4),
        "pass_rate_mean_over_categories": round(float(np.mean(list(rates.values()))), 4),
        "dense_mean": {c: round(float(np.mean(v)), 4) for c, v in dense.items()},
        "prompt_list": [p for _, p in prompts],
    }  # fmt: skip


@torch.no_grad()
def verifier_report(directory: str | Path | None = None, *, scenes: int = 300, seed: int = 0) -> dict[str, Any]:
    """The verifier's accuracy on rendered scenes and on their round trips through the shipped VAE (VAEEncode →
    VAEDecode), with matching and contradicting prompts (:func:`rewards.shapes.cases.verification_cases`)."""
    _pack()
    cases_mod = importlib.import_module("evosearch_pack.rewards.shapes.cases")
    render_mod = importlib.import_module("evosearch_pack.rewards.shapes.render")
    shapes_model = importlib.import_module("evosearch_pack.nodes.shapes_model")
    train = importlib.import_module("evosearch_pack.tools.train_shapes")
    directory = Path(directory) if directory is not None else shapes_model.SHAPES_DIR
    vae = shapes_model.load_shapes_vae(directory / shapes_model.VAE_FILE, dtype=torch.float32)
    cases = cases_mod.verification_cases(scenes, np.random.default_rng(20_000 + seed))
    rendered = render_mod.render([c.scene for c in cases])
    decoded = torch.cat([vae.decode(vae.encode(chunk)).cpu().float() for chunk in rendered.split(256)])
    modules = {"reward": importlib.import_module("evosearch_pack.rewards.shapes_reward")}
    return {
        "scenes": scenes,
        "seed": seed,
        "rendered": train.verifier_accuracy(rendered, cases, modules),
        "vae_round_trip": train.verifier_accuracy(decoded, cases, modules),
        "round_trip_mse_0_1": round((decoded - rendered).pow(2).mean().item(), 6),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=None, help="weights folder (default: assets/shapes)")
    parser.add_argument("--comfyui", default=None, help="ComfyUI source tree (default: $COMFYUI_PATH)")
    parser.add_argument("--prompts-per-category", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=8, help="images per prompt")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--cfg", type=float, nargs="*", default=[4.0], help="one evaluation per value (none: skip)")
    parser.add_argument("--sampler", default="dpmpp_2m_sde")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grid", type=Path, default=None, help="write the samples as a PNG grid here")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--verifier-scenes",
        type=int,
        default=0,
        help="also measure the verifier on N rendered + VAE round-tripped scenes",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    _pack(args.comfyui)
    shapes_model = importlib.import_module("evosearch_pack.nodes.shapes_model")
    bundle = shapes_model.load_shapes(args.dir, dtype=torch.float32, vae_dtype=torch.float32)
    results = []
    for cfg in args.cfg:
        with torch.inference_mode():
            results.append(evaluate(
                args.dir, prompts_per_category=args.prompts_per_category, seeds=args.seeds, steps=args.steps, cfg=cfg,
                sampler=args.sampler, scheduler=args.scheduler, seed=args.seed, grid=args.grid, bundle=bundle,
            ))  # fmt: skip
    if args.verifier_scenes:
        with torch.inference_mode():
            results.append({"verifier": verifier_report(args.dir, scenes=args.verifier_scenes, seed=args.seed)})
    sys.stdout.write(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
