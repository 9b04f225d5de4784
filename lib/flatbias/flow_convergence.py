"""One run of the Riemannian gradient flow of the sharpness on M, summarized for a convergence test (chapter 05).

:func:`flow_run` integrates the flow from a start (Riemannian descent with Armijo steps capped at
``h_cap``/μ), and returns the trajectory with what a test of Paper 1's Theorem 3.5 reads from it: the gap
(F − F*)/F*, the fitted late rate against 2μ (μ = λ_min(Hess_M F(θ*)) on the data span), the distance of the
pre-activations to the closed-form optimum, the drift of θ's part orthogonal to the data span, and (on
request) the largest ‖grad‖ over a fixed-step run started once ‖grad‖ ≤ ε.

It also returns ``horizon_time``: the flow time that ``max_steps`` steps cover at the run's mean step size,
so that a chapter can ask, without reading whether the run converged, whether its horizon reached the
regime of the claim (``mu * horizon_time`` against the e-folds its tolerances need).
"""

from __future__ import annotations

import numpy as np
import torch

from . import landscape, optimum, riemannian

__all__ = ["flow_run", "orthogonal_drift"]


def orthogonal_drift(thetas, X) -> float:
    """Largest move of the θ_j's part orthogonal to span{x_i} along ``thetas`` (from the first one)."""
    Pperp = torch.eye(X.shape[1], dtype=X.dtype) - X.T @ torch.linalg.solve(X @ X.T, X)
    return max(float(((th - thetas[0]) @ Pperp).norm()) for th in thetas)


def _stays(thetas, g, X, y, act, delta: float, steps: int) -> float:
    """Largest ‖grad‖/δ over ``steps`` fixed steps h = 1/λ_max, from the first logged point with ‖grad‖ ≤ δ
    (1e9 if there is none)."""
    below = np.flatnonzero(g <= delta)
    if not below.size:
        return 1e9
    th1 = thetas[below[0]]
    h1 = 1 / riemannian.lambda_max(th1, X, act)
    tr1 = riemannian.descent(th1, X, y, act, step=h1, max_steps=steps, log_every=1, tol=0.0)
    return float(max(tr1.grad_norm) / delta)


def flow_run(X, y, theta0, act, m: int, *, tol: float, max_steps: int, log_every: int, h_cap: float,
             fit_window, stay_delta: float = 1e-2, stay_steps: int = 0, stay_check: bool = False) -> dict:
    """The flow from ``theta0`` on M: trajectory (t, gap, grad) and its summary numbers (see the module)."""
    Fs = optimum.F_star(X, y, act, m)
    star = optimum.global_optimum(theta0, X, y, act)
    mu = riemannian.lambda_min(star, X, act, span_only=True)
    tr = riemannian.descent(theta0, X, y, act, tol=tol, max_steps=max_steps, log_every=log_every,
                            keep_thetas=True, h_max=h_cap / mu)
    t, gap, g = np.array(tr.t), (np.array(tr.F) - Fs) / Fs, np.array(tr.grad_norm)
    rate, r2, _ = landscape.late_rate(t, gap, *fit_window)
    stay = _stays(tr.thetas, g, X, y, act, stay_delta, stay_steps) if stay_check else None
    return {"t": t, "gap": gap, "grad": g, "mu": mu, "rate": rate, "r2": r2,
            "drift": orthogonal_drift(tr.thetas, X), "stay": stay, "end": tr.theta, "star": star,
            "dz": optimum.distance_to_optimum(tr.theta, X, y, act),
            "horizon_time": float(t[-1]) * max_steps / max(tr.steps, 1)}
