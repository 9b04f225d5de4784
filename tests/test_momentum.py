"""Heavy-ball stability operators (flatbias.momentum) against brute force, Monte Carlo, β = 0 and closed forms."""

import math

import pytest
import torch

from flatbias import momentum as mo
from flatbias import stability as st
from flatbias.validate import InvalidArgumentError


def family(n, d, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(n, d, k, dtype=torch.float64, generator=g)
    return A @ A.transpose(1, 2) / k


def diagonal(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    D = torch.rand(n, d, dtype=torch.float64, generator=g) * (torch.rand(n, d, generator=g) < 0.5)
    D[:, 0] += 0.1
    return D


@pytest.mark.parametrize("sampling", ["without_replacement", "bernoulli"])
@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_operator_equals_brute_force_over_every_minibatch(sampling, beta):
    H = family(5, 3)
    op = mo.momentum_operator(H, 0.3, 2, beta, sampling=sampling)
    assert torch.allclose(op.dense(), mo.enumerated_operator(H, 0.3, 2, beta, sampling), atol=1e-13)


def test_dense_matrix_is_the_map():
    H = family(6, 3, seed=1)
    op = mo.momentum_operator(H, 0.4, 2, 0.7, method="sam", rho_over_alpha=0.5)
    Z = torch.randn(6, 6, dtype=torch.float64)
    assert torch.allclose((op.dense() @ Z.reshape(-1)).reshape(6, 6), op(Z), atol=1e-13)


@pytest.mark.parametrize("method,ra", [("sgd", 0.0), ("sam", 0.8)])
def test_beta_zero_is_the_existing_operator_exactly(method, ra):
    H = family(5, 3, seed=2)
    op = mo.momentum_operator(H, 0.3, 2, 0.0, method=method, rho_over_alpha=ra)
    T = st.mean_square_operator(H, 0.3, 2, method=method, rho_over_alpha=ra)
    Z = torch.randn(6, 6, dtype=torch.float64)
    Z = Z @ Z.T
    assert torch.allclose(op(Z)[:3, :3], T(Z[:3, :3]), atol=1e-14, rtol=0)
    for alg in ("dense", "arnoldi"):
        assert mo.spectral_radius(H, 0.3, 2, 0.0, method, rho_over_alpha=ra, algorithm=alg) == pytest.approx(
            st.spectral_radius(H, 0.3, 2, method, rho_over_alpha=ra), rel=1e-10)


def test_monte_carlo_matches_the_second_moment():
    H = family(6, 3, seed=3)
    w0 = torch.ones(3, dtype=torch.float64)
    sims = mo.simulate(H, 0.3, 2, 0.5, w0, 15, 40_000, generator=torch.Generator().manual_seed(0))
    z = torch.cat([w0, w0])
    exact = mo.top_left_traces(mo.momentum_operator(H, 0.3, 2, 0.5), torch.outer(z, z), 15)
    zs = (sims.mean(1) - exact) / (sims.std(1) / math.sqrt(sims.shape[1])).clamp_min(1e-12)
    assert float(zs[1:].abs().max()) < 4.5
    assert float(zs[0]) == 0


def test_monte_carlo_sam_matches_and_differs_from_sgd():
    H = family(6, 3, seed=4)
    w0 = torch.ones(3, dtype=torch.float64)
    sims = mo.simulate(H, 0.3, 2, 0.5, w0, 10, 40_000, method="sam", rho_over_alpha=1.0,
                       generator=torch.Generator().manual_seed(1))
    z = torch.cat([w0, w0])
    sam = mo.top_left_traces(mo.momentum_operator(H, 0.3, 2, 0.5, "sam", rho_over_alpha=1.0),
                             torch.outer(z, z), 10)
    sgd = mo.top_left_traces(mo.momentum_operator(H, 0.3, 2, 0.5), torch.outer(z, z), 10)
    se = sims.std(1) / math.sqrt(sims.shape[1])
    assert float(((sims.mean(1) - sam) / se.clamp_min(1e-12))[1:].abs().max()) < 4.5
    assert float(((sims.mean(1) - sgd) / se.clamp_min(1e-12))[1:].abs().max()) > 10


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method,ra", [("sgd", 0.0), ("sam", 0.7)])
def test_diagonal_radius_and_threshold_equal_the_dense_operator(beta, method, ra):
    D = diagonal(6, 4)
    H = torch.diag_embed(D)
    rad = float(mo.spectral_radius_diagonal(D, 0.2, 2, beta, method, rho_over_alpha=ra))
    assert rad == pytest.approx(mo.spectral_radius(H, 0.2, 2, beta, method, rho_over_alpha=ra), rel=1e-12)
    eta = float(mo.critical_eta_diagonal(D, 2, beta, method, rho_over_alpha=ra))
    assert eta == pytest.approx(mo.critical_eta(H, 2, beta, method, rho_over_alpha=ra), rel=1e-8)
    for f, above in ((0.999, False), (1.001, True)):
        assert (mo.spectral_radius(H, f * eta, 2, beta, method, rho_over_alpha=ra) > 1) is above


def test_diagonal_is_batched_and_beta_zero_is_sgd():
    D = torch.stack([diagonal(6, 4, s) for s in range(3)])
    eta = torch.tensor([0.1, 0.2, 0.3], dtype=torch.float64)
    got = mo.spectral_radius_diagonal(D, eta, 2, 0.0)
    assert torch.allclose(got, st.spectral_radius_diagonal(D, eta, 2), rtol=1e-12)
    assert torch.allclose(mo.critical_eta_diagonal(D, 2, 0.0), st.critical_eta_diagonal(D, 2), rtol=1e-12)
    betas = torch.tensor([0.0, 0.5, 0.9], dtype=torch.float64)
    for i, b in enumerate(betas.tolist()):
        assert float(mo.spectral_radius_diagonal(D, eta, 2, betas)[i]) == pytest.approx(
            float(mo.spectral_radius_diagonal(D[i], float(eta[i]), 2, b)), rel=1e-12)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_full_batch_threshold_is_the_deterministic_edge(beta):
    H = family(4, 3, seed=5)
    lam = float(torch.linalg.eigvalsh(H.mean(0))[-1])
    assert mo.critical_eta(H, 4, beta) == pytest.approx(mo.deterministic_edge(lam, beta), rel=1e-7)
    assert mo.critical_eta(H, 2, beta) < mo.deterministic_edge(lam, beta)  # noise only lowers it


def test_radius_algorithms_agree_on_a_larger_family():
    H = family(16, 15, 3, seed=6)  # r = 15 > DENSE_MAX_DIM: 'auto' takes Arnoldi
    op = mo.momentum_operator(H, 0.2, 4, 0.6, restrict=True)
    assert op.r == 15 > mo.DENSE_MAX_DIM
    dense = mo.radius_dense(op)
    assert mo.radius_arnoldi(op) == pytest.approx(dense, rel=1e-9)
    assert mo.radius_power(op) == pytest.approx(dense, rel=1e-4)
    assert mo.radius(op) == pytest.approx(dense, rel=1e-9)  # 'auto': arnoldi above DENSE_MAX_DIM


def test_rank_one_operator_equals_the_dense_family():
    g = torch.Generator().manual_seed(7)
    G = torch.randn(6, 9, dtype=torch.float64, generator=g)
    H = 2 * G[:, :, None] * G[:, None, :]
    a = mo.spectral_radius_rank_one(G, 0.05, 2, 0.5, method="sam", rho_over_alpha=0.3, algorithm="dense")
    b = mo.spectral_radius(H, 0.05, 2, 0.5, method="sam", rho_over_alpha=0.3, algorithm="dense")
    assert a == pytest.approx(b, rel=1e-10)


def test_arguments_are_checked_once_with_their_names():
    H = family(4, 2)
    with pytest.raises(InvalidArgumentError, match="beta"):
        mo.momentum_operator(H, 0.1, 2, 1.0)
    with pytest.raises(InvalidArgumentError, match="beta"):
        mo.spectral_radius_diagonal(torch.ones(4, 2), 0.1, 2, torch.tensor([0.5, -0.1]))
    with pytest.raises(InvalidArgumentError, match="eta"):
        mo.momentum_operator(H, -0.1, 2, 0.5)
    with pytest.raises(InvalidArgumentError, match="B"):
        mo.momentum_operator(H, 0.1, 5, 0.5)
    with pytest.raises(InvalidArgumentError, match="ρ/α"):
        mo.momentum_operator(H, 0.1, 2, 0.5, method="sgd", rho_over_alpha=1.0)
    with pytest.raises(InvalidArgumentError, match="w0"):
        mo.simulate(H, 0.1, 2, 0.5, torch.ones(3, dtype=torch.float64), 2, 2)
    with pytest.raises(TypeError, match="MomentumOperator"):
        mo.radius_dense(st.mean_square_operator(H, 0.1, 2))


def test_family_thresholds_at_beta_zero_are_the_plain_thresholds():
    H = mo.random_family(6, 3, 2, torch.Generator().manual_seed(8))
    out = mo.family_thresholds(H, 3, [0.0, 0.5], rho_over_alpha=0.2)
    assert out["sgd"][0] == pytest.approx(st.critical_eta(H, 3), rel=1e-6)
    assert out["sam"][0] == pytest.approx(st.critical_eta(H, 3, "sam", rho_over_alpha=0.2), rel=1e-6)
    assert out["sam"][1] < out["sgd"][1]
    assert out["eta_dexter"] == pytest.approx(st.dexter_eta(H, 3))


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("method,ra", [("sgd", 0.0), ("sam", 0.3)])
def test_margin_gives_the_dense_verdict_and_threshold(beta, method, ra):
    for seed in range(4):
        H = mo.random_family(6, 4, 2, torch.Generator().manual_seed(20 + seed))
        fam = st.family(H)
        eta = mo.critical_eta(H, 3, beta, method, rho_over_alpha=ra)
        assert mo.critical_eta_family(fam, 3, beta, rho_over_alpha=ra, rtol=1e-9) == pytest.approx(eta, rel=1e-7)
        for f in (0.5, 0.95, 1.05, 1.5):
            fast = mo.margin(fam, f * eta, 3, beta, rho_over_alpha=ra) < 1
            assert fast == (mo.spectral_radius(H, f * eta, 3, beta, method, rho_over_alpha=ra) < 1)


def test_margin_edge_cases():
    H = mo.random_family(5, 3, 2, torch.Generator().manual_seed(30))
    fam = st.family(H)
    lam = float(torch.linalg.eigvalsh(H.mean(0))[-1])
    assert mo.margin(fam, mo.deterministic_edge(lam, 0.5) * 1.01, 2, 0.5) == math.inf
    assert mo.margin(fam, 0.1, 5, 0.5) == 0.0  # B = n: no minibatch noise
    assert mo.critical_eta_family(fam, 5, 0.5) == pytest.approx(mo.deterministic_edge(lam, 0.5), rel=1e-5)


def test_rank_one_threshold_equals_the_dense_family():
    g = torch.Generator().manual_seed(31)
    G = torch.randn(7, 12, dtype=torch.float64, generator=g)
    H = 2 * G[:, :, None] * G[:, None, :]
    for beta in (0.0, 0.9):
        assert mo.critical_eta_rank_one(G, 3, beta, rtol=1e-9) == pytest.approx(
            mo.critical_eta(H, 3, beta), rel=1e-7)
    assert mo.critical_eta_rank_one(G, 3, 0.0, rtol=1e-9) == pytest.approx(st.critical_eta_rank_one(G, 3), rel=1e-7)


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
@pytest.mark.parametrize("ra", [0.0, 0.3])
def test_rank_one_margin_in_numpy_equals_the_dense_family_margin(beta, ra):
    """The rank-one margin (numpy products on U) against the same family given as dense H_i (torch einsum)."""
    g = torch.Generator().manual_seed(32)
    G = torch.randn(9, 14, dtype=torch.float64, generator=g)
    ones = st.family_rank_one(G, 2.0)
    dense = st.Family(Hbar=ones.Hbar, H=ones.dense())
    eta = mo.critical_eta_family(dense, 3, beta, rho_over_alpha=ra, rtol=1e-9)
    for f in (0.3, 0.9, 0.999, 1.001, 1.2):
        a = mo.margin(ones, f * eta, 3, beta, rho_over_alpha=ra)
        b = mo.margin(dense, f * eta, 3, beta, rho_over_alpha=ra)
        assert a == pytest.approx(b, rel=1e-11) and (a < 1) == (f < 1)


def _critical_eta_by_eigenvalues(H, B, beta, method="sgd", rho_over_alpha=0.0, rtol=1e-7, grid=16):
    """The earlier critical_eta: the same scan and bisection, each side of 1 decided by radius_dense."""
    import numpy as np

    from flatbias import stability

    fam = stability.family(H, restrict=True)

    def rho(eta):
        return mo.radius_dense(mo._momentum(fam, eta, B, beta, method, "without_replacement", rho_over_alpha))

    op0 = mo._momentum(fam, 1.0, B, beta, method, "without_replacement", rho_over_alpha).op
    edge = 2 * (1 + beta) / float(torch.linalg.eigvals(op0.Kbar).real.max())
    lo = 0.0
    for e in np.geomspace(1e-3 * edge, 2 * edge, grid):
        if rho(e) >= 1:
            hi = float(e)
            break
        lo = float(e)
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if rho(mid) < 1 else (lo, mid)
    return hi


def test_unstable_dense_decides_like_the_eigenvalues_and_the_threshold_is_unchanged():
    """The linear-solve test of ρ(𝒯_β) ≥ 1 gives chapter 18's thresholds bit for bit (random families as in the
    chapter: n in [4, 12], d in [2, 6], rank in [1, 3]; SGD and SAM; β in {0, 0.5, 0.9})."""
    g = torch.Generator().manual_seed(18)
    for _ in range(6):
        n = int(torch.randint(4, 13, (1,), generator=g))
        d = int(torch.randint(2, 7, (1,), generator=g))
        H = mo.random_family(n, d, int(torch.randint(1, 4, (1,), generator=g)), g)
        B = int(torch.randint(1, n + 1, (1,), generator=g))
        for beta in (0.0, 0.5, 0.9):
            for method, ra in (("sgd", 0.0), ("sam", 0.1)):
                new = mo.critical_eta(H, B, beta, method, rho_over_alpha=ra, rtol=1e-7)
                assert new == _critical_eta_by_eigenvalues(H, B, beta, method, ra), (n, d, B, beta, method)
    H = mo.random_family(5, 3, 2, g)  # both sides, away from and near the threshold
    star = mo.critical_eta(H, 2, 0.5)
    for f in (0.3, 0.999, 1.001, 1.7):
        op = mo.momentum_operator(H, f * star, 2, 0.5, restrict=True)
        assert mo.unstable_dense(op) == (mo.radius_dense(op) >= 1) == (f > 1)


def _bisect(g, lo, hi, rtol):
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if g(mid) < 0 else (lo, mid)
    return hi


@pytest.mark.parametrize("name,g,root", [
    ("cubic", lambda x: x ** 3 - 2.0, 2.0 ** (1 / 3)),
    ("steep", lambda x: math.expm1(40 * (x - 0.7)), 0.7),
    ("kink", lambda x: (x - 0.3) * (1.0 if x < 0.3 else 50.0), 0.3),
    ("log", lambda x: math.log(x / 0.45), 0.45),
    ("step", lambda x: -1.0 if x < 0.61 else 1.0, 0.61),
])
def test_bracket_root_keeps_the_bisection_contract_in_fewer_steps(name, g, root):
    """The upper end of a bracket of width ≤ rtol·hi around the root (as bisection), with g finite or not at
    the starting ends; on smooth g in fewer evaluations than bisection."""
    calls = []

    def counted(x):
        calls.append(x)
        return g(x)

    for rtol in (1e-6, 1e-10):
        calls.clear()
        hi = mo.bracket_root(counted, 0.01, g(0.01), 1.5, math.inf, rtol)
        assert root <= hi <= root * (1 + rtol) + 1e-15 and g(hi) >= 0
        if name not in ("step", "kink"):
            n_bisect = math.ceil(math.log2(1.49 / (rtol * root)))
            assert len(calls) < 0.6 * n_bisect
        assert hi == pytest.approx(_bisect(g, 0.01, 1.5, rtol), rel=rtol)


@pytest.mark.parametrize("args,match", [
    ((0.0, -1.0, 1.0, 1.0, 0.0), "rtol"),
    ((1.0, -1.0, 1.0, 1.0, 1e-6), "lo < hi"),
    ((0.0, -1.0, math.inf, 1.0, 1e-6), "lo < hi"),
    ((0.0, 1.0, 1.0, 2.0, 1e-6), "sign change"),
    ((0.0, -1.0, 1.0, -0.5, 1e-6), "sign change"),
    ((0.0, math.nan, 1.0, 1.0, 1e-6), "sign change"),
])
def test_bracket_root_names_a_bad_bracket(args, match):
    lo, g_lo, hi, g_hi, rtol = args
    with pytest.raises(ValueError, match=match):
        mo.bracket_root(lambda x: x - 0.5, lo, g_lo, hi, g_hi, rtol)
