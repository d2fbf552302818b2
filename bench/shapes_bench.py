"""Search quality on text-to-image: the shapes model trained here, a GenEval-style verifier, every method through
the ComfyUI nodes.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.shapes_bench --jobs 2     # the full table (≤ 30 min on 2 cores)
    COMFYUI_PATH=/path/to/ComfyUI python -m bench.shapes_bench --quick      # a smoke run, ~1 min, to bench/out/

Each search is what a user builds: **EvoSearch Shapes Model** → **CLIP Text Encode** (the prompt; "" as negative) →
**EvoSearch Schedule** (``budget_multiple``, one strategy) → **EvoSearch KSampler** (``top_k`` options) →
**VAE Decode**; the returned image is judged by the ``shapes`` verifier (rewards/shapes): strict GenEval-style pass
and the dense score the search maximised. ×1 is ComfyUI's plain KSampler on the same seed.

Prompts: ``tools/eval_shapes.eval_prompts`` — ``--prompts-per-category`` prompts of each GenEval category
(single object, two objects, counting, colours, position, colour attribution), "a photo of …". Methods at budgets ×5
/ ×10 / ×30 (×100 on a subset of one prompt per category): Best-of-N, FK-steering particles (λ = 10), EvoSearch with
rollout fitness (the paper's), EvoSearch with x0 fitness, and the shipped default (the Schedule node's ``auto``,
which with ``top_k`` = 4 runs as four islands); at ×30 also the default with one population (Mutation node
``islands`` = 1), the no-diversity reference for the options.

Diversity: the ``top_k`` = 4 options a search returns, decoded, as mean and minimum pairwise RMS pixel distance. The
shapes world is defined in pixel space (colours, shapes, positions), so two options differ as images exactly when
their pixels do; the reference is the distribution of distances between plain samples of one prompt under
different seeds (its 10th percentile is the "as distinct as two independent samples usually are" bar).
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
log = logging.getLogger("bench.shapes_bench")

#: method → (Schedule strategy, fitness): what a user picks in the EvoSearch Schedule node.
METHODS = {
    "default": ("evosearch", "auto"),
    "default_single": ("evosearch", "auto"),
    "evosearch_x0": ("evosearch", "x0"),
    "evosearch_rollout": ("evosearch", "rollout"),
    "best_of_n": ("best_of_n", "auto"),
    "particles": ("particles", "auto"),
}
#: methods run with a Mutation node instead of the defaults, and the widgets they change (islands: the default 0
#: means one island per option asked for).
MUTATIONS: dict[str, dict[str, object]] = {"default_single": {"islands": 1}}
LABELS = {
    "plain": "plain sampler (×1)",
    "default": "EvoSearch, shipped default (auto), top_k=4: automatic islands (1 at ×5, 2 at ×10, 4 from ×30)",
    "default_single": "EvoSearch, shipped default, one population (islands=1)",
    "evosearch_x0": "EvoSearch, x0 fitness",
    "evosearch_rollout": "EvoSearch, rollout fitness (paper)",
    "best_of_n": "Best-of-N",
    "particles": "Particles (FK, max, λ=10)",
}
COLORS = {"default": "tab:red", "default_single": "tab:purple", "evosearch_x0": "tab:pink", "evosearch_rollout": "tab:orange",
          "best_of_n": "tab:blue", "particles": "tab:green", "plain": "black"}  # fmt: skip
OPTIONS = 4


@dataclass
class Trial:
    category: str
    prompt: str
    seed: int
    method: str
    budget: int
    passed: bool
    dense: float
    nfe: int
    decodes: int
    reward_calls: int
    seconds: float
    option_mean: float
    option_min: float


class ShapesGraph:
    """The benchmark graph's nodes, called the way ComfyUI's executor calls them."""

    def __init__(self, steps: int, cfg: float, sampler: str, scheduler: str, chunk: int) -> None:
        sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]
        from support.comfy import boot
        from support.nodes import module, run_node

        boot()
        # boot() turns oneDNN off for the tiny test models; the shapes UNet is large enough to gain from it, and
        # chunk_size keeps the batch sizes few, so its per-shape compilation is paid a handful of times.
        torch.backends.mkldnn.enabled = True
        import nodes as comfy_nodes

        self.run_node, self.comfy_nodes = run_node, comfy_nodes
        self.sampler_nodes = module("nodes.sampler_nodes")
        self.reward_cls = module("rewards.shapes_reward").ShapesReward
        shapes_nodes = module("nodes.shapes_nodes")
        self.model, self.clip, self.vae, self.latent = run_node(shapes_nodes.EvoSearchShapesModel, batch_size=1)
        self.steps, self.cfg, self.sampler, self.scheduler, self.chunk = steps, cfg, sampler, scheduler, chunk

    def encode(self, text: str) -> list:
        return self.comfy_nodes.CLIPTextEncode().encode(self.clip, text)[0]

    def decode(self, latent: dict) -> torch.Tensor:
        return self.comfy_nodes.VAEDecode().decode(self.vae, latent)[0]

    def plain(self, prompt: str, seed: int) -> torch.Tensor:
        (latent,) = self.comfy_nodes.KSampler().sample(
            self.model, seed, self.steps, self.cfg, self.sampler, self.scheduler, self.encode(prompt),
            self.encode(""), self.latent,
        )  # fmt: skip
        return self.decode(latent)

    def search(
        self, prompt: str, seed: int, method: str, budget: int, reward: object
    ) -> tuple[dict, torch.Tensor, torch.Tensor]:
        strategy, fitness = METHODS[method]
        (schedule,) = self.run_node(
            self.sampler_nodes.EvoSearchSchedule, mode="budget_multiple", strategy=strategy, budget=float(budget),
            evolution_steps="", population="", steps=self.steps, potential="max", lam=10.0, fitness=fitness,
        )  # fmt: skip
        mutation = None
        if method in MUTATIONS:
            d = self.sampler_nodes.es.Mutation()
            widgets = {"beta": d.beta, "intermediate": d.intermediate, "strength": d.strength, "elites": -1,
                       "tournament": d.tournament, "max_share": d.max_share, "islands": d.islands}  # fmt: skip
            (mutation,) = self.run_node(self.sampler_nodes.EvoSearchMutation, **(widgets | MUTATIONS[method]))
        best, options, _scores, report, _plot = self.run_node(
            self.sampler_nodes.EvoSearchKSampler, model=self.model, positive=self.encode(prompt),
            negative=self.encode(""), latent_image=self.latent, reward=reward, seed=seed, steps=self.steps,
            cfg=self.cfg, sampler_name=self.sampler, scheduler=self.scheduler, denoise=1.0, chunk_size=self.chunk,
            vae=self.vae, schedule=schedule, mutation=mutation, top_k=OPTIONS,
        )  # fmt: skip
        return json.loads(report), self.decode(best), self.decode(options)


def pair_distances(images: torch.Tensor) -> list[float]:
    """RMS pixel distance of every pair of images ``[N,H,W,3]``."""
    flat = images.flatten(1).float()
    d = torch.cdist(flat, flat) / math.sqrt(flat.shape[1])
    return [float(d[i, j]) for i, j in itertools.combinations(range(len(images)), 2)]


def run_pairs(pairs: list[tuple[int, str, str, int]], args: argparse.Namespace) -> tuple[list[Trial], dict]:
    """Every method and budget for each (index, category, prompt, seed); returns trials and the returned images
    (the plain samples among them: their pair distances are the diversity reference). Runs under inference mode, as ComfyUI's executor runs every node."""
    with torch.inference_mode():
        trials, images = _run_pairs(pairs, args)
    # Plain arrays, not tensors: a worker's tensors travel as shared-memory handles, one file descriptor each, and a
    # full run's ~1,400 images exhaust the receiving process's descriptors (the pool then dies with a broken pipe).
    return trials, {key: image.numpy().copy() for key, image in images.items()}


