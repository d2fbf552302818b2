"""Proof on a trained model (issue 5): EvoSearch vs Best-of-N vs particle sampling, end to end through the ComfyUI nodes.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.demo_proof            # 16 seeds, ×5/×10/×30 (+ ×100 for the default and Best-of-N), ~9 min with --jobs 2
    COMFYUI_PATH=/path/to/ComfyUI python -m bench.demo_proof --quick    # 2 seeds, ×5/×10: a smoke run

Every search runs the way a user's graph does: **EvoSearch Demo Model** (the digit UNet, VAE and classifier reward
trained here, ``assets/demo``) → **EvoSearch Schedule** (``budget_multiple``, one strategy) → **EvoSearch KSampler**
(ComfyUI's sigmas, CFG guider, VAE decode and reward scoring under model management) → ComfyUI's **VAEDecode** of the
returned best latent, which the reward then scores again here (so nothing is taken on the node's word).

The budget is a multiple of one trajectory's NFE (``steps`` model calls); the planner sizes every strategy to the same
NFE, and the report's ``nfe`` (model evaluations actually made) is what the curve's x axis uses. Per method and budget:

* mean ± standard error over seeds of the returned sample's reward;
* success rate: the classifier's p(target) > 0.9 and, for the ``*_bold`` / ``*_thin`` rewards, ink inside the band;
* diversity: mean pairwise L2 distance (per pixel, grey 0..1) between the samples returned for different seeds (does
  search collapse everything onto one image?), and the number of distinct samples among them.

The ×1 row is the plain sampler (Best-of-1): what a user gets without search. Results go to
``bench/results/demo_proof.{md,json}`` (``--quick``: ``bench/out/``), the reward curves to ``demo_proof.png`` and the returned samples to
``demo_proof_grid.png`` (one column per seed; a green frame marks a success).
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import math
import multiprocessing as mp
import statistics
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

log = logging.getLogger("bench.demo_proof")
#: method → (EvoSearch Schedule strategy, fitness): the node settings a user would pick for each.
METHODS = {
    "default": ("evosearch", "auto"),
    "evosearch_x0": ("evosearch", "x0"),
    "evosearch": ("evosearch", "rollout"),
    "best_of_n": ("best_of_n", "auto"),
    "particles": ("particles", "auto"),
}
LABELS = {
    "default": "EvoSearch, shipped default (graded x0)",
    "evosearch_x0": "EvoSearch, x0 fitness",
    "evosearch": "EvoSearch, rollout fitness (paper)",
    "best_of_n": "Best-of-N",
    "particles": "Particles (FK, max, λ=10)",
}
COLORS = {
    "default": "tab:purple",
    "evosearch_x0": "tab:red",
    "evosearch": "tab:orange",
    "best_of_n": "tab:blue",
    "particles": "tab:green",
}
ORDER = list(METHODS)


@dataclass
class Trial:
    """One search: a method at a budget from one seed, and what it returned."""

    kind: str
    method: str
    budget: int
    seed: int
    nfe: int
    reward_calls: int
    seconds: float
    score: float
    prob: float
    ink: float
    satisfied: bool
    node_best_reward: float


class DemoGraph:
    """The demo graph's nodes, called the way ComfyUI's executor calls them."""

    def __init__(self, kind: str, target: int, steps: int, sampler: str, scheduler: str) -> None:
        from support.comfy import boot
        from support.nodes import module, run_node

        boot()
        self.run_node = run_node
        self.sampler_nodes = module("nodes.sampler_nodes")
        demo_nodes = module("nodes.demo_nodes")
        self.model, self.vae, self.positive, self.negative, self.latent, self.reward = run_node(
            demo_nodes.EvoSearchDemoModel, batch_size=1, target_digit=target, reward_kind=kind
        )
        self.steps, self.sampler, self.scheduler = steps, sampler, scheduler

    def search(self, method: str, budget: int, seed: int) -> tuple[dict, torch.Tensor]:
        """Run one search; returns the node's report and the returned best image ``[1,H,W,3]``."""
        import nodes as comfy_nodes

        strategy, fitness = METHODS[method]
        (schedule,) = self.run_node(
            self.sampler_nodes.EvoSearchSchedule, mode="budget_multiple", strategy=strategy, budget=float(budget),
            evolution_steps="", population="", steps=self.steps, potential="max", lam=10.0, fitness=fitness,
        )  # fmt: skip
        best, _population, _scores, report, _plot = self.run_node(
            self.sampler_nodes.EvoSearchKSampler, model=self.model, positive=self.positive, negative=self.negative,
            latent_image=self.latent, reward=self.reward, seed=seed, steps=self.steps, cfg=1.0,
            sampler_name=self.sampler, scheduler=self.scheduler, denoise=1.0, chunk_size=0, vae=self.vae,
            schedule=schedule, mutation=None,
        )  # fmt: skip
        (image,) = comfy_nodes.VAEDecode().decode(self.vae, best)
        return json.loads(report), image


