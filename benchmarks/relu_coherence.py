"""Exact coherence of paper 2's ReLU net: closed form vs the authors' method (SPEC §B.8(b)).

Setting: d = 30, h = 120 (P = 3,840 parameters), n = 100 parity points, PyTorch's default init (off the
zero-loss set, so the residual terms of the per-sample Hessians are exercised), float64, one thread.

- closed form: :func:`flatbias.relu_hessian.trace_products`, all n² entries tr(H_iH_j) at once;
- the authors' method (``nn_training.py::compute_coherence``): each per-sample Hessian by one
  ``autograd.grad`` call per parameter (P calls), then ``trace(H_i @ H_j)`` for every pair i ≤ j.

The slow method runs on as many samples k as the time budget allows (about 2 minutes by default). Its
time for all n samples is *estimated* as n·t_hessian + n(n+1)/2·t_pair from the measured per-Hessian and
per-pair times; the two methods' k×k blocks are compared entrywise (relative error).

    .venv/bin/python benchmarks/relu_coherence.py [--budget 120] [--out results/relu/benchmark_coherence.json]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from flatbias import records, relu_hessian, relu_net


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budget", type=float, default=120.0, help="seconds for the authors' method (approximate)")
    ap.add_argument("--out", default=None, help="result record path (default results/relu/benchmark_coherence.json)")
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    d, h, n = 30, 120, 100
    gen = torch.Generator().manual_seed(0)
    X, y = relu_net.parity_data(n, d, gen)
    torch.manual_seed(0)
    theta = relu_net.TwoLayerReLU(d, h).flat()

    reps = []
    for _ in range(20):
        t0 = time.perf_counter()
        closed = relu_hessian.trace_products(theta, X, y, h=h)
        reps.append(time.perf_counter() - t0)
    t_closed = float(np.median(reps))

    hess, t_hess, t_pair, slow = [], [], [], {}
    t_start = time.perf_counter()
    while len(hess) < n and (time.perf_counter() - t_start) < a.budget:
        i = len(hess)
        t0 = time.perf_counter()
        hess.append(relu_hessian.per_sample_hessian_rows(theta, X[i], y[i], h=h))
        t_hess.append(time.perf_counter() - t0)
        for j in range(i + 1):
            t0 = time.perf_counter()
            slow[(i, j)] = float(torch.trace(hess[i] @ hess[j]))
            t_pair.append(time.perf_counter() - t0)
        print(f"  sample {i}: Hessian {t_hess[-1]:.2f} s, {i + 1} pair traces {sum(t_pair[-(i + 1):]):.2f} s", flush=True)
    k = len(hess)
    rel = max(abs(v - float(closed[i, j])) / abs(v) for (i, j), v in slow.items())
    t_slow_est = n * float(np.mean(t_hess)) + n * (n + 1) / 2 * float(np.mean(t_pair))
    res = {
        "n": n, "d": d, "h": h, "P": theta.numel(), "samples_slow": k, "pairs_slow": len(slow),
        "t_closed_all_pairs_s": t_closed, "t_hessian_per_sample_s": float(np.mean(t_hess)),
        "t_trace_per_pair_s": float(np.mean(t_pair)), "t_slow_estimated_all_pairs_s": t_slow_est,
        "speedup_estimated": t_slow_est / t_closed, "max_rel_error": rel,
        "negative_trHiHj_pairs": int((closed < 0).sum()),
    }
    print(f"closed form, all {n * n} entries: {t_closed * 1e3:.2f} ms")
    print(f"authors' method: {res['t_hessian_per_sample_s']:.2f} s per Hessian, {res['t_trace_per_pair_s']:.2f} s per pair "
          f"(measured on {k} samples / {len(slow)} pairs); estimated for n = {n}: {t_slow_est / 3600:.2f} h")
    print(f"estimated speed-up: {res['speedup_estimated']:.3g}x; max relative difference on the measured pairs: {rel:.1e}")
    out = a.out or records.repo_root() / "results" / "relu" / "benchmark_coherence.json"
    settings = {"method_slow": "one autograd.grad per parameter per sample, then trace(H_i @ H_j) per pair",
                "method_fast": "flatbias.relu_hessian.trace_products", "dtype": "float64", "threads": 1,
                "point": "PyTorch default init, seed 0 (off the zero-loss set)", "budget_s": a.budget,
                "note": "slow-method time for all n is extrapolated from the measured samples and pairs"}
    records.write_record(out, "relu_coherence_benchmark", "full", settings, res,
                         wall_time_s=time.perf_counter() - t_start)
    print(f"wrote {out}")
    return res


if __name__ == "__main__":
    main()
