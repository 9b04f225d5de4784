"""The zero-loss manifold M = {θ : f_θ(x_i) = y_i for all i} of paper 1 (SPEC §A.2, §A.6).

Constraints c_i(θ) = f_θ(x_i) − y_i with Jacobian J (n × md). M is a smooth (md − n)-dimensional
submanifold wherever J has rank n, which holds when the x_i are linearly independent and φ' > 0.
The tangent space is T_θM = ker J with orthogonal projector P_T = I − Jᵀ(JJᵀ)⁻¹J, and points are
brought onto M by a Newton / minimum-norm retraction θ ← θ − Jᵀ(JJᵀ)⁻¹c(θ) (second order).
"""

from __future__ import annotations

import torch

from . import twolayer
from .activations import Activation


class RankDeficientError(ValueError):
    """The constraint Jacobian has rank < n: M is not a manifold of dimension md − n here."""


class RetractionError(RuntimeError):
    """Newton's method did not bring θ onto M to the requested tolerance."""


def constraints(theta, X, y, act: str | Activation, a=None) -> torch.Tensor:
    """c(θ) = (f_θ(x_i) − y_i)_i."""
    return twolayer.forward(theta, X, act, a) - y


def check_data(X: torch.Tensor, rtol: float = 1e-10) -> None:
    """Paper 1 (Assumption 3.2) needs linearly independent x_i, hence n ≤ d: raise if they are not."""
    n, d = X.shape
    s = torch.linalg.svdvals(X)
    rank = int((s > rtol * s[0]).sum()) if s.numel() else 0
    if rank < n:
        raise RankDeficientError(
            f"the data points are not linearly independent (rank X = {rank} < n = {n}, d = {d}): paper 1's "
            "zero-loss manifold analysis needs n ≤ d and independent x_i (Assumption 3.2). Draw new data or use n ≤ d.")


def check_gram(G: torch.Tensor, rtol: float = 1e-14) -> torch.Tensor:
    """Return G = JJᵀ unchanged if it is numerically positive definite; else a clear :class:`RankDeficientError`."""
    ev = torch.linalg.eigvalsh(G)
    if not bool(torch.isfinite(ev).all()) or ev[0] <= rtol * max(float(ev[-1]), 1e-300):
        raise RankDeficientError(
            f"the constraint Jacobian J has (numerically) rank < n = {G.shape[0]} (eigenvalues of JJᵀ from "
            f"{float(ev[0]):.3g} to {float(ev[-1]):.3g}): the data are not linearly independent, or φ'(θ_jᵀx_i) "
            "vanishes (e.g. the cube activation at z = 0). M is not a smooth manifold at this θ.")
    return G


def _gram(J: torch.Tensor, rtol: float) -> torch.Tensor:
    return check_gram(J @ J.T, rtol)


def project_tangent(theta, v, X, act: str | Activation, a=None, rtol: float = 1e-14) -> torch.Tensor:
    """P_T v = v − Jᵀ(JJᵀ)⁻¹J v for v of θ's shape (m × d)."""
    J = twolayer.jacobian(theta, X, act, a)
    G = _gram(J, rtol)
    w = v.reshape(-1)
    return (w - J.T @ torch.linalg.solve(G, J @ w)).reshape(theta.shape)


def tangent_projector(theta, X, act: str | Activation, a=None, rtol: float = 1e-14) -> torch.Tensor:
    """The dense projector P_T = I − Jᵀ(JJᵀ)⁻¹J onto T_θM (md × md); for tests and small problems."""
    J = twolayer.jacobian(theta, X, act, a)
    G = _gram(J, rtol)
    eye = torch.eye(J.shape[1], dtype=J.dtype, device=J.device)
    return eye - J.T @ torch.linalg.solve(G, J)


def retract(theta, X, y, act: str | Activation, a=None, tol: float = 1e-12, max_iter: int = 60,
            rtol: float = 1e-14) -> torch.Tensor:
    """Bring θ onto M by damped Newton / minimum-norm steps until max_i |c_i| ≤ tol.

    Each step is Δ = −Jᵀ(JJᵀ)⁻¹c (the smallest change that zeroes the linearized constraints); the step is
    halved while it would increase ‖c‖. Raises :class:`RetractionError` if the tolerance is not met
    in ``max_iter`` steps and :class:`RankDeficientError` if J loses rank on the way.
    """
    theta = theta.clone()
    c = constraints(theta, X, y, act, a)
    for _ in range(max_iter):
        err = float(c.abs().max())
        if err <= tol:
            return theta
        J = twolayer.jacobian(theta, X, act, a)
        step = (J.T @ torch.linalg.solve(_gram(J, rtol), c)).reshape(theta.shape)
        t, norm0 = 1.0, float(c.norm())
        for _ in range(40):
            cand = theta - t * step
            c_new = constraints(cand, X, y, act, a)
            if bool(torch.isfinite(c_new).all()) and float(c_new.norm()) < norm0:
                break
            t /= 2
        else:
            raise RetractionError(f"retraction stalled: no step size decreases ‖c‖ = {norm0:.3g}; start closer to M "
                                  "(smaller initial weights) or check that the labels y_i/m lie in the range of φ")
        theta, c = cand, c_new
    err = float(c.abs().max())
    if err <= tol:
        return theta
    raise RetractionError(f"retraction did not converge: max |f(x_i) − y_i| = {err:.3g} > tol = {tol:g} after "
                          f"{max_iter} Newton steps; raise max_iter or start closer to M")


def random_point(X, y, act: str | Activation, m: int, generator: torch.Generator, a=None, init_std: float | None = None,
                 tol: float = 1e-12) -> torch.Tensor:
    """A random point of M: θ_j ~ N(0, init_std² I) (default init_std = 1/√d), then :func:`retract`."""
    check_data(X)
    d = X.shape[1]
    std = d**-0.5 if init_std is None else init_std
    theta0 = std * torch.randn(m, d, generator=generator, dtype=X.dtype).to(X.device)
    return retract(theta0, X, y, act, a, tol=tol)
