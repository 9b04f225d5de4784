"""Riemannian gradient, Hessian and gradient descent of the sharpness F on the zero-loss manifold M.

Paper 1 (Lemma 4.5, SPEC §A.6), with the induced Euclidean metric on M = {θ : f_θ(x_i) = y_i}:

    λ(θ)         = (JJᵀ)⁻¹ J ∇F                       least-squares multipliers
    grad_M F     = ∇F − Jᵀλ  = P_T ∇F
    Hess_M F[v]  = P_T (∇²F − Σ_i λ_i ∇²c_i) v,       v ∈ T_θM = ker J

with F(θ) = Σ_i ‖x_i‖² Σ_j a_j² φ'(z_ij)² (``twolayer.sharpness``), z_ij = θ_jᵀx_i. Both ∇²F and ∇²c_i are
block diagonal over neurons with blocks Σ_i (·)_ij x_i x_iᵀ, so the Hessian of the Lagrangian acts as

    (∇²F − Σ_i λ_i∇²c_i) v  block j = Σ_i w_ij (x_iᵀ v_j) x_i,
    w_ij = 2‖x_i‖² a_j² (φ''_ij² + φ'_ij φ'''_ij) − λ_i a_j φ''_ij.

Nothing here forms J (n × md) or a dense md × md matrix except :func:`hess_matrix`, which needs one:
with A_ij = a_j φ'(z_ij) and K = XXᵀ, JJᵀ = (AAᵀ) ∘ K, (Jv)_i = Σ_j A_ij x_iᵀv_j and Jᵀλ block j = Σ_i λ_i A_ij x_i.

Tangent directions whose blocks v_j are all orthogonal to span{x_i} satisfy Jv = 0 and Hess_M F[v] = 0: when
d > n the Riemannian Hessian always has m(d − n) zero eigenvalues, and its informative part lives on the
"span" tangent space T^span = {v ∈ T_θM : v_j ∈ span{x_i}}. :func:`lambda_min` reports either.

:func:`descent` is Riemannian gradient descent θ ← R(θ − h grad_M F(θ)) with the Newton retraction R of
:mod:`flatbias.manifold`; time t = Σ h, so with a small fixed step it integrates the gradient flow
dθ/dt = −grad_M F(θ) (explicit Euler plus retraction, error O(h)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from tqdm import tqdm

from . import manifold, twolayer
from . import validate as vd
from .activations import Activation, get_activation


class StepSizeError(RuntimeError):
    """Riemannian gradient descent diverged: the step size is too large for the curvature of F on M."""


@dataclass
class _Parts:
    """Everything the closed forms need at θ, computed once."""

    Z: torch.Tensor  # (n, m) pre-activations z_ij
    a: torch.Tensor  # (m,) second-layer weights
    d1: torch.Tensor  # φ'(z_ij)
    d2: torch.Tensor  # φ''(z_ij)
    d3: torch.Tensor  # φ'''(z_ij)
    A: torch.Tensor  # a_j φ'(z_ij): block j of row i of J is A_ij x_i
    x2: torch.Tensor  # (n,) ‖x_i‖²
    G: torch.Tensor  # (n, n) JJᵀ = (AAᵀ) ∘ K
    w2: torch.Tensor | None = None  # 2‖x_i‖² a_j² (n, m), a constant of a descent run; None: computed when needed


def _parts(theta, X, act, a) -> _Parts:
    act = get_activation(act)
    Z = twolayer._z(theta, X)
    a = twolayer._a(theta, a)
    d1, d2, d3 = act.d1(Z), act.d2(Z), act.d3(Z)
    A = d1 * a
    G = (A @ A.T) * (X @ X.T)
    return _Parts(Z, a, d1, d2, d3, A, (X**2).sum(1), G)


def _solve_gram(G: torch.Tensor, rhs: torch.Tensor, rtol: float = 1e-14) -> torch.Tensor:
    """(JJᵀ)⁻¹ rhs, with a clear error where J loses rank (then M is not a manifold at θ)."""
    return torch.linalg.solve(manifold._check_gram(G, rtol), rhs)


def _J(p: _Parts, X: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """J v for v of shape (m, d): (Jv)_i = Σ_j A_ij x_iᵀ v_j."""
    return (p.A * (X @ v.T)).sum(1)


def _JT(p: _Parts, X: torch.Tensor, lam: torch.Tensor) -> torch.Tensor:
    """Jᵀλ as an (m, d) array: block j = Σ_i λ_i A_ij x_i."""
    return (lam[:, None] * p.A).T @ X


def euclidean_grad(theta, X, act: str | Activation, a=None) -> torch.Tensor:
    """∇F, block j = Σ_i 2‖x_i‖² a_j² φ'(z_ij) φ''(z_ij) x_i (SPEC §A.4)."""
    act = twolayer.check_inputs(theta, X, act, a)
    p = _parts(theta, X, act, a)
    return _egrad(p, X)