def _run_pairs(pairs: list[tuple[int, str, str, int]], args: argparse.Namespace) -> tuple[list[Trial], dict]:
    torch.set_num_threads(args.threads)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    graph = ShapesGraph(args.steps, args.cfg, args.sampler, args.scheduler, args.chunk)
    trials: list[Trial] = []
    images: dict = {}
    for index, category, prompt, seed in pairs:
        reward = graph.reward_cls(prompt)
        t0 = time.perf_counter()
        plain = graph.plain(prompt, seed)
        trials.append(Trial(category, prompt, seed, "plain", 1, bool(reward.passes(plain, [prompt])[0]),
                            float(reward.score(plain, [prompt])[0]), args.steps, 0, 0,
                            time.perf_counter() - t0, float("nan"), float("nan")))  # fmt: skip
        images[(prompt, seed, "plain", 1)] = plain[0]
        cells = [(m, b) for b in args.budgets for m in args.methods if m not in MUTATIONS or b in args.single_budgets]
        if index in args.subset:
            cells += [(m, 100) for m in args.methods_100]
        for method, budget in cells:
            report, best, options = graph.search(prompt, seed, method, budget, reward)
            distances = pair_distances(options)
            trials.append(Trial(
                category, prompt, seed, method, budget, bool(reward.passes(best, [prompt])[0]),
                float(reward.score(best, [prompt])[0]), int(report["nfe"]), int(report["decodes"]),
                int(report["reward_calls"]), float(report["seconds"]), statistics.fmean(distances),
                min(distances),
            ))  # fmt: skip
            images[(prompt, seed, method, budget)] = best[0]
        log.info("%-18s %-52s seed %d done in %.0f s", category, prompt, seed, time.perf_counter() - t0)
    return trials, images


