"""Paper 2's two-layer ReLU net, parity data and constructions (SPEC §B.7)."""

import pytest
import torch

from flatbias import relu_net as rn


def test_flat_layout_matches_module_and_autograd_forward(gen):
    d, h = 6, 9
    model = rn.TwoLayerReLU(d, h)
    X, _ = rn.parity_data(11, d, gen)
    theta = model.flat()
    assert theta.numel() == rn.n_params(d, h) == h * d + 2 * h
    assert torch.allclose(model(X), rn.forward(theta, X, h=h), atol=1e-14)
    # load_flat is the inverse of flat, and the module sees the new parameters
    theta2 = rn.init_flat(d, h, gen)
    model.load_flat(theta2)
    assert torch.equal(model.flat(), theta2)
    assert torch.allclose(model(X), rn.forward(theta2, X, h=h), atol=1e-14)
    assert rn.n_params(30, 120) == 3840


def test_parity_data():
    X, y = rn.parity_data(500, 7, torch.Generator().manual_seed(0))
    assert set(X.unique().tolist()) == {-1.0, 1.0}
    assert torch.equal(y, X[:, 0] * X[:, 1])
    assert 0.3 < float((X == 1).double().mean()) < 0.7


@pytest.mark.parametrize("C", [2, 3, 4, 6])
def test_generalizing_solution_fits_the_whole_cube(C, gen):
    d, h = 8, 70
    theta = rn.generalizing_solution(C, d, h)
    X, y = rn.parity_data(2000, d, gen)
    assert torch.equal(rn.forward(theta, X, h=h), y) or torch.allclose(rn.forward(theta, X, h=h), y, atol=1e-12)
    Z = rn.preactivations(theta, X, h=h)
    r = rn.r_equal_flatness(d)
    # exactly one unit fires on every cube point, with pre-activation r; the others are at most -r (or exactly 0)
    assert torch.equal((Z > 0).sum(1), torch.ones(2000, dtype=torch.long))
    assert torch.allclose(Z.max(1).values, torch.full((2000,), r))
    assert float(Z[Z > 0].min()) == pytest.approx(r)
    active = Z[:, : 2**C]
    assert float(active[active < r - 1e-9].max()) <= -r + 1e-9
    # only the first C inputs are used
    used = rn.used_inputs(theta, d, h=h)
    assert torch.all(used[:C] > 0) and torch.all(used[C:] == 0)


def test_generalizing_unit_order_matches_binary_repr():
    import numpy as np

    C, d, h = 3, 5, 8
    W1, b1, W2 = rn.unflatten(rn.generalizing_solution(C, d, h, r=2.0), d, h)
    for k in range(2**C):
        a = [int(c) for c in np.binary_repr(k, width=C)]
        assert W1[k, :C].tolist() == [2.0 * (-1) ** ai for ai in a]
        assert float(W2[k]) == (-1) ** (a[0] + a[1]) / 2.0
        assert float(b1[k]) == -2.0 * (C - 1)


def test_memorizing_solution_fits_train_and_is_zero_elsewhere(gen):
    d, n, h = 12, 40, 45
    X, y = rn.parity_data(n, d, gen)
    theta = rn.memorizing_solution(X, y, h)
    assert torch.allclose(rn.forward(theta, X, h=h), y, atol=1e-12)
    Xf, _ = rn.parity_data(500, d, gen)
    fresh = ~(Xf[:, None, :] == X[None, :, :]).all(-1).any(1)
    assert fresh.sum() > 400
    assert torch.all(rn.forward(theta, Xf[fresh], h=h) == 0)
    assert torch.equal((rn.preactivations(theta, X, h=h) > 0).sum(1), torch.ones(n, dtype=torch.long))


def test_bad_inputs_are_clear_errors(gen):
    with pytest.raises(ValueError, match="C = 9 > d = 8"):
        rn.generalizing_solution(9, 8, 1000)
    with pytest.raises(ValueError, match="C must be an integer"):
        rn.generalizing_solution(1, 8, 10)
    with pytest.raises(ValueError, match="too few"):
        rn.generalizing_solution(4, 8, 15)
    X, y = rn.parity_data(10, 6, gen)
    with pytest.raises(ValueError, match="h ≥ n"):
        rn.memorizing_solution(X, y, 9)
    with pytest.raises(ValueError, match="repeated"):
        rn.memorizing_solution(torch.cat([X, X[:1]]), torch.cat([y, y[:1]]), 20)
    with pytest.raises(ValueError, match="h·\\(d\\+2\\)"):
        rn.unflatten(torch.zeros(13), 3, 3)
    with pytest.raises(ValueError, match="has"):
        rn.TwoLayerReLU(3, 4).load_flat(torch.zeros(7))
