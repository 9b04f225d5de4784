"""The fast path of :func:`flatbias.riemannian.descent` is bit-identical to the original implementation.

``descent`` (and the retraction, the Gram check, the gradient and the sharpness it calls on every step) was
sped up by removing overhead only: values computed twice on the same θ are computed once, constants of X are
computed once per run, and the Gram check reads its eigenvalues as one Python list. This module keeps a frozen
copy of the original code (``_Ref``) and checks that the trajectories (t, F, ‖grad‖, h, λ_min, θ, snapshots),
the errors and their messages are exactly the same, on several problems, activations and step rules.
"""
from __future__ import annotations

import math
import struct

import pytest
import torch

from flatbias import manifold, riemannian, twolayer
from flatbias import validate as vd
from flatbias.activations import get_activation


# ------------------------------------------------------------------------------------------------------------------
# Frozen copy of the original implementation (HEAD before the speed-up): the reference.
# ------------------------------------------------------------------------------------------------------------------
class _Ref:
    @staticmethod
    def _a(theta, a):
        return torch.ones(theta.shape[0], dtype=theta.dtype, device=theta.device) if a is None else a

    @staticmethod
    def _z(theta, X):
        return X @ theta.T

    @classmethod
    def _forward(cls, theta, X, act, a):
        return act.phi(cls._z(theta, X)) @ cls._a(theta, a)

    @classmethod
    def _jacobian(cls, theta, X, act, a):
        D = act.d1(cls._z(theta, X)) * cls._a(theta, a)  # (n, m)
        return (D[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)

    @classmethod
    def _sharpness(cls, theta, X, act, a):
        D = act.d1(cls._z(theta, X)) * cls._a(theta, a)
        return ((X**2).sum(1) * (D**2).sum(1)).sum()

    @staticmethod
    def _check_gram(G, rtol):
        try:
            ev = torch.linalg.eigvalsh(G)
        except torch.linalg.LinAlgError:
            ev = None
        if ev is None or not bool(torch.isfinite(ev).all()) or ev[0] <= rtol * max(float(ev[-1]), 1e-300):
            if not bool(torch.isfinite(G).all()):
                raise manifold.RankDeficientError(
                    f"JJᵀ (n = {G.shape[0]}) has NaN or inf entries: θ left the region where φ' is finite (a step "
                    "that was too large, or weights that overflow), so M is not a smooth manifold there")
            lo, hi = (float("nan"), float("nan")) if ev is None else (float(ev[0]), float(ev[-1]))
            raise manifold.RankDeficientError(
                f"the constraint Jacobian J has (numerically) rank < n = {G.shape[0]} (eigenvalues of JJᵀ from "
                f"{lo:.3g} to {hi:.3g}): the data are not linearly independent, or φ'(θ_jᵀx_i) "
                "vanishes (e.g. the cube activation at z = 0). M is not a smooth manifold at this θ.")
        return G

    @classmethod
    def _gram(cls, J, rtol):
        return cls._check_gram(J @ J.T, rtol)

    @classmethod
    def _retract(cls, theta, X, y, act, a=None, tol=1e-12, max_iter=60, rtol=1e-14):
        def cons(t):
            return cls._forward(t, X, act, a) - y

        theta = theta.clone()
        c = cons(theta)
        for _ in range(max_iter):
            err = float(c.abs().max())
            if err <= tol:
                return theta
            J = cls._jacobian(theta, X, act, a)
            step = (J.T @ torch.linalg.solve(cls._gram(J, rtol), c)).reshape(theta.shape)
            t, norm0 = 1.0, float(c.norm())
            for _ in range(40):
                cand = theta - t * step
                c_new = cons(cand)
                if bool(torch.isfinite(c_new).all()) and float(c_new.norm()) < norm0:
                    break
                t /= 2
            else:
                raise manifold.RetractionError(
                    f"retraction stalled: no step size decreases ‖c‖ = {norm0:.3g}; start closer to M "
                    "(smaller initial weights) or check that the labels y_i/m lie in the range of φ")
            theta, c = cand, c_new
        err = float(c.abs().max())
        if err <= tol:
            return theta
        raise manifold.RetractionError(
            f"retraction did not converge: max |f(x_i) − y_i| = {err:.3g} > tol = {tol:g} after "
            f"{max_iter} Newton steps; raise max_iter or start closer to M")

    @classmethod
    def _parts(cls, theta, X, act, a):
        act = get_activation(act)
        Z = cls._z(theta, X)
        a = cls._a(theta, a)
        d1, d2, d3 = act.d1(Z), act.d2(Z), act.d3(Z)
        A = d1 * a
        G = (A @ A.T) * (X @ X.T)
        return riemannian._Parts(Z, a, d1, d2, d3, A, (X**2).sum(1), G)

    @classmethod
    def _solve_gram(cls, G, rhs, rtol=1e-14):
        return torch.linalg.solve(cls._check_gram(G, rtol), rhs)

    @staticmethod
    def _J(p, X, v):
        return (p.A * (X @ v.T)).sum(1)

    @staticmethod
    def _JT(p, X, lam):
        return (lam[:, None] * p.A).T @ X

    @staticmethod
    def _egrad(p, X):
        return (2 * p.x2[:, None] * p.a**2 * p.d1 * p.d2).T @ X

    @classmethod
    def _grad(cls, p, X):
        g = cls._egrad(p, X)
        lam = cls._solve_gram(p.G, cls._J(p, X, g))
        return g - cls._JT(p, X, lam), lam

    @staticmethod
    def _weights(p, lam):
        return 2 * p.x2[:, None] * p.a**2 * (p.d2**2 + p.d1 * p.d3) - lam[:, None] * p.a * p.d2

    @staticmethod
    def _null_basis(M):
        Q, _ = torch.linalg.qr(M.T, mode="complete")
        return Q[:, M.shape[0]:]

    @classmethod
    def _span_parts(cls, theta, X, act, a):
        n, d = X.shape
        manifold.check_data(X)
        p = cls._parts(theta, X, act, a)
        cls._solve_gram(p.G, torch.zeros(n, dtype=X.dtype, device=X.device))
        Qfull, _ = torch.linalg.qr(X.T, mode="complete")
        Q, Qperp = Qfull[:, :n], Qfull[:, n:]
        C = X @ Q
        m = theta.shape[0]
        Jb = (p.A[:, :, None] * C[:, None, :]).reshape(n, m * n)
        Nb = cls._null_basis(Jb)
        return p, Q, Qperp, C, Nb

    @classmethod
    def _hess_matrix(cls, theta, X, act, a, span_only):
        m, d = theta.shape
        n = X.shape[0]
        p, Q, Qperp, C, Nb = cls._span_parts(theta, X, act, a)
        w = cls._weights(p, cls._grad(p, X)[1])
        k = Nb.shape[1]
        Nb3 = Nb.reshape(m, n, k)
        CN = torch.einsum("in,mnk->mik", C, Nb3)
        H = torch.einsum("mik,im,mil->kl", CN, w, CN)
        H = 0.5 * (H + H.T)
        if span_only or d == n:
            return H
        full = torch.zeros(m * d - n, m * d - n, dtype=X.dtype, device=X.device)
        full[:k, :k] = H
        return full

    @classmethod
    def _lambda_min(cls, theta, X, act, a, span_only):
        return float(torch.linalg.eigvalsh(cls._hess_matrix(theta, X, act, a, span_only=True))[0]) if span_only or \
            X.shape[0] == X.shape[1] else min(0.0, cls._lambda_min(theta, X, act, a, span_only=True))

    @classmethod
    def _lambda_max(cls, theta, X, act, a):
        return max(0.0, float(torch.linalg.eigvalsh(cls._hess_matrix(theta, X, act, a, span_only=True))[-1]))

    @classmethod
    def _diverge_msg(cls, h, k, theta, X, act, a, what):
        try:
            lmax = cls._lambda_max(theta, X, act, a)
            hint = (f"λ_max(Hess_M F) ≈ {lmax:.3g} here, so use h < 2/λ_max ≈ {2 / lmax:.3g} "
                    "(or step=None for the adaptive rule)")
        except Exception:  # noqa: BLE001
            hint = "use a smaller step (or step=None for the adaptive rule)"
        return f"Riemannian gradient descent diverges with step h = {h:g}: {what} at step {k}; {hint}."

    @classmethod
    def descent(cls, theta0, X, y, act, a=None, step=None, tol=1e-10, max_steps=100_000, log_every=10,
                with_lambda_min=False, progress=False, keep_thetas=False, max_time=math.inf, h_max=None,
                lambda_min_span_only=False):
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
        theta = cls._retract(theta0, X, y, act, a)
        if adaptive:
            lmax = cls._lambda_max(theta, X, act, a)
            h = 1.0 / max(lmax, 1e-12)
            h_max = 10.0 * h if h_max is None else h_max
        rule = "Armijo backtracking (adaptive)" if adaptive else f"fixed h = {h:g}"
        F_of = lambda th: float(cls._sharpness(th, X, act, a))  # noqa: E731

        traj = riemannian.Trajectory([], [], [], [] if with_lambda_min else None, theta,
                                     [] if keep_thetas else None, 0, False, rule)
        t, F, F0, rises = 0.0, F_of(theta), F_of(theta), 0

        def log(theta, gnorm):
            traj.t.append(t)
            traj.F.append(F)
            traj.grad_norm.append(gnorm)
            traj.h.append(h)
            if with_lambda_min:
                traj.lambda_min.append(cls._lambda_min(theta, X, act, a, lambda_min_span_only))
            if keep_thetas:
                traj.thetas.append(theta.clone())

        k = 0
        while True:
            g, _ = cls._grad(cls._parts(theta, X, act, a), X)
            gnorm = float(g.norm())
            if not math.isfinite(gnorm):
                raise riemannian.StepSizeError(
                    f"grad_M F is not finite at step {k} (F = {F:.3g}): the iterate left the region "
                    f"where F is finite; use a smaller step than h = {h:g}")
            done = gnorm <= tol or k >= max_steps or t >= max_time
            if k % log_every == 0 or done:
                log(theta, gnorm)
            if done:
                traj.converged = gnorm <= tol
                break
            if adaptive:
                for _ in range(60):
                    try:
                        cand = cls._retract(theta - h * g, X, y, act, a)
                        F_new = F_of(cand)
                    except (manifold.RetractionError, manifold.RankDeficientError):
                        F_new = math.inf
                    if F_new <= F - 0.5 * h * gnorm**2:
                        break
                    if 0.5 * h * gnorm**2 < 1e-12 * abs(F) and F_new <= F + 1e-13 * abs(F) and \
                            float(cls._grad(cls._parts(cand, X, act, a), X)[0].norm()) < gnorm:
                        break
                    h /= 2
                else:
                    if gnorm <= 1e3 * tol:
                        break
                    raise riemannian.StepSizeError(
                        f"no step size gives sufficient decrease at step {k} (‖grad‖ = {gnorm:.3g})")
                theta, F, t = cand, F_new, t + h
                h = min(1.2 * h, h_max)
            else:
                try:
                    cand = cls._retract(theta - h * g, X, y, act, a)
                except (manifold.RetractionError, manifold.RankDeficientError) as exc:
                    raise riemannian.StepSizeError(
                        cls._diverge_msg(h, k, theta, X, act, a, f"the retraction failed ({exc})")) from exc
                F_new = F_of(cand)
                if not math.isfinite(F_new) or F_new > 1e6 * max(F0, 1e-300):
                    raise riemannian.StepSizeError(
                        cls._diverge_msg(h, k, theta, X, act, a, f"F jumped from {F:.3g} to {F_new:.3g}"))
                rises = rises + 1 if F_new > F * (1 + 1e-12) + 1e-300 else 0
                if rises >= 5:
                    raise riemannian.StepSizeError(
                        cls._diverge_msg(h, k, theta, X, act, a, "F increased in 5 consecutive steps"))
                theta, F, t = cand, F_new, t + h
            k += 1
            traj.steps = k
        traj.theta = theta
        return traj


# ------------------------------------------------------------------------------------------------------------------
# Exact comparison helpers
# ------------------------------------------------------------------------------------------------------------------
def _bits(xs):
    """Floats as their IEEE-754 bit patterns (NaN == NaN, 0.0 != -0.0)."""
    return None if xs is None else [struct.pack("<d", float(x)) for x in xs]


def _same_tensor(a, b):
    """Same dtype, shape and bytes (bit-identical, NaN == NaN)."""
    return a.dtype == b.dtype and a.shape == b.shape and \
        a.detach().cpu().contiguous().numpy().tobytes() == b.detach().cpu().contiguous().numpy().tobytes()


def _outcome(fn):
    try:
        return "ok", fn()
    except Exception as exc:  # noqa: BLE001 - the type and message are compared
        return "err", (type(exc), str(exc))


def _assert_same_traj(new, ref):
    assert _bits(new.t) == _bits(ref.t)
    assert _bits(new.F) == _bits(ref.F)
    assert _bits(new.grad_norm) == _bits(ref.grad_norm)
    assert _bits(new.h) == _bits(ref.h)
    assert _bits(new.lambda_min) == _bits(ref.lambda_min)
    assert _same_tensor(new.theta, ref.theta)
    assert (new.thetas is None) == (ref.thetas is None)
    if ref.thetas is not None:
        assert len(new.thetas) == len(ref.thetas)
        assert all(_same_tensor(p, q) for p, q in zip(new.thetas, ref.thetas))
    assert (new.steps, new.converged, new.step_rule) == (ref.steps, ref.converged, ref.step_rule)


def _compare(theta0, X, y, act, **kw):
    new = _outcome(lambda: riemannian.descent(theta0, X, y, act, progress=False, **kw))
    ref = _outcome(lambda: _Ref.descent(theta0, X, y, act, **kw))
    assert new[0] == ref[0], (new, ref)
    if ref[0] == "err":
        assert new[1] == ref[1]
    else:
        _assert_same_traj(new[1], ref[1])
    return ref


def _problem(seed, name, n, d, m, with_a=False, std=None, labels=1.0):
    gen = torch.Generator().manual_seed(seed)
    X, y = twolayer.uniform_data(n, d, gen)
    y = labels * y
    a = None
    if with_a:
        a = (0.5 + torch.rand(m, generator=gen, dtype=torch.float64))
        if name != "tanh":
            a = a * torch.where(torch.rand(m, generator=gen, dtype=torch.float64) < 0.3, -1.0, 1.0)
    theta0 = manifold.random_point(X, y, name, m, gen, a=a, init_std=std)
    return X, y, a, theta0


# ------------------------------------------------------------------------------------------------------------------
# The tests
# ------------------------------------------------------------------------------------------------------------------
ADAPTIVE = [  # (seed, activation, n, d, m, random a, init std, labels scale, descent kwargs)
    (0, "sinh", 3, 3, 10, False, None, 1.0, dict(tol=1e-10, max_steps=400, log_every=5, keep_thetas=True,
                                                   h_max=2.0)),
    (1, "sinh", 3, 5, 10, False, 0.5, 1.0, dict(tol=1e-10, max_steps=300, log_every=5, keep_thetas=True)),
    (2, "sinh", 3, 3, 6, True, None, 1.0, dict(tol=1e-9, max_steps=200, log_every=7, with_lambda_min=True)),
    (3, "cubic", 3, 4, 5, True, None, 1.0, dict(tol=1e-10, max_steps=200, log_every=3, with_lambda_min=True,
                                                 lambda_min_span_only=True)),
    (4, "cube", 2, 4, 3, False, None, 1.0, dict(max_steps=150, log_every=1)),
    (5, "tanh", 3, 4, 5, True, None, 0.3, dict(max_steps=150, log_every=2)),
    (6, "softplus", 2, 3, 4, False, None, 1.0, dict(max_steps=150, log_every=4, max_time=5.0)),
    (7, "sinh", 3, 3, 10, False, 3.0, 1.0, dict(tol=1e-10, max_steps=3000, log_every=5)),  # to the round-off floor
]


@pytest.mark.parametrize("case", ADAPTIVE, ids=[f"{c[1]}-{c[0]}" for c in ADAPTIVE])
def test_adaptive_descent_is_bit_identical(case):
    seed, name, n, d, m, with_a, std, labels, kw = case
    X, y, a, theta0 = _problem(seed, name, n, d, m, with_a, std, labels)
    _compare(theta0, X, y, name, a=a, **kw)


FIXED = [  # (seed, activation, n, d, m, random a, step factor × 1/λ_max, descent kwargs)
    (10, "sinh", 3, 3, 10, False, 0.5, dict(tol=1e-9, max_steps=300, log_every=10, keep_thetas=True)),
    (11, "cubic", 2, 4, 4, False, 0.5, dict(tol=1e-8, max_steps=300, log_every=100, keep_thetas=True)),
    (12, "cubic", 3, 5, 6, True, 1.0, dict(max_steps=100, log_every=1, with_lambda_min=True)),
    (13, "tanh", 3, 4, 5, True, 0.7, dict(max_steps=100, log_every=3)),
    (14, "softplus", 2, 3, 4, False, 0.9, dict(max_steps=100, log_every=3, tol=0.0)),
    (15, "sinh", 3, 3, 5, False, 50.0, dict(max_steps=500)),  # diverges: StepSizeError
    (16, "sinh", 3, 3, 10, False, 10.0, dict(max_steps=200)),  # diverges: StepSizeError
    (17, "sinh", 3, 3, 10, False, 2.5, dict(max_steps=200, log_every=1)),  # just above 2/λ_max
    (18, "cube", 2, 4, 3, False, 1.9, dict(max_steps=200, log_every=1)),
]


@pytest.mark.parametrize("case", FIXED, ids=[f"{c[1]}-{c[0]}" for c in FIXED])
def test_fixed_step_descent_is_bit_identical(case):
    seed, name, n, d, m, with_a, factor, kw = case
    X, y, a, theta0 = _problem(seed, name, n, d, m, with_a)
    h = factor / riemannian.lambda_max(theta0, X, name, a)
    _compare(theta0, X, y, name, a=a, step=h, **kw)


def test_diverging_steps_raise_the_same_errors():
    kinds = set()
    for seed in range(20, 26):
        X, y, a, theta0 = _problem(seed, "sinh", 3, 3, 10)
        lmax = riemannian.lambda_max(theta0, X, "sinh")
        for factor in (3.0, 10.0, 50.0, 1e3):
            kind, val = _compare(theta0, X, y, "sinh", step=factor / lmax, max_steps=300, log_every=1)
            kinds.add(kind)
    assert "err" in kinds


def test_start_off_the_manifold_and_failed_retractions():
    gen = torch.Generator().manual_seed(30)
    X, y = twolayer.uniform_data(3, 3, gen)
    theta = torch.randn(10, 3, generator=gen, dtype=torch.float64)  # off M: descent retracts it first
    _compare(theta, X, y, "sinh", max_steps=100, log_every=5)
    _compare(theta, X, 0.3 * y, "tanh", max_steps=100, log_every=5)
    _compare(theta, X, 5.0 * y, "tanh", max_steps=10)  # labels out of reach of tanh: retraction fails
    _compare(30 * theta, X, y, "sinh", max_steps=10)  # overflow on the way
    _compare(torch.zeros(4, 3, dtype=torch.float64), X, y, "cube", max_steps=10)  # φ'(0) = 0: rank deficient
    X2 = X.clone()
    X2[2] = X2[0] + X2[1]
    _compare(theta, X2, y, "sinh", max_steps=10)  # dependent data


def test_descent_in_float32_is_bit_identical():
    gen = torch.Generator().manual_seed(40)
    X, y = twolayer.uniform_data(3, 3, gen, dtype=torch.float32)
    theta = 0.5 * torch.randn(10, 3, generator=gen, dtype=torch.float32)
    _compare(theta, X, y, "sinh", max_steps=50, log_every=5, tol=1e-5)
    _compare(theta, X, y, "sinh", step=0.01, max_steps=50, log_every=5, tol=1e-5)


@pytest.mark.parametrize("name", ["sinh", "cubic", "cube", "tanh", "softplus"])
def test_retract_is_bit_identical(name):
    gen = torch.Generator().manual_seed(50)
    X, y = twolayer.uniform_data(3, 4, gen)
    y = 0.3 * y if name == "tanh" else y
    act = get_activation(name)
    for std in (0.1, 0.5, 1.0, 3.0, 10.0):
        theta = std * torch.randn(6, 4, generator=gen, dtype=torch.float64)
        for max_iter in (0, 1, 3, 60):
            new = _outcome(lambda: manifold._retract(theta, X, y, act, None, 1e-12, max_iter))
            ref = _outcome(lambda: _Ref._retract(theta, X, y, act, None, 1e-12, max_iter))
            assert new[0] == ref[0]
            if ref[0] == "err":
                assert new[1] == ref[1]
            else:
                assert _same_tensor(new[1], ref[1]) and new[1] is not theta


def test_check_gram_is_identical():
    gen = torch.Generator().manual_seed(60)
    B = torch.randn(3, 3, generator=gen, dtype=torch.float64)
    cases = [B @ B.T, torch.diag(torch.tensor([1.0, 1.0, 1e-15], dtype=torch.float64)),
             torch.diag(torch.tensor([1e-14, 1.0, 1.0], dtype=torch.float64)),
             torch.diag(torch.tensor([0.0, 0.0, 0.0], dtype=torch.float64)),
             torch.diag(torch.tensor([-1.0, 1.0, 2.0], dtype=torch.float64)),
             torch.tensor([[1.0, float("nan")], [float("nan"), 1.0]], dtype=torch.float64),
             torch.tensor([[1.0, float("inf")], [float("inf"), 1.0]], dtype=torch.float64),
             torch.tensor([[1e308, 0.0], [0.0, 1e308]], dtype=torch.float64) * 10,
             torch.tensor([[2.0]], dtype=torch.float64), torch.tensor([[1e-320]], dtype=torch.float64),
             (B @ B.T).float()]
    for G in cases:
        for rtol in (0.0, 1e-14, 1e-3):
            new = _outcome(lambda: manifold._check_gram(G, rtol))
            ref = _outcome(lambda: _Ref._check_gram(G, rtol))
            assert new[0] == ref[0]
            assert new[1] == ref[1] if ref[0] == "err" else new[1] is G


def test_parts_grad_and_sharpness_are_bit_identical():
    for seed, name, with_a in [(70, "sinh", False), (71, "cubic", True), (72, "tanh", True)]:
        X, y, a, theta = _problem(seed, name, 3, 4, 5, with_a, labels=0.3 if name == "tanh" else 1.0)
        act = get_activation(name)
        g_new, lam_new = riemannian._grad(riemannian._parts(theta, X, act, a), X)
        g_ref, lam_ref = _Ref._grad(_Ref._parts(theta, X, act, a), X)
        assert _same_tensor(g_new, g_ref) and _same_tensor(lam_new, lam_ref)
        assert _same_tensor(twolayer._sharpness(theta, X, act, a), _Ref._sharpness(theta, X, act, a))
        assert _same_tensor(twolayer._forward(theta, X, act, a), _Ref._forward(theta, X, act, a))
        assert _same_tensor(twolayer._jacobian(theta, X, act, a), _Ref._jacobian(theta, X, act, a))
        for span_only in (False, True):
            assert _bits([riemannian._lambda_min(theta, X, act, a, span_only)]) == \
                _bits([_Ref._lambda_min(theta, X, act, a, span_only)])
        assert _bits([riemannian._lambda_max(theta, X, act, a)]) == _bits([_Ref._lambda_max(theta, X, act, a)])


def test_convergence_and_round_off_floor_are_bit_identical():
    gen = torch.Generator().manual_seed(80)
    X, y = twolayer.uniform_data(3, 3, gen)
    X = X + 0.5 * torch.eye(3, dtype=torch.float64)  # well conditioned: converges in a few hundred steps
    theta0 = manifold.random_point(X, y, "sinh", 6, gen)
    assert _compare(theta0, X, y, "sinh", tol=1e-12, max_steps=3000, log_every=50)[1].converged
    _compare(theta0, X, y, "sinh", tol=0.0, max_steps=1500, log_every=50)  # steps at the round-off floor of F
    _compare(theta0, X, y, "sinh", tol=1e-15, max_steps=1500, log_every=50, with_lambda_min=True)
    lmax = riemannian.lambda_max(theta0, X, "sinh")
    assert _compare(theta0, X, y, "sinh", step=2.1 / lmax, max_steps=2000, log_every=10)[1].converged
