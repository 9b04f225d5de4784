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


# ------------------------------------------------------------------ the fast _grad / run_batched vs the einsum code
# _grad and run_batched were rewritten for speed (bmm/mm on laid-out tensors, no einsum; less per-step
# bookkeeping). The formulas below are the einsum code they replace: the new code must give the same bits
# (the chapter's records were made with it, and its round-off guards have round-off tolerances).
def _grad_einsum(T, Xb, yb, d):
    R, P = T.shape
    h = P // (d + 2)
    W1, b1, W2 = T[:, : h * d].view(R, h, d), T[:, h * d: h * d + h], T[:, h * d + h:]
    shared = Xb.ndim == 2
    Z = (torch.einsum("rhd,bd->rbh", W1, Xb) if shared else torch.einsum("rhd,rbd->rbh", W1, Xb))
    Z = Z + b1[:, None, :]
    A = torch.relu(Z)
    coef = (2.0 / Xb.shape[-2]) * (torch.einsum("rbh,rh->rb", A, W2) - yb)
    dZ = coef[:, :, None] * W2[:, None, :] * (Z > 0).to(T.dtype)
    dW1 = torch.einsum("rbh,bd->rhd", dZ, Xb) if shared else torch.einsum("rbh,rbd->rhd", dZ, Xb)
    return torch.cat([dW1.reshape(R, h * d), dZ.sum(1), torch.einsum("rb,rbh->rh", coef, A)], 1)


def _step_einsum(T, Xb, yb, X, y, lr, rho, ra, d):
    g = _grad_einsum(T, Xb, yb, d)
    if rho > 0:
        g = _grad_einsum(T + rho * g / (g.norm(dim=1, keepdim=True) + 1e-12), Xb, yb, d)
    elif ra > 0:
        g = _grad_einsum(T + ra * _grad_einsum(T, X, y, d), Xb, yb, d)
    return T - lr * g


def _run_batched_einsum(theta_star, X, y, W0, schedule, lr, rho=0.0, ra=0.0, factor=10.0):
    R, d = W0.shape[0], X.shape[1]
    r0 = W0.norm(dim=1)
    T = theta_star + W0
    out = T.clone()
    esc = torch.full((R,), -1, dtype=torch.int64)
    mx = torch.ones(R, dtype=torch.float64)
    fin = torch.ones(R, dtype=torch.float64)
    act = torch.arange(R)
    for t, idx in enumerate(schedule, start=1):
        ia = idx[act]
        T = _step_einsum(T, X[ia], y[ia], X, y, lr, rho, ra, d)
        ratio = (T - theta_star).norm(dim=1) / r0[act]
        ok = torch.isfinite(ratio) & torch.isfinite(T).all(1)
        ratio = torch.where(ok, ratio, torch.full_like(ratio, float("inf")))
        mx[act] = torch.maximum(mx[act], ratio)
        gone = ratio >= factor
        if bool(gone.any()):
            esc[act[gone]] = t
            fin[act[gone]] = ratio[gone]
            out[act[gone]] = T[gone]
            act, T = act[~gone], T[~gone]
            if act.numel() == 0:
                break
    if act.numel():
        out[act] = T
        fin[act] = (T - theta_star).norm(dim=1) / r0[act]
    return L.Runs(esc, fin, mx, out)


def _chapter_net(gen, d=30, h=120, n=100, runs=60, spread=0.05):
    """Chapter 19's shapes: d = 30 inputs, h = 120 hidden units, n = 100 points, R = 60 runs near θ*."""
    X, y = relu_net.parity_data(n, d, gen)
    theta = relu_net.generalizing_solution(2, d, h)
    return theta, X, y, theta + spread * torch.randn(runs, theta.numel(), generator=gen)


@pytest.mark.parametrize("B", [1, 2, 10, 100])
@pytest.mark.parametrize("shape, runs", [("chapter", 60), ("chapter", 1), ("chapter", 2), ("chapter", 17),
                                         ("chapter", 96), ("small", 5), ("small", 1)])
