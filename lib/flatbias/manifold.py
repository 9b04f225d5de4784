"""The zero-loss manifold M = {θ : f_θ(x_i) = y_i for all i} of paper 1 (SPEC §A.2, §A.6).

Constraints c_i(θ) = f_θ(x_i) − y_i with Jacobian J (n × md). M is a smooth (md − n)-dimensional
submanifold wherever J has rank n, which holds when the x_i are linearly independent and φ' > 0.
The tangent space is T_θM = ker J with orthogonal projector P_T = I − Jᵀ(JJᵀ)⁻¹J, and points are
brought onto M by a Newton / minimum-norm retraction θ ← θ − Jᵀ(JJᵀ)⁻¹c(θ) (second order).
"""

from __future__ import annotations

import math

import torch

from . import twolayer
from . import validate as vd
from .activations import Activation


class RankDeficientError(ValueError):
    """The constraint Jacobian has rank < n: M is not a manifold of dimension md − n here."""


class RetractionError(RuntimeError):
    """Newton's method did not bring θ onto M to the requested tolerance."""


def constraints(theta, X, y, act: str | Activation, a=None) -> torch.Tensor:
    """c(θ) = (f_θ(x_i) − y_i)_i."""
    return twolayer._forward(theta, X, twolayer.check_inputs(theta, X, act, a, y), a) - y


def check_data(X: torch.Tensor, rtol: float = 1e-10) -> None:
    """Paper 1 (Assumption 3.2) needs linearly independent x_i, hence n ≤ d: raise if they are not."""
    vd.tensor("X", X, 2, "(n, d)")
    vd.nonnegative("rtol", rtol)
    n, d = X.shape
    s = torch.linalg.svdvals(X)
    rank = int((s > rtol * s[0]).sum()) if s.numel() else 0
    if rank < n:
        raise RankDeficientError(
            f"the data points are not linearly independent (rank X = {rank} < n = {n}, d = {d}): paper 1's "
            "zero-loss manifold analysis needs n ≤ d and independent x_i (Assumption 3.2). Draw new data or use n ≤ d.")


def check_gram(G: torch.Tensor, rtol: float = 1e-14) -> torch.Tensor:
    """Return G = JJᵀ unchanged if it is numerically positive definite; else a clear :class:`RankDeficientError`."""
    vd.tensor("G", G, 2, "(n, n)", finite=False)
    vd.shape("G", G, (G.shape[0], G.shape[0]), "(square)")
    return _check_gram(G, vd.nonnegative("rtol", rtol))


def _check_gram(G: torch.Tensor, rtol: float) -> torch.Tensor:
    try:  # no extra work on the success path: NaN/inf entries are diagnosed when eigvalsh fails or returns NaN
        ev = torch.linalg.eigvalsh(G)
    except torch.linalg.LinAlgError:
        ev = None
    if ev is not None and G.dtype == torch.float64 and ev.numel():
        # the test below on one Python list (exact in float64): all eigenvalues finite and ev[0] > rtol·max(ev[-1], ·)
        evl = ev.tolist()
        if all(map(math.isfinite, evl)) and not evl[0] <= rtol * max(evl[-1], 1e-300):
            return G
    elif not (ev is None or not bool(torch.isfinite(ev).all()) or ev[0] <= rtol * max(float(ev[-1]), 1e-300)):
        return G
    if not bool(torch.isfinite(G).all()):
        raise RankDeficientError(
            f"JJᵀ (n = {G.shape[0]}) has NaN or inf entries: θ left the region where φ' is finite (a step "
            "that was too large, or weights that overflow), so M is not a smooth manifold there")
    lo, hi = (float("nan"), float("nan")) if ev is None else (float(ev[0]), float(ev[-1]))
    raise RankDeficientError(
        f"the constraint Jacobian J has (numerically) rank < n = {G.shape[0]} (eigenvalues of JJᵀ from "
        f"{lo:.3g} to {hi:.3g}): the data are not linearly independent, or φ'(θ_jᵀx_i) "
        "vanishes (e.g. the cube activation at z = 0). M is not a smooth manifold at this θ.")


