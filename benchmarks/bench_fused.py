"""Time the fused trainer against separate runs: one seed's four runs (SAM at ρ 0.2, 0.1, 0.05 and SGD).

fused     the four runs in lockstep, one program (flatbias.fused_train.time_steps: stacked weights, vmap)
separate  the same four runs one after the other, each its own cifar_train step (flatbias.gpu_session.time_steps)

Both on random uint8 images resident on the device, augmentation included, after warm-up steps. The two are
measured alternately, ``--repeats`` times, and the medians compared (the machine may be shared: alternating
spreads its load over both). The record gives the ratio (separate step time over fused step time: > 1 means the
fused program is faster) and the hardware; absolute times on a shared CPU say little.

    python benchmarks/bench_fused.py                                         # CPU: tiny and width-16 models
    python benchmarks/bench_fused.py --device cuda --shapes 64:128 --steps 40 --warmup 15 \\
        --out results/cifar10/fused_benchmark_gpu.json                       # a GPU: the paper's model
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import time

import torch

from flatbias import fused_train as ft
from flatbias import gpu_session as gs
from flatbias import records


def lscpu() -> dict:
    """The CPU as ``lscpu`` names it (model, sockets, cores, threads), where lscpu exists."""
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {}
    keep = ("Architecture", "CPU(s)", "Model name", "Thread(s) per core", "Core(s) per socket", "Socket(s)")
    rows = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    return {k: rows[k].strip() for k in keep if k in rows}


def measure(width: int, batch: int, dev: torch.device, steps: int, warmup: int, repeats: int) -> dict:
    cfgs = ft.table_configs([42], rhos=(0.2, 0.1, 0.05), width=width, batch_size=batch, precision="fp32")
    n_images = batch * (steps + warmup)
    fused, separate = [], []
    for _ in range(repeats):
        fused.append(ft.time_steps(cfgs, dev, n_images, steps, warmup)["step_s"])
        separate.append(sum(gs.time_steps(c, dev, n_images, steps, warmup)["step_s"] for c in cfgs))
    f, s = statistics.median(fused), statistics.median(separate)
    return {"width": width, "batch_size": batch, "runs": [c.run_id for c in cfgs], "fused_step_s": fused,
            "separate_step_s": separate, "fused_median_s": f, "separate_median_s": s, "ratio": s / f,
            "fused_steps_per_s": 1 / f, "separate_steps_per_s": 1 / s}


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=["4:25", "16:128"], metavar="WIDTH:BATCH",
                   help="models to time: channel width (64 = ResNet-18) and batch size")
    p.add_argument("--steps", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (a shared machine: 1)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default=str(records.repo_root() / "results" / "cifar10" / "fused_benchmark.json"))
    a = p.parse_args(argv)
    if min(a.steps, a.repeats) < 1 or a.warmup < 0 or a.threads < 1:
        p.error("--steps and --repeats must be >= 1, --warmup >= 0, --threads >= 1")
    try:
        shapes = [tuple(int(v) for v in s.split(":")) for s in a.shapes]
    except ValueError:
        p.error(f"--shapes takes WIDTH:BATCH pairs such as 16:128, got {a.shapes}")
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    t0 = time.perf_counter()
    rows = []
    for width, batch in shapes:
        rows.append(measure(width, batch, dev, a.steps, a.warmup, a.repeats))
        r = rows[-1]
        print(f"width {width}, batch {batch}: fused {1e3 * r['fused_median_s']:.1f} ms a step of the four runs, "
              f"separate {1e3 * r['separate_median_s']:.1f} ms: ratio {r['ratio']:.2f}", flush=True)
    settings = {"device": str(dev), "threads": a.threads, "steps": a.steps, "warmup": a.warmup,
                "repeats": a.repeats, "precision": "fp32", "lscpu": lscpu() if dev.type == "cpu" else None,
                "gpu": torch.cuda.get_device_name(dev) if dev.type == "cuda" else None,
                "note": "ratio = separate / fused step time of one seed's four runs (medians); absolute times on a "
                        "shared machine say little"}
    records.write_record(a.out, "cifar10_fused_benchmark", "smoke" if dev.type == "cpu" else "full", settings,
                         {"shapes": rows}, wall_time_s=time.perf_counter() - t0)
    print(f"record: {a.out}")
    return {"shapes": rows}


if __name__ == "__main__":
    main()