def run_trials(
    graph: DemoGraph, kind: str, budgets: list[int], seeds: list[int], methods_100: list[str] | None = None
) -> tuple[list[Trial], dict]:
    """Every (method, budget, seed) search; returns the trials and the returned images keyed by (method, budget).
    ×1 is Best-of-1 (the plain sampler); ×100 runs only ``methods_100`` (all when ``None``)."""
    trials, images = [], {}
    plan = [(m, b) for b in budgets for m in METHODS
            if (b > 1 or m == "best_of_n") and (b != 100 or methods_100 is None or m in methods_100)]  # fmt: skip
    for method, budget in plan:
        t0 = time.perf_counter()
        for seed in seeds:
            report, image = graph.search(method, budget, seed)
            d = graph.reward.details(image)
            trials.append(
                Trial(kind=kind, method=method, budget=budget, seed=seed, nfe=int(report["nfe"]),
                      reward_calls=int(report["reward_calls"]), seconds=float(report["seconds"]),
                      score=float(d["score"][0]), prob=float(d["prob"][0]), ink=float(d["ink"][0]),
                      satisfied=bool(d["satisfied"][0]), node_best_reward=float(report["best_rewards"][0]))
            )  # fmt: skip
            images[(method, budget, seed)] = image[0].detach().mean(-1)  # grey [H,W]
        cell = [t for t in trials if t.method == method and t.budget == budget]
        log.info("%s %-10s ×%-4d mean reward %.3f  success %.0f%%  (%.0f s)", kind, method, budget,
                 statistics.fmean(t.score for t in cell), 100 * statistics.fmean(t.satisfied for t in cell),
                 time.perf_counter() - t0)  # fmt: skip
    return trials, images


def diversity(images: list[torch.Tensor]) -> tuple[float, int]:
    """Mean pairwise per-pixel L2 distance between images, and how many are distinct (distance > 1e-3)."""
    if len(images) < 2:
        return float("nan"), len(images)
    flat = torch.stack([im.flatten().float() for im in images])
    dist = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    pairs = [float(dist[i, j]) for i, j in itertools.combinations(range(len(images)), 2)]
    distinct = []
    for i in range(len(images)):
        if all(float(dist[i, j]) > 1e-3 for j in distinct):
            distinct.append(i)
    return statistics.fmean(pairs), len(distinct)


def summarise(trials: list[Trial], images: dict) -> list[dict]:
    """One row per (kind, method, budget): mean ± s.e. reward, success rate, diversity, NFE, time."""
    rows = []
    keys = sorted({(t.kind, t.method, t.budget) for t in trials}, key=lambda k: (k[0], k[2], ORDER.index(k[1])))
    for kind, method, budget in keys:
        cell = [t for t in trials if (t.kind, t.method, t.budget) == (kind, method, budget)]
        scores = [t.score for t in cell]
        se = statistics.stdev(scores) / math.sqrt(len(scores)) if len(scores) > 1 else float("nan")
        div, distinct = diversity([images[(kind, method, budget, t.seed)] for t in cell])
        rows.append({
            "kind": kind, "method": method, "budget": budget, "seeds": len(cell),
            "nfe": statistics.fmean(t.nfe for t in cell), "reward_calls": statistics.fmean(t.reward_calls for t in cell),
            "reward_mean": statistics.fmean(scores), "reward_se": se,
            "success": statistics.fmean(t.satisfied for t in cell),
            "prob_mean": statistics.fmean(t.prob for t in cell),
            "diversity": div, "distinct": distinct, "seconds": statistics.fmean(t.seconds for t in cell),
        })  # fmt: skip
    return rows