def _gram(J: torch.Tensor, rtol: float) -> torch.Tensor:
    return _check_gram(J @ J.T, rtol)


def project_tangent(theta, v, X, act: str | Activation, a=None, rtol: float = 1e-14) -> torch.Tensor:
    """P_T v = v − Jᵀ(JJᵀ)⁻¹J v for v of θ's shape (m × d)."""
    act = twolayer.check_inputs(theta, X, act, a)
    vd.tensor("v", v)
    vd.shape("v", v, tuple(theta.shape), "(the shape of θ)")
    J = twolayer._jacobian(theta, X, act, a)
    G = _gram(J, vd.nonnegative("rtol", rtol))
    w = v.reshape(-1)
    return (w - J.T @ torch.linalg.solve(G, J @ w)).reshape(theta.shape)


def tangent_projector(theta, X, act: str | Activation, a=None, rtol: float = 1e-14) -> torch.Tensor:
    """The dense projector P_T = I − Jᵀ(JJᵀ)⁻¹J onto T_θM (md × md); for tests and small problems."""
    J = twolayer._jacobian(theta, X, twolayer.check_inputs(theta, X, act, a), a)
    G = _gram(J, vd.nonnegative("rtol", rtol))
    eye = torch.eye(J.shape[1], dtype=J.dtype, device=J.device)
    return eye - J.T @ torch.linalg.solve(G, J)


def retract(theta, X, y, act: str | Activation, a=None, tol: float = 1e-12, max_iter: int = 60,
            rtol: float = 1e-14) -> torch.Tensor:
    """Bring θ onto M by damped Newton / minimum-norm steps until max_i |c_i| ≤ tol.

    Each step is Δ = −Jᵀ(JJᵀ)⁻¹c (the smallest change that zeroes the linearized constraints); the step is
    halved while it would increase ‖c‖. Raises :class:`RetractionError` if the tolerance is not met
    in ``max_iter`` steps and :class:`RankDeficientError` if J loses rank on the way.
    """
    act = twolayer.check_inputs(theta, X, act, a, y)
    tol, max_iter = vd.positive("tol", tol), vd.integer("max_iter", max_iter, 0)
    return _retract(theta, X, y, act, a, tol, max_iter, vd.nonnegative("rtol", rtol))


def _retract(theta, X, y, act: Activation, a=None, tol: float = 1e-12, max_iter: int = 60,
             rtol: float = 1e-14) -> torch.Tensor:
    return _retract_z(theta, X, y, act, twolayer._a(theta, a), tol, max_iter, rtol, ones_a=a is None)[0]


def _abs_max(c: torch.Tensor) -> float:
    """float(c.abs().max()) for a 1-d c, read from one Python list (abs and max are exact; NaN propagates)."""
    if c.dim() != 1 or not c.numel() or not c.is_floating_point():
        return float(c.abs().max())
    cl = c.tolist()
    return math.nan if any(map(math.isnan, cl)) else max(map(abs, cl))


def _norm(x: torch.Tensor) -> torch.Tensor:
    """x.norm() (2-norm of all entries): Tensor.norm calls torch.linalg.vector_norm(x, 2) for strided CPU/CUDA
    tensors after a Python-level dispatch; call it directly there."""
    if x.layout == torch.strided and x.device.type in ("cpu", "cuda"):
        return torch.linalg.vector_norm(x)
    return x.norm()


