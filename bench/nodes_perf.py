"""Node performance on tiny real-architecture models on the CPU (issue 3), side by side in one run.

    COMFYUI_PATH=/path/to/ComfyUI python -m bench.nodes_perf

1. Best-of-16 through the EvoSearch KSampler vs ComfyUI's own KSampler on a batch of 16, same steps: the sampling
   time ratio (VAE decode and reward time reported separately).
2. Population batching vs one individual per model call (how the official Wan code runs): NFE per second, on the
   tiny SD1.5 model (compute-bound on a CPU: batching cannot help much there) and on the shipped demo model (small
   latents, where ComfyUI's per-call overhead is what batching saves, as on a GPU).
3. Peak memory of the search grows with the chunk size, not the population (population 64 at chunk 8 ≈ population 8).
   Each memory point runs in a fresh process and reports the growth of its peak resident set while sampling.

Uses the tiny models of tests/support (ComfyUI's own classes with random weights).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

log = logging.getLogger("bench.nodes_perf")
STEPS = 20


def _boot():
    from support.comfy import boot
    from support.nodes import module
    from support.tiny_models import build

    boot()
    return module, build


def _ksampler_node(module, bundle, latent, schedule, chunk, seed=0):
    from support.nodes import run_node

    sn = module("nodes.sampler_nodes")
    out = run_node(sn.EvoSearchKSampler, model=bundle.model, positive=bundle.positive, negative=bundle.negative,
                   latent_image=latent, reward=module("rewards").Colorfulness(), seed=seed, steps=STEPS, cfg=2.0,
                   sampler_name="euler_ancestral", scheduler="normal", denoise=1.0, chunk_size=chunk,
                   vae=bundle.vae, schedule=schedule, mutation=None)  # fmt: skip
    return json.loads(out[3])


def _timed(fn, repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), value


def best_of_n_vs_ksampler(module, build, size: int, repeats: int) -> dict:
    import nodes

    es = module("evosearch")
    bundle = build("sd15")
    latent = {"samples": torch.zeros((16, 4, size, size))}
    one = {"samples": torch.zeros((1, 4, size, size))}
    schedule = es.ScheduleSpec(mode="custom", strategy="best_of_n", evolution_steps=(), population=(16,))
    run_ks = lambda: nodes.common_ksampler(bundle.model, 0, STEPS, 2.0, "euler_ancestral", "normal",  # noqa: E731
                                           bundle.positive, bundle.negative, latent)  # fmt: skip
    run_bon = lambda: _ksampler_node(module, bundle, one, schedule, 16)  # noqa: E731
    run_ks(), run_bon()  # warm-up: first calls build kernels
    ks, _ = _timed(run_ks, repeats)
    bon_total, report = _timed(run_bon, repeats)
    sampling = bon_total - report["decode_seconds"] - report["reward_seconds"]
    return {"latent": f"16×4×{size}×{size}", "ksampler_s": ks, "best_of_16_total_s": bon_total,
            "best_of_16_sampling_s": sampling, "decode_s": report["decode_seconds"],
            "reward_s": report["reward_seconds"], "ratio": sampling / ks, "nfe": report["nfe"]}  # fmt: skip


def batching_throughput(module, build, size: int, repeats: int, bundle=None) -> dict:
    es = module("evosearch")
    bundle = bundle or build("sd15")
    one = {"samples": torch.zeros((1, 4, size, size))}
    schedule = es.ScheduleSpec(mode="custom", evolution_steps=(0, 10, 15), population=(16, 16, 16, 16))
    out = {}
    for chunk in (16, 1):
        _ksampler_node(module, bundle, one, schedule, chunk)
        total, report = _timed(lambda c=chunk: _ksampler_node(module, bundle, one, schedule, c), repeats)
        sampling = total - report["decode_seconds"] - report["reward_seconds"]
        out[chunk] = {"nfe": report["nfe"], "sampling_s": sampling, "nfe_per_s": report["nfe"] / sampling}
    return {"population": 16, "batched_nfe_per_s": out[16]["nfe_per_s"], "one_by_one_nfe_per_s": out[1]["nfe_per_s"],
            "speedup": out[16]["nfe_per_s"] / out[1]["nfe_per_s"], "nfe": out[16]["nfe"]}  # fmt: skip


def memory_probe(population: int, chunk: int, size: int) -> dict:
    """Run in a fresh process: peak-RSS growth while a Best-of-``population`` search runs at ``chunk``."""
    module, build = _boot()
    es = module("evosearch")
    bundle = build("sd15")
    one = {"samples": torch.zeros((1, 4, size, size))}
    warm = es.ScheduleSpec(mode="custom", strategy="best_of_n", evolution_steps=(), population=(1,))
    _ksampler_node(module, bundle, one, warm, 1)  # load kernels and allocator pools before the baseline
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    schedule = es.ScheduleSpec(mode="custom", strategy="best_of_n", evolution_steps=(), population=(population,))
    _ksampler_node(module, bundle, one, schedule, chunk)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"population": population, "chunk": chunk, "peak_growth_mb": (after - before) / 1024}


def memory_scaling(size: int) -> list[dict]:
    rows = []
    for population, chunk in ((8, 8), (64, 8), (64, 64)):
        cmd = [
            sys.executable,
            "-m",
            "bench.nodes_perf",
            "--memory-probe",
            str(population),
            str(chunk),
            "--size",
            str(size),
        ]
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=16, help="latent side for timing (default 16 = 128 px)")
    parser.add_argument("--memory-size", type=int, default=16, help="latent side for the memory points (default 16)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--memory-probe", nargs=2, type=int, metavar=("POPULATION", "CHUNK"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "nodes_perf.md")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    log.setLevel(logging.INFO)  # this benchmark's progress lines; ComfyUI's own stay at WARNING
    torch.set_num_threads(2)
    if args.memory_probe:
        with torch.inference_mode():
            print(json.dumps(memory_probe(*args.memory_probe, args.memory_size)))  # noqa: T201 - read by the parent
        return 0
    module, build = _boot()
    with torch.inference_mode():
        bon = best_of_n_vs_ksampler(module, build, args.size, args.repeats)
        log.info("best-of-16 vs KSampler: %s", bon)
        batching = batching_throughput(module, build, args.size, args.repeats)
        log.info("batching: %s", batching)
        demo = module("nodes.demo_model").load_demo()
        demo_batching = batching_throughput(module, build, 8, args.repeats, bundle=demo)
        log.info("batching on the demo model: %s", demo_batching)
    memory = memory_scaling(args.memory_size)
    lines = [
        f"## Node performance (tiny SD1.5-architecture UNet, CPU, {STEPS} steps, euler_ancestral, cfg 2)\n",
        "| measurement | value |",
        "|---|---|",
        f"| ComfyUI KSampler, batch of 16 ({bon['latent']}) | {bon['ksampler_s']:.3f} s |",
        f"| EvoSearch KSampler, Best-of-16: sampling | {bon['best_of_16_sampling_s']:.3f} s ({bon['nfe']} NFE) |",
        f"| … of which not counted: VAE decode / reward | {bon['decode_s']:.3f} s / {bon['reward_s']:.3f} s |",
        f"| **Best-of-16 / KSampler time ratio** | **{bon['ratio']:.3f}** |",
        f"| population 16, batched: NFE/s | {batching['batched_nfe_per_s']:.1f} |",
        f"| population 16, one individual per call: NFE/s | {batching['one_by_one_nfe_per_s']:.1f} |",
        f"| **batching speed-up** | **{batching['speedup']:.2f}×** |",
        f"| demo model (1.7 M params, 4×8×8 latents), population 16, batched: NFE/s | "
        f"{demo_batching['batched_nfe_per_s']:.1f} |",
        f"| demo model, one individual per call: NFE/s | {demo_batching['one_by_one_nfe_per_s']:.1f} |",
        f"| **batching speed-up on the demo model** | **{demo_batching['speedup']:.2f}×** |",
        "",
        f"Peak resident memory growth while searching (Best-of-N, latent 4×{args.memory_size}×{args.memory_size}, "
        "fresh process each):\n",
        "| population | chunk | peak growth |",
        "|---|---|---|",
        *[f"| {m['population']} | {m['chunk']} | {m['peak_growth_mb']:.0f} MB |" for m in memory],
    ]
    report = "\n".join(lines)
    print(report)  # noqa: T201 - the table is the command's output
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(report + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
