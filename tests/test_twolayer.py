import pytest
import torch

from flatbias import manifold, twolayer
from flatbias.activations import ACTIVATIONS

SIZES = [(3, 5, 4), (2, 2, 7), (4, 6, 3)]  # (n, d, m)


def _problem(gen, n, d, m, name):
    X, y = twolayer.uniform_data(n, d, gen)
    if name == "tanh":
        y = 0.5 * y
    theta = manifold.random_point(X, y, name, m, gen)
    return X, y, theta


def test_forward_matches_loop(gen):
    X, y = twolayer.uniform_data(3, 4, gen)
    theta, a = torch.randn(5, 4, generator=gen), torch.randn(5, generator=gen)
    f = twolayer.forward(theta, X, "sinh", a)
    loop = torch.tensor([sum(a[j] * torch.sinh(theta[j] @ X[i]) for j in range(5)) for i in range(3)])
    torch.testing.assert_close(f, loop)


@pytest.mark.parametrize("name", ["sinh", "cubic", "tanh"])
def test_jacobian_matches_autograd(gen, name):
    X, _ = twolayer.uniform_data(3, 4, gen)
    theta, a = torch.randn(5, 4, generator=gen), torch.randn(5, generator=gen)
    J = twolayer.jacobian(theta, X, name, a)
    J_ad = torch.func.jacrev(lambda t: twolayer.forward(t.reshape(5, 4), X, name, a))(theta.reshape(-1))
    torch.testing.assert_close(J, J_ad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
@pytest.mark.parametrize("n,d,m", SIZES)
def test_lemma_4_2_trace_on_manifold(gen, name, n, d, m):
    """On M: tr ∇²L = 2 Σ_i ‖x_i‖² Σ_j φ'(θ_jᵀx_i)² (Lemma 4.2/4.3), against the dense autograd Hessian."""
    X, y, theta = _problem(gen, n, d, m, name)
    closed = 2 * twolayer.sharpness(theta, X, name)
    exact = twolayer.trace_hessian_autograd(theta, X, y, name)
    assert abs(float(closed - exact)) <= 1e-10 * abs(float(exact))
    assert abs(float(twolayer.residual_term(theta, X, y, name))) < 1e-9 * float(exact)


@pytest.mark.parametrize("name", ["sinh", "cubic", "cube"])
def test_trace_off_manifold_includes_residual_term(gen, name):
    X, y, theta = _problem(gen, 3, 5, 4, name)
    a = torch.randn(4, generator=gen)
    off = theta + 0.3 * torch.randn(theta.shape, generator=gen)
    exact = twolayer.trace_hessian_autograd(off, X, y, name, a)
    torch.testing.assert_close(twolayer.trace_hessian(off, X, y, name, a), exact, rtol=1e-11, atol=1e-11)
    # off M the residual term is what separates the two: 2F alone is wrong
    gap = exact - 2 * twolayer.sharpness(off, X, name, a)
    torch.testing.assert_close(gap, twolayer.residual_term(off, X, y, name, a), rtol=1e-10, atol=1e-10)
    assert abs(float(gap)) > 1e-3


def test_sharpness_is_sum_of_squared_gradient_norms(gen):
    X, y = twolayer.uniform_data(3, 4, gen)
    theta, a = torch.randn(6, 4, generator=gen), torch.randn(6, generator=gen)
    J = twolayer.jacobian(theta, X, "cubic", a)
    torch.testing.assert_close(twolayer.sharpness(theta, X, "cubic", a), (J**2).sum())


def test_shape_errors(gen):
    X, _ = twolayer.uniform_data(3, 4, gen)
    with pytest.raises(ValueError, match="same d"):
        twolayer.forward(torch.zeros(5, 3), X, "sinh")
    with pytest.raises(ValueError, match=r"shape \(5,\)"):
        twolayer.forward(torch.zeros(5, 4), X, "sinh", torch.ones(4))
    with pytest.raises(ValueError, match="unknown activation"):
        twolayer.forward(torch.zeros(5, 4), X, "relu")


def test_conditioned_data_rejects_ill_conditioned_draws():
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    X, y = twolayer.conditioned_uniform_data(3, 3, g1, min_eig=0.05)
    assert twolayer.gram_min_eig(X) >= 0.05
    while True:  # the same stream, by hand: the first draw that passes
        X2, y2 = twolayer.uniform_data(3, 3, g2)
        if float(torch.linalg.eigvalsh(X2 @ X2.T)[0]) >= 0.05:
            break
    assert torch.equal(X, X2) and torch.equal(y, y2)
    with pytest.raises(ValueError, match="singular"):
        twolayer.conditioned_uniform_data(5, 3, g1, min_eig=0.01)
    with pytest.raises(RuntimeError, match="lower min_eig"):
        twolayer.conditioned_uniform_data(3, 3, g1, min_eig=10.0, max_tries=20)