def verdicts(rows: list[dict]) -> list[str]:
    """The issue's targets on the measured means, for each EvoSearch variant: ≥ both baselines at every budget, and
    ×30 ≥ Best-of-N ×100."""
    out = []
    for kind in sorted({r["kind"] for r in rows}):
        mean = {(r["method"], r["budget"]): r["reward_mean"] for r in rows if r["kind"] == kind}
        for variant in ("default", "evosearch_x0", "evosearch"):
            budgets = sorted(b for (m, b) in mean if m == variant)
            if not budgets:
                continue
            baselines = {b: [mean[(m, b)] for m in ("best_of_n", "particles") if (m, b) in mean] for b in budgets}
            budgets = [b for b in budgets if baselines[b]]
            best_baseline = {b: max(baselines[b]) for b in budgets}
            wins = [b for b in budgets if mean[(variant, b)] >= best_baseline[b]]
            line = (
                f"{kind}, {LABELS[variant]}: ≥ both baselines at {len(wins)}/{len(budgets)} budgets "
                f"({', '.join(f'×{b}' for b in wins) or 'none'})"
            )
            if (variant, 30) in mean and ("best_of_n", 100) in mean:
                e30, b100 = mean[(variant, 30)], mean[("best_of_n", 100)]
                line += f"; ×30 {e30:.3f} {'≥' if e30 >= b100 else '<'} Best-of-N ×100 {b100:.3f}"
            out.append(line)
    return out


