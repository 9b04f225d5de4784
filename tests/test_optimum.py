"""Theorem 3.3: the closed-form optimum is on M, stationary, rank one, and below F at random points of M."""
import pytest
import torch

from flatbias import manifold, optimum, riemannian, twolayer


@pytest.mark.parametrize("act", ["sinh", "cubic", "cube"])
def test_closed_form_is_stationary_rank_one_and_minimal(gen, act):
    n, d, m = 3, 5, 6
    X, y = twolayer.uniform_data(n, d, gen)
    theta0 = torch.randn(m, d, generator=gen) / d**0.5
    ts = optimum.global_optimum(theta0, X, y, act)
    assert float(manifold.constraints(ts, X, y, act).abs().max()) < 1e-12  # on M
    assert float(riemannian.grad(ts, X, act).norm()) < 1e-10  # stationary
    s = torch.linalg.svdvals(twolayer.feature_matrix(ts, X, act))
    assert float(s[1] / s[0]) < 1e-12  # rank one
    Pperp = torch.eye(d) - X.T @ torch.linalg.solve(X @ X.T, X)
    torch.testing.assert_close(ts @ Pperp, theta0 @ Pperp)  # orthogonal part kept
    Fs = optimum.F_star(X, y, act, m)
    assert float(twolayer.sharpness(ts, X, act)) == pytest.approx(Fs, rel=1e-12)
    expected = m * float(((X**2).sum(1) * twolayer.get_activation(act).d1(twolayer.get_activation(act).inv(y / m)) ** 2).sum())
    assert Fs == pytest.approx(expected, rel=1e-12)
    for _ in range(10):
        th = manifold.random_point(X, y, act, m, gen)
        assert float(twolayer.sharpness(th, X, act)) >= Fs


@pytest.mark.parametrize("act", ["sinh", "cubic", "cube"])
def test_general_second_layer(gen, act):
    n, d, m = 3, 4, 5
    X, y = twolayer.uniform_data(n, d, gen)
    a = (0.5 + torch.rand(m, generator=gen)) * torch.tensor([1.0, -1.0, 1.0, 1.0, -1.0])
    theta0 = torch.randn(m, d, generator=gen)
    ts = optimum.global_optimum(theta0, X, y, act, a)
    assert float(manifold.constraints(ts, X, y, act, a).abs().max()) < 1e-10
    assert float(riemannian.grad(ts, X, act, a).norm()) < 1e-8
    Z = twolayer.preactivations(ts, X)
    img = twolayer.get_activation(act).d2(Z) * a  # a_j φ''(z_ij): rank one (SPEC §A.2)
    s = torch.linalg.svdvals(img)
    assert float(s[1] / s[0]) < 1e-10
    if act == "sinh":  # closed form: z_ij = asinh(y_i/(m a_j))
        torch.testing.assert_close(Z, torch.asinh(y[:, None] / (m * a)))
    Fs = optimum.F_star(X, y, act, m, a)
    for _ in range(5):
        th = manifold.random_point(X, y, act, m, gen, a=a)
        assert float(twolayer.sharpness(th, X, act, a)) >= Fs


def test_outside_assumption_warns_and_bad_input_errors(gen):
    X, y = twolayer.uniform_data(2, 3, gen)
    with pytest.warns(optimum.AssumptionWarning, match="outside Assumption 3.1"):
        optimum.F_star(X, y, "softplus", 4)
    with pytest.warns(optimum.AssumptionWarning), pytest.raises(ValueError, match="φ⁻¹ is defined"):
        optimum.F_star(X, 10 * y + 5, "tanh", 4)  # y/m outside (−1, 1)
    with pytest.raises(ValueError, match="non-zero"):
        optimum.F_star(X, y, "sinh", 3, torch.tensor([1.0, 0.0, 2.0]))
    with pytest.raises(manifold.RankDeficientError, match="point mass at 0"):
        optimum.F_star(X, torch.tensor([0.0, 0.5]), "cube", 3)
    X2 = torch.cat([X, X[:1]])
    with pytest.raises(manifold.RankDeficientError):
        optimum.global_optimum(torch.randn(4, 3, generator=gen), X2, torch.rand(3, generator=gen), "sinh")


def _lagrangian_hessian(theta, X, lam):
    m, d = theta.shape
    lagr = lambda t: twolayer.sharpness(t.reshape(m, d), X, "cube") - lam @ twolayer.forward(t.reshape(m, d), X, "cube")  # noqa: E731
    return torch.func.hessian(lagr)(theta.reshape(-1))


