"""Batched nonlinear runs near a ReLU minimum and their linear prediction (flatbias.linearization)."""
import pytest
import torch

from flatbias import linearization as L
from flatbias import relu_hessian, relu_net, stability, train_relu
from flatbias import validate as vd

D, H, N = 6, 8, 8


@pytest.fixture
def net(gen):
    X, y = relu_net.parity_data(N, D, gen)
    theta = relu_net.generalizing_solution(2, D, H)
    return theta, X, y, relu_hessian.per_sample_gradients(theta, X, h=H)


def test_batch_gradients_equal_train_relu(net, gen):
    theta, X, y, _ = net
    T = theta + 0.1 * torch.randn(3, theta.numel(), generator=gen)
    idx = L.minibatch_schedule(3, N, 4, 1, gen)[0]
    got = L.batch_gradients(T, X[idx], y[idx])
    for k in range(3):
        ref = train_relu.batch_gradient(T[k], X[idx[k]], y[idx[k]])
        assert torch.allclose(got[k], ref, rtol=0, atol=1e-13)
    full = L.full_gradients(T, X, y)
    assert torch.allclose(full[1], train_relu.batch_gradient(T[1], X, y), atol=1e-13)


def test_schedule_is_without_replacement_per_epoch(gen):
    s = L.minibatch_schedule(5, 12, 3, 9, gen)  # 4 steps per epoch: two full epochs and one step
    assert s.shape == (9, 5, 3)
    for k in range(5):
        for e in range(2):
            assert sorted(s[4 * e: 4 * e + 4, k].reshape(-1).tolist()) == list(range(12))


@pytest.mark.parametrize("kw", [dict(), dict(rho=0.05), dict(rho_over_alpha=1.0)])
@pytest.mark.parametrize("lr", [0.05, 2.0])
def test_batched_equals_loop(net, gen, kw, lr):
    theta, X, y, _ = net
    W0 = 0.05 * L.directions(5, theta.numel(), gen)
    sch = L.minibatch_schedule(5, N, 2, 30, gen)
    a = L.run_batched(theta, X, y, W0, sch, lr, factor=5.0, **kw)
    b = L.run_loop(theta, X, y, W0, sch, lr, factor=5.0, **kw)
    assert torch.equal(a.escape_step, b.escape_step)
    assert torch.allclose(a.theta, b.theta, rtol=0, atol=1e-12)
    assert torch.allclose(a.max_ratio, b.max_ratio, rtol=1e-12)


@pytest.mark.parametrize("rho", [0.0, 0.05])
def test_batched_equals_train_relu_step(net, gen, rho):
    theta, X, y, _ = net
    W0 = 0.05 * L.directions(3, theta.numel(), gen)
    sch = L.minibatch_schedule(3, N, 4, 10, gen)
    got = L.steps_batched(theta + W0, X, y, sch, 0.1, rho=rho)
    for k in range(3):
        th = theta + W0[k]
        for t in range(10):
            th = train_relu.step(th, X[sch[t, k]], y[sch[t, k]], 0.1, rho)
        assert torch.allclose(got[k], th, rtol=0, atol=1e-13)


def test_escape_criterion_by_hand():
    r = torch.tensor([[1.0, 2.0, 9.99], [1.0, 10.0, 0.5], [1.0, float("nan"), 1.0],
                      [1.0, float("inf"), 1.0]])
    assert L.escaped(r).tolist() == [False, True, True, True]
    assert L.escaped(r[0], factor=2.0)
    assert L.agreement(torch.tensor([True, False, True, True]), True) == 0.75
    assert L.agreement(torch.tensor([True, False, True, True]), False) == 0.25
    assert L.radius_of_agreement([1, 2, 3, 4], [1.0, 0.95, 0.5, 1.0]) == 2.0
    assert L.radius_of_agreement([1, 2], [0.5, 1.0]) == 0.0


def test_runs_escape_exactly_as_the_criterion_says(net, gen):
    theta, X, y, _ = net
    W0 = 0.05 * L.directions(4, theta.numel(), gen)
    sch = L.minibatch_schedule(4, N, 2, 40, gen)
    res = L.run_batched(theta, X, y, W0, sch, 3.0, factor=3.0)
    assert bool(res.escaped.any())
    assert torch.equal(res.escaped, res.max_ratio >= 3.0)
    assert bool((res.final_ratio[res.escaped] >= 3.0).all())


