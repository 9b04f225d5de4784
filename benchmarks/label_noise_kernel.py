"""Chain-steps per second of label-noise SGD and 1-SAM on paper 1's Figure-1 problem (m=10, d=n=3, η=0.05), one core.

Side by side, in one process, on the same problem and the same noise:
  1. the naive loop: PyTorch autograd, one chain, one step at a time (``flatbias.label_noise.reference_run``);
  2. the scalar numba kernel (``_run_chunk_scalar``, the reference: chains one after the other);
  3. the lane kernel (chains innermost, bit-identical to 2): the one ``run`` takes for this d = 3 problem
     (``_run_chunk_lanes3``, arrays on the stack), and the general one for any d (``_run_chunk_lanes``);
  4. ``run`` end to end (noise generation included) with each kernel, and the noise generation alone;
  5. what bounds the lane kernel: its rate with the cubic activation (the same steps without exp) beside its rate
     with sinh, and exp alone (``_exp_pm`` over an array, as the kernel calls it) in ns per call.

Kernel rates are CPU time of this thread (``time.thread_time``), repetitions interleaved, best of ``--reps``, so
that other jobs on the machine disturb the ratio little; the load average is recorded beside them.

    .venv/bin/python benchmarks/label_noise_kernel.py [--chains 16] [--steps 200000] \\
        [--record results/label_noise/benchmark.json]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from flatbias import label_noise as ln  # noqa: E402
from flatbias.records import write_record  # noqa: E402

torch.set_num_threads(1)
ETA, S, RHO = 0.05, 0.173, 0.05


def problem(C: int, seed: int = 0):
    """C of Figure 1's well-conditioned problems (``draw_problems``), started on M."""
    prob = ln.draw_problems(C, 0, seed=seed)
    return ln.retract_batch(prob["theta0"], prob["X"], prob["y"]), prob["X"], prob["y"]


def naive(theta0, X, y, steps: int) -> float:
    idx, eps = ln.draw_noise(0, 1, 3, steps)
    t0 = time.thread_time()
    ln.reference_run(theta0[0], X[0], y[0], eta=ETA, s=S, idx=idx[0], eps=eps[0])
    return steps / (time.thread_time() - t0)


def kernels(theta0, X, y, steps: int, method: str, reps: int) -> dict:
    """Kernel-only rates (noise drawn beforehand), scalar and lanes interleaved; checks they agree bit for bit."""
    C = theta0.shape[0]
    eta, s, rho = np.full(C, ETA), np.full(C, S if method == "sgd" else 0.0), np.full(C, RHO)
    u, eps = ln.ChainNoise(0, C).draw(steps)
    code = ln.METHODS[method]
    times = {"scalar": [], "lanes": [], "general lanes": []}
    for _ in range(reps):
        th = theta0.copy()
        t0 = time.thread_time()
        ln._run_chunk_scalar(th, X, y, eta, s, rho, u, eps, code, 0)
        times["scalar"].append(time.thread_time() - t0)
        lanes = ln._Lanes(theta0.copy(), X, y, "sinh")
        t0 = time.thread_time()
        lanes.step(eta, s, rho, u, eps, code, 0)
        times["lanes"].append(time.thread_time() - t0)
        general = ln._Lanes(theta0.copy(), X, y, "sinh")
        t0 = time.thread_time()
        ln._run_chunk_lanes(general.th, general.m, general.XL, general.yL, eta, s, rho, u, eps, code, 0)
        times["general lanes"].append(time.thread_time() - t0)
        if not (np.array_equal(lanes.theta(), th, equal_nan=True) and np.array_equal(general.theta(), th)):
            raise AssertionError("the lane kernels and the scalar kernel disagree")
    return {k: C * steps / min(v) for k, v in times.items()}


