"""The batched label-noise SGD / 1-SAM kernel against a plain PyTorch autograd loop fed the same noise."""

import numpy as np
import pytest
import torch

from flatbias import label_noise as ln
from flatbias import twolayer

C, M, D, N = 3, 10, 3, 3


@pytest.fixture
def problem():
    rng = np.random.default_rng(7)
    X = rng.random((C, N, D))
    y = rng.random((C, N))
    theta0 = rng.normal(size=(C, M, D)) / np.sqrt(D)
    return theta0, X, y


@pytest.mark.parametrize("method,rho,act", [("sgd", 0.0, "sinh"), ("sam", 0.05, "sinh"), ("sgd", 0.0, "cubic"),
                                            ("sam", 0.1, "cubic")])
def test_kernel_matches_autograd_loop(problem, method, rho, act):
    theta0, X, y = problem
    T, every = 400, 50
    eta = np.array([0.05, 0.02, 0.06]) * (0.4 if act == "cubic" else 1.0)  # stable: η‖∇f_i‖² < 2
    run = ln.run(theta0, X, y, eta=eta, s=0.3, steps=T, record_every=every, seed=11, method=method, rho=rho, act=act,
                 progress=False)
    idx, eps = ln.draw_noise(11, C, N, T)
    moved = 0.0
    for c in range(C):
        ref = ln.reference_run(theta0[c], X[c], y[c], eta=float(eta[c]), s=0.3, idx=idx[c], eps=eps[c], method=method,
                               rho=rho, act=act).numpy()
        np.testing.assert_allclose(run.theta[:, c], ref[::every], rtol=0, atol=1e-10)
        moved = max(moved, float(np.abs(ref[-1] - ref[0]).max()))
    assert moved > 1e-2  # the comparison is not vacuous: the iterates moved


