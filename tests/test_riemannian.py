"""Lemma 4.5 closed forms against autograd and finite differences; Riemannian GD (SPEC §A.6)."""
import pytest
import torch

from flatbias import manifold, optimum, riemannian, twolayer

CASES = [("sinh", 3, 3, 10, False), ("cubic", 3, 5, 4, True), ("cube", 2, 4, 3, False), ("tanh", 3, 4, 5, True),
         ("softplus", 2, 3, 4, False)]  # (activation, n, d, m, random second layer)


def _problem(gen, name, n, d, m, with_a):
    X, y = twolayer.uniform_data(n, d, gen)
    if name == "tanh":
        y = 0.3 * y
    a = (0.5 + torch.rand(m, generator=gen)) * torch.where(torch.rand(m, generator=gen) < 0.3, -1.0, 1.0) \
        if with_a else None
    if a is not None and name == "tanh":
        a = a.abs()
    theta = manifold.random_point(X, y, name, m, gen, a=a)
    return X, y, a, theta


def _lagrangian_hessian(theta, X, act, a, lam):
    m, d = theta.shape

    def lagr(t):
        t = t.reshape(m, d)
        return twolayer.sharpness(t, X, act, a) - lam @ twolayer.forward(t, X, act, a)
    return torch.func.hessian(lagr)(theta.reshape(-1))


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_grad_and_multipliers_match_autograd(gen, case):
    X, y, a, theta = _problem(gen, *case)
    egrad = torch.func.grad(lambda t: twolayer.sharpness(t, X, case[0], a))(theta)
    torch.testing.assert_close(riemannian.euclidean_grad(theta, X, case[0], a), egrad)
    J = twolayer.jacobian(theta, X, case[0], a)
    lam = torch.linalg.lstsq(J.T, egrad.reshape(-1, 1)).solution[:, 0]
    torch.testing.assert_close(riemannian.multipliers(theta, X, case[0], a), lam)
    P = manifold.tangent_projector(theta, X, case[0], a)
    g = riemannian.grad(theta, X, case[0], a)
    torch.testing.assert_close(g.reshape(-1), P @ egrad.reshape(-1))
    assert float((J @ g.reshape(-1)).abs().max()) < 1e-10 * float(g.norm())  # tangent


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_hess_vec_matches_projected_lagrangian_autograd(gen, case):
    X, y, a, theta = _problem(gen, *case)
    lam = riemannian.multipliers(theta, X, case[0], a)
    P = manifold.tangent_projector(theta, X, case[0], a)
    H = P @ _lagrangian_hessian(theta, X, case[0], a, lam) @ P
    for _ in range(3):
        v = torch.randn(theta.shape, generator=gen)
        torch.testing.assert_close(riemannian.hess_vec(theta, v, X, case[0], a).reshape(-1), H @ v.reshape(-1))
    w = riemannian.hessian_weights(theta, X, case[0], a)
    v = manifold.project_tangent(theta, torch.randn(theta.shape, generator=gen), X, case[0], a)
    quad = (w * (X @ v.T) ** 2).sum()
    torch.testing.assert_close(quad, v.reshape(-1) @ H @ v.reshape(-1))


@pytest.mark.parametrize("case", CASES[:3], ids=[c[0] for c in CASES[:3]])
def test_hess_quadratic_form_matches_second_difference_along_retraction(gen, case):
    X, y, a, theta = _problem(gen, *case)
    act = case[0]
    F = lambda t: float(twolayer.sharpness(t, X, act, a))  # noqa: E731
    for _ in range(2):
        v = manifold.project_tangent(theta, torch.randn(theta.shape, generator=gen), X, act, a)
        v = v / v.norm()
        quad = float((v * riemannian.hess_vec(theta, v, X, act, a)).sum())
        t = 5e-3
        fd = (F(manifold.retract(theta + t * v, X, y, act, a)) - 2 * F(theta)
              + F(manifold.retract(theta - t * v, X, y, act, a))) / t**2
        assert abs(fd - quad) <= 1e-4 * max(abs(quad), float(riemannian.hess_matrix(theta, X, act, a).abs().max()))