def markdown(rows: list[dict], args: argparse.Namespace, checks: list[str], wall: float) -> str:
    lines = [
        "# Demo proof: EvoSearch vs Best-of-N vs particle sampling through the ComfyUI nodes",
        "",
        f"`python -m bench.demo_proof {' '.join(sys.argv[1:])}`".replace("  ", " "),
        "",
        (
            f"Digit model and classifier reward trained here (`assets/demo`), target digit {args.target}, "
            f"{args.steps} steps of {args.sampler}/{args.scheduler}, cfg 1, {len(args.seeds)} seeds "
            f"({args.seeds[0]}…{args.seeds[-1]}), every search through EvoSearch Demo Model → EvoSearch Schedule "
            f"(budget_multiple) → EvoSearch KSampler → VAEDecode. Reward = the demo reward of the returned image "
            f"(higher is better); success = p(target) > 0.9 (and ink in the band for bold/thin); diversity = mean "
            f"pairwise per-pixel L2 between the images returned for different seeds (distinct: how many differ). "
            f"×1 is the plain sampler. Wall time {wall / 60:.1f} min on {torch.get_num_threads()} thread(s)."
        ),
        "",
    ]
    for kind in sorted({r["kind"] for r in rows}):
        lines += [f"## reward `{kind}`", "",
                  "| budget | method | NFE | reward calls | reward (mean ± s.e.) | success | p(target) | diversity | distinct | s/search |",
                  "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
        for r in (r for r in rows if r["kind"] == kind):
            lines.append(
                f"| ×{r['budget']} | {LABELS[r['method']]} | {r['nfe']:.0f} | {r['reward_calls']:.0f} | "
                f"{r['reward_mean']:.3f} ± {r['reward_se']:.3f} | {100 * r['success']:.0f}% | {r['prob_mean']:.3f} | "
                f"{r['diversity']:.3f} | {r['distinct']}/{r['seeds']} | {r['seconds']:.2f} |"
            )
        lines.append("")
    lines += ["## Targets", ""] + [f"- {c}" for c in checks] + [""]
    return "\n".join(lines)


def plot_curves(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = sorted({r["kind"] for r in rows})
    fig, axes = plt.subplots(1, len(kinds), figsize=(5.5 * len(kinds), 4.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds, strict=True):
        base = [r for r in rows if r["kind"] == kind and r["budget"] == 1]
        for method in METHODS:
            pts = sorted((r for r in rows if r["kind"] == kind and r["method"] == method and r["budget"] > 1),
                         key=lambda r: r["nfe"])  # fmt: skip
            if not pts:
                continue
            ax.errorbar([r["nfe"] for r in pts], [r["reward_mean"] for r in pts], yerr=[r["reward_se"] for r in pts],
                        marker="o", capsize=3, color=COLORS[method], label=LABELS[method])  # fmt: skip
        for r in base:
            ax.axhline(r["reward_mean"], color="grey", ls="--", lw=1, label="plain sampler (×1)")
        ax.set_xscale("log")
        ax.set_xlabel("NFE (model evaluations per search)")
        ax.set_ylabel("reward of the returned image (mean ± s.e.)")
        ax.set_title(f"demo reward '{kind}'")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_grid(
    images: dict, trials: list[Trial], rows: list[dict], seeds: list[int], path: Path, upscale: int = 2
) -> None:
    """Rows: (reward kind, budget, method); columns: seeds; each cell the returned image, green frame = success."""
    from PIL import Image, ImageDraw, ImageFont

    cells = [(r["kind"], r["budget"], r["method"]) for r in rows]
    side = next(iter(images.values())).shape[-1] * upscale
    success = {(t.kind, t.method, t.budget, t.seed): t.satisfied for t in trials}
    pad, label_w = 3, 250
    width, height = label_w + len(seeds) * (side + pad), len(cells) * (side + pad) + pad
    sheet = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default()
    for row, (kind, budget, method) in enumerate(cells):
        y = pad + row * (side + pad)
        label = f"{kind} x{budget} {LABELS[method].split(' (')[0]}"  # the bitmap font has no "×"
        draw.text((4, y + side // 2 - 6), label, fill="black", font=font)
        for col, seed in enumerate(seeds):
            grey = (images[(kind, method, budget, seed)].clamp(0, 1) * 255).round().to(torch.uint8).numpy()
            tile = Image.fromarray(grey, mode="L").resize((side, side), Image.NEAREST).convert("RGB")
            x = label_w + col * (side + pad)
            sheet.paste(tile, (x, y))
            if success[(kind, method, budget, seed)]:
                draw.rectangle((x, y, x + side - 1, y + side - 1), outline=(40, 200, 40), width=2)
    sheet.save(path)


def run_kind(kind: str, args: argparse.Namespace) -> tuple[list[Trial], dict]:
    """All searches for one reward kind (one process when ``--jobs`` > 1)."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    graph = DemoGraph(kind, args.target, args.steps, args.sampler, args.scheduler)
    with torch.inference_mode():
        kind_trials, kind_images = run_trials(graph, kind, args.budgets, args.seeds, args.methods_100)
    # plain arrays: tensors would cross the process boundary as one shared-memory file descriptor each
    return kind_trials, {(kind, *k): v.numpy().copy() for k, v in kind_images.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kinds", nargs="+", default=["digit_bold", "digit"], help="demo reward kinds to run")
    parser.add_argument("--target", type=int, default=3, help="target digit (default 3)")
    parser.add_argument("--budgets", nargs="+", type=int, default=[1, 5, 10, 30, 100],
                        help="budgets as multiples of one trajectory's NFE (1 = the plain sampler)")  # fmt: skip
    parser.add_argument("--seeds", nargs="+", type=int, default=list(range(16)))
    parser.add_argument("--methods-100", nargs="+", default=["default", "best_of_n"], choices=list(METHODS),
                        help="methods run at ×100 (the most expensive budget)")  # fmt: skip
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--sampler", default="dpmpp_2m_sde", help="inner sampler (the demo's recommended one)")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--jobs", type=int, default=1, help="processes, one reward kind each (2 on a 2-core box)")
    parser.add_argument("--quick", action="store_true", help="2 seeds, budgets 1/5/10, one reward kind")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default bench/results, quick bench/out)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budgets, args.kinds = args.seeds[:2], [b for b in args.budgets if b <= 10], args.kinds[:1]
    args.out = args.out or ROOT / "bench" / ("out" if args.quick else "results")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    trials, images = [], {}
    jobs = [(kind, args) for kind in args.kinds]
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(min(args.jobs, len(jobs))) as pool:
            done = pool.starmap(run_kind, jobs)
    else:
        done = [run_kind(*job) for job in jobs]
    for kind_trials, kind_images in done:
        trials += kind_trials
        images.update({k: torch.from_numpy(v) for k, v in kind_images.items()})
    wall = time.perf_counter() - t0
    rows = summarise(trials, images)
    checks = verdicts(rows)
    stem = "demo_proof_quick" if args.quick else "demo_proof"
    (args.out / f"{stem}.md").write_text(markdown(rows, args, checks, wall))
    (args.out / f"{stem}.json").write_text(
        json.dumps(
            {
                "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                "rows": rows,
                "checks": checks,
                "trials": [asdict(t) for t in trials],
            },
            indent=1,
        )
    )
    plot_curves(rows, args.out / f"{stem}.png")
    plot_grid(images, trials, rows, args.seeds, args.out / f"{stem}_grid.png")
    for c in checks:
        log.info("%s", c)
    log.info("wrote %s", args.out / f"{stem}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