def test_tiny_r_follows_the_linearized_map(net, gen):
    theta, X, y, G = net
    r = 1e-6
    for ra in (0.0, 1.0):
        kw = dict(method="sam", rho_over_alpha=ra) if ra else {}
        eta = 0.9 * stability.critical_eta_rank_one(G, 2, **kw)
        W0 = r * L.directions(3, theta.numel(), gen)
        sch = L.minibatch_schedule(3, N, 2, 8, gen)
        lin = L.run_linear(G, W0, sch, eta, ra, return_path=True)
        err = 0.0
        for t in (1, 4, 8):
            th = L.steps_batched(theta + W0, X, y, sch[:t], eta, rho_over_alpha=ra)
            err = max(err, float((th - theta - lin[t]).norm(dim=1).max()) / r)
            # and the linearized step moves at first order: it is not the identity
            assert float((lin[t] - W0).norm()) > 1e-3 * r
        assert err < 1e-4


def test_linear_map_matches_dense_step(net, gen):
    theta, X, y, G = net
    W0 = L.directions(2, theta.numel(), gen)
    sch = L.minibatch_schedule(2, N, 2, 1, gen)
    ra, eta = 0.7, 0.3
    path = L.run_linear(G, W0, sch, eta, ra, return_path=True)
    Hbar = 2 * G.T @ G / N
    for k in range(2):
        Gb = G[sch[0, k]]
        K = 2 * Gb.T @ Gb / 2 @ (torch.eye(G.shape[1]) + ra * Hbar)
        assert torch.allclose(path[1, k], W0[k] - eta * K @ W0[k], atol=1e-12)


def test_sweep_shapes(net, gen):
    theta, X, y, G = net
    dirs = L.directions(3, theta.numel(), gen)
    sch = L.minibatch_schedule(3, N, 2, 5, gen)
    out = L.sweep(theta, X, y, G, [1e-3, 1e-2], dirs, sch, 0.1)
    assert out["escape"].shape == (2, 3) and out["linear"].shape == (3,)
    assert out["linear_growth"].shape == (3,)


def test_argument_errors(net, gen):
    theta, X, y, G = net
    W0 = 0.01 * L.directions(2, theta.numel(), gen)
    sch = L.minibatch_schedule(2, N, 2, 3, gen)
    bad = vd.InvalidArgumentError
    with pytest.raises(bad, match="lr"):
        L.run_batched(theta, X, y, W0, sch, -1.0)
    with pytest.raises(bad, match="either rho"):
        L.run_batched(theta, X, y, W0, sch, 0.1, rho=0.1, rho_over_alpha=1.0)
    with pytest.raises(bad, match="columns"):
        L.run_batched(theta, X, y, W0[:, :-1], sch, 0.1)
    with pytest.raises(bad, match="nonzero"):
        L.run_batched(theta, X, y, 0 * W0, sch, 0.1)
    with pytest.raises(bad, match="runs"):
        L.run_batched(theta, X, y, W0, sch[:, :1], 0.1)
    with pytest.raises(bad, match="factor"):
        L.run_batched(theta, X, y, W0, sch, 0.1, factor=1.0)
    with pytest.raises(bad, match="multiple"):
        L.minibatch_schedule(2, N, 3, 3, gen)
    with pytest.raises(bad, match="batch size"):
        L.minibatch_schedule(2, N, 0, 3, gen)
    with pytest.raises(vd.ArgumentTypeError):
        L.directions(2, 5, generator="seed")
    with pytest.raises(bad, match="increase"):
        L.radius_of_agreement([2, 1], [1.0, 1.0])
    with pytest.raises(bad, match="equal length"):
        L.radius_of_agreement([1, 2], [1.0])
    with pytest.raises(vd.ArgumentTypeError):
        L.agreement(torch.tensor([True]), 1)
    with pytest.raises(bad, match="ratios"):
        L.escaped(torch.ones(2, 2, 2))
    with pytest.raises(bad, match="indices"):
        L.run_linear(G, W0, sch + N, 0.1)
