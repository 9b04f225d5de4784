"""The closed-form global minimizer of the sharpness F on M (paper 1, Theorem 3.3; SPEC §A.5).

Second layer fixed to 1: θ ∈ M is stationary for F on M iff θ_jᵀx_i = φ⁻¹(y_i/m) for all i, j; every such
point is a global minimum, F* = m Σ_i ‖x_i‖² φ'(φ⁻¹(y_i/m))², and the feature matrix Φ = (y/m)1ᵀ has rank one.

General fixed second layer a (all a_j ≠ 0; SPEC §A.2, our derivation): stationarity gives
a_j φ''(z_ij) = κ_i, one number per data point, so z_ij = (φ'')⁻¹(κ_i/a_j) and κ_i solves
g_i(κ) = Σ_j a_j φ((φ'')⁻¹(κ/a_j)) = y_i; g_i is strictly increasing (g' = Σ_j φ'/φ''' > 0), so κ_i is unique.
The "φ''-image" a_j φ''(z_ij) = κ_i is then rank one. (For sinh, κ_i = y_i/m and z_ij = asinh(y_i/(m a_j)).)

The components of each θ_j orthogonal to span{x_i} never move under the flow (every update is a combination
of the x_i), so from an initialization θ⁰ the limit is θ*_j = P_⊥θ⁰_j + Xᵀ(XXᵀ)⁻¹ z*_{:,j}.
"""

from __future__ import annotations

import warnings

import torch

from . import manifold, twolayer
from .activations import Activation, get_activation


class AssumptionWarning(UserWarning):
    """The activation is outside Assumption 3.1: the closed form is a stationary point, not proved optimal."""


def _d2_inverse(act: Activation, k: torch.Tensor) -> torch.Tensor:
    """(φ'')⁻¹ elementwise, for φ''' > 0 (φ'' strictly increasing): closed forms, else bracketed bisection."""
    if act.name == "sinh":
        return torch.asinh(k)
    if act.name == "cubic":
        return k / 2
    if act.name == "cube":
        return k / 6
    lo, hi = -torch.ones_like(k), torch.ones_like(k)
    for _ in range(200):  # expand the bracket
        bad_lo, bad_hi = act.d2(lo) > k, act.d2(hi) < k
        if not bool(bad_lo.any() | bad_hi.any()):
            break
        lo, hi = torch.where(bad_lo, 2 * lo, lo), torch.where(bad_hi, 2 * hi, hi)
    else:
        raise ValueError(f"{act.name}: φ''(z) = κ has no solution for some κ (φ'' is bounded); the general-second-"
                         "layer optimum needs φ'' onto the values κ/a_j")
    for _ in range(200):
        mid = (lo + hi) / 2
        up = act.d2(mid) < k
        lo, hi = torch.where(up, mid, lo), torch.where(up, hi, mid)
    return (lo + hi) / 2


def _check_assumption(act: Activation, need_convex: bool) -> None:
    if act.satisfies_assumption_3_1:
        return
    if act.name == "cube":
        return  # φ''' = 6 > 0; φ' = 3z² > 0 away from z = 0 (labels without a point mass at 0, Lemma G.4)
    msg = (f"activation {act.name!r} is outside Assumption 3.1 ({act.note}): the closed form is a stationary point "
           "of F on M, but Theorem 3.3 does not say it is the global minimum, or the only stationary point")
    if need_convex:
        raise ValueError(msg + "; with general second-layer weights φ'' must be injective (φ''' > 0) to define it")
    warnings.warn(msg, AssumptionWarning, stacklevel=3)


def optimal_preactivations(X, y, act: str | Activation, m: int, a=None) -> torch.Tensor:
    """z*_ij = θ*_jᵀx_i (n × m): φ⁻¹(y_i/m) for a = 1, else (φ'')⁻¹(κ_i/a_j) (module docstring)."""
    act = get_activation(act)
    n = X.shape[0]
    if y.shape != (n,):
        raise ValueError(f"y must have shape ({n},) to match X's {n} rows, got {tuple(y.shape)}")
    if a is None:
        _check_assumption(act, need_convex=False)
        z = act.inv(y / m)
        out = z[:, None].expand(n, m).clone()
    else:
        if a.shape != (m,):
            raise ValueError(f"second-layer weights a must have shape ({m},), got {tuple(a.shape)}")
        if bool((a == 0).any()):
            raise ValueError("second-layer weights must be non-zero: a neuron with a_j = 0 does not enter f or F, so "
                             "its weights are not determined")
        _check_assumption(act, need_convex=True)
        # solve g_i(κ) = Σ_j a_j φ((φ'')⁻¹(κ/a_j)) = y_i for every i by vectorized bisection (g increasing)
        g = lambda k: (a * act.phi(_d2_inverse(act, k[:, None] / a))).sum(1)  # noqa: E731
        lo, hi = -torch.ones_like(y), torch.ones_like(y)
        for _ in range(200):
            bad_lo, bad_hi = g(lo) > y, g(hi) < y
            if not bool(bad_lo.any() | bad_hi.any()):
                break
            lo, hi = torch.where(bad_lo, 2 * lo, lo), torch.where(bad_hi, 2 * hi, hi)
        for _ in range(200):
            mid = (lo + hi) / 2
            up = g(mid) < y
            lo, hi = torch.where(up, mid, lo), torch.where(up, hi, mid)
        kappa = (lo + hi) / 2
        out = _d2_inverse(act, kappa[:, None] / a)
    if act.name == "cube" and bool((out == 0).any()):
        raise manifold.RankDeficientError("cube activation with a label y_i = 0 gives z* = 0 where φ'(0) = 0: M is "
                                          "singular at the optimum (Lemma G.4 needs labels without a point mass at 0)")
    return out


def global_optimum(theta0, X, y, act: str | Activation, a=None) -> torch.Tensor:
    """θ*_j = P_⊥θ0_j + Xᵀ(XXᵀ)⁻¹z*_{:,j}: the global minimizer of F on M reached from θ0 (Theorem 3.3)."""
    manifold.check_data(X)
    m = theta0.shape[0]
    Zs = optimal_preactivations(X, y, act, m, a)  # (n, m)
    K = X @ X.T
    coef = torch.linalg.solve(K, X @ theta0.T)  # (n, m): θ0_j's component in span{x_i} is Xᵀ coef_j
    return theta0 + (torch.linalg.solve(K, Zs) - coef).T @ X


def F_star(X, y, act: str | Activation, m: int, a=None) -> float:
    """The minimum of F on M: m Σ_i ‖x_i‖² φ'(φ⁻¹(y_i/m))² for a = 1; Σ_ij ‖x_i‖² a_j² φ'(z*_ij)² in general."""
    act = get_activation(act)
    Zs = optimal_preactivations(X, y, act, m, a)
    aa = torch.ones(m, dtype=X.dtype) if a is None else a
    return float(((X**2).sum(1) * ((act.d1(Zs) * aa) ** 2).sum(1)).sum())


def distance_to_optimum(theta, X, y, act: str | Activation, a=None) -> float:
    """max_ij |θ_jᵀx_i − z*_ij|: how far θ's pre-activations are from Theorem 3.3's."""
    Zs = optimal_preactivations(X, y, act, theta.shape[0], a)
    return float((twolayer.preactivations(theta, X) - Zs).abs().max())