def end_to_end(theta0, X, y, steps: int, method: str, reps: int) -> dict:
    """``run`` with 100 records, noise generation included, lanes vs scalar kernel interleaved."""
    C = theta0.shape[0]
    kw = dict(eta=ETA, s=S if method == "sgd" else 0.0, steps=steps, record_every=steps // 100, method=method,
              rho=RHO, progress=False)
    times = {"scalar": [], "lanes": []}
    default = ln.LANES_MIN_CHAINS
    for _ in range(reps):
        for which, limit in (("scalar", 10**9), ("lanes", default)):
            ln.LANES_MIN_CHAINS = limit
            t0 = time.thread_time()
            ln.run(theta0, X, y, **kw)
            times[which].append(time.thread_time() - t0)
    ln.LANES_MIN_CHAINS = default
    return {k: C * steps / min(v) for k, v in times.items()}


def noise_rate(C: int, steps: int, reps: int) -> dict:
    """Chain-steps/s of ChainNoise.draw alone: uniforms and normals (SGD), uniforms only (1-SAM with s = 0)."""
    out = {}
    for name, normals in (("uniforms + normals", None), ("uniforms only", np.zeros(C, dtype=bool))):
        best = float("inf")
        for _ in range(reps):
            noise = ln.ChainNoise(0, C)
            t0 = time.thread_time()
            noise.draw(steps, normals=normals)
            best = min(best, time.thread_time() - t0)
        out[name] = C * steps / best
    return out


def chapter_calls(lanes: bool) -> None:
    """The heavy label-noise calls of chapters 06 and 08 at smoke scale (their protocols' smoke settings)."""
    default = ln.LANES_MIN_CHAINS
    ln.LANES_MIN_CHAINS = default if lanes else 10**9
    try:
        demo = ln.draw_problems(draws=8, raw_draws=0, seed=0)  # chapter 06, the demo: s = 0.5, 2e6 steps, 8 draws
        ln.collapse(demo["theta0"], demo["X"], demo["y"], s_values=[0.5], steps=2_000_000, record_every=40_000,
                    seed=1, progress=False)
        prob = ln.draw_problems(draws=2, raw_draws=1, seed=0)  # chapter 06, the paper's setting (smoke horizon)
        ln.collapse(prob["theta0"], prob["X"], prob["y"], s_values=[0.03**0.5], steps=1_000_000,
                    record_every=10_000, eta=0.05, seed=0, progress=False)
        pr = ln.draw_problems(draws=4, raw_draws=0, seed=0)  # chapter 08, pair(η, 1e6): SGD s = 0.5 and 1-SAM
        kw = dict(steps=1_000_000, record_every=5_000, eta=np.full(4, 0.05), seed=2, progress=False)
        ln.collapse(pr["theta0"], pr["X"], pr["y"], s_values=[0.5], **kw)
        ln.collapse(pr["theta0"], pr["X"], pr["y"], s_values=[0.0], method="sam",
                    rho=np.full(4, (1.6 * 0.05 * 0.25 / 2) ** 0.5), **kw)
    finally:
        ln.LANES_MIN_CHAINS = default


def profile() -> None:
    """Where the chapter calls spend their (thread CPU) time: kernel, noise, retraction, eigenvalues, the rest."""
    import cProfile
    import pstats

    chapter_calls(True)  # compile and warm up
    parts = {"kernel": ("_run_chunk_lanes", "_run_chunk_scalar"), "noise": ("draw",),
             "retraction onto M": ("retract_batch",), "eigenvalues etc. (summarize)": ("summarize",),
             "closed-form optimum": ("closed_form_optimum",)}
    for lanes in (False, True):
        prof = cProfile.Profile(time.thread_time)
        prof.runcall(chapter_calls, lanes)
        st = pstats.Stats(prof).stats
        total = max(v[3] for v in st.values())
        print(f"\nchapters 06 + 08 label-noise calls at smoke scale, {'lane' if lanes else 'scalar'} kernel: "
              f"{total:.2f} s CPU (load {os.getloadavg()[0]:.2f})")
        for name, funcs in parts.items():
            t = sum(v[3] for (_, _, fn), v in st.items() if fn in funcs)
            print(f"  {name:32s} {t:7.2f} s  {100 * t / total:5.1f} %")


