"""Where Riemannian descent on F stalls for the cube activation φ(z) = z³, taken apart (chapter 02).

A run that stalls has some small pre-activations z_ij. :func:`support` snaps them to 0 (the support S is the rest),
``optimum.cube_stationary_point`` gives the exactly stationary point of M with that support, and :func:`examine`
measures there: the Riemannian gradient, the spectrum of the Riemannian Hessian (checked against the autograd Hessian
of the Lagrangian F − λᵀc in the same tangent basis), the multipliers against their closed form, and the third-order
fall of F when one zero z_ij moves to ±t along M (ΔF ≈ −λ_i t³).
"""

from __future__ import annotations

import torch

from . import manifold, optimum, riemannian, twolayer

ACT = "cube"


def lagrangian_hessian(theta: torch.Tensor, X: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Dense ∇²(F − λᵀc) at θ, λ frozen (autograd), in the orthonormal tangent basis of θ."""
    m, d = theta.shape

    def lagr(t):
        return twolayer.sharpness(t.reshape(m, d), X, ACT) - lam @ twolayer.forward(t.reshape(m, d), X, ACT)

    B = riemannian.tangent_basis(theta, X, ACT)
    return B.T @ torch.func.hessian(lagr)(theta.reshape(-1)) @ B


def support(theta: torch.Tensor, X: torch.Tensor, snap_tol: float) -> torch.Tensor | None:
    """The support |z_ij| ≥ ``snap_tol`` of θ's pre-activations, or None when no z_ij is small."""
    Z = twolayer.preactivations(theta, X)
    small = Z.abs() < snap_tol
    return None if not bool(small.any()) else ~small


def examine(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, S: torch.Tensor, t3: float) -> dict:
    """At the stationary point θ with support S: F_S (closed form) and F0 = F(θ), the number of zeros, the Hessian's
    eigenvalues ``ev``, ‖grad_M F‖/‖∇F‖, the multipliers' and the Hessian's errors against closed form and autograd,
    the worst |ΔF/(−λ_i t³) − 1| over the zeros and ±t, and max |f(x_i) − y_i|."""
    n, m = S.shape
    lam = optimum.cube_multipliers(X, y, S)
    H = riemannian.hess_matrix(theta, X, ACT)
    ev = torch.linalg.eigvalsh(H)
    F0 = float(twolayer.sharpness(theta, X, ACT))
    third = []
    for i, j in torch.nonzero(~S).tolist():
        e = torch.eye(n, dtype=X.dtype)[:, i:i + 1] * torch.eye(m, dtype=X.dtype)[j]
        v = manifold.from_preactivations(e, X)
        for s in (t3, -t3):
            th_t = manifold.retract(theta + s * v, X, y, ACT)
            third.append((float(twolayer.sharpness(th_t, X, ACT)) - F0) / (-float(lam[i]) * s**3))
    return dict(
        F_S=optimum.cube_stationary_value(X, y, S), F0=F0, zeros=int((~S).sum()), ev=ev,
        grad=float(riemannian.grad(theta, X, ACT).norm() / riemannian.euclidean_grad(theta, X, ACT).norm()),
        lam_err=float((riemannian.multipliers(theta, X, ACT) / lam - 1).abs().max()),
        hess_err=float((H - lagrangian_hessian(theta, X, lam)).abs().max() / ev[-1]),
        third=max(abs(r - 1) for r in third),
        on_M=float(manifold.constraints(theta, X, y, ACT).abs().max()))
