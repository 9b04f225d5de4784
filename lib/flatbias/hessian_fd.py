"""The Riemannian gradient and Hessian of F on M against differences of F along the retraction (chapter 03).

At θ ∈ M and a unit tangent v, the retraction R is second order, so
(F(R(θ+tv)) − 2F(θ) + F(R(θ−tv)))/t² → ⟨v, Hess_M F[v]⟩ and (F(R(θ+tv)) − F(R(θ−tv)))/(2t) → ⟨grad_M F, v⟩,
both with error O(t²). :func:`probe_point` measures both errors and, as guards, compares the package's closed forms
(``riemannian.hess_vec``, ``hess_matrix``, ``grad``, ``multipliers``) with autograd.
"""

from __future__ import annotations

import torch

from . import manifold, riemannian, twolayer

GUARDS = ("hess", "matrix", "grad", "lam", "tangent", "on_M")
#: torch's default CPU least-squares driver (MKL's gelsy) is not deterministic: the same call in one process on
#: one thread differs in the last bits from run to run; the SVD driver gelsd is (tests/test_landscape.py)
LSTSQ_DRIVER = "gelsd"


def lagrangian_hessian(theta: torch.Tensor, X: torch.Tensor, act, lam: torch.Tensor) -> torch.Tensor:
    """Dense ∇²(F − λᵀc) at θ with λ frozen (autograd; O((md)²) memory)."""
    m, d = theta.shape

    def lagr(t):
        return twolayer.sharpness(t.reshape(m, d), X, act) - lam @ twolayer.forward(t.reshape(m, d), X, act)

    return torch.func.hessian(lagr)(theta.reshape(-1))


def probe_point(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act, gen: torch.Generator,
                directions: int, t: float, guard: dict) -> list[tuple]:
    """At θ ∈ M, for ``directions`` random unit tangents v: (⟨v, Hess v⟩, |fd2 − ⟨v, Hess v⟩| / ‖Hess‖₂,
    |fd1 − ⟨grad, v⟩| / ‖∇F‖). Updates ``guard`` (keys :data:`GUARDS`) with the largest errors of the closed
    forms against autograd."""
    m, d = theta.shape
    PT = manifold.tangent_projector(theta, X, act)
    J = twolayer.jacobian(theta, X, act)
    lam = riemannian.multipliers(theta, X, act)
    H = PT @ lagrangian_hessian(theta, X, act, lam) @ PT
    B = riemannian.tangent_basis(theta, X, act)
    HB = B @ riemannian.hess_matrix(theta, X, act) @ B.T
    H_norm = float(torch.linalg.eigvalsh(H).abs().max())
    th = theta.clone().requires_grad_(True)
    eg = torch.autograd.grad(twolayer.sharpness(th, X, act), th)[0].reshape(-1)
    g = riemannian.grad(theta, X, act)
    guard["grad"] = max(guard["grad"], float((g.reshape(-1) - PT @ eg).norm() / eg.norm()))
    lam_ls = torch.linalg.lstsq(J.T, eg[:, None], driver=LSTSQ_DRIVER).solution[:, 0]
    guard["lam"] = max(guard["lam"], float((lam - lam_ls).norm() / lam.norm()))

    def F(p):
        return float(twolayer.sharpness(p, X, act))

    out = []
    for _ in range(directions):
        v = manifold.project_tangent(theta, torch.randn(m, d, generator=gen), X, act)
        v = v / v.norm()
        vf = v.reshape(-1)
        Hv = riemannian.hess_vec(theta, v, X, act).reshape(-1)
        quad = float(vf @ Hv)
        guard["hess"] = max(guard["hess"], float((Hv - H @ vf).norm() / (H @ vf).norm()))
        guard["matrix"] = max(guard["matrix"], abs(float(vf @ HB @ vf) - quad) / H_norm)
        guard["tangent"] = max(guard["tangent"], float((J @ vf).norm() / J.norm()))
        plus = manifold.retract(theta + t * v, X, y, act)
        minus = manifold.retract(theta - t * v, X, y, act)
        guard["on_M"] = max(guard["on_M"], *(float(manifold.constraints(p, X, y, act).abs().max())
                                             for p in (theta, plus, minus)))
        fd2 = (F(plus) - 2 * F(theta) + F(minus)) / t**2
        fd1 = (F(plus) - F(minus)) / (2 * t)
        out.append((quad, abs(fd2 - quad) / H_norm, abs(fd1 - float((g * v).sum())) / float(eg.norm())))
    return out