def _egrad(p: _Parts, X) -> torch.Tensor:
    w2 = 2 * p.x2[:, None] * p.a**2 if p.w2 is None else p.w2
    return (w2 * p.d1 * p.d2).T @ X


def multipliers(theta, X, act: str | Activation, a=None) -> torch.Tensor:
    """The least-squares multipliers λ = (JJᵀ)⁻¹ J ∇F (shape n) of Lemma 4.5."""
    act = twolayer.check_inputs(theta, X, act, a)
    p = _parts(theta, X, act, a)
    return _solve_gram(p.G, _J(p, X, _egrad(p, X)))


def _grad(p: _Parts, X) -> tuple[torch.Tensor, torch.Tensor]:
    g = _egrad(p, X)
    lam = _solve_gram(p.G, _J(p, X, g))
    return g - _JT(p, X, lam), lam


def grad(theta, X, act: str | Activation, a=None) -> torch.Tensor:
    """grad_M F = ∇F − Jᵀλ = P_T ∇F (shape m × d), the Riemannian gradient of F on M (Lemma 4.5)."""
    act = twolayer.check_inputs(theta, X, act, a)
    return _grad(_parts(theta, X, act, a), X)[0]


def _weights(p: _Parts, lam: torch.Tensor) -> torch.Tensor:
    return 2 * p.x2[:, None] * p.a**2 * (p.d2**2 + p.d1 * p.d3) - lam[:, None] * p.a * p.d2


def hessian_weights(theta, X, act: str | Activation, a=None) -> torch.Tensor:
    """w_ij = 2‖x_i‖² a_j²(φ''² + φ'φ''') − λ_i a_j φ'' (n × m): vᵀ Hess_M F v = Σ_ij w_ij (x_iᵀv_j)² on T_θM."""
    act = twolayer.check_inputs(theta, X, act, a)
    p = _parts(theta, X, act, a)
    return _weights(p, _grad(p, X)[1])


def _project(p: _Parts, X, v) -> torch.Tensor:
    return v - _JT(p, X, _solve_gram(p.G, _J(p, X, v)))


def hess_vec(theta, v, X, act: str | Activation, a=None) -> torch.Tensor:
    """Hess_M F[v] = P_T Σ_i w_ij (x_iᵀv_j) x_i (Lemma 4.5) for v of shape (m, d); v is first projected onto T_θM."""
    act = twolayer.check_inputs(theta, X, act, a)
    vd.tensor("v", v)
    vd.shape("v", v, tuple(theta.shape), "(the shape of θ)")
    p = _parts(theta, X, act, a)
    w = _weights(p, _grad(p, X)[1])
    v = _project(p, X, v)
    return _project(p, X, (w * (X @ v.T)).T @ X)


def _null_basis(M: torch.Tensor) -> torch.Tensor:
    """Orthonormal basis (columns) of ker M for M of full row rank r (shape r × N): the last N − r columns of a
    complete QR of Mᵀ."""
    Q, _ = torch.linalg.qr(M.T, mode="complete")
    return Q[:, M.shape[0]:]


def _data_basis(X):
    """(Q, Q⊥, C = XQ): Q (d × n) an orthonormal basis of span{x_i}, Q⊥ its complement; depends on X only."""
    n = X.shape[0]
    Qfull, _ = torch.linalg.qr(X.T, mode="complete")  # (d, d); first n columns span the data
    Q, Qperp = Qfull[:, :n], Qfull[:, n:]
    return Q, Qperp, X @ Q


