"""Probes of the landscape of the sharpness F on M (paper 1, Lemma 4.4/B.4 and Theorem 3.5).

Chapter 04 asks where negative curvature of F on M first appears as the Riemannian gradient grows;
chapter 05 measures the late exponential rate of the flow. The helpers here:

* :func:`chart` / :func:`chart_coords`: for d = n a global chart of M. With Z = Xθᵀ-style
  pre-activations z_ij = θ_jᵀx_i, the constraint is Σ_j φ(z_ij) = y_i for each i, so the first m − 1
  columns of Z are free and z_im = φ⁻¹(y_i − Σ_{j<m} φ(z_ij)); θ_j = X⁻¹ z_{:,j}. Every point of the
  chart lies exactly on M (no retraction), and the map is differentiable.
* :func:`grad_norm2_and_lambda_min`: ‖grad_M F‖² and λ_min(Hess_M F) as differentiable torch
  functions of θ (dense md × md algebra, d = n), for constrained searches with autograd gradients.
* :func:`frontier_search`: minimize ‖grad_M F‖ over the region λ_min(Hess_M F) ≤ −``lam_tol`` (SLSQP in
  the chart): the smallest gradient at which negative curvature exists near a start.
* :func:`reference_grad_hessian`: grad_M F and Hess_M F on T_θM from autograd of F and of the network
  alone (no closed form of :mod:`flatbias.riemannian`), the independent reference of the guards.
* :func:`reference_descent`: a plain loop θ ← R(θ − h P_T∇F) with autograd ∇F and a dense projector,
  the reference for :func:`flatbias.riemannian.descent` at a fixed step.
* :func:`late_rate`: the least-squares exponential rate of a decaying series over a window of values.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import manifold, twolayer
from .activations import Activation, get_activation
from .hessian_fd import LSTSQ_DRIVER


def _square(X: torch.Tensor) -> None:
    n, d = X.shape
    if n != d:
        raise ValueError(f"the chart of M needs d = n (square data matrix); got n = {n}, d = {d}")
    manifold.check_data(X)


def chart(u: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation) -> torch.Tensor:
    """θ (m × d) of M from chart coordinates u (n × (m − 1)): the free pre-activations (d = n)."""
    _square(X)
    act = get_activation(act)
    last = act.inv(y - act.phi(u).sum(1))
    Z = torch.cat([u, last[:, None]], 1)  # (n, m): z_ij
    return torch.linalg.solve(X, Z).T


def chart_coords(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """The chart coordinates of θ ∈ M: its pre-activations z_ij for j < m (n × (m − 1))."""
    _square(X)
    return (X @ theta.T)[:, :-1]


def _dense(theta, X, act: Activation):
    """Dense J (n × md), P_T, Euclidean gradient, multipliers and Lagrangian Hessian (differentiable)."""
    m, d = theta.shape
    n = X.shape[0]
    Z = X @ theta.T  # (n, m)
    d1, d2, d3 = act.d1(Z), act.d2(Z), act.d3(Z)
    x2 = (X**2).sum(1)
    J = (d1[:, :, None] * X[:, None, :]).reshape(n, m * d)
    egrad = ((2 * x2[:, None] * d1 * d2).T @ X).reshape(-1)
    G = J @ J.T
    lam = torch.linalg.solve(G, J @ egrad)
    w = 2 * x2[:, None] * (d2**2 + d1 * d3) - lam[:, None] * d2  # (n, m)
    blocks = torch.einsum("ij,ia,ib->jab", w, X, X)  # (m, d, d)
    L = torch.block_diag(*blocks)
    P = torch.eye(m * d, dtype=X.dtype) - J.T @ torch.linalg.solve(G, J)
    return P, egrad, L


def grad_norm2_and_lambda_min(theta: torch.Tensor, X: torch.Tensor, act: str | Activation):
    """(‖grad_M F‖², λ_min of Hess_M F on T_θM) as differentiable tensors (d = n; second layer 1).

    Hess_M F = P_T L P_T on T_θM with L the Lagrangian Hessian; the normal directions are lifted to the
    eigenvalue c = ‖L‖_F + 1, above every tangent eigenvalue, so the smallest eigenvalue is the tangent one.
    """
    _square(X)
    act = get_activation(act)
    P, egrad, L = _dense(theta, X, act)
    g = P @ egrad
    c = torch.linalg.matrix_norm(L).detach() + 1.0
    eye = torch.eye(P.shape[0], dtype=X.dtype)
    H = P @ L @ P + c * (eye - P)
    H = 0.5 * (H + H.T)
    return g @ g, torch.linalg.eigvalsh(H)[0]


def frontier_search(theta0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
                    lam_tol: float = 1e-8, maxiter: int = 200) -> torch.Tensor:
    """Minimize ‖grad_M F(θ)‖ over θ ∈ M with λ_min(Hess_M F(θ)) ≤ −``lam_tol``, from θ0 (d = n).

    SLSQP in the chart coordinates of :func:`chart`, gradients by autograd; the objective is
    log ‖grad‖² (so that gradients from 1e2 down to round-off are searched alike). θ0 should itself
    have λ_min ≤ −lam_tol. Returns the best feasible point visited (θ0 if none is better); a local
    search, so run it from several starts.
    """
    from scipy.optimize import minimize

    act = get_activation(act)
    u0 = chart_coords(theta0, X).detach()
    shape = u0.shape
    best = {"g2": math.inf, "theta": theta0.clone()}

    def parts(x):
        u = torch.tensor(x, dtype=X.dtype).reshape(shape).requires_grad_(True)
        try:
            g2, lmin = grad_norm2_and_lambda_min(chart(u, X, y, act), X, act)
        except (ValueError, RuntimeError, torch.linalg.LinAlgError):
            return None
        if not (torch.isfinite(g2) and torch.isfinite(lmin)):
            return None
        return u, g2, lmin

    cache = {}

    def evaluate(x):
        key = x.tobytes()
        if key not in cache:
            p = parts(x)
            if p is None:
                cache[key] = (1e3, np.zeros_like(x), -1e3, np.zeros_like(x))
            else:
                u, g2, lmin = p
                f = torch.log(g2 + 1e-300)
                (df,) = torch.autograd.grad(f, u, retain_graph=True)
                (dl,) = torch.autograd.grad(lmin, u)
                cache[key] = (float(f.detach()), df.reshape(-1).numpy(), float(lmin.detach()),
                              dl.reshape(-1).numpy())
                if float(lmin.detach()) <= -lam_tol and float(g2.detach()) < best["g2"]:
                    best["g2"] = float(g2.detach())
                    best["theta"] = chart(u.detach(), X, y, act)
        return cache[key]

    x0 = u0.reshape(-1).numpy().astype(float)
    cons = {"type": "ineq", "fun": lambda x: -lam_tol - evaluate(x)[2], "jac": lambda x: -evaluate(x)[3]}
    try:
        minimize(lambda x: evaluate(x)[0], x0, jac=lambda x: evaluate(x)[1], method="SLSQP",
                 constraints=[cons], options={"maxiter": maxiter, "ftol": 1e-12})
    except (ValueError, RuntimeError):  # a failed line search ends the search; keep the best point so far
        pass
    return best["theta"]


def reference_grad_hessian(theta: torch.Tensor, X: torch.Tensor, act: str | Activation, a=None):
    """grad_M F (m × d) and Hess_M F in an orthonormal basis of T_θM, from autograd alone.

    ∇F by autograd of :func:`flatbias.twolayer.sharpness`, J by autograd of :func:`flatbias.twolayer.forward`,
    multipliers by least squares, the Lagrangian Hessian ∇²F − Σλ_i∇²f_i by ``torch.func.hessian``, the
    tangent basis from an SVD of J. Independent of the closed forms of :mod:`flatbias.riemannian`.
    """
    m, d = theta.shape
    flat = theta.detach().reshape(-1)
    F = lambda t: twolayer.sharpness(t.reshape(m, d), X, act, a)  # noqa: E731
    f = lambda t: twolayer.forward(t.reshape(m, d), X, act, a)  # noqa: E731
    egrad = torch.func.grad(F)(flat)
    J = torch.func.jacrev(f)(flat)  # (n, md)
    lam = torch.linalg.lstsq(J.T, egrad[:, None], driver=LSTSQ_DRIVER).solution[:, 0]
    HL = torch.func.hessian(lambda t: F(t) - lam @ f(t))(flat)
    _, s, Vh = torch.linalg.svd(J, full_matrices=True)
    B = Vh[X.shape[0]:].T  # (md, md − n): ker J
    g = B @ (B.T @ egrad)
    H = B.T @ HL @ B
    return g.reshape(m, d), 0.5 * (H + H.T)


def reference_descent(theta0: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
                      h: float, steps: int) -> list[float]:
    """F along θ ← R(θ − h P_T∇F(θ)) for ``steps`` steps (a plain loop; autograd ∇F, dense P_T)."""
    m, d = theta0.shape
    theta = manifold.retract(theta0, X, y, act)
    F = lambda t: twolayer.sharpness(t, X, act)  # noqa: E731
    out = [float(F(theta))]
    for _ in range(steps):
        egrad = torch.func.grad(F)(theta).reshape(-1)
        J = torch.func.jacrev(lambda t: twolayer.forward(t.reshape(m, d), X, act))(theta.reshape(-1))
        g = egrad - J.T @ torch.linalg.lstsq(J.T, egrad[:, None], driver=LSTSQ_DRIVER).solution[:, 0]
        theta = manifold.retract(theta - h * g.reshape(m, d), X, y, act)
        out.append(float(F(theta)))
    return out


def late_rate(t, values, lo: float, hi: float) -> tuple[float, float, int]:
    """Fit log(values) ≈ c − r t on the points with lo < values < hi; return (r, R², points used).

    (nan, nan, k) when fewer than 3 points fall in the window.
    """
    t, v = np.asarray(t, float), np.asarray(values, float)
    sel = (v > lo) & (v < hi)
    k = int(sel.sum())
    if k < 3:
        return math.nan, math.nan, k
    ts, lv = t[sel], np.log(v[sel])
    slope, icpt = np.polyfit(ts, lv, 1)
    res = lv - (slope * ts + icpt)
    tot = lv - lv.mean()
    r2 = 1.0 - float(res @ res) / float(tot @ tot) if float(tot @ tot) > 0 else math.nan
    return -float(slope), r2, k


def probe(X: torch.Tensor, y: torch.Tensor, act: str | Activation, m: int, generator: torch.Generator,
          n_random: int, std_range: tuple[float, float], n_flows: int, n_searches: int,
          lam_tol: float = 1e-8, flow_tol: float = 1e-8, flow_steps: int = 2000,
          log_every: int = 1, search_iter: int = 200) -> dict:
    """Curvature against gradient over one data draw (chapter 04), sampling the whole range of ‖grad‖.

    1. ``n_random`` random points of M (init std log-uniform in ``std_range`` times 1/√d);
    2. Riemannian gradient descent from the ``n_flows`` random points of most negative curvature,
       (‖grad_M F‖, λ_min) logged every ``log_every`` steps down to ‖grad‖ ≤ ``flow_tol``; the
       Armijo steps are capped at 10/λ_max(Hess_M F) at the closed-form optimum (the default cap,
       10/λ_max at the strongly curved start, makes the late phase needlessly slow);
    3. :func:`frontier_search` from the ``n_searches`` points with λ_min < −``lam_tol`` and the smallest
       gradient found so far, each end point re-evaluated with :mod:`flatbias.riemannian`.

    Returns lists of (‖grad‖, λ_min) under "random", "flow" (one list per flow) and "search"
    (start ‖grad‖, end ‖grad‖, end λ_min), "delta_star" (smallest ‖grad‖ with λ_min < −lam_tol;
    inf if none), and "checked": a few points (θ) to compare with :func:`reference_grad_hessian`.
    """
    from . import optimum, riemannian

    d = X.shape[1]
    lo, hi = math.log10(std_range[0]), math.log10(std_range[1])
    pts = []  # (‖grad‖, λ_min, θ)
    for _ in range(n_random):
        std = 10 ** (lo + (hi - lo) * torch.rand(1, generator=generator).item()) / d**0.5
        th = manifold.random_point(X, y, act, m, generator, init_std=std)
        pts.append((float(riemannian.grad(th, X, act).norm()), riemannian.lambda_min(th, X, act), th))
    flows, candidates = [], [p for p in pts if p[1] < -lam_tol]
    checked = [pts[0][2]]
    for g0, l0, th in sorted(candidates, key=lambda p: p[1])[:n_flows]:
        h_max = 10.0 / riemannian.lambda_max(optimum.global_optimum(th, X, y, act), X, act)
        tr = riemannian.descent(th, X, y, act, tol=flow_tol, max_steps=flow_steps, log_every=log_every,
                                with_lambda_min=True, keep_thetas=True, h_max=h_max)
        flows.append(list(zip(tr.grad_norm, tr.lambda_min)))
        candidates += [(g, lm, t) for g, lm, t in zip(tr.grad_norm, tr.lambda_min, tr.thetas) if lm < -lam_tol]
        checked.append(tr.theta)
    search = []
    for g0, l0, th in sorted(candidates, key=lambda p: p[0])[:n_searches]:
        end = frontier_search(th, X, y, act, lam_tol=lam_tol, maxiter=search_iter)
        search.append((g0, float(riemannian.grad(end, X, act).norm()), riemannian.lambda_min(end, X, act)))
        checked.append(end)
    neg = [p[0] for p in pts if p[1] < -lam_tol] + [g for f in flows for g, lm in f if lm < -lam_tol] \
        + [s[1] for s in search if s[2] < -lam_tol]
    return {"random": [(g, lm) for g, lm, _ in pts], "flow": flows, "search": search,
            "delta_star": min(neg) if neg else math.inf, "checked": checked}
