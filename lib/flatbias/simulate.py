"""Monte-Carlo simulation of the linearized dynamics (SPEC §B.1, §B.5, §B.6, §B.8a), batched.

Every repetition (and, for the heat-maps, every (B, σ) cell) is one row of a tensor; one Python loop
runs over time steps only. Methods:

    sgd     w_{t+1} = (I − η Ĥ_t) w_t
    random  w_{t+1} = (I − η Ĥ_t)(w_t + s ξ_t),  ξ_t ~ N(0, I)   (authors' ``random_process``)
    sam     w_{t+1} = (I − η Ĥ_t (I + (ρ/α) H)) w_t              (authors' ``SAM_process``)

Sampling: B indices without replacement (authors) or Bernoulli(B/n). Divergence rule of the authors'
code: ‖w_t‖² ≥ 1000 ‖w_0‖² at some t ≤ steps; a cell is stable if at least half its repetitions never
diverge. Diverged rows are frozen (no overflow).

Heat-maps (axis-aligned H_i, SPEC §B.8a): :func:`simulate_axes` uses a compiled numba kernel by default
(``backend="numba"``): per trajectory and step it draws the minibatch with Floyd's algorithm (a uniform B-subset
in O(B) draws) and touches only the axes in the batch, so a step costs O(B) (O(d) with noise) instead of O(n)
vectorized torch operations. ``backend="torch"`` is the batched tensor version (same distribution, other
random stream). The kernel's randomness: trajectory j reseeds numba's Mersenne Twister with ``seed + j`` (seed
drawn from ``generator``), so results do not depend on the thread count; the generator is inlined
(:mod:`flatbias.mt19937`, numba's ``np.random`` stream number for number, tested against the earlier kernel).
"""

from __future__ import annotations

import numba
import numpy as np
import torch
from numba import njit, prange
from tqdm import tqdm

from . import mt19937 as mt
from . import validate as vd
from .coherence import check_psd_family
from .stability import SAMPLINGS, _check_batch, _check_eta, _check_method

#: the authors' divergence factor and horizon (``coherence_local.py``)
BLOWUP = 1000.0
STEPS = 1000


# ---------------------------------------------------------------------------------------------- compiled kernel
_METHOD_CODE = {"sgd": 0, "random": 1, "sam": 2}


@njit(cache=True, nogil=True, inline="always")
def _floyd(n, B, chosen, idx, state, pos):  # pragma: no cover - compiled
    """Floyd's algorithm: a uniformly random B-subset of {0..n−1} into idx[:B] (chosen: scratch flags, left clear);
    the generator is :mod:`flatbias.mt19937` (numba's ``np.random`` stream, inlined)."""
    m = 0
    for j in range(n - B, n):
        t = mt.randint(state, pos, j + 1)  # uniform on {0..j}
        if chosen[t]:
            t = j
        chosen[t] = True
        idx[m] = t
        m += 1
    for q in range(B):
        chosen[idx[q]] = False


@njit(cache=True, nogil=True)
def _floyd_batches(n, B, count, seed):  # pragma: no cover - compiled
    state, pos, cache = np.zeros(mt.N, dtype=np.uint32), np.zeros(1, dtype=np.int64), np.zeros(2)
    mt.seed(state, pos, cache, seed)
    out = np.empty((count, B), dtype=np.int64)
    chosen = np.zeros(n, dtype=np.bool_)
    idx = np.empty(n, dtype=np.int64)
    for r in range(count):
        _floyd(n, B, chosen, idx, state, pos)
        out[r] = idx[:B]
    return out


