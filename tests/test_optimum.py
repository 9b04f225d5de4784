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
