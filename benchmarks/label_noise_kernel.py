"""Chain-steps per second of label-noise SGD on paper 1's Figure-1 problem (m=10, d=n=3, η=0.05), on one CPU core.

Side by side, in one run, on the same problem:
  1. the naive loop: PyTorch autograd, one chain, one step at a time (``flatbias.label_noise.reference_run``);
  2. a batched torch scan: closed-form per-sample gradient, all chains vectorized, a Python loop over steps;
  3. the numba kernel (``flatbias.label_noise.run``), chains one after the other, noise drawn in blocks.

    .venv/bin/python benchmarks/label_noise_kernel.py [--chains 16] [--steps 1000000] [--record results/label_noise/benchmark.json]
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from flatbias import label_noise as ln  # noqa: E402
from flatbias.records import write_record  # noqa: E402

torch.set_num_threads(1)


def problem(C: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.random((C, 3, 3))
    y = rng.random((C, 3))
    theta0 = ln.retract_batch(rng.normal(size=(C, 10, 3)) / np.sqrt(3), X, y)
    return theta0, X, y


def naive(theta0, X, y, steps: int) -> float:
    idx, eps = ln.draw_noise(0, 1, 3, steps)
    t0 = time.perf_counter()
    ln.reference_run(theta0[0], X[0], y[0], eta=0.05, s=0.173, idx=idx[0], eps=eps[0])
    return steps / (time.perf_counter() - t0)


def torch_scan(theta0, X, y, steps: int) -> float:
    C = theta0.shape[0]
    th, Xt, yt = (torch.as_tensor(a).clone() for a in (theta0, X, y))
    idx, eps = (torch.as_tensor(a) for a in ln.draw_noise(0, C, 3, steps))
    ar = torch.arange(C)
    t0 = time.perf_counter()
    with torch.no_grad():
        for t in range(steps):
            i = idx[:, t]
            x = Xt[ar, i]  # (C, d)
            z = torch.einsum("cmd,cd->cm", th, x)
            r = torch.sinh(z).sum(1) - yt[ar, i] - 0.173 * eps[:, t]
            th -= (0.05 * r)[:, None, None] * torch.cosh(z)[:, :, None] * x[:, None, :]
    return C * steps / (time.perf_counter() - t0)


def kernel(theta0, X, y, steps: int, record_every: int, method: str = "sgd") -> tuple[float, float]:
    ln.run(theta0[:1], X[:1], y[:1], eta=0.05, s=0.173, steps=10, record_every=10, progress=False, method=method,
           rho=0.05)  # compile / load the cache outside the timing
    t0 = time.perf_counter()
    out = ln.run(theta0, X, y, eta=0.05, s=0.173, steps=steps, record_every=record_every, progress=False,
                 method=method, rho=0.05)
    total = time.perf_counter() - t0
    C = theta0.shape[0]
    return C * steps / total, C * steps / out.wall_s


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--steps", type=int, default=1_000_000, help="steps per chain for the kernel")
    p.add_argument("--naive-steps", type=int, default=3000)
    p.add_argument("--record", default=None, help="write a result record here")
    a = p.parse_args()
    theta0, X, y = problem(a.chains)
    rates = {"naive autograd loop (1 chain)": naive(theta0, X, y, a.naive_steps)}
    for C in (a.chains, 1024):
        th, Xc, yc = problem(C, seed=1)
        rates[f"batched torch scan ({C} chains)"] = torch_scan(th, Xc, yc, max(200, 20_000 // C))
    every = a.steps // 100
    end_to_end, _ = kernel(theta0, X, y, a.steps, every)
    rates[f"numba kernel, label-noise SGD ({a.chains} chains, 100 records)"] = end_to_end
    rates[f"numba kernel, label-noise SGD ({a.chains} chains, 1 record)"] = kernel(theta0, X, y, a.steps, a.steps)[0]
    rates[f"numba kernel, 1-SAM ({a.chains} chains, 100 records)"] = kernel(theta0, X, y, a.steps // 2, every // 2,
                                                                           method="sam")[0]
    base = rates["naive autograd loop (1 chain)"]
    print(f"one CPU core ({os.cpu_count()} on the machine, shared with other jobs: timings are noisy)")
    print(f"{'implementation':62s} {'chain-steps/s':>14s} {'x naive':>9s}")
    for k, v in rates.items():
        print(f"{k:62s} {v:14.3g} {v / base:9.0f}")
    if a.record:
        write_record(a.record, "label_noise_kernel_benchmark", "full",
                     {"problem": "m=10, d=n=3, sinh, eta=0.05, s=0.173", "chains": a.chains, "steps": a.steps,
                      "threads": 1, "note": "2-core machine shared with other jobs"},
                     {"chain_steps_per_s": rates, "speedup_vs_naive": {k: v / base for k, v in rates.items()}})


if __name__ == "__main__":
    main()