def _span_parts(theta, X, act, a, basis=None):
    """Coordinates of T^span: v_j = Q b_j with Q (d × n) an orthonormal basis of span{x_i}; C = XQ (n × n).

    ``basis``: :func:`_data_basis` of X, computed once by a caller that already checked X (``check_data``)."""
    n, d = X.shape
    if basis is None:
        manifold.check_data(X)
    p = _parts(theta, X, act, a)
    _solve_gram(p.G, torch.zeros(n, dtype=X.dtype, device=X.device))  # rank check with a clear message
    Q, Qperp, C = _data_basis(X) if basis is None else basis
    m = theta.shape[0]
    # constraint in b-coordinates: row i, block j = A_ij C_i,:  (n × mn)
    Jb = (p.A[:, :, None] * C[:, None, :]).reshape(n, m * n)
    Nb = _null_basis(Jb)  # (mn, mn − n)
    return p, Q, Qperp, C, Nb


def tangent_basis(theta, X, act: str | Activation, a=None, span_only: bool = False) -> torch.Tensor:
    """An orthonormal basis of T_θM (md × (md − n)), or of T^span (md × (mn − n)) with ``span_only``.

    Columns are flattened row-major like θ; the first mn − n columns span T^span, the rest (v_j ⊥ span{x_i})
    complete it to T_θM. :func:`hess_matrix` uses this basis.
    """
    act = twolayer.check_inputs(theta, X, act, a)
    m, d = theta.shape
    n = X.shape[0]
    _, Q, Qperp, _, Nb = _span_parts(theta, X, act, a)
    k = Nb.shape[1]
    span = torch.einsum("dn,mnk->mdk", Q, Nb.reshape(m, n, k)).reshape(m * d, k)
    if span_only or d == n:
        return span
    eye = torch.eye(m, dtype=X.dtype, device=X.device)
    # (md, m(d − n)): column (k, r) has block k equal to the r-th unit vector ⊥ the data, other blocks 0
    perp = torch.einsum("jk,dr->jdkr", eye, Qperp).reshape(m * d, m * (d - n))
    return torch.cat([span, perp], 1)


def hess_matrix(theta, X, act: str | Activation, a=None, span_only: bool = False) -> torch.Tensor:
    """The matrix BᵀHess_M F B in the orthonormal basis B = :func:`tangent_basis` (symmetric).

    In b-coordinates (v_j = Q b_j) the Lagrangian Hessian is block diagonal with blocks Cᵀdiag(w_:j)C; the
    directions ⊥ span{x_i} contribute a zero block of size m(d − n) (omitted with ``span_only``).
    """
    return _hess_matrix(theta, X, twolayer.check_inputs(theta, X, act, a), a, span_only)


def _hess_matrix(theta, X, act, a, span_only: bool, basis=None) -> torch.Tensor:
    m, d = theta.shape
    n = X.shape[0]
    p, Q, Qperp, C, Nb = _span_parts(theta, X, act, a, basis)
    w = _weights(p, _grad(p, X)[1])  # (n, m)
    k = Nb.shape[1]
    Nb3 = Nb.reshape(m, n, k)
    CN = torch.einsum("in,mnk->mik", C, Nb3)  # C b-basis: (m, n_i, k), i.e. x_iᵀ v_j for each basis vector
    H = torch.einsum("mik,im,mil->kl", CN, w, CN)
    H = 0.5 * (H + H.T)
    if span_only or d == n:
        return H
    full = torch.zeros(m * d - n, m * d - n, dtype=X.dtype, device=X.device)
    full[:k, :k] = H
    return full


def lambda_min(theta, X, act: str | Activation, a=None, span_only: bool = False) -> float:
    """Smallest eigenvalue of Hess_M F on T_θM (or on T^span with ``span_only``; equal when d = n).

    On the full tangent space it is ≤ 0 whenever d > n (the directions ⊥ span{x_i} are flat).
    """
    return _lambda_min(theta, X, twolayer.check_inputs(theta, X, act, a), a, span_only)


def _lambda_min(theta, X, act, a, span_only: bool, basis=None) -> float:
    return float(torch.linalg.eigvalsh(_hess_matrix(theta, X, act, a, span_only=True, basis=basis))[0]) if span_only \
        or X.shape[0] == X.shape[1] else min(0.0, _lambda_min(theta, X, act, a, span_only=True, basis=basis))


def lambda_max(theta, X, act: str | Activation, a=None) -> float:
    """Largest eigenvalue of Hess_M F on T_θM (the curvature that limits a stable step, h < 2/λ_max)."""
    return _lambda_max(theta, X, twolayer.check_inputs(theta, X, act, a), a)


def _lambda_max(theta, X, act, a) -> float:
    return max(0.0, float(torch.linalg.eigvalsh(_hess_matrix(theta, X, act, a, span_only=True))[-1]))


