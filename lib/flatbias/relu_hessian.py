"""Exact per-sample Hessians of paper 2's two-layer ReLU net, in closed form (SPEC §B.2, §B.8(b)).

Per-sample loss ℓ_i = (f_i − y_i)² (the authors' ``F.mse_loss`` on one point), residual r_i = f_i − y_i,
per-sample gradient g_i = ∇_θ f(x_i), activation pattern a_ik = 1[z_ik > 0], x̃_i = (x_i, 1):

    H_i = ∇²ℓ_i = 2 g_i g_iᵀ + 2 r_i ∇²f_i,
    ∇²f_i = Σ_k a_ik (u_k ṽ_ikᵀ + ṽ_ik u_kᵀ)

with u_k the coordinate of W2_k and ṽ_ik the vector x̃_i placed at unit k's row of [W1 | b1]: a ReLU
net is piecewise linear in each layer, so only the W2–(W1, b1) cross terms of the same unit survive.
With K = X̃X̃ᵀ, Φ = ReLU(Z), A = (a_ik):

    g_iᵀg_j        = (ΦΦᵀ)_ij + K_ij (A diag(W2²) Aᵀ)_ij
    g_iᵀ∇²f_j g_i  = 2 K_ij (Φ diag(W2) Aᵀ)_ij =: Q_ij
    tr(∇²f_i∇²f_j) = 2 K_ij (AAᵀ)_ij           =: T_ij
    tr(H_iH_j)     = 4 (g_iᵀg_j)² + 4 r_j Q_ij + 4 r_i Q_ji + 4 r_i r_j T_ij

so the n×n matrix of tr(H_iH_j) costs O(n²(h+d)) instead of n per-sample P×P Hessians. The coherence
is S_ij = sqrt(tr(H_iH_j)), σ = λ_1(S)/max_i λ_1(H_i) (SPEC §B.2). Off the zero-loss set H_i is not PSD
and tr(H_iH_j) can be negative; the authors' code then takes sqrt of a negative number and its
``safe_eigh`` replaces the NaN by 0, so we use S_ij = sqrt(max(tr(H_iH_j), 0)) and count those entries.

λ_1(H_i) in closed form: on span{u_k, ṽ_ik/‖x̃_i‖ : a_ik = 1} (dimension 2m_i), 2 r_i ∇²f_i has
eigenvalues ±c_i, c_i = 2 r_i ‖x̃_i‖ (multiplicity m_i each), and 2g_ig_iᵀ couples one direction of each
sign: λ_1(H_i) = max(0, p_i + q_i + sqrt((c_i + p_i − q_i)² + 4 p_i q_i), |c_i| [m_i ≥ 2]) with
p_i, q_i = Σ_k a_ik (φ_ik ± W2_k‖x̃_i‖)²/2.

Full-batch loss L = (1/n) Σ_i ℓ_i (MSELoss): H = (1/n) Σ_i H_i, tr H = (2/n) Σ_i ‖g_i‖² (tr ∇²f_i = 0),
λ_max(H) by Lanczos (``scipy.sparse.linalg.eigsh``) on exact Hessian-vector products.

Every function that reads a flat θ requires the hidden width ``h`` as a keyword: a flat θ's length fits
several (d, h), so data X alone cannot tell a θ built for another input width (:mod:`flatbias.relu_net`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.sparse.linalg import LinearOperator, eigsh

from . import relu_net
from . import validate as vd


@dataclass
class Parts:
    """The pieces every closed form uses (n data points, h units)."""

    X: torch.Tensor      # (n, d)
    Xt: torch.Tensor     # x̃ = (x, 1), (n, d+1)
    A: torch.Tensor      # activation pattern 1[z > 0], (n, h)
    Phi: torch.Tensor    # ReLU(z), (n, h)
    W2: torch.Tensor     # (h,)
    r: torch.Tensor      # residuals f − y, (n,)


def parts(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> Parts:
    """The :class:`Parts` at θ (flat, [W1, b1, W2], ``h`` hidden units) for data X (n, d) and labels y (n,)."""
    relu_net.check_inputs(theta, X, y, relu_net._width(h))
    return _parts(theta, X, y)


def _parts(theta, X, y) -> Parts:
    Z = relu_net._z(theta, X)
    _, _, W2 = relu_net._unflatten(theta, X.shape[1])
    A = (Z > 0).to(X.dtype)
    Phi = torch.relu(Z)
    Xt = torch.cat([X, torch.ones(X.shape[0], 1, dtype=X.dtype)], 1)
    return Parts(X, Xt, A, Phi, W2, Phi @ W2 - y)


def per_sample_gradients(theta: torch.Tensor, X: torch.Tensor, *, h: int) -> torch.Tensor:
    """G (n × P), row i = ∇_θ f(x_i) in the layout [W1, b1, W2]: W2_k a_ik x_i, W2_k a_ik, φ_ik."""
    relu_net.check_inputs(theta, X, h=relu_net._width(h))
    return _per_sample_gradients(theta, X)


def _per_sample_gradients(theta, X):
    Z = relu_net._z(theta, X)
    _, _, W2 = relu_net._unflatten(theta, X.shape[1])
    D = (Z > 0).to(X.dtype) * W2  # (n, h)
    return torch.cat([(D[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1), D, torch.relu(Z)], 1)


def gram(p: Parts) -> torch.Tensor:
    """g_iᵀg_j = (ΦΦᵀ)_ij + K_ij (A diag(W2²) Aᵀ)_ij."""
    if not isinstance(p, Parts):
        raise vd.ArgumentTypeError(
            f"p must be the Parts from relu_hessian.parts(θ, X, y, h=h); got {type(p).__name__}")
    K = p.Xt @ p.Xt.T
    return p.Phi @ p.Phi.T + K * ((p.A * p.W2**2) @ p.A.T)


def trace_products(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> torch.Tensor:
    """The n×n matrix tr(H_iH_j) of the per-sample Hessians of ℓ_i = (f_i − y_i)², residual terms included."""
    return _trace_products(parts(theta, X, y, h=h))


def _trace_products(p: Parts) -> torch.Tensor:
    K = p.Xt @ p.Xt.T
    Gm = p.Phi @ p.Phi.T + K * ((p.A * p.W2**2) @ p.A.T)
    Q = 2 * K * ((p.Phi * p.W2) @ p.A.T)   # Q_ij = g_iᵀ ∇²f_j g_i
    T = 2 * K * (p.A @ p.A.T)               # T_ij = tr(∇²f_i ∇²f_j)
    r = p.r
    return 4 * Gm**2 + 4 * r[None, :] * Q + 4 * r[:, None] * Q.T + 4 * (r[:, None] * r[None, :]) * T


def per_sample_lambda_max(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> torch.Tensor:
    """λ_1(H_i) for every i in closed form (see the module docstring), shape (n,)."""
    return _per_sample_lambda_max(parts(theta, X, y, h=h))


def _per_sample_lambda_max(p: Parts) -> torch.Tensor:
    norm_xt = p.Xt.norm(dim=1, keepdim=True)           # ‖x̃_i‖
    plus = p.A * (p.Phi + p.W2 * norm_xt) ** 2 / 2
    minus = p.A * (p.Phi - p.W2 * norm_xt) ** 2 / 2
    P_, Q_ = plus.sum(1), minus.sum(1)
    m = p.A.sum(1)
    c = 2 * p.r * norm_xt[:, 0] * (m > 0)
    top = P_ + Q_ + torch.sqrt((c + P_ - Q_) ** 2 + 4 * P_ * Q_)
    lam = torch.maximum(top, c.abs() * (m >= 2))
    return torch.clamp(lam, min=0.0)


@dataclass
class Coherence:
    sigma: float            # λ_1(S) / max_i λ_1(H_i)
    lambda_S: float         # λ_1(S)
    max_lambda_Hi: float    # max_i λ_1(H_i)
    S: torch.Tensor         # n × n
    negative_entries: int   # pairs with tr(H_iH_j) < 0 (set to 0 in S, as the authors' code does)


def coherence(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> Coherence:
    """Exact coherence of the per-sample Hessians (SPEC §B.2), residual terms included. ``h`` is the width θ was
    built with (required: a θ built for another input width could otherwise fit X by accident)."""
    p = parts(theta, X, y, h=h)
    TT = _trace_products(p)
    neg = int((TT < 0).sum())
    S = torch.sqrt(torch.clamp(TT, min=0.0))
    lam_S = float(torch.linalg.eigvalsh(S)[-1])
    lam_H = float(_per_sample_lambda_max(p).max())
    if lam_H <= 0:
        raise vd.InvalidArgumentError(
            "every per-sample Hessian is zero (no active unit on any point): the coherence is undefined")
    return Coherence(lam_S / lam_H, lam_S, lam_H, S, neg)


def full_hessian_trace(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor | None = None, *, h: int) -> float:
    """tr ∇²L for L = mean_i (f_i − y_i)²: (2/n) Σ_i ‖g_i‖² (tr ∇²f_i = 0, so residuals do not enter)."""
    relu_net.check_inputs(theta, X, y, relu_net._width(h))
    p = _parts(theta, X, torch.zeros(X.shape[0], dtype=X.dtype) if y is None else y)
    sq = (p.Phi**2).sum(1) + (p.Xt**2).sum(1) * (p.A * p.W2**2).sum(1)
    return float(2 * sq.mean())


def full_hessian_hvp(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int):
    """v ↦ ∇²L v for L = mean_i (f_i − y_i)², exact: (2/n)[Gᵀ(Gv) + Σ_i r_i ∇²f_i v]."""
    p = parts(theta, X, y, h=h)
    n, d = X.shape
    G = _per_sample_gradients(theta, X)
    h = p.W2.numel()
    Ar = p.A * p.r[:, None]          # (n, h)
    ArXt = Ar.T @ p.Xt               # (h, d+1): Σ_i r_i a_ik x̃_i

    def hvp(v: torch.Tensor) -> torch.Tensor:
        if not isinstance(v, torch.Tensor) or v.shape != theta.shape:
            raise vd.InvalidArgumentError(
                f"v must be a tensor of θ's shape {vd.fmt_shape(theta.shape)}; got "
                f"{vd.fmt_shape(v.shape) if isinstance(v, torch.Tensor) else type(v)}")
        Vt = torch.cat([v[: h * d].reshape(h, d), v[h * d: h * d + h, None]], 1)  # [V1 | vb]
        v2 = v[h * d + h:]
        gn = G.T @ (G @ v)
        w2_part = (Ar * (p.Xt @ Vt.T)).sum(0)       # Σ_i r_i a_ik (Ṽ_k · x̃_i)
        w1b_part = v2[:, None] * ArXt               # v2_k Σ_i r_i a_ik x̃_i
        res = torch.cat([w1b_part[:, :d].reshape(-1), w1b_part[:, d], w2_part])
        return 2.0 / n * (gn + res)

    return hvp


def full_hessian_lambda_max(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, tol: float = 1e-10, *,
                            h: int) -> float:
    """Largest (algebraic) eigenvalue of ∇²L by Lanczos on exact Hessian-vector products (no dense eig)."""
    tol = vd.positive("tol", tol)
    hvp = full_hessian_hvp(theta, X, y, h=h)
    P = theta.numel()
    op = LinearOperator((P, P), dtype=np.float64,
                        matvec=lambda v: hvp(torch.from_numpy(np.asarray(v, dtype=np.float64).ravel()).to(theta.dtype))
                        .double().numpy())
    v0 = np.random.default_rng(0).standard_normal(P)
    return float(eigsh(op, k=1, which="LA", tol=tol, v0=v0, return_eigenvectors=False)[0])


def effective_rank(features: torch.Tensor | np.ndarray, threshold: float = 0.90) -> int:
    """Smallest k whose top-k principal components explain ≥ threshold of the variance of the hidden features
    (rows = data points), as the authors' ``effective_rank_pca`` (np.cov, rowvar=False)."""
    threshold = vd.probability("threshold", threshold, lo_open=True)
    F = vd.array("features", features, 2, "(n points, h features)")
    if F.shape[0] < 2:
        raise vd.InvalidArgumentError(f"features must have at least 2 rows (points) for a covariance; got "
                                      f"{vd.fmt_shape(F.shape)}")
    ev = np.linalg.eigvalsh(np.cov(F - F.mean(0), rowvar=False))[::-1]
    if ev.sum() <= 0:
        return 0  # every feature is constant on the data: no variance to explain
    return int(np.searchsorted(np.cumsum(ev / ev.sum()), threshold) + 1)


