"""The scoring VAE, proved and measured (issue 13): is a cheap decoder for the reward worth it, and does it rank right?

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.scoring_vae                      # all parts (~20 min, one thread)
    COMFYUI_PATH=/path/to/ComfyUI python -m bench.scoring_vae --parts timing       # real-size decode cost (~12 min)
    COMFYUI_PATH=/path/to/ComfyUI python -m bench.scoring_vae --parts ranking,e2e  # the digit demo (~8 min)
    COMFYUI_PATH=/path/to/ComfyUI python -m bench.scoring_vae --quick              # a smoke run of every part

Parts (each rerun replaces its section of ``bench/results/scoring_vae.{json,md}``; ``--quick`` writes
``bench/out/`` instead):

* **timing** — seconds per decode of ComfyUI's SD1.5 and SDXL VAEs (512², SDXL also 1024²) vs TAESD / TAESDXL, and
  of the Wan 2.1 VAE on a short video, all random weights built through ComfyUI's own key detection, and the same
  in units of one SD1.5 UNet evaluation with CFG at 512² (:mod:`bench.decode_timing`).
* **ranking** — samples of a model (the digit demo: 256 from its recommended sampler), each decoded by the full VAE
  and by the scoring VAE and scored by each reward: Spearman ρ, top-10 % overlap, and how often the scoring VAE picks
  the full VAE's best of a population-sized group (and what its pick scores under the full VAE).
* **e2e** — EvoSearch runs through the EvoSearch KSampler node with and without ``scoring_vae`` (seeds × budgets ×
  fitness modes): the returned latent decoded by the *full* VAE and scored, decode seconds, total seconds.

Runs on ComfyUI's CPU device with one thread by default (``--threads``), oneDNN as torch ships it.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
QUICK_OUT = ROOT / "bench" / "out"
PARTS = ("timing", "ranking", "e2e")
log = logging.getLogger("bench.scoring_vae")


def _boot() -> Any:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tools.comfy_env import boot_comfyui

    return boot_comfyui()


def _bench(name: str) -> Any:
    return importlib.import_module(f"evosearch_pack.bench.{name}")


# ---------------------------------------------------------------------------------------------------------- ranking
@torch.no_grad()
def decode_seconds_per_image(vae: Any, latent: torch.Tensor, runs: int = 3) -> float:
    """Median seconds per image of ``vae.decode`` on a batch (after one warm-up call)."""
    vae.decode(latent)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        vae.decode(latent)
        times.append(time.perf_counter() - t0)
    return statistics.median(times) / latent.shape[0]


def ranking(case: Any, n: int = 256, seed: int = 1000, group: int = 16) -> dict[str, Any]:
    """Rank agreement of ``case.scoring_vae`` with ``case.vae`` under each reward, on ``n`` samples of the model
    (final samples, and the x0 predictions halfway, which x0-fitness searches score)."""
    stats = _bench("ranking")
    cases = _bench("scoring_cases")
    trainer = importlib.import_module("evosearch_pack.tools.train_taesd")
    t0 = time.perf_counter()
    paths = trainer.trajectory_latents(case.model, case.positive, case.negative, case.empty_latent, n,
                                       steps=case.steps, sampler=case.sampler, scheduler=case.scheduler,
                                       cfg=case.cfg, seed=seed)  # fmt: skip
    fmt = case.model.model.latent_format
    half = case.steps // 2
    sets = {"final samples": paths[-1], f"x0 predictions at step {half}/{case.steps}": paths[half]}
    out: dict[str, Any] = {"samples": n, "seed": seed, "group": group, "sets": {}}
    for set_name, z in sets.items():
        latent = fmt.process_out(z)
        full, fast = cases.decode(case.vae, latent), cases.decode(case.scoring_vae, latent)
        per_reward = {}
        for reward_name, reward in case.rewards.items():
            a, b = reward.score(full).double(), reward.score(fast).double()
            groups = [(a[i : i + group], b[i : i + group]) for i in range(0, n - group + 1, group)]
            hits = [stats.top1_hit(ga, gb) for ga, gb in groups]
            regret = [float(ga.max() - ga[int(torch.argmax(gb))]) for ga, gb in groups]
            per_reward[reward_name] = {
                "spearman": stats.spearman(a, b),
                "top10_overlap": stats.top_k_overlap(a, b, 0.10),
                "top1_whole_set": bool(stats.top1_hit(a, b)[0]),
                "top1_whole_set_full_rank": stats.top1_hit(a, b)[1],
                "group_top1_agreement": statistics.fmean(h for h, _ in hits) if hits else float("nan"),
                "group_pick_mean_full_rank": statistics.fmean(r for _, r in hits) if hits else float("nan"),
                "group_mean_regret": statistics.fmean(regret) if regret else float("nan"),
                "mean_abs_score_gap": float((a - b).abs().mean()),
                "full_mean": float(a.mean()),
                "scoring_mean": float(b.mean()),
            }
        out["sets"][set_name] = per_reward
    probe = fmt.process_out(paths[-1][:group])
    out["decode_s_per_image"] = {
        "full": decode_seconds_per_image(case.vae, probe),
        "scoring": decode_seconds_per_image(case.scoring_vae, probe),
        "batch": group,
    }
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


# -------------------------------------------------------------------------------------------------------------- e2e
def run_node(node_cls: type, **inputs: Any) -> tuple:
    """Execute a V3 node as ComfyUI does (a prepared class clone with a hidden UNIQUE_ID); its outputs tuple."""
    compat = importlib.import_module("evosearch_pack.nodes.compat")
    return compat.prepare_node_clone(node_cls, {"UNIQUE_ID": "1"}).execute(**inputs).result


def _search(case: Any, reward: Any, *, budget: float, fitness: str, seed: int, scoring_vae: Any) -> dict[str, Any]:
    """One EvoSearch KSampler run as a graph runs it; the returned latent decoded by the full VAE and scored."""
    import nodes as comfy_nodes

    sn = importlib.import_module("evosearch_pack.nodes.sampler_nodes")
    (schedule,) = run_node(sn.EvoSearchSchedule, mode="budget_multiple", strategy="evosearch", budget=float(budget),
                           evolution_steps="", population="", steps=case.steps, potential="max", lam=10.0,
                           fitness=fitness)  # fmt: skip
    t0 = time.perf_counter()
    best, _pop, _scores, report, _plot = run_node(
        sn.EvoSearchKSampler, model=case.model, positive=case.positive, negative=case.negative,
        latent_image=case.empty_latent(1), reward=reward, seed=seed, steps=case.steps, cfg=case.cfg,
        sampler_name=case.sampler, scheduler=case.scheduler, denoise=1.0, chunk_size=0, vae=case.vae,
        schedule=schedule, mutation=None, scoring_vae=scoring_vae,
    )  # fmt: skip
    wall = time.perf_counter() - t0
    (image,) = comfy_nodes.VAEDecode().decode(case.vae, best)
    rep = json.loads(report)
    satisfied = getattr(reward, "satisfied", None)
    return {
        "final_reward": float(reward.score(image)[0]),
        "satisfied": bool(satisfied(image)[0]) if satisfied is not None else None,
        "node_best_reward": float(rep["best_rewards"][0]),
        "decode_seconds": float(rep["decode_seconds"]),
        "reward_seconds": float(rep["reward_seconds"]),
        "model_seconds": float(rep["model_seconds"]),
        "seconds": float(rep["seconds"]),
        "wall_seconds": wall,
        "decodes": int(rep["decodes"]),
        "nfe": int(rep["nfe"]),
    }


def e2e(case: Any, seeds: list[int], budgets: list[float], fitness_modes: list[str]) -> dict[str, Any]:
    """EvoSearch through the KSampler node with the full VAE vs ``case.scoring_vae`` for every reward, budget,
    fitness mode and seed; mean ± s.e. per cell."""
    t0 = time.perf_counter()
    cells = []
    for reward_name, reward in case.rewards.items():
        for fitness in fitness_modes:
            for budget in budgets:
                for label, scoring in (("full VAE", None), ("scoring VAE", case.scoring_vae)):
                    runs = [_search(case, reward, budget=budget, fitness=fitness, seed=s, scoring_vae=scoring)
                            for s in seeds]  # fmt: skip
                    cell = {"reward": reward_name, "fitness": fitness, "budget": budget, "scoring": label,
                            "seeds": len(seeds), **_summary(runs)}  # fmt: skip
                    log.info("e2e %s %s ×%g %-11s reward %.3f ± %.3f  decode %.2f s  total %.2f s", reward_name,
                             fitness, budget, label, cell["final_reward"], cell["final_reward_se"],
                             cell["decode_seconds"], cell["seconds"])  # fmt: skip
                    cells.append(cell)
    return {"seeds": seeds, "budgets": budgets, "fitness_modes": fitness_modes, "cells": cells,
            "seconds": round(time.perf_counter() - t0, 1)}  # fmt: skip


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    def mean(key: str) -> float:
        return statistics.fmean(r[key] for r in runs)

    rewards = [r["final_reward"] for r in runs]
    se = statistics.stdev(rewards) / math.sqrt(len(rewards)) if len(rewards) > 1 else float("nan")
    sat = [r["satisfied"] for r in runs if r["satisfied"] is not None]
    return {
        "final_reward": mean("final_reward"),
        "final_reward_se": se,
        "success": statistics.fmean(sat) if sat else None,
        "node_best_reward": mean("node_best_reward"),
        "decode_seconds": mean("decode_seconds"),
        "reward_seconds": mean("reward_seconds"),
        "model_seconds": mean("model_seconds"),
        "seconds": mean("seconds"),
        "decodes": mean("decodes"),
        "nfe": mean("nfe"),
        "per_seed": [round(r, 4) for r in rewards],
    }


# --------------------------------------------------------------------------------------------------------- markdown
def _fmt_s(seconds: float) -> str:
    return f"{seconds:.3f}" if seconds < 10 else f"{seconds:.1f}"


def timing_markdown(t: dict[str, Any]) -> list[str]:
    rows = {r["key"]: r for r in t["rows"]}
    nfe = rows["unet_sd15"]["seconds"]
    pairs = [("sd15_512", "taesd_512", "SD1.5, 512²"), ("sdxl_512", "taesdxl_512", "SDXL, 512²"),
             ("sdxl_1024", "taesdxl_1024", "SDXL, 1024²"), ("wan21_video", None, "Wan 2.1, video")]  # fmt: skip
    lines = [
        "## Real-size decode cost (random weights, ComfyUI's own VAE classes)",
        "",
        (
            f"`python -m bench.scoring_vae --parts timing` — {t['device']} device, {t['threads']} thread, torch "
            f"{t['torch']}, oneDNN {'on' if t['mkldnn'] else 'off'}, float32 (what ComfyUI picks on a CPU); batch of one; "
            f"median of the runs shown. One NFE = one SD1.5 UNet evaluation with CFG at 512² (cond + uncond as one "
            f"batch of 2): **{nfe:.2f} s**. Part wall time {t['seconds'] / 60:.1f} min, peak RSS {t['peak_rss_gb']} GB, "
            f"1-min load average {t.get('load_average_before', ['?'])[0]} before / {t.get('load_average_after', ['?'])[0]} "
            "after on this 2-core machine (other jobs shared it: absolute seconds are inflated, ratios much less)."
        ),
        "",
        (
            "| model, size | full VAE: latent → output | full s | fast decoder | fast s | speed-up | full in NFE | "
            "fast in NFE |"
        ),
        "|---|---|---|---|---|---|---|---|",
    ]
    for full_key, fast_key, label in pairs:
        if full_key not in rows:
            continue
        f = rows[full_key]
        shape = f"{'×'.join(map(str, f['latent'][1:]))} → {'×'.join(map(str, f['output'][1:-1]))}"
        if fast_key is not None and fast_key in rows:
            s = rows[fast_key]
            lines.append(
                f"| {label} | {shape} | {_fmt_s(f['seconds'])} ({f['runs']}) | {s['decoder']} | "
                f"{_fmt_s(s['seconds'])} ({s['runs']}) | **{f['seconds'] / s['seconds']:.0f}×** | "
                f"{f['seconds'] / nfe:.2f} | {s['seconds'] / nfe:.3f} |"
            )
        else:
            lines.append(f"| {label} | {shape} | {_fmt_s(f['seconds'])} ({f['runs']}) | none in this ComfyUI | – | – | "
                         f"{f['seconds'] / nfe:.2f} | – |")  # fmt: skip
    lines += [
        "",
        (
            "(n) = timed runs. SD1.5 and SDXL VAE files load into the same ComfyUI module (`AutoencoderKL`, one "
            "detection branch, same shapes), as TAESD and TAESDXL do (`comfy.taesd.taesd.TAESD`, only `vae_scale` "
            "differs), so their 512² rows time the same computation twice."
        ),
        "",
        f"Wan 2.1 fast decoder: {t['wan_fast_decoder']}.",
        "",
    ]
    lines += savings_markdown(rows, nfe)
    return lines


def savings_markdown(rows: dict[str, Any], nfe: float) -> list[str]:
    """What a search at ×10 and ×30 (20 steps) spends on decoding, computed from the measured rows."""
    if "sd15_512" not in rows or "taesd_512" not in rows:
        return []
    full, fast = rows["sd15_512"]["seconds"], rows["taesd_512"]["seconds"]
    es = importlib.import_module("evosearch")
    plans = []  # what the EvoSearch Schedule node plans at 20 steps: NFE and reward calls (= decodes)
    for budget in (10, 30):
        for fitness in ("rollout", "x0"):
            schedule = es.ScheduleSpec(mode="budget_multiple", budget=float(budget), fitness=fitness).resolve(20)
            plans.append((f"×{budget}, {fitness} fitness", schedule.nfe(20), schedule.reward_calls(20)))
    lines = [
        (
            "What that means for one SD1.5 512² search at 20 steps: the EvoSearch Schedule node's plans (budget_multiple; "
            "NFE and decodes from the engine's planner) costed with the rows above, NFE × NFE time + decodes × decode "
            "time; reward time not included:"
        ),
        "",
        "| EvoSearch budget | NFE | decodes | full VAE: total (decode share) | TAESD: total (decode share) | saved |",
        "|---|---|---|---|---|---|",
    ]
    for label, n, d in plans:
        a, b = n * nfe + d * full, n * nfe + d * fast
        lines.append(f"| {label} | {n} | {d} | {a / 60:.1f} min ({d * full / a:.0%}) | {b / 60:.1f} min "
                     f"({d * fast / b:.1%}) | {1 - b / a:.0%} |")  # fmt: skip
    lines.append("")
    return lines


def ranking_markdown(r: dict[str, Any], case_name: str) -> list[str]:
    d = r["decode_s_per_image"]
    lines = [
        f"## Ranking agreement on the {case_name} demo (full VAE vs the shipped TAESD decoder)",
        "",
        (
            f"`python -m bench.scoring_vae --parts ranking` — {r['samples']} samples of the demo UNet (dpmpp_2m_sde, "
            f"karras, 20 steps, cfg 1, noise seeds from {r['seed']}), each decoded by the demo VAE (32×32) and by "
            f"`assets/demo/taesd_digits.safetensors` (64×64, resized to 32×32 by the reward), scored by the demo reward "
            f"(target 3). *Group top-1*: in {r['samples'] // r['group']} groups of {r['group']} (a population), how "
            "often the TAESD's best is the full VAE's best; *pick rank*: the full-VAE rank of the TAESD's pick (0 = best); "
            "*regret*: full-VAE score lost by taking the TAESD's pick. Part time "
            f"{r['seconds']:.0f} s."
        ),
        "",
        (
            "| latents | reward | Spearman ρ | top-10 % overlap | group top-1 | pick rank | regret | mean \\|Δ score\\| | "
            f"best of all {r['samples']} found |"
        ),
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for set_name, per in r["sets"].items():
        for name, m in per.items():
            lines.append(
                f"| {set_name} | `{name}` | **{m['spearman']:.3f}** | {m['top10_overlap']:.0%} | "
                f"{m['group_top1_agreement']:.0%} | {m['group_pick_mean_full_rank']:.2f} | "
                f"{m['group_mean_regret']:.3f} | {m['mean_abs_score_gap']:.3f} | "
                f"{'yes' if m['top1_whole_set'] else 'no (rank ' + str(m['top1_whole_set_full_rank']) + ')'} |"
            )
    lines += [
        "",
        (
            f"Decode time on this demo, batch of {d['batch']}: full VAE {d['full'] * 1000:.1f} ms/image, TAESD "
            f"{d['scoring'] * 1000:.1f} ms/image — the demo VAE (0.18 M parameters, 32 channels, 32×32) is far "
            "smaller than any TAESD (1.2 M, 64 channels, 64×64 output), so here the scoring VAE is *slower*; it "
            "exists to prove the path and measure agreement. The savings are at real size (table above)."
        ),
        "",
    ]
    return lines


def e2e_markdown(e: dict[str, Any], case_name: str) -> list[str]:
    lines = [
        f"## End to end on the {case_name} demo: EvoSearch KSampler with and without `scoring_vae`",
        "",
        (
            f"`python -m bench.scoring_vae --parts e2e` — EvoSearch Schedule (budget_multiple, evosearch) → EvoSearch "
            f"KSampler (dpmpp_2m_sde, karras, 20 steps, cfg 1), seeds {e['seeds'][0]}…{e['seeds'][-1]}; the returned "
            "latent decoded by the **full** demo VAE (VAEDecode) and scored by the same reward. *Paired Δ*: scoring-VAE "
            "run minus full-VAE run of the same seed (mean ± s.e.); *same*: seeds whose two runs returned samples of "
            "equal reward (|Δ| < 1e-4: the search made the same choices). Seconds are the node report's (per search, "
            f"mean over seeds). Part time {e['seconds'] / 60:.1f} min."
        ),
        "",
        (
            "| reward | fitness | budget | scoring with | final reward (full VAE), mean ± s.e. | paired Δ | same | "
            "success | decodes | decode s | total s |"
        ),
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    full_runs = {(c["reward"], c["fitness"], c["budget"]): c for c in e["cells"] if c["scoring"] == "full VAE"}
    for c in e["cells"]:
        success = "–" if c["success"] is None else f"{c['success']:.0%}"
        se = "" if math.isnan(c["final_reward_se"]) else f" ± {c['final_reward_se']:.3f}"
        paired, same = "", ""
        base = full_runs.get((c["reward"], c["fitness"], c["budget"]))
        if c["scoring"] != "full VAE" and base is not None:
            deltas = [b - a for a, b in zip(base["per_seed"], c["per_seed"])]
            spread = statistics.stdev(deltas) / math.sqrt(len(deltas)) if len(deltas) > 1 else float("nan")
            paired = f"{statistics.fmean(deltas):+.4f}" + ("" if math.isnan(spread) else f" ± {spread:.4f}")
            same = f"{sum(abs(d) < 1e-4 for d in deltas)}/{len(deltas)}"
        lines.append(
            f"| `{c['reward']}` | {c['fitness']} | ×{c['budget']:g} | {c['scoring']} | "
            f"{c['final_reward']:.3f}{se} | {paired} | {same} | {success} | {c['decodes']:.0f} | "
            f"{c['decode_seconds']:.2f} | {c['seconds']:.2f} |"
        )
    lines.append("")
    return lines


def markdown(results: dict[str, Any]) -> str:
    lines = ["# Scoring VAE: decode cost at real size, and ranking agreement on the digit demo", ""]
    if "timing" in results:
        lines += timing_markdown(results["timing"])
    if "ranking" in results:
        lines += ranking_markdown(results["ranking"], results.get("case", "digits"))
    if "e2e" in results:
        lines += e2e_markdown(results["e2e"], results.get("case", "digits"))
    return "\n".join(lines)


# -------------------------------------------------------------------------------------------------------------- main
def render(out_dir: Path) -> str:
    """Rewrite ``scoring_vae.md`` from ``scoring_vae.json`` in ``out_dir`` (no measurement) and return it."""
    results = json.loads((out_dir / "scoring_vae.json").read_text())
    report = markdown(results)
    (out_dir / "scoring_vae.md").write_text(report + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help="comma-separated subset of " + ",".join(PARTS))
    parser.add_argument("--quick", action="store_true", help="tiny sizes and counts; writes bench/out/")
    parser.add_argument("--render", action="store_true", help="only rewrite the .md from the .json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--samples", type=int, default=256, help="ranking: samples")
    parser.add_argument("--seeds", type=int, default=6, help="e2e: seeds 0…N−1")
    parser.add_argument("--budgets", default="10,30", help="e2e: budgets (× one trajectory)")
    parser.add_argument("--fitness", default="rollout,x0", help="e2e: fitness modes")
    parser.add_argument("--no-sdxl-1024", action="store_true", help="timing: skip the 1024² SDXL rows")
    parser.add_argument("--wan-frames", type=int, default=9, help="timing: Wan video frames (1 + 4k)")
    parser.add_argument("--wan-size", default="256x256", help="timing: Wan video H×W")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    log.setLevel(logging.INFO)
    if args.render:
        sys.path.insert(0, str(ROOT))  # the engine (torch only) plans the schedules of the savings table
        sys.stdout.write(render(QUICK_OUT if args.quick else RESULTS) + "\n")
        return 0
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(True)
    _boot()
    out_dir = QUICK_OUT if args.quick else RESULTS
    json_path, md_path = out_dir / "scoring_vae.json", out_dir / "scoring_vae.md"
    results: dict[str, Any] = json.loads(json_path.read_text()) if json_path.is_file() else {}
    command = f"python -m bench.scoring_vae {' '.join(argv if argv is not None else sys.argv[1:])}".strip()
    if "timing" in parts:
        timing = _bench("decode_timing")
        h, w = (int(v) for v in args.wan_size.lower().split("x"))
        kwargs: dict[str, Any] = {"sdxl_1024": not args.no_sdxl_1024, "wan_frames": args.wan_frames, "wan_size": (h, w)}
        if args.quick:
            kwargs = {"sdxl_1024": False, "wan_frames": 1, "wan_size": (64, 64), "runs": 1, "unet_runs": 1,
                      "image_side": 64}  # fmt: skip
        results["timing"] = {**timing.run_timing(**kwargs), "command": command}
    if "ranking" in parts or "e2e" in parts:
        case = _bench("scoring_cases").digit_case()
        results["case"] = case.name
        with torch.inference_mode():
            if "ranking" in parts:
                n = 32 if args.quick else args.samples
                results["ranking"] = {**ranking(case, n=n), "command": command}
            if "e2e" in parts:
                seeds = list(range(1 if args.quick else args.seeds))
                budgets = [2.0] if args.quick else [float(b) for b in args.budgets.split(",")]
                results["e2e"] = {**e2e(case, seeds, budgets, args.fitness.split(",")), "command": command}
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(results, indent=1) + "\n")
    report = markdown(results)
    md_path.write_text(report + "\n")
    sys.stdout.write(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