def _retract_z(theta, X, y, act: Activation, a: torch.Tensor, tol: float = 1e-12, max_iter: int = 60,
               rtol: float = 1e-14, copy: bool = True, ones_a: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`_retract` with the second-layer weights ``a`` as a tensor (never None); returns θ on M and Z = Xθᵀ
    there. ``copy=False``: θ is a temporary that may be returned as is (no clone). ``ones_a``: ``a`` is all ones,
    so φ'(Z)·a is φ'(Z) exactly (x·1 = x) and the product is skipped."""
    if copy:
        theta = theta.clone()
    Z = X @ theta.T  # twolayer._z
    c = act.phi(Z) @ a - y  # twolayer._forward − y
    norm0 = None  # ‖c‖, carried over from the accepted Newton step
    for _ in range(max_iter):
        err = _abs_max(c)
        if err <= tol:
            return theta, Z
        D = act.d1(Z) if ones_a else act.d1(Z) * a  # twolayer._jacobian at θ (Z = Xθᵀ)
        J = (D[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)
        step = (J.T @ torch.linalg.solve(_gram(J, rtol), c)).reshape(theta.shape)
        t = 1.0
        if norm0 is None:
            norm0 = float(_norm(c))
        for _ in range(40):
            cand = theta - step if t == 1.0 else theta - t * step  # 1.0·step is step exactly
            Z_new = X @ cand.T
            c_new = act.phi(Z_new) @ a - y
            norm = float(_norm(c_new))
            if norm < norm0:  # never true when c_new has a NaN or inf entry: its norm is then NaN or inf
                break
            t /= 2
        else:
            raise RetractionError(f"retraction stalled: no step size decreases ‖c‖ = {norm0:.3g}; start closer to M "
                                  "(smaller initial weights) or check that the labels y_i/m lie in the range of φ")
        theta, c, Z, norm0 = cand, c_new, Z_new, norm
    err = _abs_max(c)
    if err <= tol:
        return theta, Z
    raise RetractionError(f"retraction did not converge: max |f(x_i) − y_i| = {err:.3g} > tol = {tol:g} after "
                          f"{max_iter} Newton steps; raise max_iter or start closer to M")


def random_point(X, y, act: str | Activation, m: int, generator: torch.Generator, a=None, init_std: float | None = None,
                 tol: float = 1e-12) -> torch.Tensor:
    """A random point of M: θ_j ~ N(0, init_std² I) (default init_std = 1/√d), then :func:`retract`."""
    m = vd.integer("m", m, 1)
    vd.generator("generator", generator)
    std = None if init_std is None else vd.positive("init_std", init_std)
    tol = vd.positive("tol", tol)
    d = vd.tensor("X", X, 2, "(n, d)").shape[1]
    act = twolayer.check_inputs(torch.zeros(m, d, dtype=X.dtype, device=X.device), X, act, a, y)
    check_data(X)
    std = d**-0.5 if std is None else std
    theta0 = std * torch.randn(m, d, generator=generator, dtype=X.dtype).to(X.device)
    return _retract(theta0, X, y, act, a, tol=tol)


def from_preactivations(Z, X, theta=None) -> torch.Tensor:
    """The θ (m × d) with θ_jᵀx_i = Z_ij for all i, j, keeping ``theta``'s component ⊥ span{x_i}.

    θ_j = P_⊥θ_j + Xᵀ(XXᵀ)⁻¹Z_{:,j} (with ``theta`` None the component ⊥ span{x_i} is 0: the minimum-norm
    solution). Needs linearly independent x_i (n ≤ d). Whether θ lies on M depends on Z only: a point of M
    with prescribed pre-activations (e.g. all positive) needs no retraction, which could change their signs.
    """
    vd.tensor("X", X, 2, "(n, d)")
    vd.tensor("Z", Z, 2, "(n, m)")
    vd.shape("Z", Z, (X.shape[0], Z.shape[1]), "(n, m) with X's n rows")
    check_data(X)
    K = X @ X.T
    base = torch.linalg.solve(K, Z).T @ X
    if theta is None:
        return base
    vd.tensor("theta", theta, 2, "(m, d)")
    vd.shape("theta", theta, (Z.shape[1], X.shape[1]), "(m, d)")
    return theta - torch.linalg.solve(K, X @ theta.T).T @ X + base