def mean_se(values: list[float]) -> tuple[float, float]:
    mean = statistics.fmean(values)
    return mean, (statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else float("nan"))


def summarise(trials: list[Trial]) -> list[dict]:
    rows = []
    order = ["plain", *METHODS]
    keys = sorted({(t.method, t.budget) for t in trials}, key=lambda k: (k[1], order.index(k[0])))
    for method, budget in keys:
        cell = [t for t in trials if (t.method, t.budget) == (method, budget)]
        success, success_se = mean_se([float(t.passed) for t in cell])
        dense, dense_se = mean_se([t.dense for t in cell])
        categories = sorted({t.category for t in cell})
        row = {
            "method": method, "budget": budget, "searches": len(cell), "success": success, "success_se": success_se,
            "dense": dense, "dense_se": dense_se, "nfe": statistics.fmean(t.nfe for t in cell),
            "decodes": statistics.fmean(t.decodes for t in cell),
            "reward_calls": statistics.fmean(t.reward_calls for t in cell),
            "seconds": statistics.fmean(t.seconds for t in cell),
            "by_category": {c: statistics.fmean(float(t.passed) for t in cell if t.category == c) for c in categories},
        }  # fmt: skip
        if method != "plain":
            row["option_mean"] = statistics.fmean(t.option_mean for t in cell)
            row["option_min"] = statistics.fmean(t.option_min for t in cell)
        rows.append(row)
    return rows