# ---- reference implementations (slow; tests and the benchmark) ---------------------------------------

def per_sample_hessian_autograd(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, h: int) -> torch.Tensor:
    """H_i = ∇²(f(x_i) − y_i)² by ``torch.func.hessian`` (P × P)."""
    _check_point(theta, x, y, h)
    return torch.func.hessian(lambda t: ((relu_net._forward(t, x[None, :]) - y) ** 2).sum())(theta)


def _check_point(theta, x, y, h) -> None:
    vd.tensor("x", x, 1, "(d,) one data point")
    relu_net.check_inputs(theta, x[None, :], h=relu_net._width(h), X_name="x")
    y = vd.as_tensor("y", y)
    vd.kind("y", y, "real")
    if y.numel() != 1:
        raise vd.InvalidArgumentError(f"y must be one label (a number); got shape {vd.fmt_shape(y.shape)}")
    vd.check_finite("y", y)


def per_sample_hessian_rows(theta: torch.Tensor, x: torch.Tensor, y: torch.Tensor, *, h: int) -> torch.Tensor:
    """The authors' method (``compute_full_hessian``): one ``autograd.grad`` call per parameter."""
    _check_point(theta, x, y, h)
    t = theta.detach().clone().requires_grad_(True)
    loss = ((relu_net._forward(t, x[None, :]) - y) ** 2).sum()
    (g,) = torch.autograd.grad(loss, t, create_graph=True)
    H = torch.zeros(t.numel(), t.numel(), dtype=t.dtype)
    for k in range(t.numel()):
        (row,) = torch.autograd.grad(g[k], t, retain_graph=True, allow_unused=True)
        if row is not None:
            H[k] = row.detach()
    return H