@pytest.mark.parametrize("case", [CASES[0], CASES[1], CASES[3]], ids=["sinh", "cubic", "tanh"])
def test_hess_matrix_in_tangent_basis(gen, case):
    X, y, a, theta = _problem(gen, *case)
    act, (m, d), n = case[0], theta.shape, X.shape[0]
    B = riemannian.tangent_basis(theta, X, act, a)
    assert B.shape == (m * d, m * d - n)
    torch.testing.assert_close(B.T @ B, torch.eye(m * d - n))
    J = twolayer.jacobian(theta, X, act, a)
    assert float((J @ B).abs().max()) < 1e-10
    H = riemannian.hess_matrix(theta, X, act, a)
    HB = torch.stack([riemannian.hess_vec(theta, B[:, k].reshape(m, d), X, act, a).reshape(-1)
                      for k in range(B.shape[1])], 1)
    torch.testing.assert_close(H, B.T @ HB)
    ev = torch.linalg.eigvalsh(H)
    assert riemannian.lambda_min(theta, X, act, a) == pytest.approx(float(ev[0]), abs=1e-10)
    span = riemannian.hess_matrix(theta, X, act, a, span_only=True)
    assert span.shape == (m * n - n, m * n - n)
    if d > n:  # directions ⊥ span{x_i} are flat: m(d − n) zero eigenvalues, λ_min ≤ 0
        assert int((ev.abs() < 1e-10).sum()) >= m * (d - n)
        assert riemannian.lambda_min(theta, X, act, a) <= 0.0


def test_descent_reaches_closed_form_optimum(gen):
    X, y = twolayer.uniform_data(3, 3, gen)
    X = X + 0.5 * torch.eye(3)  # well-conditioned draw
    theta0 = manifold.random_point(X, y, "sinh", 6, gen)
    tr = riemannian.descent(theta0, X, y, "sinh", tol=1e-9, max_steps=20000, log_every=50, with_lambda_min=True)
    assert tr.converged
    assert optimum.distance_to_optimum(tr.theta, X, y, "sinh") < 1e-7
    Fs = optimum.F_star(X, y, "sinh", 6)
    assert tr.F[-1] - Fs <= 1e-9 * Fs
    assert all(b <= a_ + 1e-12 * a_ for a_, b in zip(tr.F, tr.F[1:]))  # monotone (Armijo)
    assert tr.lambda_min[-1] > 0
    assert tr.t[-1] > 0 and len(tr.t) == len(tr.F) == len(tr.grad_norm) == len(tr.lambda_min)
    torch.testing.assert_close(tr.theta, optimum.global_optimum(theta0, X, y, "sinh"), atol=1e-7, rtol=0)


def test_fixed_step_descent_keeps_orthogonal_part(gen):
    X, y = twolayer.uniform_data(2, 4, gen)
    theta0 = manifold.random_point(X, y, "cubic", 4, gen)
    h = 0.5 / riemannian.lambda_max(theta0, X, "cubic")
    tr = riemannian.descent(theta0, X, y, "cubic", step=h, tol=1e-8, max_steps=3000, keep_thetas=True, log_every=100)
    Pperp = torch.eye(4) - X.T @ torch.linalg.solve(X @ X.T, X)
    assert float(((tr.theta - theta0) @ Pperp).abs().max()) < 1e-10
    assert tr.t[1] == pytest.approx(100 * h)
    assert len(tr.thetas) == len(tr.t)


def test_diverging_step_is_clear_error(gen):
    X, y = twolayer.uniform_data(3, 3, gen)
    theta0 = manifold.random_point(X, y, "sinh", 5, gen)
    lmax = riemannian.lambda_max(theta0, X, "sinh")
    with pytest.raises(riemannian.StepSizeError, match="diverges with step"):
        riemannian.descent(theta0, X, y, "sinh", step=50 / lmax, max_steps=500)
    with pytest.raises(ValueError, match="positive finite"):
        riemannian.descent(theta0, X, y, "sinh", step=-1.0)


def test_rank_deficient_is_clear_error(gen):
    X, y = twolayer.uniform_data(3, 4, gen)
    theta = manifold.random_point(X, y, "sinh", 4, gen)
    X2 = X.clone()
    X2[2] = X2[0] + X2[1]  # dependent data: J may keep rank n, but Assumption 3.2 fails
    with pytest.raises(manifold.RankDeficientError, match="not linearly independent"):
        riemannian.descent(theta, X2, y, "sinh")
    with pytest.raises(manifold.RankDeficientError, match="not linearly independent"):
        riemannian.hess_matrix(theta, X2, "sinh")
    X2[2] = X2[0]  # a repeated point: J has two equal rows
    with pytest.raises(manifold.RankDeficientError, match="rank < n"):
        riemannian.grad(theta, X2, "sinh")
    with pytest.raises(manifold.RankDeficientError, match="cube"):
        riemannian.grad(torch.zeros(4, 4), X, "cube")
