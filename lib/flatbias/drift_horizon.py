"""How far a horizon of label-noise SGD or 1-SAM steps carries the flow, by the flow's own linear rate.

Near the global minimizer θ* of the sharpness F on the zero-loss manifold M, the Riemannian gradient flow
is linear with rate μ = λ_min(Hess_M F(θ*)) on the tangent directions inside the data span (chapter 05), so
the distance to θ* decays like e^{-μτ} and every quantity quadratic in it (F − F*, the small eigenvalues of
ΦΦᵀ) like e^{-2μτ}. Both algorithms drift along M at a known speed per step in the small-step limit:
label-noise SGD at c = η²s²/(4n), 1-SAM at c = ηρ²/(2n) flow-time units per step (chapters 07 and 08).

:func:`predicted_drop` turns a horizon in steps into the drop e^{-2μ c H} that the linear phase alone
predicts. It reads the data and the closed-form optimum only, never a run's outcome: chapters 06 and 08 use
it as a pre-registered "reached" condition (does the declared horizon reach the regime the claim is about,
for the slowest draw?).
"""

from __future__ import annotations

import numpy as np
import torch

from . import optimum, riemannian

__all__ = ["flow_rates", "drift_per_step", "predicted_drop"]


def flow_rates(theta0, X, y, act: str = "sinh") -> np.ndarray:
    """μ per draw: the smallest eigenvalue of Hess_M F at the closed-form optimum, data-span directions.

    ``theta0`` (draws, m, d), ``X`` (draws, n, d), ``y`` (draws, n), numpy or torch; float64."""
    out = []
    for th, Xp, yp in zip(theta0, X, y):
        th, Xp, yp = (torch.as_tensor(np.asarray(a), dtype=torch.float64) for a in (th, Xp, yp))
        star = optimum.global_optimum(th, Xp, yp, act)
        out.append(riemannian.lambda_min(star, Xp, act, span_only=True))
    return np.array(out)


def drift_per_step(method: str, eta: float, n: int, s: float = 0.0, rho: float = 0.0) -> float:
    """Flow time per step in the small-step limit: η²s²/(4n) for label-noise SGD, ηρ²/(2n) for 1-SAM."""
    if method == "sgd":
        return eta**2 * s**2 / (4 * n)
    if method == "sam":
        return eta * rho**2 / (2 * n)
    raise ValueError(f"method must be 'sgd' or 'sam'; got {method!r}")


def predicted_drop(mu, steps: int, per_step: float) -> np.ndarray:
    """e^{-2μ c H}: the drop of a quadratic quantity over ``steps`` steps at ``per_step`` flow time each."""
    return np.exp(-2.0 * np.asarray(mu, float) * per_step * steps)