def checks(rows: list[dict], plain_p10: float, trials: list[Trial]) -> list[str]:
    """The issue's targets, on the measured numbers."""
    at = {(r["method"], r["budget"]): r for r in rows}
    out = []
    plain = at.get(("plain", 1))
    if plain and ("default", 10) in at:
        lift = at[("default", 10)]["success"] - plain["success"]
        out.append(f"default ×10 lifts strict success over the plain sampler by {100 * lift:+.1f} points "
                   f"({100 * plain['success']:.1f}% → {100 * at[('default', 10)]['success']:.1f}%; target ≥ +25)")  # fmt: skip
    for b in sorted({k[1] for k in at if k[0] == "default" and k[1] >= 10}):
        base = [at[(m, b)] for m in ("best_of_n", "particles") if (m, b) in at]
        if not base:
            continue
        d = at[("default", b)]
        ahead = all(d["success"] > x["success"] or (d["success"] == x["success"] and d["dense"] > x["dense"])
                    for x in base)  # fmt: skip
        out.append(f"×{b}: default {100 * d['success']:.1f}% vs "
                   + ", ".join(f"{LABELS[x['method']]} {100 * x['success']:.1f}%" for x in base)
                   + (" — ahead" if ahead else " — NOT ahead"))  # fmt: skip
        if b == 10:
            for cat in d["by_category"]:
                rivals = {x["method"]: x["by_category"].get(cat) for x in base}
                if all(v is not None and v >= 0.9 for v in rivals.values()):
                    continue
                ok = all(d["by_category"][cat] > v for v in rivals.values() if v is not None)
                out.append(f"  ×10 {cat}: default {100 * d['by_category'][cat]:.0f}% vs "
                           + ", ".join(f"{m} {100 * v:.0f}%" for m, v in rivals.items())
                           + ("" if ok else " — NOT ahead"))  # fmt: skip
    if ("best_of_n", 100) in at:
        subset = {(t.prompt, t.seed) for t in trials if t.budget == 100}
        b100 = statistics.fmean(t.passed for t in trials if t.method == "best_of_n" and t.budget == 100)
        for method in ("default_single", "default"):
            d30 = [t.passed for t in trials if t.method == method and t.budget == 30 and (t.prompt, t.seed) in subset]
            if d30:
                share = statistics.fmean(d30)
                out.append(f"on the ×100 subset: {LABELS[method]} ×30 {100 * share:.1f}% vs Best-of-N ×100 "
                           f"{100 * b100:.1f}% ({'≥' if share >= b100 else '<'})")  # fmt: skip
    for b in (10, 30):
        if ("default", b) in at and ("default_single", b) in at:
            d, one = at[("default", b)], at[("default_single", b)]
            out.append(f"×{b} diversity: {OPTIONS} islands' options closest pair {d['option_min']:.3f} (mean "
                       f"{d['option_mean']:.3f}) vs one population {one['option_min']:.3f} ({one['option_mean']:.3f}); "
                       f"best dense {d['dense']:.3f} vs {one['dense']:.3f} ({100 * (d['dense'] / one['dense'] - 1):+.1f}%, "
                       f"target within 5%); success {100 * d['success']:.1f}% vs {100 * one['success']:.1f}%")  # fmt: skip
    if ("default", 30) in at:
        cell = [t for t in trials if t.method == "default" and t.budget == 30]
        share = statistics.fmean(float(t.option_min > plain_p10) for t in cell)
        out.append(f"×30 default: the top-{OPTIONS} options' closest pair is farther apart than the plain sampler's "
                   f"10th-percentile pair distance ({plain_p10:.3f}) in {100 * share:.0f}% of searches; mean closest "
                   f"pair {statistics.fmean(t.option_min for t in cell):.3f}")  # fmt: skip
    return out


