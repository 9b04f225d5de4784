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
from . import validate as vd
from .activations import Activation


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
        raise vd.InvalidArgumentError(
            f"{act.name}: φ''(z) = κ has no solution for some κ (φ'' is bounded); the general-second-"
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
        raise vd.InvalidArgumentError(
            msg + "; with general second-layer weights φ'' must be injective (φ''' > 0) to define it")
    warnings.warn(msg, AssumptionWarning, stacklevel=3)


def optimal_preactivations(X, y, act: str | Activation, m: int, a=None) -> torch.Tensor:
    """z*_ij = θ*_jᵀx_i (n × m): φ⁻¹(y_i/m) for a = 1, else (φ'')⁻¹(κ_i/a_j) (module docstring)."""
    m = vd.integer("m", m, 1)
    return _optimal_preactivations(X, y, _check(X, y, act, m, a), m, a)


def _check(X, y, act, m, a=None, theta=None, theta_name="θ") -> Activation:
    """Check X (n, d), labels y (n,), the width m, a (m,) and θ (m, d); return the activation."""
    vd.tensor("X", X, 2, "(n, d)")
    vd.tensor("y", y)
    if theta is None:  # check the data against a θ of the right shape
        theta = torch.zeros(m, X.shape[1], dtype=X.dtype, device=X.device)
    act = twolayer.check_inputs(theta, X, act, a, y, theta_name)
    if a is not None and bool((a == 0).any()):
        raise vd.InvalidArgumentError(
            "second-layer weights must be non-zero: a neuron with a_j = 0 does not enter f or "
            f"F, so its weights are not determined; got a = {a.tolist()}")
    return act


def _optimal_preactivations(X, y, act: Activation, m: int, a=None) -> torch.Tensor:
    n = X.shape[0]
    if a is None:
        _check_assumption(act, need_convex=False)
        z = act.inv(y / m)
        out = z[:, None].expand(n, m).clone()
    else:
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
    vd.tensor("θ0", theta0, 2, "(m, d)")
    m = theta0.shape[0]
    act = _check(X, y, act, m, a, theta0, "θ0")
    manifold.check_data(X)
    Zs = _optimal_preactivations(X, y, act, m, a)  # (n, m)
    K = X @ X.T
    coef = torch.linalg.solve(K, X @ theta0.T)  # (n, m): θ0_j's component in span{x_i} is Xᵀ coef_j
    return theta0 + (torch.linalg.solve(K, Zs) - coef).T @ X


def F_star(X, y, act: str | Activation, m: int, a=None) -> float:
    """The minimum of F on M: m Σ_i ‖x_i‖² φ'(φ⁻¹(y_i/m))² for a = 1; Σ_ij ‖x_i‖² a_j² φ'(z*_ij)² in general.

    X must have linearly independent rows (n ≤ d, XXᵀ nonsingular; Assumption 3.2): with repeated or dependent
    rows M is empty or not a manifold and there is no minimum, a :class:`manifold.RankDeficientError`."""
    m = vd.integer("m", m, 1)
    act = _check(X, y, act, m, a)
    manifold.check_data(X)
    Zs = _optimal_preactivations(X, y, act, m, a)
    aa = torch.ones(m, dtype=X.dtype) if a is None else a
    return float(((X**2).sum(1) * ((act.d1(Zs) * aa) ** 2).sum(1)).sum())


def distance_to_optimum(theta, X, y, act: str | Activation, a=None) -> float:
    """max_ij |θ_jᵀx_i − z*_ij|: how far θ's pre-activations are from Theorem 3.3's."""
    vd.tensor("θ", theta, 2, "(m, d)")
    act = _check(X, y, act, theta.shape[0], a, theta)
    Zs = _optimal_preactivations(X, y, act, theta.shape[0], a)
    return float((twolayer._z(theta, X) - Zs).abs().max())


# --- the cube's other stationary points (our derivation, not in the paper) ----------------------------
#
# For φ(z) = z³, φ'(0) = φ''(0) = 0, so the stationarity equation of Theorem 3.3's proof,
# φ'(z_ij)(2‖x_i‖²φ''(z_ij) − λ_i) = 0, also holds at z_ij = 0: the proof's step "φ' > 0, so divide by it"
# fails there. For a support S (n × m, boolean, at least one entry per row) the point with z_ij = c_i on S and
# z_ij = 0 off S, c_i = (y_i/|S_i|)^{1/3}, is on M, stationary with multipliers λ_i = 12‖x_i‖²c_i, and has
# F_S = 9 Σ_i ‖x_i‖²|S_i|c_i⁴ = 9 Σ_i ‖x_i‖² y_i^{4/3} |S_i|^{-1/3} > F* unless S is full.


def _cube_levels(X, y, support) -> torch.Tensor:
    vd.tensor("X", X, 2, "(n, d)")
    vd.tensor("y", y, 1, "(n,)")
    if not (isinstance(support, torch.Tensor) and support.dtype == torch.bool and support.ndim == 2
            and support.shape[0] == X.shape[0]):
        raise vd.InvalidArgumentError(
            f"support must be a boolean (n, m) tensor with n = {X.shape[0]}; got "
            f"{getattr(support, 'dtype', type(support))} {tuple(getattr(support, 'shape', ()))}")
    k = support.sum(1).to(X.dtype)
    if bool((k == 0).any()):
        raise vd.InvalidArgumentError(
            "every row of the support needs a non-zero pre-activation: with all z_ij = 0 "
            "in row i, f(x_i) = 0 ≠ y_i and the point is not on M")
    r = y / k
    return torch.sign(r) * r.abs() ** (1.0 / 3.0)


def cube_stationary_point(theta, X, y, support) -> torch.Tensor:
    """The stationary point of F on M (φ = z³) with z_ij = (y_i/|S_i|)^{1/3} on ``support`` S and 0 off it.

    θ keeps ``theta``'s component ⊥ span{x_i} (like :func:`global_optimum`); with a full support it *is* the
    global optimum. Off a full support it is stationary but not optimal (the block comment above).
    """
    c = _cube_levels(X, y, support)
    Z = torch.where(support, c[:, None].expand_as(support), torch.zeros((), dtype=X.dtype))
    return manifold.from_preactivations(Z, X, theta)


def cube_stationary_value(X, y, support) -> float:
    """F at :func:`cube_stationary_point`: 9 Σ_i ‖x_i‖² |S_i| c_i⁴ (equal to :func:`F_star` for a full support)."""
    c = _cube_levels(X, y, support)
    return float(9 * ((X**2).sum(1) * support.sum(1).to(X.dtype) * c**4).sum())


def cube_multipliers(X, y, support) -> torch.Tensor:
    """The multipliers λ_i = 12‖x_i‖²c_i at :func:`cube_stationary_point` (∇F = Jᵀλ there).

    λ_i is also the sensitivity of the stationary value to the label: moving one zero pre-activation to
    z_ij = t (along M) changes F by −λ_i t³ + O(t⁴), so F decreases for t λ_i > 0 — at third order only,
    which the Hessian (zero in that direction) cannot see.
    """
    return 12 * (X**2).sum(1) * _cube_levels(X, y, support)


def cube_slow_velocity(theta, X, y, support) -> torch.Tensor:
    """Predicted dz_ij/dt of the flow dθ/dt = −grad_M F for the small pre-activations (off ``support``) near
    :func:`cube_stationary_point` (n × m; zero on the support).

    In pre-activation coordinates the Euclidean flow is dz_{:,j}/dt = −K ∂F/∂z_{:,j} (K = XXᵀ). The entries on the
    support relax fast; the small ones T_j of neuron j move slowly with the Schur complement of the metric,
    dz_{T,j}/dt = 3 ((K⁻¹)_{TT})⁻¹ (λ_T z_{T,j}²), to leading order. So a small z_ij < 0 creeps up to 0 like
    −1/(Ct) and never crosses it (the run converges to the non-optimal stationary point), and a small z_ij > 0
    grows away from 0 (it escapes, slowly).
    """
    Z = twolayer.preactivations(theta, X)
    lam = cube_multipliers(X, y, support)
    Kinv = torch.linalg.inv(X @ X.T)
    out = torch.zeros_like(Z)
    for j in range(Z.shape[1]):
        T = torch.nonzero(~support[:, j]).flatten()
        if T.numel():
            out[T, j] = 3 * torch.linalg.solve(Kinv[T][:, T], lam[T] * Z[T, j] ** 2)
    return out
