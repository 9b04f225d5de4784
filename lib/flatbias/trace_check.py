"""The trace of the Hessian against its closed form 2F, on the zero-loss manifold and off it (chapter 01).

On M the exact trace (a dense autograd Hessian) must equal 2F = 2 Σ_i ‖x_i‖² Σ_j φ'(θ_jᵀx_i)² (Paper 1,
Lemma 4.2/4.3); off M they differ by the residual term 2 Σ_i r_i tr ∇²f_i, which grows linearly in the
distance t along a normal direction. :func:`measure` turns both sweeps into the chapter's check values.
"""

from __future__ import annotations

import numpy as np
import torch

from . import manifold, twolayer


def on_manifold(acts, sizes, points: int, gen: torch.Generator) -> list[tuple]:
    """Per random point of M: (activation, n, d, m, max |f(x_i) − y_i|, closed form 2F, exact trace)."""
    rows = []
    for act in acts:
        for n, d, m in sizes:
            X, y = twolayer.uniform_data(n, d, gen)
            for _ in range(points):
                theta = manifold.random_point(X, y, act, m, gen)
                residual = float(manifold.constraints(theta, X, y, act).abs().max())
                closed = float(2 * twolayer.sharpness(theta, X, act))
                exact = float(twolayer.trace_hessian_autograd(theta, X, y, act))
                rows.append((act, n, d, m, residual, closed, exact))
    return rows


def off_manifold(X: torch.Tensor, y: torch.Tensor, acts, m: int, ts, gen: torch.Generator):
    """Move off one point of M per activation along a unit normal direction u ∈ range Jᵀ, to each distance in
    ``ts``. Returns ({activation: (gap |tr − 2F|/tr, mismatch |tr − 2F − residual|/tr)}, the largest relative
    error of ``twolayer.trace_hessian`` against autograd over all those points)."""
    n, d = X.shape
    off, guard = {}, 0.0
    for act in acts:
        theta = manifold.random_point(X, y, act, m, gen)
        J = twolayer.jacobian(theta, X, act)
        u = (J.T @ torch.randn(n, generator=gen, dtype=X.dtype)).reshape(m, d)
        u = u / u.norm()
        gap, mismatch = [], []
        for t in ts:
            th = theta + t * u
            tr = float(twolayer.trace_hessian_autograd(th, X, y, act))
            two_f = float(2 * twolayer.sharpness(th, X, act))
            res = float(twolayer.residual_term(th, X, y, act))
            gap.append(abs(tr - two_f) / tr)
            mismatch.append(abs(tr - two_f - res) / tr)
            guard = max(guard, abs(float(twolayer.trace_hessian(th, X, y, act)) - tr) / tr)
        off[act] = (np.array(gap), np.array(mismatch))
    return off, guard


def slopes(off: dict, ts, k: int = 6) -> dict:
    """Log-log slope of the gap over the ``k`` smallest distances, per activation."""
    ts = np.asarray(ts)
    return {act: float(np.polyfit(np.log(ts[:k]), np.log(g[:k]), 1)[0]) for act, (g, _) in off.items()}


def measure(rows: list[tuple], off: dict, guard_off: float, ts) -> dict:
    """The values of chapter 01's checks from the two sweeps."""
    closed, exact = np.array([r[5] for r in rows]), np.array([r[6] for r in rows])
    return {
        "rel_err_on_M": float((np.abs(closed - exact) / np.abs(exact)).max()),
        "mismatch_off_M": max(float(mm.max()) for _, mm in off.values()),
        "slope_off_M": max(abs(s - 1) for s in slopes(off, ts).values()),
        "gap_at_1": min(float(g[-1]) for g, _ in off.values()),
        "on_M": float(max(r[4] for r in rows)),
        "closed_vs_autograd_off_M": float(guard_off),
    }
