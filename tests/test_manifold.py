import pytest
import torch

from flatbias import manifold, twolayer


def test_retraction_lands_on_manifold(gen):
    X, y = twolayer.uniform_data(3, 5, gen)
    theta = manifold.random_point(X, y, "sinh", 10, gen)
    assert float(manifold.constraints(theta, X, y, "sinh").abs().max()) < 1e-10
    J = twolayer.jacobian(theta, X, "sinh")
    assert int(torch.linalg.matrix_rank(J)) == 3


def test_retraction_is_second_order(gen):
    """R(θ + t v) − (θ + t v) = O(t²) for tangent v: a retraction in the sense of Absil et al."""
    X, y = twolayer.uniform_data(3, 4, gen)
    theta = manifold.random_point(X, y, "cubic", 5, gen)
    v = manifold.project_tangent(theta, torch.randn(theta.shape, generator=gen), X, "cubic")
    v = v / v.norm()
    errs = [float((manifold.retract(theta + t * v, X, y, "cubic") - (theta + t * v)).norm()) for t in (1e-2, 5e-3)]
    assert 3.5 < errs[0] / errs[1] < 4.5  # halving t quarters the correction


def test_projector(gen):
    X, y = twolayer.uniform_data(3, 4, gen)
    theta = manifold.random_point(X, y, "sinh", 5, gen)
    P = manifold.tangent_projector(theta, X, "sinh")
    torch.testing.assert_close(P @ P, P)
    torch.testing.assert_close(P, P.T)
    J = twolayer.jacobian(theta, X, "sinh")
    assert float((J @ P).abs().max()) < 1e-12
    assert round(float(torch.trace(P))) == 5 * 4 - 3  # dim M = md − n
    v = torch.randn(theta.shape, generator=gen)
    torch.testing.assert_close(manifold.project_tangent(theta, v, X, "sinh").reshape(-1), P @ v.reshape(-1))


def test_dependent_data_is_clear_error(gen):
    X, y = twolayer.uniform_data(3, 5, gen)
    X[2] = X[0] + X[1]
    with pytest.raises(manifold.RankDeficientError, match="not linearly independent"):
        manifold.random_point(X, y, "sinh", 4, gen)
    Xwide, ywide = twolayer.uniform_data(5, 3, gen)  # n > d
    with pytest.raises(manifold.RankDeficientError, match="n ≤ d"):
        manifold.check_data(Xwide)


def test_singular_jacobian_is_clear_error(gen):
    X, y = twolayer.uniform_data(2, 3, gen)
    with pytest.raises(manifold.RankDeficientError, match="cube activation"):
        manifold.retract(torch.zeros(4, 3), X, y, "cube")  # φ'(0) = 0: J = 0


def test_retraction_failure_is_clear_error(gen):
    X, y = twolayer.uniform_data(2, 3, gen)
    theta = torch.randn(4, 3, generator=gen)
    with pytest.raises(manifold.RetractionError, match="did not converge"):
        manifold.retract(theta, X, y, "sinh", max_iter=1, tol=1e-300)
    with pytest.raises((manifold.RetractionError, manifold.RankDeficientError)):
        manifold.retract(theta, X, 5 * torch.ones(2), "tanh")  # labels outside m·range(tanh)


def test_from_preactivations_prescribes_z_and_keeps_the_orthogonal_part(gen):
    n, d, m = 3, 5, 4
    X = torch.rand(n, d, generator=gen)
    Z = torch.randn(n, m, generator=gen)
    theta = torch.randn(m, d, generator=gen)
    th = manifold.from_preactivations(Z, X, theta)
    torch.testing.assert_close(X @ th.T, Z, rtol=0, atol=1e-12)
    Pperp = torch.eye(d) - X.T @ torch.linalg.solve(X @ X.T, X)
    torch.testing.assert_close(th @ Pperp, theta @ Pperp, rtol=0, atol=1e-12)
    th0 = manifold.from_preactivations(Z, X)  # minimum norm: no component ⊥ span{x_i}
    torch.testing.assert_close(th0 @ Pperp, torch.zeros(m, d), rtol=0, atol=1e-12)
    # a point of M for the cube with all pre-activations positive, without a retraction
    y = torch.rand(n, generator=gen)
    u = 0.5 + torch.rand(n, m, generator=gen)
    Zp = u * (y[:, None] / (u**3).sum(1, keepdim=True)) ** (1 / 3)
    assert float(manifold.constraints(manifold.from_preactivations(Zp, X), X, y, "cube").abs().max()) < 1e-14
