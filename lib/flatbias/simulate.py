"""Monte-Carlo simulation of the linearized dynamics (SPEC §B.1, §B.5, §B.6, §B.8a), batched.

Every repetition (and, for the heat-maps, every (B, σ) cell) is one row of a tensor; one Python loop
runs over time steps only. Methods:

    sgd     w_{t+1} = (I − η Ĥ_t) w_t
    random  w_{t+1} = (I − η Ĥ_t)(w_t + s ξ_t),  ξ_t ~ N(0, I)   (authors' ``random_process``)
    sam     w_{t+1} = (I − η Ĥ_t (I + (ρ/α) H)) w_t              (authors' ``SAM_process``)

Sampling: B indices without replacement (authors) or Bernoulli(B/n). Divergence rule of the authors'
code: ‖w_t‖² ≥ 1000 ‖w_0‖² at some t ≤ steps; a cell is stable if at least half its repetitions never
diverge. Diverged rows are frozen (no overflow).
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from .coherence import check_psd_family
from .stability import _check_batch, _check_eta, _check_method

#: the authors' divergence factor and horizon (``coherence_local.py``)
BLOWUP = 1000.0
STEPS = 1000


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
                  chunk: int = 100_000, progress: bool | None = None) -> torch.Tensor:
    """Divergence flags (C, reps) for C cells of axis-aligned families, all cells and repetitions at once.

    Cell j has n samples with H_i = a[j, i] e_{k[j, i]} e_{k[j, i]}ᵀ in R^{d[j]} (k: (C, n) long, a: (C, n)),
    batch size B[j]; w_0 ~ U[0, 1]^{d[j]} (authors' ``np.random.rand``). Ĥ_t w = ĥ_t ⊙ w with
    ĥ_t = scatter of the sampled a_i/B onto their axes: O(n) per trajectory and step. Rows are processed in
    chunks of ``chunk`` trajectories.
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
    D = int(d.max())
    valid = (torch.arange(D)[None, :] < d[:, None]).to(torch.float64)  # (C, D)
    hbar = torch.zeros(C, D, dtype=torch.float64).scatter_add_(1, k, a) / n
    sam_scale = 1 + r * hbar  # (I + (ρ/α)H) is diagonal
    rows = torch.arange(C).repeat_interleave(reps)  # cell of each trajectory
    diverged = torch.zeros(C * reps, dtype=torch.bool)
    for lo in tqdm(range(0, C * reps, chunk), disable=None if progress is None else not progress,
                   desc="chunks"):
        cell = rows[lo:lo + chunk]
        R = cell.shape[0]
        w = torch.rand(R, D, generator=generator, dtype=torch.float64) * valid[cell]
        norm0 = w.pow(2).sum(1)
        div = torch.zeros(R, dtype=torch.bool)
        act = torch.arange(R)  # rows still running; diverged rows are dropped every few steps
        kk, aa, Bc, vv, ss = k[cell], a[cell], B[cell], valid[cell], sam_scale[cell]
        for t in range(steps):
            mask = batch_masks(Bc, n, sampling, generator)
            h = torch.zeros(w.shape, dtype=torch.float64).scatter_add_(1, kk, mask * aa / Bc[:, None])  # diag Ĥ_t
            x = w + noise_std * torch.randn(w.shape, generator=generator, dtype=torch.float64) * vv if method == "random" else w
            w = x * (1 - eta * h * ss)
            blown = w.pow(2).sum(1) >= BLOWUP * norm0
            if bool(blown.any()):
                div[act[blown]] = True
                keep = ~blown
                act, w, norm0, kk, aa, Bc, vv, ss = (z[keep] for z in (act, w, norm0, kk, aa, Bc, vv, ss))
                if act.numel() == 0:
                    break
        diverged[lo:lo + R] = div
    return diverged.reshape(C, reps)


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
