"""Benchmark: the Figure-1(a) SGD heat-map (σ ∈ 1..50, B ∈ 1..49, 10 repetitions, 1000 steps, n = 100, η = 0.5),
batched simulator (flatbias.simulate.simulate_axes; compiled numba kernel with Floyd sampling by default,
``--backend torch`` for the tensor version) vs a per-repetition Python loop as in the authors'
``coherence_local.py`` (dense d × d matrices, ``np.random.choice(n, B, replace=False)``, one step at a time).

The loop is run on a random subset of cells (``--loop-cells``) and its time scaled by the cell count; the batched
simulator runs the whole grid (or ``--grid smoke``). Both decisions are compared on the subset cells, and each
cell's exact ρ(𝒯) is reported so that disagreements can be located. Writes results/stability/benchmark.json.

    python benchmarks/stability_heatmap.py                 # full grid batched + 20 loop cells
    python benchmarks/stability_heatmap.py --grid smoke    # quick check
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from flatbias import records, simulate, stability
from flatbias.coherence import authors_family

N, ETA, REPS, STEPS = 100, 0.5, 10, 1000


def loop_cell(H: np.ndarray, B: int, rng: np.random.Generator, reps: int = REPS, steps: int = STEPS) -> bool:
    """One cell the authors' way: a Python loop over repetitions and steps; stable if ≥ half stay bounded."""
    n, d = H.shape[0], H.shape[1]
    success = 0
    for _ in range(reps):
        w = rng.random(d)
        norm0 = w @ w
        s = 1
        for _ in range(steps):
            idx = rng.choice(n, B, replace=False)
            Hb = H[idx].mean(0)
            w = w - ETA * Hb @ w
            if w @ w >= simulate.BLOWUP * norm0:
                s = 0
                break
        success += s
    return success >= reps / 2


def main(argv=None) -> Path:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--grid", choices=["smoke", "full"], default="full")
    p.add_argument("--backend", choices=["numba", "torch"], default="numba")
    p.add_argument("--loop-cells", type=int, default=20, help="cells timed with the Python loop")
    p.add_argument("--out", default=str(records.repo_root() / "results" / "stability" / "benchmark.json"))
    args = p.parse_args(argv)
    sigmas = range(1, 51) if args.grid == "full" else range(1, 51, 7)
    batches = range(1, 50) if args.grid == "full" else range(1, 50, 6)
    k, a, d, B, s = simulate.authors_grid(N, sigmas, batches)
    C = len(B)
    D = torch.zeros(C, N, int(d.max()), dtype=torch.float64).scatter_(2, k[:, :, None], a[:, :, None])
    rho = stability.spectral_radius_diagonal(D, ETA, B)

    gen = torch.Generator().manual_seed(0)
    if args.backend == "numba":  # compile outside the timed region (cached on disk after the first run)
        simulate.simulate_axes(k[:1], a[:1], d[:1], B[:1], ETA, reps=1, steps=2, generator=gen)
    t0 = time.perf_counter()
    div = simulate.simulate_axes(k, a, d, B, ETA, reps=REPS, steps=STEPS, generator=gen, progress=False,
                                 backend=args.backend)
    t_batched = time.perf_counter() - t0
    batched = simulate.stable_cells(div)

    rng = np.random.default_rng(0)
    subset = np.sort(rng.choice(C, size=min(args.loop_cells, C), replace=False))
    t0 = time.perf_counter()
    loop = np.array([loop_cell(authors_family(N, int(s[j])).numpy(), int(B[j]), rng) for j in subset])
    t_loop_subset = time.perf_counter() - t0
    t_loop = t_loop_subset * C / len(subset)

    agree_sub = loop == batched[subset].numpy()
    exact = (rho < 1).numpy()
    metrics = {
        "cells": C, "batched_s": t_batched, "loop_subset_cells": len(subset), "loop_subset_s": t_loop_subset,
        "loop_scaled_s": t_loop, "speedup": t_loop / t_batched,
        "loop_vs_batched_agree": int(agree_sub.sum()), "loop_vs_batched_cells": len(subset),
        "disagreeing_cells_rho": [float(rho[j]) for j in subset[~agree_sub]],
        "batched_vs_exact_agree_frac": float((batched.numpy() == exact).mean()),
        "loop_vs_exact_agree": int((loop == exact[subset]).sum()),
    }
    print(f"{C} cells: batched {t_batched:.1f} s; loop {t_loop_subset:.1f} s on {len(subset)} cells -> "
          f"{t_loop:.0f} s scaled; speed-up {t_loop / t_batched:.0f}x")
    print(f"decisions: loop = batched on {agree_sub.sum()}/{len(subset)} subset cells "
          f"(disagreements at rho = {metrics['disagreeing_cells_rho']}); batched = exact on "
          f"{metrics['batched_vs_exact_agree_frac']:.1%} of cells")
    settings = {"n": N, "eta": ETA, "reps": REPS, "steps": STEPS, "grid": args.grid, "backend": args.backend, "sampling": "without_replacement",
                "note": "loop time measured on a random subset of cells and scaled by the cell count; shared machine"}
    return records.write_record(args.out, "stability_heatmap_benchmark", args.grid, settings, metrics, t_batched + t_loop_subset)


if __name__ == "__main__":
    print(main())