def test_recorded_quantities(problem):
    theta0, X, y = problem
    run = ln.run(theta0, X, y, eta=0.05, s=0.1, steps=60, record_every=20, seed=0, progress=False)
    assert run.steps.tolist() == [0, 20, 40, 60]
    assert run.eig.shape == (4, C, N) and run.F.shape == (4, C) and run.loss.shape == (4, C)
    for r in range(4):
        for c in range(C):
            th = torch.as_tensor(run.theta[r, c])
            Xc, yc = torch.as_tensor(X[c]), torch.as_tensor(y[c])
            Phi = twolayer.feature_matrix(th, Xc, "sinh")
            ev = torch.linalg.eigvalsh(Phi @ Phi.T).flip(0).numpy()
            np.testing.assert_allclose(run.eig[r, c], ev, rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(run.F[r, c], float(twolayer.sharpness(th, Xc, "sinh")), rtol=1e-12)
            np.testing.assert_allclose(run.loss[r, c], float(twolayer.loss(th, Xc, yc, "sinh")) / (2 * N), rtol=1e-12)


def test_seed_reproducible_and_chunk_independent(problem):
    theta0, X, y = problem
    a = ln.run(theta0, X, y, eta=0.05, s=0.2, steps=1000, record_every=1000, seed=5, progress=False)
    b = ln.run(theta0, X, y, eta=0.05, s=0.2, steps=1000, record_every=10, seed=5, progress=False)
    c = ln.run(theta0, X, y, eta=0.05, s=0.2, steps=1000, record_every=1000, seed=6, progress=False)
    assert np.array_equal(a.theta[-1], b.theta[-1])  # bit-identical, however often it is recorded
    assert np.array_equal(b.theta[::100], ln.run(theta0, X, y, eta=0.05, s=0.2, steps=1000, record_every=10, seed=5,
                                                 progress=False).theta[::100])
    assert np.abs(a.theta[-1] - c.theta[-1]).max() > 1e-3  # another seed, another trajectory
    # a chain's trajectory depends on its seed and index only, not on the other chains
    one = ln.run(theta0[:1], X[:1], y[:1], eta=0.05, s=0.2, steps=1000, record_every=1000, seed=5, progress=False)
    assert np.array_equal(one.theta[-1, 0], a.theta[-1, 0])


def test_label_noise_decreases_sharpness_and_collapses_rank():
    # a short, noisy run on well-conditioned data: F falls towards F* and eig2/eig1 of ΦΦᵀ collapses
    X = np.array([[[1.0, 0.1, 0.0], [0.0, 1.0, 0.2], [0.1, 0.0, 1.0]]])
    y = np.array([[0.6, 0.3, 0.8]])
    theta0 = np.random.default_rng(0).normal(size=(1, M, D)) / np.sqrt(D)
    run = ln.run(theta0, X, y, eta=0.05, s=0.5, steps=300_000, record_every=100_000, seed=0, progress=False)
    th = ln.retract_batch(run.theta[:, 0], np.repeat(X, 4, 0), np.repeat(y, 4, 0))
    eig, F, _ = ln.summarize(th, np.repeat(X, 4, 0), np.repeat(y, 4, 0))
    F_star = float(ln.summarize(ln.closed_form_optimum(theta0, X, y), X, y)[1][0])
    assert eig[-1, 1] / eig[-1, 0] < 1e-2 * eig[1, 1] / eig[1, 0]
    assert F[-1] < F[1] and (F[-1] - F_star) < 0.05 * (F[1] - F_star)


def test_retract_and_closed_form_optimum(problem):
    theta0, X, y = problem
    th = ln.retract_batch(theta0, X, y)
    r = np.einsum("cij,cmj->cim", X, th)
    assert np.abs(np.sinh(r).sum(-1) - y).max() < 1e-12
    star = ln.closed_form_optimum(theta0, X, y)
    z = np.einsum("cij,cmj->cim", X, star)  # θ_j*ᵀx_i = asinh(y_i/m) for every j (Theorem 3.3)
    np.testing.assert_allclose(z, np.broadcast_to(np.arcsinh(y / M)[:, :, None], z.shape), atol=1e-12)


def test_bad_arguments_are_clear_errors(problem):
    theta0, X, y = problem
    kw = dict(steps=10, record_every=5, progress=False)
    with pytest.raises(ValueError, match="step size eta must be positive"):
        ln.run(theta0, X, y, eta=-0.1, s=0.1, **kw)
    with pytest.raises(ValueError, match="label-noise level s must be non-negative"):
        ln.run(theta0, X, y, eta=0.1, s=-1.0, **kw)
    with pytest.raises(ValueError, match="one value per chain"):
        ln.run(theta0, X, y, eta=[0.1, 0.2], s=0.1, **kw)
    with pytest.raises(ValueError, match="shapes do not match"):
        ln.run(theta0, X[:, :, :2], y, eta=0.1, s=0.1, **kw)
    with pytest.raises(ValueError, match="shapes do not match"):
        ln.run(theta0, X, y[:, :2], eta=0.1, s=0.1, **kw)
    with pytest.raises(ValueError, match=r"\(chains, m, d\)"):
        ln.run(theta0[0], X[0], y[0], eta=0.1, s=0.1, **kw)
    with pytest.raises(ValueError, match="multiple of record_every"):
        ln.run(theta0, X, y, eta=0.1, s=0.1, steps=11, record_every=5, progress=False)
    with pytest.raises(ValueError, match="unknown method"):
        ln.run(theta0, X, y, eta=0.1, s=0.1, method="adam", **kw)
    with pytest.raises(ValueError, match="positive radius"):
        ln.run(theta0, X, y, eta=0.1, s=0.1, method="sam", **kw)
    with pytest.raises(ValueError, match="knows the activations"):
        ln.run(theta0, X, y, eta=0.1, s=0.1, act="tanh", **kw)
    with pytest.raises(ValueError, match="NaN"):
        ln.run(np.full_like(theta0, np.nan), X, y, eta=0.1, s=0.1, **kw)
    with pytest.raises(ValueError, match="seed"):
        ln.run(theta0, X, y, eta=0.1, s=0.1, seed=-1, **kw)
    with pytest.raises(FloatingPointError, match="diverged"):
        ln.run(theta0, X, y, eta=50.0, s=0.1, steps=200, record_every=100, progress=False)


# ---- checks of chapters 06 and 07


def test_kernel_reference_gap_is_round_off_and_sees_a_wrong_kernel(problem, monkeypatch):
    theta0, X, y = problem
    assert ln.kernel_reference_gap(theta0, X, y, eta=0.05, s=0.3, steps=200, seed=2) < 1e-10
    good = ln.reference_run

    def wrong(*args, **kw):  # a reference with twice the step: the gap must be large
        kw["eta"] = 2 * kw["eta"]
        return good(*args, **kw)

    monkeypatch.setattr(ln, "reference_run", wrong)
    assert ln.kernel_reference_gap(theta0, X, y, eta=0.05, s=0.3, steps=200, seed=2) > 1e-3


def test_fitted_time_constant_recovers_a_known_speed():
    t_flow = np.linspace(0, 6, 6001)
    F_flow = 2.0 + 3.0 * np.exp(-t_flow)  # F* = 2
    c = 1e-4
    k = np.arange(0, 40_001, 400)
    F_sgd = 2.0 + 3.0 * np.exp(-1.3 * c * k)  # SGD 30 % faster than c predicts
    assert abs(ln.fitted_time_constant(k, F_sgd, t_flow, F_flow, 2.0) / c - 1.3) < 1e-6
    gap = ln.gap_to_flow(k, F_sgd, c, t_flow, F_flow, 2.0)
    brute = max(abs(3 * np.exp(-1.3 * c * kk) - 3 * np.exp(-c * kk)) for kk in k) / 3.0
    assert abs(gap - brute) < 1e-6
    with pytest.raises(ValueError):
        ln.fitted_time_constant(k, F_sgd, t_flow, F_flow[::-1], 2.0)


def test_slope_ci_against_a_direct_fit():
    x = np.array([0.02, 0.01, 0.005])
    rng = np.random.default_rng(0)
    Y = np.array([a * x ** p for a, p in zip(rng.uniform(1, 10, 5), [0.9, 1.0, 1.1, 1.05, 0.95])])
    out = ln.slope_ci(x, Y)
    direct = [np.polyfit(np.log(x), np.log(row), 1)[0] for row in Y]
    np.testing.assert_allclose(out["slopes"], direct, rtol=1e-12)
    assert abs(out["mean"] - 1.0) < 1e-12 and out["lo"] < 1.0 < out["hi"]
    assert abs(out["se"] - np.std(direct, ddof=1) / np.sqrt(5)) < 1e-12
    exact = ln.slope_ci(x, np.outer([1.0, 2.0], x))
    assert abs(exact["lo"] - 1) < 1e-12 and abs(exact["hi"] - 1) < 1e-12
    assert np.isnan(ln.slope_ci(x, -Y)["mean"])


def test_sharpness_flow_matches_riemannian_descent_and_energy(problem, monkeypatch):
    from flatbias import riemannian

    theta0, X, y = problem
    th0 = ln.retract_batch(theta0[:1], X[:1], y[:1])[0]
    fl = ln.sharpness_flow(th0, X[0], y[0], t_max=0.04, n_eval=5)
    F0, FT = fl["F_ends"]
    assert abs(FT - F0 + fl["energy"][-1]) < 1e-9 * (F0 - FT) and fl["residual"] < 1e-10
    np.testing.assert_allclose(fl["F"][[0, -1]], [F0, FT], rtol=1e-13)
    gaps = []
    for h in (4e-4, 2e-4):  # fixed-step Riemannian GD: error O(h) against the flow
        gd = riemannian.descent(torch.tensor(th0), torch.tensor(X[0]), torch.tensor(y[0]), "sinh", step=h,
                                max_time=0.04 - h / 2, max_steps=10**6, keep_thetas=True, progress=False)
        assert abs(gd.t[-1] - 0.04) < 1e-9
        gaps.append(float(np.abs(gd.thetas[-1].numpy() - fl["theta"]).max()))
    assert gaps[1] < 1e-2 * np.abs(fl["theta"] - th0).max() and 1.7 < gaps[0] / gaps[1] < 2.3  # first order
    good = riemannian._egrad
    monkeypatch.setattr(riemannian, "_egrad", lambda p, X: 2 * good(p, X))  # a wrong gradient: the identity fails
    bad = ln.sharpness_flow(th0, X[0], y[0], t_max=0.04, n_eval=5)
    assert abs(bad["F_ends"][1] - bad["F_ends"][0] + bad["energy"][-1]) > 1e-2 * (bad["F_ends"][0] - bad["F_ends"][1])


# ---- the lane (SIMD) kernel against the scalar reference kernel, on the same noise


def _lane_problem(C, n, d, act, seed=3):
    rng = np.random.default_rng(seed)
    X, y = rng.random((C, n, d)), rng.random((C, n))
    theta0 = rng.normal(size=(C, M, d)) / np.sqrt(d)
    eta = rng.uniform(0.01, 0.05, C) * (0.4 if act == "cubic" else 1.0)
    s = rng.uniform(0.1, 0.5, C)
    s[0] = 0.0  # a chain without label noise (its normals are not drawn by run)
    rho = rng.uniform(0.01, 0.1, C)
    return theta0, X, y, eta, s, rho


@pytest.mark.parametrize("method", ["sgd", "sam"])
@pytest.mark.parametrize("act", ["sinh", "cubic"])
@pytest.mark.parametrize("C,n,d", [(1, 3, 3), (5, 3, 3), (16, 3, 3), (7, 2, 4)])
def test_lane_kernel_is_bit_identical_to_the_scalar_kernel(method, act, C, n, d):
    theta0, X, y, eta, s, rho = _lane_problem(C, n, d, act)
    u, eps = ln.ChainNoise(1, C).draw(2000)
    ref = theta0.copy()
    ln._run_chunk_scalar(ref, X, y, eta, s, rho, u, eps, ln.METHODS[method], ln.KERNEL_ACTIVATIONS[act])
    lanes = ln._Lanes(theta0.copy(), X, y, act)
    assert lanes.kernel(eta, s, rho, u, eps, ln.METHODS[method], ln.KERNEL_ACTIVATIONS[act]) == 0.0  # no fallback
    assert np.array_equal(lanes.theta(), ref)  # chain for chain, bit for bit
    assert np.abs(ref - theta0).min(axis=(1, 2)).max() > 0 and np.abs(ref - theta0).max() > 1e-2  # it moved


@pytest.mark.parametrize("method", ["sgd", "sam"])
@pytest.mark.parametrize("act", ["sinh", "cubic"])
@pytest.mark.parametrize("C,n", [(2, 3), (8, 3), (13, 20)])
def test_both_lane_kernels_agree_with_the_scalar_kernel_at_d3(method, act, C, n):
    """The d = 3 kernel (stack arrays) and the general lane kernel, each called directly: the scalar kernel's
    bits, chain for chain, with padding chains (13 of 16 lanes) and several samples."""
    theta0, X, y, eta, s, rho = _lane_problem(C, n, 3, act)
    u, eps = ln.ChainNoise(2, C).draw(1500)
    code, acode = ln.METHODS[method], ln.KERNEL_ACTIVATIONS[act]
    ref = theta0.copy()
    ln._run_chunk_scalar(ref, X, y, eta, s, rho, u, eps, code, acode)
    for kernel in (ln._run_chunk_lanes3, ln._run_chunk_lanes):
        lanes = ln._Lanes(theta0.copy(), X, y, act)
        assert kernel(lanes.th, lanes.m, lanes.XL, lanes.yL, eta, s, rho, u, eps, code, acode) == 0.0
        assert np.array_equal(lanes.theta(), ref), kernel.__name__


def test_lane_kernel_choice_follows_d_and_the_stack_bound(monkeypatch):
    theta0, X, y, *_ = _lane_problem(8, 3, 3, "sinh")
    assert ln._Lanes(theta0, X, y, "sinh").lane_kernel() is ln._run_chunk_lanes3
    theta4, X4, y4, *_ = _lane_problem(8, 3, 4, "sinh")
    assert ln._Lanes(theta4, X4, y4, "sinh").lane_kernel() is ln._run_chunk_lanes
    assert ln.stack_bytes(10, 8) == 8 * (6 * 80 + 12 * 8)
    monkeypatch.setattr(ln, "STACK_BYTES_MAX", ln.stack_bytes(M, 8) - 1)  # one byte short: the heap kernel
    assert ln._Lanes(theta0, X, y, "sinh").lane_kernel() is ln._run_chunk_lanes
    four = ln._Lanes(theta4, X4, y4, "sinh")
    with pytest.raises(ValueError, match="d = 3 only"):
        ln._run_chunk_lanes3(four.th, four.m, four.XL, four.yL, *np.ones((3, 8)), *ln.ChainNoise(0, 8).draw(5), 0, 0)


def test_lane_kernel_flags_exp_out_of_range_and_the_chunk_is_redone_by_the_scalar_kernel():
    theta0, X, y, eta, s, rho = _lane_problem(5, 3, 3, "sinh")
    theta0[2] *= 400.0  # chain 2: |θ_jᵀx_i| ≥ 512, beyond the exp replica's range (exp overflows there)
    u, eps = ln.ChainNoise(1, 5).draw(50)
    with np.errstate(all="ignore"):
        ref = theta0.copy()
        ln._run_chunk_scalar(ref, X, y, eta, s, rho, u, eps, 0, 0)
        lanes = ln._Lanes(theta0.copy(), X, y, "sinh")
        start = lanes.th.copy()
        assert lanes.kernel(eta, s, rho, u, eps, 0, 0) == 1.0
        lanes.th = start
        lanes.step(eta, s, rho, u, eps, 0, 0)
    assert not np.isfinite(ref[2]).all()
    np.testing.assert_array_equal(lanes.theta(), ref)  # NaN where the scalar kernel has NaN


def _ulps(v, ref):
    """|v − ref| in units of the last place of ref (ref in long double)."""
    return np.abs((v.astype(np.longdouble) - ref) / np.spacing(np.abs(ref.astype(np.float64))).astype(np.longdouble))


@pytest.mark.skipif(np.finfo(np.longdouble).nmant < 60, reason="needs an 80-bit long double as the reference")
def test_exp_pm_is_within_one_ulp_and_a_wrong_value_is_seen():
    """The kernels' exp (pure arithmetic) against long-double exp: within 1 ulp on 3·10⁶ points of its range,
    both signs, h = 1 exactly halves; the check sees a value off by 2 ulp."""
    rng = np.random.default_rng(5)
    grid = np.arange(-128 * 12, 128 * 12) * (np.log(2) / 256)  # steps of ln2/256: every switch of k included
    x = np.concatenate([rng.uniform(-40, 40, 10**6), rng.uniform(-1, 1, 10**6), rng.uniform(-511.9, 511.9, 10**6),
                        grid, np.nextafter(grid, np.inf), np.nextafter(grid, -np.inf), rng.normal(0, 1e-9, 1000),
                        [0.0, -0.0, 5e-324, 1e-300, 2.0**-54, -(2.0**-54), 511.99, -511.99]])
    plus, minus = np.empty_like(x), np.empty_like(x)
    ln._exp_pm_array(x, plus, minus)
    xl = x.astype(np.longdouble)
    ref_p, ref_m = np.exp(xl), np.exp(-xl)
    assert _ulps(plus, ref_p).max() <= 1.0 and _ulps(minus, ref_m).max() <= 1.0
    wrong = plus.copy()
    wrong[123] = np.nextafter(np.nextafter(wrong[123], np.inf), np.inf)
    assert _ulps(wrong, ref_p).max() > 1.0  # a value 2 ulp off fails the same check
    half_p, half_m = np.empty_like(x), np.empty_like(x)
    ln._exp_pm_halves(x, half_p, half_m)
    assert np.array_equal(half_p, plus / 2) and np.array_equal(half_m, minus / 2)


def test_phi_beyond_the_exp_range_takes_libm():
    """|z| ≥ 512 or NaN: sinh and cosh from math.exp (a diverging run: inf/NaN as libm gives them)."""
    for z in (600.0, -600.0, 800.0, float("nan")):
        p, q = ln._phi_dphi(z, 0)
        with np.errstate(over="ignore"):
            assert np.allclose([p, q], [np.sinh(z), np.cosh(z)], equal_nan=True, rtol=1e-15)


@pytest.mark.parametrize("method,act", [("sgd", "sinh"), ("sam", "sinh"), ("sgd", "cubic"), ("sam", "cubic")])
def test_run_with_lanes_equals_run_with_the_scalar_kernel(monkeypatch, method, act):
    C, T = 6, 3000
    theta0, X, y, eta, s, rho = _lane_problem(C, 3, 3, act, seed=4)
    kw = dict(eta=eta, s=s, steps=T, record_every=T // 3, seed=9, method=method, rho=rho, act=act, progress=False)
    assert ln._use_lanes(C)
    fast = ln.run(theta0, X, y, **kw)
    monkeypatch.setattr(ln, "LANES_MIN_CHAINS", 10**9)
    slow = ln.run(theta0, X, y, **kw)
    assert np.array_equal(fast.theta, slow.theta) and np.array_equal(fast.F, slow.F)
    # skipping the normals of the s = 0 chain changes nothing: the scalar kernel fed every stream in full agrees
    u, eps = ln.ChainNoise(9, C).draw(T)
    full = theta0.copy()
    ln._run_chunk_scalar(full, X, y, eta, s, rho, u, eps, ln.METHODS[method], ln.KERNEL_ACTIVATIONS[act])
    assert np.array_equal(fast.theta[-1], full)


def test_noise_without_normals_keeps_every_stream():
    u, eps = ln.ChainNoise(2, 3).draw(100)
    u2, eps2 = ln.ChainNoise(2, 3).draw(100, normals=[True, False, True])
    assert np.array_equal(u, u2) and np.array_equal(eps[[0, 2]], eps2[[0, 2]]) and not eps2[1].any()
    with pytest.raises(ValueError, match="one bool per chain"):
        ln.ChainNoise(2, 3).draw(10, normals=[True])


@pytest.mark.parametrize("method", ["sgd", "sam"])
def test_stacked_one_chain_runs_equal_the_runs_one_by_one(method):
    """Chains with their own seeds (``seed=[...]``) draw what one-chain runs with those seeds draw, so stacking
    independent runs into one batch (the lane kernel) gives each run's result bit for bit; a chain that diverges
    is marked and NaN from its record on (``on_diverge="nan"``), the others go on unchanged."""
    C, T = 5, 2000
    theta0, X, y, eta, s, rho = _lane_problem(C, 3, 3, "sinh", seed=7)
    eta = eta.copy()
    eta[3] = 50.0  # chain 3 diverges
    seeds = [11, 12, 13, 14, 15]
    kw = dict(steps=T, record_every=T // 4, method=method, act="sinh", progress=False)
    with np.errstate(all="ignore"):
        stacked = ln.run(theta0, X, y, eta=eta, s=s, rho=rho, seed=seeds, on_diverge="nan", **kw)
    assert stacked.diverged.tolist() == [False, False, False, True, False]
    for c in range(C):
        one = dict(eta=eta[c:c + 1], s=s[c:c + 1], rho=rho[c:c + 1], seed=seeds[c], **kw)
        if c == 3:
            with pytest.raises(FloatingPointError), np.errstate(all="ignore"):
                ln.run(theta0[c:c + 1], X[c:c + 1], y[c:c + 1], **one)
            k = int(np.argmax(np.isnan(stacked.theta[:, c]).any(axis=(1, 2))))
            assert k > 0 and np.isnan(stacked.theta[k:, c]).all() and np.isfinite(stacked.theta[:k, c]).all()
            continue
        alone = ln.run(theta0[c:c + 1], X[c:c + 1], y[c:c + 1], **one)
        mine = stacked.chain(c)
        assert np.array_equal(mine.theta, alone.theta) and np.array_equal(mine.F, alone.F)
        assert mine.theta.shape == alone.theta.shape and not mine.diverged[0]


def test_per_chain_seeds_are_checked():
    theta0, X, y, eta, s, rho = _lane_problem(3, 3, 3, "sinh")
    with pytest.raises(ln.vd.InvalidArgumentError, match="one int per chain"):
        ln.run(theta0, X, y, eta=eta, s=s, steps=10, record_every=5, seed=[1, 2], progress=False)
    with pytest.raises(ln.vd.InvalidArgumentError, match="on_diverge"):
        ln.run(theta0, X, y, eta=eta, s=s, steps=10, record_every=5, on_diverge="ignore", progress=False)
