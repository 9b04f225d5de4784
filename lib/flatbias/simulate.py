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
drawn from ``generator``), so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np
import torch
from numba import njit, prange
from tqdm import tqdm

from .coherence import check_psd_family
from .stability import _check_batch, _check_eta, _check_method

#: the authors' divergence factor and horizon (``coherence_local.py``)
BLOWUP = 1000.0
STEPS = 1000


# ---------------------------------------------------------------------------------------------- compiled kernel
_METHOD_CODE = {"sgd": 0, "random": 1, "sam": 2}


@njit(cache=True, nogil=True)
def _floyd(n, B, chosen, idx):  # pragma: no cover - compiled
    """Floyd's algorithm: a uniformly random B-subset of {0..n−1} into idx[:B] (chosen: scratch flags, left clear)."""
    m = 0
    for j in range(n - B, n):
        t = np.random.randint(0, j + 1)  # uniform on {0..j}
        if chosen[t]:
            t = j
        chosen[t] = True
        idx[m] = t
        m += 1
    for q in range(B):
        chosen[idx[q]] = False


@njit(cache=True, nogil=True)
def _floyd_batches(n, B, count, seed):  # pragma: no cover - compiled
    np.random.seed(seed)
    out = np.empty((count, B), dtype=np.int64)
    chosen = np.zeros(n, dtype=np.bool_)
    idx = np.empty(n, dtype=np.int64)
    for r in range(count):
        _floyd(n, B, chosen, idx)
        out[r] = idx[:B]
    return out


def floyd_batches(n: int, B: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` minibatches (count, B) drawn by the kernel's sampler (Floyd's algorithm), for tests."""
    if not 1 <= B <= n:
        raise ValueError(f"need 1 ≤ B ≤ n, got B = {B}, n = {n}")
    return _floyd_batches(int(n), int(B), int(count), int(seed))


@njit(cache=True, nogil=True, parallel=True)
def _escape_kernel(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):  # pragma: no cover
    """First step t (1..steps) with ‖w_t‖² ≥ blowup·‖w_0‖², or steps + 1 if never, for every (cell, repetition).
    k, a (C, n): axis and weight of each H_i; d, B (C,); scale (C, D): diag(I + (ρ/α)H) (ones unless SAM)."""
    C, n = k.shape
    D = scale.shape[1]
    out = np.empty(C * reps, dtype=np.int64)
    for row in prange(C * reps):
        np.random.seed(seed + row)
        c = row // reps
        dc, Bc = d[c], B[c]
        w = np.zeros(D)
        h = np.zeros(D)
        chosen = np.zeros(n, dtype=np.bool_)
        idx = np.empty(n, dtype=np.int64)
        norm0 = 0.0
        for j in range(dc):
            w[j] = np.random.random()  # w_0 ~ U[0, 1]^d (authors' np.random.rand)
            norm0 += w[j] * w[j]
        norm = norm0
        res = steps + 1
        for t in range(steps):
            if bernoulli:
                m = 0
                for i in range(n):
                    if np.random.random() < Bc / n:
                        idx[m] = i
                        m += 1
            else:
                _floyd(n, Bc, chosen, idx)
                m = Bc
            if method == 1:  # random perturbation: w + s ξ before the step
                norm = 0.0
                for j in range(dc):
                    w[j] += noise_std * np.random.standard_normal()
                    norm += w[j] * w[j]
            for q in range(m):  # ĥ_t = Σ_{i∈S_t} a_i e_{k_i} / B
                h[k[c, idx[q]]] += a[c, idx[q]] / Bc
            for q in range(m):  # w ← (I − η Ĥ_t (I + (ρ/α)H)) w on the touched axes only
                ax = k[c, idx[q]]
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
        out[row] = res
    return out


def batch_masks(B: torch.Tensor, n: int, sampling: str, generator: torch.Generator | None) -> torch.Tensor:
    """Random minibatch indicators (R, n), one row per trajectory with its own batch size B[r]:
    exactly B[r] ones, every B[r]-subset equally likely (without replacement; Knuth's selection sampling,
    vectorized over rows: item i is taken with probability still-needed / still-available), or each one
    independently with probability B[r]/n (Bernoulli)."""
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
    w = w0.to(torch.float64).clone()
    if w.ndim != 2 or w.shape[1] != d:
        raise ValueError(f"w0 must have shape (R, d) with d = {d}, got {tuple(w0.shape)}")
    M = torch.eye(d, dtype=torch.float64) + r * H.mean(0)
    Bv = torch.full((w.shape[0],), B, dtype=torch.long)
    out = [w.pow(2).sum(1)]
    for _ in range(steps):
        if method == "random":
            w = w + noise_std * torch.randn(w.shape, generator=generator, dtype=torch.float64)
        mask = batch_masks(Bv, n, sampling, generator) / B  # (R, n)
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
    k, a, d, B = k.long(), a.to(torch.float64), torch.as_tensor(d).long(), torch.as_tensor(B).long()
    C, n = k.shape
    if a.shape != (C, n) or d.shape != (C,) or B.shape != (C,):
        raise ValueError(f"k and a must be (C, n), d and B must be (C,); got {tuple(k.shape)}, {tuple(a.shape)}, "
                         f"{tuple(d.shape)}, {tuple(B.shape)}")
    if bool((B < 1).any()) or bool((B > n).any()):
        raise ValueError(f"every batch size B must satisfy 1 ≤ B ≤ n = {n}")
    if bool((a < 0).any()) or bool((k < 0).any()) or bool((k >= d[:, None]).any()):
        raise ValueError("need a ≥ 0 (PSD) and 0 ≤ k < d for every sample")
    if not (isinstance(reps, int) and reps >= 1 and isinstance(steps, int) and steps >= 1):
        raise ValueError(f"reps and steps must be integers ≥ 1, got reps={reps!r}, steps={steps!r}")
    if backend not in ("numba", "torch"):
        raise ValueError(f"unknown backend {backend!r}; use 'numba' or 'torch'")
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
            mask = batch_masks(Bc, n, sampling, generator)
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
    return (~diverged).sum(-1) * 2 >= diverged.shape[-1]


def authors_counted_stable(diverged: torch.Tensor, count_success: bool = True) -> torch.Tensor:
    """The authors' tally: ``success += s`` per repetition, stable if success ≥ reps/2. In their SAM branch the
    ``success += s`` line is missing (SPEC §B.8a), i.e. ``count_success=False``: success stays 0 and every
    cell is reported unstable whatever the runs did."""
    success = (~diverged).sum(-1) if count_success else torch.zeros(diverged.shape[:-1], dtype=torch.long)
    return success * 2 >= diverged.shape[-1]


def authors_grid(n: int, sigmas, batches) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """All (σ, B) cells of the authors' heat-map as axis-aligned families: (k, a, d, B, σ), each (C, ...)."""
    from .coherence import authors_axes

    ks, as_, ds, Bs, ss = [], [], [], [], []
    for s in sigmas:
        k, a, d = authors_axes(n, int(s))
        for b in batches:
            ks.append(k), as_.append(a), ds.append(d), Bs.append(int(b)), ss.append(int(s))
    return torch.stack(ks), torch.stack(as_), torch.tensor(ds), torch.tensor(Bs), torch.tensor(ss)