@pytest.mark.parametrize("d", [3, 5])
def test_cube_stationary_points_off_the_optimum(gen, d):
    """φ = z³: points with some z_ij = 0 are stationary, not optimal, with a PSD Hessian (our derivation)."""
    n, m = 3, 6
    X, y = twolayer.uniform_data(n, d, gen)
    S = torch.ones(n, m, dtype=torch.bool)
    S[0, 1] = S[2, 3] = S[2, 4] = False
    theta0 = torch.randn(m, d, generator=gen)
    th = optimum.cube_stationary_point(theta0, X, y, S)
    Z = twolayer.preactivations(th, X)
    assert float(manifold.constraints(th, X, y, "cube").abs().max()) < 1e-14  # on M
    assert float(Z[~S].abs().max()) < 1e-14
    # stationary: autograd gradient of F lies in the normal space (dense projector), and the closed form agrees
    t = th.clone().requires_grad_(True)
    gF = torch.autograd.grad(twolayer.sharpness(t, X, "cube"), t)[0]
    P = manifold.tangent_projector(th, X, "cube")
    assert float((P @ gF.reshape(-1)).norm() / gF.norm()) < 1e-13
    assert float(riemannian.grad(th, X, "cube").norm() / gF.norm()) < 1e-13
    lam = optimum.cube_multipliers(X, y, S)
    torch.testing.assert_close(riemannian.multipliers(th, X, "cube"), lam, rtol=1e-12, atol=0)
    # value: closed form, brute force, above F*, and equal to F* for a full support
    FS = optimum.cube_stationary_value(X, y, S)
    assert float(twolayer.sharpness(th, X, "cube")) == pytest.approx(FS, rel=1e-13)
    brute = 9 * sum(float((X[i] ** 2).sum()) * S[i].sum().item() * (float(y[i]) / S[i].sum().item()) ** (4 / 3)
                    for i in range(n))
    assert FS == pytest.approx(brute, rel=1e-13)
    assert FS > optimum.F_star(X, y, "cube", m) * (1 + 1e-3)
    full = torch.ones(n, m, dtype=torch.bool)
    assert optimum.cube_stationary_value(X, y, full) == pytest.approx(optimum.F_star(X, y, "cube", m), rel=1e-13)
    torch.testing.assert_close(optimum.cube_stationary_point(theta0, X, y, full),
                               optimum.global_optimum(theta0, X, y, "cube"), rtol=0, atol=1e-12)
    # Riemannian Hessian: closed form = projected autograd Lagrangian Hessian; PSD with one zero per z_ij = 0 (+ ⊥)
    B = riemannian.tangent_basis(th, X, "cube")
    H_auto = B.T @ _lagrangian_hessian(th, X, lam) @ B
    torch.testing.assert_close(riemannian.hess_matrix(th, X, "cube"), H_auto, rtol=0, atol=1e-10)
    ev = torch.linalg.eigvalsh(H_auto)
    assert float(ev[0]) > -1e-10 * float(ev[-1])
    assert int((ev.abs() < 1e-10 * ev[-1]).sum()) == int((~S).sum()) + m * (d - n)
    # third order: moving z_01 to t along M changes F by −λ_0 t³ + O(t⁴): a saddle the Hessian does not see
    e = torch.zeros(n, m)
    e[0, 1] = 1.0
    v = manifold.from_preactivations(e, X)
    F0 = float(twolayer.sharpness(th, X, "cube"))
    for s in (1e-3, -1e-3):
        Ft = float(twolayer.sharpness(manifold.retract(th + s * v, X, y, "cube"), X, "cube"))
        assert (Ft - F0) / (-float(lam[0]) * s**3) == pytest.approx(1.0, abs=5e-3)


def test_cube_slow_velocity_matches_the_gradient_flow(gen):
    """Near a cube stationary point, the small pre-activations move as cube_slow_velocity predicts."""
    n, d, m = 3, 3, 5
    X, y = twolayer.conditioned_uniform_data(n, d, gen, 0.05)  # fast modes much faster than the slow one
    S = torch.ones(n, m, dtype=torch.bool)
    S[1, 2] = False
    th = optimum.cube_stationary_point(torch.zeros(m, d), X, y, S)
    e = torch.zeros(n, m)
    e[1, 2] = -0.02
    th = manifold.retract(th + manifold.from_preactivations(e, X), X, y, "cube")
    tr = riemannian.descent(th, X, y, "cube", max_steps=600, log_every=100, keep_thetas=True)
    a, b = tr.thetas[-2], tr.thetas[-1]
    z_a, z_b = (float(twolayer.preactivations(t, X)[1, 2]) for t in (a, b))
    vel = (z_b - z_a) / (tr.t[-1] - tr.t[-2])
    pred = float(optimum.cube_slow_velocity(0.5 * (a + b), X, y, S)[1, 2])
    assert -0.02 < z_a < z_b < 0 and pred > 0  # creeping up to 0 from below
    assert vel / pred == pytest.approx(1.0, abs=0.1)