def markdown(rows: list[dict], args: argparse.Namespace, notes: list[str], plain_p10: float, wall: float) -> str:
    cats = sorted({c for r in rows for c in r["by_category"]})
    lines = [
        "# Shapes benchmark: GenEval-style success through the ComfyUI nodes",
        "",
        f"`python -m bench.shapes_bench {' '.join(sys.argv[1:])}`".replace("  ", " "),
        "",
        f"{args.n_prompts} prompts × {len(args.seeds)} seeds, {args.steps} steps of {args.sampler}/{args.scheduler}, "
        f"cfg {args.cfg}; ×100 on {len(args.subset)} prompts. Success = the verifier's strict pass of the returned "
        f"image (mean ± s.e.); dense = the score the search maximised. Options = the {OPTIONS} distinct options "
        f"(top_k) decoded: mean / closest pairwise RMS pixel distance (plain samples of one prompt, different "
        f"seeds: 10th percentile {plain_p10:.3f}). Wall time {wall / 60:.1f} min with {args.jobs} processes.",
        "",
        "| budget | method | success | dense | options mean / closest | NFE | decodes | reward calls | s/search |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        opt = f"{r['option_mean']:.3f} / {r['option_min']:.3f}" if "option_mean" in r else ""
        lines.append(
            f"| ×{r['budget']} | {LABELS[r['method']]} | {100 * r['success']:.1f}% ± {100 * r['success_se']:.1f} | "
            f"{r['dense']:.3f} ± {r['dense_se']:.3f} | {opt} | {r['nfe']:,.0f} | {r['decodes']:,.0f} | "
            f"{r['reward_calls']:,.0f} | {r['seconds']:.2f} |"
        )
    lines += ["", "Strict success per category:", "",
              "| budget | method | " + " | ".join(cats) + " |", "|---|---|" + "---|" * len(cats)]  # fmt: skip
    for r in rows:
        lines.append(f"| ×{r['budget']} | {LABELS[r['method']]} | "
                     + " | ".join(f"{100 * r['by_category'].get(c, float('nan')):.0f}%" for c in cats) + " |")  # fmt: skip
    lines += ["", "Targets:", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10.5, 4.4))
    plain = next(r for r in rows if r["method"] == "plain")
    ax.axhline(100 * plain["success"], color="black", ls=":", label=LABELS["plain"])
    for method in METHODS:
        pts = sorted((r for r in rows if r["method"] == method), key=lambda r: r["nfe"])
        if pts:
            ax.errorbar([p["nfe"] for p in pts], [100 * p["success"] for p in pts],
                        yerr=[100 * p["success_se"] for p in pts], marker="o", capsize=3, label=LABELS[method],
                        color=COLORS[method])  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("NFE per search (model evaluations)")
    ax.set_ylabel("strict success (%)")
    ax.set_title("Shapes prompts: GenEval-style success vs compute")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: Short column labels of the grid (its bitmap font has no "×").
SHORT = {"plain": "plain", "default": "default", "default_single": "default 1-pop", "evosearch_x0": "x0",
         "evosearch_rollout": "rollout", "best_of_n": "Best-of-N", "particles": "FK"}  # fmt: skip