def sam_effective_gram(G: torch.Tensor, rho_over_alpha: float, c: float = 2.0) -> torch.Tensor:
    """Gram matrix of SAM's effective per-sample Hessians at an interpolating minimum (our reconstruction of
    paper 2's Thm 3.6, SPEC §B.6–B.7).

    Linearized SAM steps with K_i = H_i M, M = I + (ρ/α)H. With H_i = c g_ig_iᵀ, M^{1/2} K_i M^{-1/2} =
    c h_ih_iᵀ with h_i = M^{1/2} g_i, so SAM is exactly SGD on the rank-one family c h_ih_iᵀ, whose Gram is
    h_iᵀh_j = g_iᵀ M g_j = (G Gᵀ + (ρ/α)(c/n)(G Gᵀ)²)_ij.
    """
    vd.tensor("G", G, 2, "(n, P) per-sample gradients")
    rho_over_alpha = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    c = vd.positive("c", c)
    K = G @ G.T
    return K + rho_over_alpha * c / G.shape[0] * K @ K


def gram_factor(K: torch.Tensor) -> torch.Tensor:
    """Rows u_i with u_iᵀu_j = K_ij for a PSD Gram matrix K (eigendecomposition; small n only)."""
    vd.tensor("K", K, 2, "(n, n)")
    vd.shape("K", K, (K.shape[0], K.shape[0]), "(a square Gram matrix)")
    lam, V = torch.linalg.eigh(0.5 * (K + K.T))
    if float(lam[0]) < -1e-9 * max(1.0, float(lam[-1])):
        raise vd.InvalidArgumentError(
            f"K is not positive semidefinite (smallest eigenvalue {float(lam[0]):.3g})")
    return V * lam.clamp_min(0).sqrt()


def reference_errors(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, samples, *, h: int) -> dict:
    """Closed forms against dense autograd per-sample Hessians on ``samples`` (indices into X): the largest
    relative error of tr(H_i H_j) and of λ₁(H_i). Slow (one P × P Hessian per sample); for live checks."""
    relu_net.check_inputs(theta, X, y, relu_net._width(h))
    idx = list(samples)
    if not idx:
        raise vd.InvalidArgumentError("samples must name at least one row of X; got none")
    H = [per_sample_hessian_autograd(theta, X[i], y[i], h=h) for i in idx]
    T_ref = torch.tensor([[float((Hi * Hj).sum()) for Hj in H] for Hi in H], dtype=theta.dtype)
    T = trace_products(theta, X[idx], y[idx], h=h)
    lam_ref = torch.stack([torch.linalg.eigvalsh(Hi)[-1].clamp_min(0) for Hi in H])
    lam = per_sample_lambda_max(theta, X[idx], y[idx], h=h)
    return {"trHiHj": float(((T - T_ref).abs() / T_ref.abs().max()).max()),
            "lambda_Hi": float(((lam - lam_ref).abs() / lam_ref.abs().max()).max())}