def ceiling(C: int, steps: int, reps: int) -> dict:
    """What bounds the lane kernel (label-noise SGD, kernel only, C chains). Its rate with sinh and with the cubic
    activation (φ(z) = z + z³/3: the same steps, sums and updates without exp), interleaved; exp alone in ns per
    call (``_exp_pm`` over 16384 lanes, the kernel's own loop shape, so vectorized as there); and what these parts
    predict: exp's share of a sinh step, the rate if exp cost nothing (the cubic rate, an upper bound) and the rate
    if everything but exp cost nothing (1 / (m × exp time))."""
    prob = ln.draw_problems(C, 0, seed=0)
    X, y = prob["X"], prob["y"]
    m = prob["theta0"].shape[1]
    eta, s, rho = np.full(C, ETA), np.full(C, S), np.full(C, RHO)
    u, eps = ln.ChainNoise(0, C).draw(steps)
    start = {act: ln._Lanes(ln.retract_batch(prob["theta0"], X, y, act=act), X, y, act)
             for act in ("sinh", "cubic")}
    times = {act: [] for act in start}
    for act, lanes in start.items():  # compile / load the caches outside the timings
        ln._Lanes(lanes.theta(), X, y, act).kernel(eta, s, rho, u[:, :10].copy(), eps[:, :10].copy(),
                                                  ln.METHODS["sgd"], ln.KERNEL_ACTIVATIONS[act])
    for _ in range(reps):
        for act, lanes in start.items():
            run = ln._Lanes(lanes.theta(), X, y, act)
            t0 = time.thread_time()
            run.kernel(eta, s, rho, u, eps, ln.METHODS["sgd"], ln.KERNEL_ACTIVATIONS[act])
            times[act].append(time.thread_time() - t0)
            if not np.isfinite(run.theta()).all():  # a diverged run times NaN arithmetic: not a fair bound
                raise RuntimeError(f"the {act} run diverged within {steps} steps")
    z = np.einsum("cmd,cnd->cmn", start["sinh"].theta(), X).ravel()
    z = np.resize(z, 16384)
    plus, minus = np.empty_like(z), np.empty_like(z)
    ln._exp_pm_halves(z, plus, minus)  # compile / load outside the timing
    calls, best = 200, float("inf")
    for _ in range(reps):
        t0 = time.thread_time()
        for _ in range(calls):
            ln._exp_pm_halves(z, plus, minus)
        best = min(best, (time.thread_time() - t0) / (calls * z.size))
    sinh, cubic = (C * steps / min(times[a]) for a in ("sinh", "cubic"))
    return {"chains": C, "m": m, "lane kernel, sinh (chain-steps/s)": sinh,
            "lane kernel, cubic: no exp (chain-steps/s)": cubic,
            "exp alone (ns per call, vectorized)": 1e9 * best,
            "exp's share of a sinh step": m * best * sinh,
            "rate if exp cost nothing, the cubic rate (chain-steps/s)": cubic,
            "rate if all but exp cost nothing (chain-steps/s)": 1 / (m * best)}