def floyd_batches(n: int, B: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` minibatches (count, B) drawn by the kernel's sampler (Floyd's algorithm), for tests."""
    n = vd.integer("n", n, 1)
    B = vd.batch_size(B, n)
    count, seed = vd.integer("count", count, 0), vd.integer("seed", seed, 0, 2**63 - 1)
    return _floyd_batches(n, B, count, seed)


@njit(cache=True, nogil=True)
def _escape_row(row, k, ab, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):  # pragma: no cover
    """The escape time of one (cell, repetition) row of :func:`_escape_kernel`, from its own seed (seed + row)."""
    n = k.shape[1]
    D = scale.shape[1]
    state, pos, cache = np.zeros(mt.N, dtype=np.uint32), np.zeros(1, dtype=np.int64), np.zeros(2)
    mt.seed(state, pos, cache, seed + row)  # = np.random.seed(seed + row): the same stream, inlined
    c = row // reps
    dc, Bc = d[c], B[c]
    w = np.zeros(D)
    h = np.zeros(D)
    chosen = np.zeros(n, dtype=np.bool_)
    idx = np.empty(n, dtype=np.int64)
    norm0 = 0.0
    for j in range(dc):
        w[j] = mt.random(state, pos)  # w_0 ~ U[0, 1]^d (authors' np.random.rand)
        norm0 += w[j] * w[j]
    norm = norm0
    res = steps + 1
    for t in range(steps):
        if bernoulli:
            m = 0
            for i in range(n):
                if mt.random(state, pos) < Bc / n:
                    idx[m] = i
                    m += 1
        else:
            _floyd(n, Bc, chosen, idx, state, pos)
            m = Bc
        if method == 1:  # random perturbation: w + s ξ before the step
            norm = 0.0
            for j in range(dc):
                w[j] += noise_std * mt.standard_normal(state, pos, cache)
                norm += w[j] * w[j]
        for q in range(m):  # ĥ_t = Σ_{i∈S_t} a_i e_{k_i} / B
            i = idx[q]
            ax = k[c, i]
            idx[q] = ax  # idx holds the axes from here on
            h[ax] += ab[c, i]
        for q in range(m):  # w ← (I − η Ĥ_t (I + (ρ/α)H)) w on the touched axes only
            ax = idx[q]
            if h[ax] != 0.0:
                old = w[ax]
                w[ax] = old * (1.0 - eta * h[ax] * scale[c, ax])
                norm += w[ax] * w[ax] - old * old
                h[ax] = 0.0
        if t % 64 == 63:  # refresh the running norm (no drift)
            norm = 0.0
            for j in range(dc):
                norm += w[j] * w[j]
        if norm >= blowup * norm0:
            res = t + 1
            break
    return res


@njit(cache=True, nogil=True)
def _quotients(a, B):  # pragma: no cover - compiled
    """a_i / B per cell, the quotient a step adds to ĥ (computed once per cell)."""
    C, n = a.shape
    ab = np.empty((C, n))
    for c in range(C):
        for i in range(n):
            ab[c, i] = a[c, i] / B[c]
    return ab


@njit(cache=True, nogil=True)
def _escape_serial(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):  # pragma: no cover
    ab = _quotients(a, B)
    out = np.empty(k.shape[0] * reps, dtype=np.int64)
    for row in range(out.size):
        out[row] = _escape_row(row, k, ab, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed)
    return out


@njit(cache=True, nogil=True, parallel=True)
def _escape_parallel(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):  # pragma: no cover
    ab = _quotients(a, B)
    out = np.empty(k.shape[0] * reps, dtype=np.int64)
    for row in prange(out.size):
        out[row] = _escape_row(row, k, ab, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed)
    return out


def _escape_kernel(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):
    """First step t (1..steps) with ‖w_t‖² ≥ blowup·‖w_0‖², or steps + 1 if never, for every (cell, repetition).
    k, a (C, n): axis and weight of each H_i; d, B (C,); scale (C, D): diag(I + (ρ/α)H) (ones unless SAM).
    Rows over numba's threads when there are several (a thread-count-independent result: each row has its own
    seed), else one plain loop (which compiles in half the time of the parallel loop)."""
    run = _escape_parallel if numba.get_num_threads() > 1 else _escape_serial
    return run(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed)


def batch_masks(B: torch.Tensor, n: int, sampling: str, generator: torch.Generator | None) -> torch.Tensor:
    """Random minibatch indicators (R, n), one row per trajectory with its own batch size B[r]:
    exactly B[r] ones, every B[r]-subset equally likely (without replacement; Knuth's selection sampling,
    vectorized over rows: item i is taken with probability still-needed / still-available), or each one
    independently with probability B[r]/n (Bernoulli)."""
    n = vd.integer("n", n, 1)
    vd.tensor("B", B, 1, "(R,) batch sizes", dtype="int")
    if bool(((B < 1) | (B > n)).any()):
        raise vd.InvalidArgumentError(f"every batch size B must satisfy 1 ≤ B ≤ n = {n}; got values such as "
                                      f"{B[(B < 1) | (B > n)][:3].tolist()}")
    vd.choice("sampling", sampling, SAMPLINGS)
    vd.generator("generator", generator)
    return _batch_masks(B, n, sampling, generator)


def _batch_masks(B: torch.Tensor, n: int, sampling: str, generator: torch.Generator | None) -> torch.Tensor:
    R = B.shape[0]
    u = torch.rand(R, n, generator=generator, dtype=torch.float32)
    if sampling == "bernoulli":
        return (u < (B.to(torch.float32) / n)[:, None]).to(torch.float64)
    mask = torch.empty(R, n, dtype=torch.bool)
    need = B.to(torch.float32).clone()
    for i in range(n):
        take = u[:, i] * (n - i) < need
        mask[:, i] = take
        need -= take.to(torch.float32)
    return mask.to(torch.float64)


def simulate(H: torch.Tensor, eta: float, B: int, w0: torch.Tensor, steps: int, method: str = "sgd",
             sampling: str = "without_replacement", rho_over_alpha: float = 0.0, noise_std: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """‖w_t‖² for t = 0..steps of R trajectories at once (w0: (R, d)); dense family H (n, d, d). No freezing:
    meant for small d and stable or moderately unstable settings (Monte Carlo of E‖w_t‖²)."""
    H = check_psd_family(H)
    n, d = H.shape[0], H.shape[1]
    B = _check_batch(B, n)
    eta = _check_eta(eta)
    r = _check_method(method, sampling, rho_over_alpha)
    vd.tensor("w0", w0, 2, "(R, d)")
    vd.shape("w0", w0, ("R", d), f"(one start per row) to match H's d = {d}")
    steps, noise_std = vd.integer("steps", steps, 0), vd.nonnegative("noise_std", noise_std)
    vd.generator("generator", generator)
    w = w0.to(torch.float64).clone()
    M = torch.eye(d, dtype=torch.float64) + r * H.mean(0)
    Bv = torch.full((w.shape[0],), B, dtype=torch.long)
    out = [w.pow(2).sum(1)]
    for _ in range(steps):
        if method == "random":
            w = w + noise_std * torch.randn(w.shape, generator=generator, dtype=torch.float64)
        mask = _batch_masks(Bv, n, sampling, generator) / B  # (R, n)
        v = w @ M.T if r else w  # (I + (ρ/α)H) w
        Hv = (v @ H.reshape(n * d, d).T).reshape(-1, n, d)  # H_i v for every i
        w = w - eta * (mask[:, :, None] * Hv).sum(1)
        out.append(w.pow(2).sum(1))
    return torch.stack(out)


def simulate_axes(k: torch.Tensor, a: torch.Tensor, d: torch.Tensor, B: torch.Tensor, eta: float, reps: int = 10,
                  steps: int = STEPS, method: str = "sgd", sampling: str = "without_replacement",
                  rho_over_alpha: float = 0.0, noise_std: float = 1.0, generator: torch.Generator | None = None,
                  chunk: int = 100_000, progress: bool | None = None, backend: str = "numba") -> torch.Tensor:
    """Divergence flags (C, reps) for C cells of axis-aligned families, all cells and repetitions at once.

    Cell j has n samples with H_i = a[j, i] e_{k[j, i]} e_{k[j, i]}ᵀ in R^{d[j]} (k: (C, n) long, a: (C, n)),
    batch size B[j]; w_0 ~ U[0, 1]^{d[j]} (authors' ``np.random.rand``). Diverged: ‖w_t‖² ≥ 1000‖w_0‖² for some
    t ≤ steps. See :func:`escape_times_axes` for the backends.
    """
    return escape_times_axes(k, a, d, B, eta, reps, steps, method, sampling, rho_over_alpha, noise_std, generator,
                             chunk, progress, backend) <= steps


def escape_times_axes(k: torch.Tensor, a: torch.Tensor, d: torch.Tensor, B: torch.Tensor, eta: float, reps: int = 10,
                      steps: int = STEPS, method: str = "sgd", sampling: str = "without_replacement",
                      rho_over_alpha: float = 0.0, noise_std: float = 1.0, generator: torch.Generator | None = None,
                      chunk: int = 100_000, progress: bool | None = None, backend: str = "numba") -> torch.Tensor:
    """Escape times (C, reps): the first t with ‖w_t‖² ≥ 1000‖w_0‖², or steps + 1 if none (same cells as
    :func:`simulate_axes`).

    ``backend="numba"``: compiled kernel, O(B) per trajectory and step (Floyd sampling, only batch axes touched),
    parallel over trajectories. ``backend="torch"``: all trajectories as one tensor, ĥ_t = scatter of the sampled
    a_i/B onto their axes, O(n) per trajectory and step, in chunks of ``chunk`` rows. Both draw uniform
    B-subsets (or Bernoulli(B/n) memberships), w_0 ~ U[0, 1]^d and ξ ~ N(0, I): the same distribution, different
    random streams.
    """
    eta = _check_eta(eta)
    r = _check_method(method, sampling, rho_over_alpha)
    k, a, d, B = (vd.as_tensor(name, v) for name, v in (("k", k), ("a", a), ("d", d), ("B", B)))
    vd.tensor("k", k, 2, "(C, n) axes", dtype="int")
    vd.tensor("a", a, dtype="real")
    vd.tensor("d", d, dtype="int")
    vd.tensor("B", B, dtype="int")
    k, a, d, B = k.long(), a.to(torch.float64), d.long(), B.long()
    C, n = k.shape
    if a.shape != (C, n) or d.shape != (C,) or B.shape != (C,) or C == 0 or n == 0:
        raise vd.InvalidArgumentError(
            f"k and a must be (C, n), d and B must be (C,) with C, n ≥ 1; got k "
            f"{tuple(k.shape)}, a {tuple(a.shape)}, d {tuple(d.shape)}, B {tuple(B.shape)}")
    if bool((B < 1).any()) or bool((B > n).any()):
        raise vd.InvalidArgumentError(f"every batch size B must satisfy 1 ≤ B ≤ n = {n}; got values such as "
                                      f"{B[(B < 1) | (B > n)][:3].tolist()}")
    if bool((a < 0).any()) or bool((k < 0).any()) or bool((k >= d[:, None]).any()):
        raise vd.InvalidArgumentError("need a ≥ 0 (PSD) and 0 ≤ k < d for every sample")
    reps, steps = vd.integer("reps", reps, 1), vd.integer("steps", steps, 1)
    noise_std, chunk = vd.nonnegative("noise_std", noise_std), vd.integer("chunk", chunk, 1)
    vd.choice("backend", backend, ("numba", "torch"))
    vd.generator("generator", generator)
    D = int(d.max())
    hbar = torch.zeros(C, D, dtype=torch.float64).scatter_add_(1, k, a) / n
    sam_scale = 1 + r * hbar  # (I + (ρ/α)H) is diagonal
    if backend == "numba":
        seed = int(torch.randint(0, 2 ** 40, (1,), generator=generator))
        times = _escape_kernel(k.numpy(), a.numpy(), d.numpy(), B.numpy(), sam_scale.numpy(), eta, reps, steps,
                               _METHOD_CODE[method], float(noise_std), sampling == "bernoulli", BLOWUP, seed)
        return torch.from_numpy(times).reshape(C, reps)
    valid = (torch.arange(D)[None, :] < d[:, None]).to(torch.float64)  # (C, D)
    rows = torch.arange(C).repeat_interleave(reps)  # cell of each trajectory
    times = torch.full((C * reps,), steps + 1, dtype=torch.long)
    for lo in tqdm(range(0, C * reps, chunk), disable=None if progress is None else not progress,
                   desc="chunks"):
        cell = rows[lo:lo + chunk]
        R = cell.shape[0]
        w = torch.rand(R, D, generator=generator, dtype=torch.float64) * valid[cell]
        norm0 = w.pow(2).sum(1)
        tt = torch.full((R,), steps + 1, dtype=torch.long)
        act = torch.arange(R)  # rows still running; diverged rows are dropped
        kk, aa, Bc, vv, ss = k[cell], a[cell], B[cell], valid[cell], sam_scale[cell]
        for t in range(steps):
            mask = _batch_masks(Bc, n, sampling, generator)
            h = torch.zeros(w.shape, dtype=torch.float64).scatter_add_(1, kk, mask * aa / Bc[:, None])  # diag Ĥ_t
            x = w + noise_std * torch.randn(w.shape, generator=generator, dtype=torch.float64) * vv if method == "random" else w
            w = x * (1 - eta * h * ss)
            blown = w.pow(2).sum(1) >= BLOWUP * norm0
            if bool(blown.any()):
                tt[act[blown]] = t + 1
                keep = ~blown
                act, w, norm0, kk, aa, Bc, vv, ss = (z[keep] for z in (act, w, norm0, kk, aa, Bc, vv, ss))
                if act.numel() == 0:
                    break
        times[lo:lo + R] = tt
    return times.reshape(C, reps)


def stable_cells(diverged: torch.Tensor) -> torch.Tensor:
    """The authors' cell rule: stable when at least half the repetitions stay bounded."""
    vd.tensor("diverged", diverged, dtype="bool")
    if diverged.ndim < 1 or diverged.shape[-1] < 1:
        raise vd.InvalidArgumentError(
            f"diverged must be (..., reps) with reps ≥ 1; got {vd.fmt_shape(diverged.shape)}")
    return (~diverged).sum(-1) * 2 >= diverged.shape[-1]


def authors_counted_stable(diverged: torch.Tensor, count_success: bool = True) -> torch.Tensor:
    """The authors' tally: ``success += s`` per repetition, stable if success ≥ reps/2. In their SAM branch the
    ``success += s`` line is missing (SPEC §B.8a), i.e. ``count_success=False``: success stays 0 and every
    cell is reported unstable whatever the runs did."""
    stable_cells(diverged)  # the same checks
    success = (~diverged).sum(-1) if count_success else torch.zeros(diverged.shape[:-1], dtype=torch.long)
    return success * 2 >= diverged.shape[-1]


def authors_grid(n: int, sigmas, batches) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All (σ, B) cells of the authors' heat-map as axis-aligned families: (k, a, d, B, σ), each (C, ...)."""
    from .coherence import authors_axes

    n = vd.integer("n", n, 1)
    batches = [vd.batch_size(b, n, "batches entry") for b in batches]
    ks, as_, ds, Bs, ss = [], [], [], [], []
    for s in sigmas:
        k, a, d = authors_axes(n, int(s))
        for b in batches:
            ks.append(k), as_.append(a), ds.append(d), Bs.append(int(b)), ss.append(int(s))
    return torch.stack(ks), torch.stack(as_), torch.tensor(ds), torch.tensor(Bs), torch.tensor(ss)


# ---------------------------------------------------------------------------------------------- faster kernel
@njit(cache=True, nogil=True)
def _escape_rows_rng(rows, k, a, d, B, scale, eta, reps, steps, method, noise_std, blowup, rng,
                     out):  # pragma: no cover - compiled
    """As :func:`_escape_kernel`, for the given rows, drawing from one ``np.random.Generator`` (ziggurat
    normals, several times faster than the legacy generator that dominates the perturbed method's cost)."""
    n = k.shape[1]
    D = scale.shape[1]
    w = np.zeros(D)
    h = np.zeros(D)
    chosen = np.zeros(n, dtype=np.bool_)
    idx = np.empty(n, dtype=np.int64)
    for row in rows:
        c = row // reps
        dc, Bc = d[c], B[c]
        norm0 = 0.0
        for j in range(D):
            w[j] = 0.0
        for j in range(dc):
            w[j] = rng.random()  # w_0 ~ U[0, 1]^d (authors' np.random.rand)
            norm0 += w[j] * w[j]
        norm = norm0
        res = steps + 1
        for t in range(steps):
            m = 0  # Floyd's algorithm: a uniform B-subset
            for j in range(n - Bc, n):
                u = min(int(rng.random() * (j + 1)), j)  # uniform on {0..j} (to 2^-53)
                if chosen[u]:
                    u = j
                chosen[u] = True
                idx[m] = u
                m += 1
            for q in range(Bc):
                chosen[idx[q]] = False
            if method == 1:  # random perturbation: w + s ξ before the step
                norm = 0.0
                for j in range(dc):
                    w[j] += noise_std * rng.standard_normal()
                    norm += w[j] * w[j]
            for q in range(Bc):
                h[k[c, idx[q]]] += a[c, idx[q]] / Bc
            for q in range(Bc):
                ax = k[c, idx[q]]
                if h[ax] != 0.0:
                    old = w[ax]
                    w[ax] = old * (1.0 - eta * h[ax] * scale[c, ax])
                    norm += w[ax] * w[ax] - old * old
                    h[ax] = 0.0
            if t % 64 == 63:
                norm = 0.0
                for j in range(dc):
                    norm += w[j] * w[j]
            if norm >= blowup * norm0:
                res = t + 1
                break
        out[row] = res


def escape_times_axes_rng(k: torch.Tensor, a: torch.Tensor, d: torch.Tensor, B: torch.Tensor, eta: float,
                          reps: int = 10, steps: int = STEPS, method: str = "sgd", rho_over_alpha: float = 0.0,
                          noise_std: float = 1.0, seed: int = 0, chunks: int = 8) -> torch.Tensor:
    """Escape times (C, reps) as :func:`escape_times_axes` (B indices without replacement, the authors'
    sampling), from a compiled kernel that draws from numpy ``Generator`` streams: the rows are split into
    ``chunks`` fixed interleaved groups, each with its own stream spawned from ``seed``, run on numba's thread
    count of threads (one where records run). The result depends on ``seed`` and ``chunks``, not on the threads."""
    from concurrent.futures import ThreadPoolExecutor

    eta = _check_eta(eta)
    r = _check_method(method, "without_replacement", rho_over_alpha)
    k, a = torch.as_tensor(k).long(), torch.as_tensor(a).to(torch.float64)
    d, B = torch.as_tensor(d).long(), torch.as_tensor(B).long()
    C, n = k.shape
    if a.shape != (C, n) or d.shape != (C,) or B.shape != (C,):
        raise ValueError("k and a must be (C, n), d and B must be (C,)")
    if bool((B < 1).any()) or bool((B > n).any()):
        raise ValueError(f"every batch size B must satisfy 1 ≤ B ≤ n = {n}")
    if bool((a < 0).any()) or bool((k < 0).any()) or bool((k >= d[:, None]).any()):
        raise ValueError("need a ≥ 0 (PSD) and 0 ≤ k < d for every sample")
    if not (isinstance(reps, int) and reps >= 1 and isinstance(steps, int) and steps >= 1):
        raise ValueError(f"reps and steps must be integers ≥ 1, got reps={reps!r}, steps={steps!r}")
    D = int(d.max())
    hbar = torch.zeros(C, D, dtype=torch.float64).scatter_add_(1, k, a) / n
    scale = (1 + r * hbar).numpy()
    out = np.empty(C * reps, dtype=np.int64)
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(int(chunks))]
    groups = [np.arange(j, C * reps, chunks, dtype=np.int64) for j in range(chunks)]
    args = (k.numpy(), a.numpy(), d.numpy(), B.numpy(), scale, eta, reps, steps, _METHOD_CODE[method],
            float(noise_std), BLOWUP)
    with ThreadPoolExecutor(max_workers=min(chunks, numba.get_num_threads())) as pool:
        list(pool.map(lambda j: _escape_rows_rng(groups[j], *args, streams[j], out), range(chunks)))
    return torch.from_numpy(out).reshape(C, reps)


def axes_log_norms(k: torch.Tensor, a: torch.Tensor, d: int, B: int, eta: float, runs: int,
                   steps: int = STEPS, rho_over_alpha: float = 0.0,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """log ‖w_t‖² for t = 0..steps, (runs, steps + 1), of linearized SGD (or SAM, ρ/α > 0) on ONE
    axis-aligned family H_i = a_i e_{k_i} e_{k_i}ᵀ in R^d (k, a: (n,)), B indices without replacement
    (the authors' sampling), w_0 ~ U[0, 1]^d. No freezing and no overflow: each axis is carried as
    log|w_k| (a step multiplies axis k by 1 − η ĥ_k (1 + (ρ/α) h̄_k)), so heavy-tailed runs keep their
    true size. Independent of :func:`escape_times_axes` (minibatches from the ranks of uniform keys,
    plain torch): the chapters compare the two."""
    k, a = torch.as_tensor(k).long(), torch.as_tensor(a, dtype=torch.float64)
    n, d, B = int(k.shape[0]), int(d), int(B)
    if a.shape != (n,) or not 1 <= B <= n or bool((k < 0).any()) or bool((k >= d).any()):
        raise ValueError(f"need k, a of shape (n,), 0 ≤ k < d and 1 ≤ B ≤ n; got {tuple(k.shape)}, "
                         f"{tuple(a.shape)}, d = {d}, B = {B}")
    eta = _check_eta(eta)
    hbar = torch.zeros(d, dtype=torch.float64).scatter_add_(0, k, a) / n
    scale = 1 + float(rho_over_alpha) * hbar
    logw = torch.rand(runs, d, generator=generator, dtype=torch.float64).log()
    out = torch.empty(runs, steps + 1, dtype=torch.float64)
    out[:, 0] = torch.logsumexp(2 * logw, 1)
    for t in range(steps):
        keys = torch.rand(runs, n, generator=generator)  # uniform B-subsets: the B smallest keys, in order
        idx = torch.topk(keys, B, dim=1, largest=False, sorted=True).indices
        h = torch.zeros(runs, d, dtype=torch.float64).scatter_add_(1, k[idx], a[idx] / B)
        logw = logw + (1 - eta * h * scale).abs().log()
        out[:, t + 1] = torch.logsumexp(2 * logw, 1)
    return out