def grid(images: dict, prompts: list[str], seed: int, columns: list[tuple[str, int]], path: Path) -> None:
    """One row per prompt (first seed), one column per (method, budget) that ran: the returned images, 4× enlarged,
    under a header naming each column."""
    from PIL import Image, ImageDraw

    columns = [c for c in columns if any((p, seed, *c) in images for p in prompts)]
    tiles = [[images.get((p, seed, m, b)) for (m, b) in columns] for p in prompts]
    side = next(t for row in tiles for t in row if t is not None).shape[0] * 4
    head = 28
    canvas = Image.new("RGB", (len(columns) * (side + 2), head + len(prompts) * (side + 2)), (60, 60, 60))
    draw = ImageDraw.Draw(canvas)
    for c, (method, budget) in enumerate(columns):
        draw.text((c * (side + 2) + 4, 2), SHORT.get(method, method), fill="white")
        draw.text((c * (side + 2) + 4, 14), f"x{budget}", fill="white")
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            if tile is None:
                continue
            pixels = (tile.clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()
            canvas.paste(Image.fromarray(pixels).resize((side, side), resample=0),
                         (c * (side + 2), head + r * (side + 2)))  # fmt: skip
    canvas.save(path)


def rewrite_report(out: Path, stem: str = "shapes_bench") -> int:
    """The tables, targets and plot again from ``stem.json`` (e.g. after a change to what the targets report)."""
    saved = json.loads((out / f"{stem}.json").read_text())
    trials = [Trial(**t) for t in saved["trials"]]
    args = argparse.Namespace(**saved["args"])
    rows = summarise(trials)
    notes = checks(rows, saved["plain_pair_p10"], trials)
    wall = saved.get("wall_s", float("nan"))
    sys.argv = [sys.argv[0], *saved.get("argv", [])]
    (out / f"{stem}.md").write_text(markdown(rows, args, notes, saved["plain_pair_p10"], wall))
    saved.update(rows=rows, checks=notes)
    (out / f"{stem}.json").write_text(json.dumps(saved, indent=1))
    plot(rows, out / f"{stem}.png")
    for n in notes:
        log.info("%s", n)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts-per-category", type=int, default=8)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3])
    parser.add_argument("--budgets", nargs="+", type=int, default=[5, 10, 30])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument(
        "--single-budgets",
        nargs="+",
        type=int,
        default=[30],
        help="budgets at which the one-population default (default_single) runs",
    )
    parser.add_argument("--methods-100", nargs="+", default=["default", "best_of_n"], choices=list(METHODS))
    parser.add_argument("--subset-per-category", type=int, default=1, help="prompts per category run at ×100")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--cfg", type=float, default=4.0)
    parser.add_argument("--sampler", default="dpmpp_2m_sde")
    parser.add_argument("--scheduler", default="karras")
    parser.add_argument("--chunk", type=int, default=64, help="individuals per model call (chunk_size)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="1 prompt per category, 1 seed, ×5/×10, no ×100")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="re-write the tables, targets and plot from the saved JSON (no searches, no grid)",
    )
    args = parser.parse_args(argv)
    if args.report_only:
        return rewrite_report(args.out or ROOT / "bench" / "results")
    if args.quick:
        args.prompts_per_category, args.seeds, args.budgets, args.subset_per_category = 1, args.seeds[:1], [5, 10], 0
    args.out = args.out or ROOT / "bench" / ("out" if args.quick else "results")
    args.out.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sys.path[:0] = [str(ROOT / "tools"), str(ROOT / "tests"), str(ROOT)]
    from eval_shapes import eval_prompts  # tools/eval_shapes.py (boots ComfyUI on first use)

    prompts = eval_prompts(args.prompts_per_category, 0)
    args.n_prompts = len(prompts)
    per_cat: dict[str, list[int]] = {}
    for i, (c, _) in enumerate(prompts):
        per_cat.setdefault(c, []).append(i)
    args.subset = sorted(i for idx in per_cat.values() for i in idx[: args.subset_per_category])
    pairs = [(i, c, p, s) for i, (c, p) in enumerate(prompts) for s in args.seeds]
    shards = [pairs[j :: args.jobs] for j in range(args.jobs)]
    t0 = time.perf_counter()
    if args.jobs > 1:
        with mp.get_context("spawn").Pool(args.jobs) as pool:
            done = pool.starmap(run_pairs, [(shard, args) for shard in shards])
    else:
        done = [run_pairs(pairs, args)]
    wall = time.perf_counter() - t0
    trials = [t for d in done for t in d[0]]
    images = {k: torch.from_numpy(v) for d in done for k, v in d[1].items()}
    plain_by_prompt: dict[str, list[torch.Tensor]] = {}
    for (prompt, _seed, method, _budget), image in sorted(images.items(), key=lambda kv: kv[0][:2]):
        if method == "plain":
            plain_by_prompt.setdefault(prompt, []).append(image)
    plain_pairs = sorted(
        d for group in plain_by_prompt.values() if len(group) > 1 for d in pair_distances(torch.stack(group))
    )
    plain_p10 = plain_pairs[max(0, int(0.1 * len(plain_pairs)) - 1)] if plain_pairs else float("nan")
    rows = summarise(trials)
    notes = checks(rows, plain_p10, trials)
    stem = "shapes_bench_quick" if args.quick else "shapes_bench"
    (args.out / f"{stem}.md").write_text(markdown(rows, args, notes, plain_p10, wall))
    (args.out / f"{stem}.json").write_text(json.dumps({
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "plain_pair_p10": plain_p10, "wall_s": wall, "argv": sys.argv[1:], "rows": rows, "checks": notes,
        "trials": [asdict(t) for t in trials],
    }, indent=1))  # fmt: skip
    plot(rows, args.out / f"{stem}.png")
    columns = [("plain", 1)] + [(m, b) for b in (10, 30) for m in args.methods if b in args.budgets]
    grid(images, [p for _, p in prompts][:: max(1, args.prompts_per_category)][:12], args.seeds[0], columns,
         args.out / f"{stem}_grid.png")  # fmt: skip
    for n in notes:
        log.info("%s", n)
    log.info("wrote %s (%.1f min)", args.out / f"{stem}.md", wall / 60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