def test_grad_bit_identical_to_einsum(gen, B, shape, runs):
    # runs: one (einsum drops the run axis), one block, blocks of 8 + 9, 6 blocks of 16, the chapter's 60
    theta, X, y, T = _chapter_net(gen, runs=runs) if shape == "chapter" else _chapter_net(gen, D, H, N, runs)
    n, d = X.shape
    B = min(B, n)
    idx = torch.stack([torch.randperm(n, generator=gen)[:B] for _ in range(T.shape[0])])
    for i, Xb, yb in ((idx, X[idx], y[idx]), (None, X[:B], y[:B])):  # one batch per run, one shared batch
        got, ref = L._grad(T, Xb, yb, d), _grad_einsum(T, Xb, yb, d)
        assert got.shape == ref.shape and torch.equal(got, ref)
        # and against the independent per-run reference, train_relu.batch_gradient
        for k in (0, T.shape[0] - 1):
            want = train_relu.batch_gradient(T[k], X[i[k]] if i is not None else Xb,
                                             y[i[k]] if i is not None else yb)
            assert float((got[k] - want).abs().max()) <= 1e-12 * float(want.abs().max())


@pytest.mark.parametrize("B", [1, 10])
@pytest.mark.parametrize("rho, ra", [(0.0, 0.0), (0.05, 0.0), (0.0, 1.0)])  # sgd, normalized sam, ascent ρ/α
def test_step_bit_identical_to_einsum(gen, B, rho, ra):
    theta, X, y, T = _chapter_net(gen)
    n, d = X.shape
    idx = L.minibatch_schedule(T.shape[0], n, B, 1, gen)[0]
    got = L._step(T, X[idx], y[idx], X, y, 0.01, rho, ra, d)
    assert torch.equal(got, _step_einsum(T, X[idx], y[idx], X, y, 0.01, rho, ra, d))
    for k in (0, 7):  # the independent references: train_relu.step, the ascent written out per run
        if ra:
            asc = T[k] + ra * train_relu.batch_gradient(T[k], X, y)
            want = T[k] - 0.01 * train_relu.batch_gradient(asc, X[idx[k]], y[idx[k]])
        else:
            want = train_relu.step(T[k], X[idx[k]], y[idx[k]], 0.01, rho)
        assert float((got[k] - want).abs().max()) <= 1e-12 * float(want.abs().max())


@pytest.mark.parametrize("B", [1, 10])
@pytest.mark.parametrize("rho, ra, f", [(0.0, 0.0, 0.5), (0.0, 0.0, 2.5), (0.05, 0.0, 0.5), (0.0, 1.0, 0.9),
                                        (0.0, 1.0, 3.0)])
def test_run_batched_bit_identical_to_einsum(gen, B, rho, ra, f):
    # chapter shapes, radii from tiny to escaping, stable and unstable step sizes: same escapes, same bits
    theta, X, y, _ = _chapter_net(gen)
    n, d = X.shape
    G = relu_hessian.per_sample_gradients(theta, X, h=120)
    kw = dict(method="sam", rho_over_alpha=ra) if ra else {}
    lr = f * stability.critical_eta_rank_one(G, B, **kw)
    dirs = L.directions(6, theta.numel(), gen)
    W0 = torch.cat([r * dirs for r in (1e-3, 0.1, 1.0, 3.0)])
    sch = L.minibatch_schedule(6, n, B, 40, gen).repeat(1, 4, 1)
    a = L.run_batched(theta, X, y, W0, sch, lr, rho, ra, factor=10.0)
    b = _run_batched_einsum(theta, X, y, W0, sch, lr, rho, ra, factor=10.0)
    for field in ("escape_step", "final_ratio", "max_ratio", "theta"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field


def test_run_batched_non_finite_theta_escapes(net, gen):
    # a huge step overflows θ to inf/NaN: the run escapes there with ratio inf, as in the einsum code
    theta, X, y, _ = net
    W0 = 0.5 * L.directions(3, theta.numel(), gen)
    sch = L.minibatch_schedule(3, N, 2, 30, gen)
    a = L.run_batched(theta, X, y, W0, sch, 1e150, factor=1e300)
    b = _run_batched_einsum(theta, X, y, W0, sch, 1e150, factor=1e300)
    assert bool(a.escaped.all()) and bool(torch.isinf(a.final_ratio).all())
    for field in ("escape_step", "final_ratio", "max_ratio"):
        assert torch.equal(getattr(a, field), getattr(b, field)), field
    assert torch.equal(a.theta.isfinite(), b.theta.isfinite())
