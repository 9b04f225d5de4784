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


def test_iid_schedule_draws_independent_subsets(gen):
    s = L.iid_schedule(400, 6, 2, 3, gen)
    assert s.shape == (3, 400, 2)
    assert bool((s[..., 0] != s[..., 1]).all())  # without replacement within a step
    pairs = torch.sort(s.reshape(-1, 2), dim=1).values
    counts = torch.bincount(pairs[:, 0] * 6 + pairs[:, 1], minlength=36).reshape(6, 6)
    upper = counts[torch.triu(torch.ones(6, 6, dtype=torch.bool), 1)].double()
    assert upper.numel() == 15 and float(upper.min()) > 0  # every pair of the 15 occurs
    assert float(upper.std() / upper.mean()) < 0.25  # 1200 draws: about uniform (±9 % expected)
    with pytest.raises(vd.InvalidArgumentError):
        L.iid_schedule(2, 6, 7, 3, gen)


def test_lyapunov_of_a_deterministic_map_is_its_log_contraction():
    # B = n: every step is the full batch, K = H̄ = (2/n) GᵀG; on the eigenvector of its top eigenvalue λ the map
    # multiplies by |1 − ηλ| exactly, so the exponent is log|1 − ηλ| (growth when ηλ > 2)
    G = torch.tensor([[1.0, 0.0], [0.0, 0.5]], dtype=torch.float64)  # H̄ = diag(1, 0.25)
    sch = L.minibatch_schedule(3, 2, 2, 40, torch.Generator().manual_seed(0))
    dirs = torch.tensor([[1.0, 0.0]] * 3, dtype=torch.float64)
    lrs = torch.tensor([0.5, 1.5, 2.5], dtype=torch.float64)
    ex = L.lyapunov(G, dirs, sch, lrs)
    assert torch.allclose(ex, torch.log((1 - lrs).abs()), atol=1e-12)
    iv = L.exponent_interval(torch.tensor([1.0, 2.0, 3.0]))
    assert iv["mean"] == 2.0 and iv["lo"] < 2.0 < iv["hi"]
    assert abs(iv["hi"] - 2.0 - 4.302653 / 3 ** 0.5) < 1e-5  # t_{0.975, 2} · sd / √3, sd = 1


def test_lyapunov_matches_run_linear(net, gen):
    theta, X, y, G = net
    dirs = L.directions(4, theta.numel(), gen)
    sch = L.iid_schedule(4, N, 2, 60, gen)
    eta = stability.critical_eta_rank_one(G, 2)
    ex = L.lyapunov(G, dirs, sch, 1.3 * eta, burn=0.0)
    W = L.run_linear(G, dirs, sch, 1.3 * eta, return_path=True)
    Q, _ = torch.linalg.qr(G.T)
    ref = torch.log((W[-1] @ Q).norm(dim=1) / (dirs @ Q).norm(dim=1)) / 60
    assert torch.allclose(ex, ref, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("lo, hi, steps, share, want", [
    (-0.2, -0.1, 10, 1.0, True), (-0.1, 0.1, 10**6, 1.0, False), (0.01, 0.02, 230, 1.0, False),
    (0.01, 0.02, 231, 1.0, True), (0.01, 0.02, 231, 0.1, False), (0.01, 0.02, 461, 0.1, True)])
def test_decided(lo, hi, steps, share, want):
    # log 10 / 0.01 = 230.3 steps; from a tenth of the norm in the growing part, log 100 / 0.01 = 460.5
    assert L.decided(lo, hi, steps, 10.0, share) is want


def test_lyapunov_rejects_bad_step_sizes(net, gen):
    theta, X, y, G = net
    dirs = L.directions(3, theta.numel(), gen)
    sch = L.iid_schedule(3, N, 2, 5, gen)
    for bad in ([0.1, 0.2], [0.1, -0.1, 0.1], float("nan")):
        with pytest.raises(vd.InvalidArgumentError):
            L.lyapunov(G, dirs, sch, bad)