def cpu() -> str:
    """The CPU's model name and its widest SIMD (from /proc/cpuinfo where there is one)."""
    try:
        info = open("/proc/cpuinfo").read()
    except OSError:
        return platform.processor() or platform.machine()
    name = next((ln_.split(":", 1)[1].strip() for ln_ in info.splitlines() if ln_.startswith("model name")), "?")
    flags = next((ln_.split(":", 1)[1].split() for ln_ in info.splitlines() if ln_.startswith("flags")), [])
    simd = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    return f"{name} ({', '.join(simd) or 'no AVX2'})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chains", type=int, default=16)
    p.add_argument("--steps", type=int, default=200_000, help="steps per chain (a multiple of 100)")
    p.add_argument("--naive-steps", type=int, default=3000)
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--record", default=None, help="write a result record here")
    p.add_argument("--profile", action="store_true", help="only profile chapters 06 and 08's calls (smoke scale)")
    a = p.parse_args(argv)
    if a.profile:
        return profile()
    load_before = os.getloadavg()
    wall0 = time.perf_counter()
    theta0, X, y = problem(a.chains)
    for C in (1, a.chains):  # compile / load the caches outside the timings
        kernels(*problem(C), 10, "sgd", 1), kernels(*problem(C), 10, "sam", 1)
    rates = {"naive autograd loop (1 chain)": naive(theta0, X, y, a.naive_steps)}
    for method, label in (("sgd", "label-noise SGD"), ("sam", "1-SAM")):
        k = kernels(theta0, X, y, a.steps, method, a.reps)
        rates[f"scalar kernel, {label} ({a.chains} chains, kernel only)"] = k["scalar"]
        rates[f"lane kernel, {label} ({a.chains} chains, kernel only)"] = k["lanes"]
        rates[f"general lane kernel (any d), {label} ({a.chains} chains, kernel only)"] = k["general lanes"]
        e = end_to_end(theta0, X, y, a.steps, method, a.reps)
        rates[f"run() with the scalar kernel, {label} ({a.chains} chains, 100 records)"] = e["scalar"]
        rates[f"run() with the lane kernel, {label} ({a.chains} chains, 100 records)"] = e["lanes"]
    for C in (1, 4, 8, 32, 64):
        k = kernels(*problem(C, seed=1), max(20_000, a.steps * a.chains // C // 4), "sgd", a.reps)
        rates[f"scalar kernel, label-noise SGD ({C} chains, kernel only)"] = k["scalar"]
        rates[f"lane kernel, label-noise SGD ({C} chains, kernel only)"] = k["lanes"]
        rates[f"general lane kernel (any d), label-noise SGD ({C} chains, kernel only)"] = k["general lanes"]
    for name, v in noise_rate(a.chains, a.steps, a.reps).items():
        rates[f"noise generation alone, {name} ({a.chains} chains)"] = v
    bounds = [ceiling(C, a.steps, a.reps) for C in sorted({a.chains, 64})]
    load_after = os.getloadavg()
    base = rates["naive autograd loop (1 chain)"]
    print(f"one thread, CPU time; load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    print(f"{'implementation':78s} {'chain-steps/s':>14s} {'x naive':>9s}")
    for k, v in rates.items():
        print(f"{k:78s} {v:14.3g} {v / base:9.0f}")
    for b in bounds:
        print(f"what bounds the lane kernel, label-noise SGD, {b['chains']} chains:")
        for k, v in b.items():
            if k not in ("chains", "m"):
                print(f"  {k:76s} {v:14.3g}")
    if a.record:
        write_record(a.record, "label_noise_kernel_benchmark", "full",
                     {"problem": f"m=10, d=n=3, sinh, eta={ETA}, s={S} (SGD), rho={RHO} and s=0 (1-SAM)",
                      "chains": a.chains, "steps": a.steps, "threads": 1, "reps": a.reps,
                      "timing": "thread CPU time (time.thread_time), best of reps, kernels interleaved",
                      "load_average_1min_before_after": [round(load_before[0], 2), round(load_after[0], 2)],
                      "cpu_model": cpu(),
                      "exp": "flatbias.label_noise._exp_pm (pure arithmetic, within 1 ulp; every kernel)",
                      "lane kernels": "'lane kernel' is the one run() takes here (d = 3: _run_chunk_lanes3, arrays "
                                      "on the stack); 'general lane kernel' is _run_chunk_lanes (any d)",
                      "ceiling": "label-noise SGD, lane kernel only, the --chains count and 64: sinh against "
                                 "the cubic activation (the same steps without exp), interleaved; exp alone "
                                 "over 16384 lanes; the derived bounds are arithmetic on these",
                      "note": "2-core machine shared with other jobs"},
                     {"chain_steps_per_s": rates, "speedup_vs_naive": {k: v / base for k, v in rates.items()},
                      "ceiling": bounds}, wall_time_s=time.perf_counter() - wall0)


if __name__ == "__main__":
    main()
