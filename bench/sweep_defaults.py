"""The evidence for the shipped defaults: schedule pattern and mutation settings, swept on both engine cases.

    python -m bench.sweep_defaults            # 16 seeds, budgets ×30 and ×100 (a few minutes on 2 cores)

Each row is a (generation pattern, mutation) pair planned by ``Schedule.plan`` at the same budget; the value is the
mean best reward over seeds (higher is better). "paper" is the paper's pattern (x_T, 40%, 60%, 80% of the steps),
"default" the shipped one (x_T, 50%, 70%, 80%, 90%, 95%); "official" the official code's mutation and selection
(additive, β 0.2, tournaments of 90% of the pool).
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import statistics
from pathlib import Path

import torch

import evosearch as es
from bench.engine import T, _case
from evosearch.schedule import DEFAULT_EVOLUTION_FRACTIONS
from evosearch.toys import ddpm_sigmas

PATTERNS = {
    "paper 0/40/60/80%": (0.0, 0.4, 0.6, 0.8),
    "every 10%": tuple(i / 10 for i in range(10)),
    "default 0/50/70/80/90/95%": DEFAULT_EVOLUTION_FRACTIONS,
}
MUTATIONS = {
    "official (additive, t=0.9)": es.Mutation(beta=0.2, intermediate="additive", strength=1.0, tournament=0.9),
    "additive, t=0.25": es.Mutation(intermediate="additive", strength=1.0, tournament=0.25),
    "redraw 0.5, t=0.9": es.Mutation(strength=0.5),
    "redraw 1.0, t=0.5": es.Mutation(tournament=0.5),
    "redraw 1.0, t=0.9 (default)": es.Mutation(),
}


def run(job: tuple[str, str, str, int, int]) -> tuple[str, str, str, int, float]:
    torch.set_num_threads(1)
    case, pattern, mutation, multiple, seeds = job
    denoiser, reward, shape = _case(case)
    process = es.KDiffusionProcess(denoiser, ddpm_sigmas(T), sampler="ddpm")
    steps = es.default_evolution_steps(T, PATTERNS[pattern])
    schedule = es.Schedule.plan(multiple * T, T, steps)
    rewards = [es.search(process, reward, shape, schedule, seed=s, mutation=MUTATIONS[mutation]).best_reward
               for s in range(seeds)]  # fmt: skip
    return case, pattern, mutation, multiple, statistics.fmean(rewards)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "sweep_defaults.md")
    args = parser.parse_args(argv)
    jobs = list(itertools.product(("ring", "mixture64"), PATTERNS, MUTATIONS, (30, 100), [args.seeds]))
    with mp.get_context("spawn").Pool(args.jobs) as pool:
        results = pool.map(run, jobs, chunksize=1)
    table = {(c, p, m, b): v for c, p, m, b, v in results}
    lines = [f"## Defaults sweep ({args.seeds} seeds, T = {T}, mean best reward; `python -m bench.sweep_defaults`)"]
    for case, multiple in itertools.product(("ring", "mixture64"), (30, 100)):
        lines += [f"\n### {case}, ×{multiple}\n", "| pattern | " + " | ".join(MUTATIONS) + " |",
                  "|---|" + "---|" * len(MUTATIONS)]  # fmt: skip
        for pattern in PATTERNS:
            cells = [f"{table[(case, pattern, m, multiple)]:.3f}" for m in MUTATIONS]
            lines.append(f"| {pattern} | " + " | ".join(cells) + " |")
    report = "\n".join(lines)
    print(report)  # noqa: T201 - the table is the command's output
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