@dataclass
class Trajectory:
    """A Riemannian gradient-descent run: logged time t = Σ h, F, ‖grad_M F‖ (and λ_min when asked)."""

    t: list[float]
    F: list[float]
    grad_norm: list[float]
    lambda_min: list[float] | None
    theta: torch.Tensor  # final point
    thetas: list[torch.Tensor] | None = None  # snapshots at the logged points (``keep_thetas=True``)
    steps: int = 0
    converged: bool = False  # ‖grad_M F‖ ≤ tol reached
    step_rule: str = ""
    h: list[float] = field(default_factory=list)  # step size at the logged points


def descent(theta0, X, y, act: str | Activation, a=None, step: float | str | None = None, tol: float = 1e-10,
            max_steps: int = 100_000, log_every: int = 10, with_lambda_min: bool = False,
            progress: bool | None = None, keep_thetas: bool = False, max_time: float = math.inf,
            h_max: float | None = None, lambda_min_span_only: bool = False) -> Trajectory:
    """Riemannian gradient descent θ ← R(θ − h grad_M F(θ)) on M, from θ0 (retracted onto M first).

    Step rule:
      * ``step`` a float: fixed h (Riemannian GD; with h ≪ 1/λ_max it integrates the gradient flow with O(h)
        error). A step that makes F grow for 5 steps in a row, or F/θ non-finite, or a failed retraction, is a
        :class:`StepSizeError` naming the stable range h < 2/λ_max(Hess_M F).
      * ``step`` None or ``"auto"``: h starts at 1/λ_max(Hess_M F(θ0)); a step is accepted when it satisfies the
        Armijo condition F(R(θ − h g)) ≤ F(θ) − ½h‖g‖², otherwise h is halved; after an accepted step
        h grows by 1.2 (capped at ``h_max``, default 10/λ_max(θ0)).
    Stops when ‖grad_M F‖ ≤ tol, after ``max_steps`` steps, or when t ≥ ``max_time``. Logs every ``log_every``
    steps and at the last one. ``progress``: tqdm bar (None: only on a terminal).
    """
    act = twolayer.check_inputs(theta0, X, act, a, y, theta_name="θ0")
    adaptive = step is None or (isinstance(step, str) and step == "auto")
    if not adaptive:
        if isinstance(step, str):
            raise vd.InvalidArgumentError(
                f"step must be a positive finite number, None or 'auto'; got {step!r}")
        h = vd.positive("step", step, why="(a positive finite number, None or 'auto')")
    tol, max_steps = vd.nonnegative("tol", tol), vd.integer("max_steps", max_steps, 0)
    log_every = vd.integer("log_every", log_every, 1)
    max_time = vd.number("max_time", max_time, 0.0, allow_inf=True)
    h_max = None if h_max is None else vd.positive("h_max", h_max)
    manifold.check_data(X)
    # activations outside Assumption 3.1 are allowed (the chapters probe them); the theorems don't apply
    # Per run, once: the constants of X and a that every step uses (the same tensors the per-call helpers build).
    # Per θ, once: Z = Xθᵀ comes from the retraction that produced θ, φ'(Z) and A = φ'(Z)·a from F(θ), and the
    # gradient step at θ reuses them (the same operations on the same θ, so the same bits).
    # With a = None (all ones) A = φ'(Z)·1 is φ'(Z) exactly, so that product is skipped.
    av, ones_a = twolayer._a(theta0, a), a is None
    x2, K = (X**2).sum(1), X @ X.T
    w2 = 2 * x2[:, None] * av**2
    basis = _data_basis(X) if with_lambda_min else None  # X passed check_data above

    def at(Z):  # φ'(Z), A and F = twolayer._sharpness at θ with Z = Xθᵀ
        d1 = act.d1(Z)
        A = d1 if ones_a else d1 * av
        return d1, A, float((x2 * (A**2).sum(1)).sum())

    def grad_at(Z, d1, A):  # _grad(_parts(θ, X, act, a), X)[0] and its norm; φ''' (unused by _grad) is skipped
        g = _grad(_Parts(Z, av, d1, act.d2(Z), None, A, x2, (A @ A.T) * K, w2), X)[0]
        return g, float(manifold._norm(g))

    def retract(th):
        return manifold._retract_z(th, X, y, act, av, copy=False, ones_a=ones_a)

    theta, Z = manifold._retract_z(theta0, X, y, act, av, ones_a=ones_a)
    if adaptive:
        lmax = _lambda_max(theta, X, act, a)
        h = 1.0 / max(lmax, 1e-12)
        h_max = 10.0 * h if h_max is None else h_max
    rule = "Armijo backtracking (adaptive)" if adaptive else f"fixed h = {h:g}"

    traj = Trajectory([], [], [], [] if with_lambda_min else None, theta, [] if keep_thetas else None, 0, False, rule)
    d1, A, F = at(Z)
    t, F0, rises = 0.0, F, 0

    def log(theta, gnorm):
        traj.t.append(t)
        traj.F.append(F)
        traj.grad_norm.append(gnorm)
        traj.h.append(h)
        if with_lambda_min:
            traj.lambda_min.append(_lambda_min(theta, X, act, a, lambda_min_span_only, basis))
        if keep_thetas:
            traj.thetas.append(theta.clone())

    bar = tqdm(total=max_steps, disable=(None if progress is None else not progress), desc="Riemannian GD",
               leave=False)
    k = 0
    try:
        while True:
            g, gnorm = grad_at(Z, d1, A)
            if not math.isfinite(gnorm):
                raise StepSizeError(f"grad_M F is not finite at step {k} (F = {F:.3g}): the iterate left the region "
                                    f"where F is finite; use a smaller step than h = {h:g}")
            done = gnorm <= tol or k >= max_steps or t >= max_time
            if k % log_every == 0 or done:
                log(theta, gnorm)
                if not bar.disable:
                    bar.set_postfix(F=f"{F:.6g}", grad=f"{gnorm:.2e}", refresh=False)
            if done:
                traj.converged = gnorm <= tol
                break
            if adaptive:
                for _ in range(60):
                    try:
                        cand, Zc = retract(theta - h * g)
                        d1c, Ac, F_new = at(Zc)
                    except (manifold.RetractionError, manifold.RankDeficientError):
                        F_new = math.inf
                    if F_new <= F - 0.5 * h * gnorm**2:
                        break  # Armijo
                    if 0.5 * h * gnorm**2 < 1e-12 * abs(F) and F_new <= F + 1e-13 * abs(F) and \
                            grad_at(Zc, d1c, Ac)[1] < gnorm:
                        break  # round-off floor of F: accept a step that does not raise F and shrinks ‖grad‖
                    h /= 2
                else:
                    if gnorm <= 1e3 * tol:
                        break  # round-off floor: no step decreases F or ‖grad‖ any more (converged stays False)
                    raise StepSizeError(f"no step size gives sufficient decrease at step {k} (‖grad‖ = {gnorm:.3g})")
                theta, F, t = cand, F_new, t + h
                Z, d1, A = Zc, d1c, Ac
                h = min(1.2 * h, h_max)
            else:
                try:
                    cand, Zc = retract(theta - h * g)
                except (manifold.RetractionError, manifold.RankDeficientError) as exc:
                    raise StepSizeError(_diverge_msg(h, k, theta, X, act, a, f"the retraction failed ({exc})")) from exc
                d1c, Ac, F_new = at(Zc)
                if not math.isfinite(F_new) or F_new > 1e6 * max(F0, 1e-300):
                    raise StepSizeError(_diverge_msg(h, k, theta, X, act, a, f"F jumped from {F:.3g} to {F_new:.3g}"))
                rises = rises + 1 if F_new > F * (1 + 1e-12) + 1e-300 else 0
                if rises >= 5:
                    raise StepSizeError(_diverge_msg(h, k, theta, X, act, a, "F increased in 5 consecutive steps"))
                theta, F, t = cand, F_new, t + h
                Z, d1, A = Zc, d1c, Ac
            k += 1
            traj.steps = k
            bar.update(1)
    finally:
        bar.close()
    traj.theta = theta
    return traj


def _diverge_msg(h, k, theta, X, act, a, what) -> str:
    try:
        lmax = _lambda_max(theta, X, act, a)
        hint = f"λ_max(Hess_M F) ≈ {lmax:.3g} here, so use h < 2/λ_max ≈ {2 / lmax:.3g} (or step=None for the adaptive rule)"
    except Exception:  # noqa: BLE001 - the hint is best effort
        hint = "use a smaller step (or step=None for the adaptive rule)"
    return f"Riemannian gradient descent diverges with step h = {h:g}: {what} at step {k}; {hint}."
