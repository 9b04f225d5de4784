import math

import numpy as np

import pytest
import torch

from flatbias import coherence as co
from flatbias import simulate as sim
from flatbias import stability as st


def _family(n, d, rank, gen):
    A = torch.randn(n, d, rank, generator=gen)
    return A @ A.transpose(1, 2)


@pytest.mark.parametrize("sampling", st.SAMPLINGS)
@pytest.mark.parametrize("B", [1, 2, 5])
def test_identical_hessians_closed_form(gen, sampling, B):
    n, A = 6, _family(1, 3, 3, gen)[0]
    lam = float(torch.linalg.eigvalsh(A)[-1])
    thr = st.identical_threshold(n, B, sampling) / lam
    H = A.expand(n, 3, 3)
    assert st.spectral_radius(H, 0.99 * thr, B, sampling=sampling) < 1 < st.spectral_radius(H, 1.01 * thr, B, sampling=sampling)
    assert abs(st.critical_eta(H, B, sampling=sampling) / thr - 1) < 1e-8


@pytest.mark.parametrize("sampling", st.SAMPLINGS)
@pytest.mark.parametrize("B", [1, 3, 7])
def test_orthogonal_rank_one_closed_form(sampling, B):
    n, a = 8, 2.5
    H = torch.diag_embed(torch.eye(n) * a)
    thr = st.orthogonal_threshold(B) / a
    assert st.spectral_radius(H, 0.99 * thr, B, sampling=sampling) < 1 < st.spectral_radius(H, 1.01 * thr, B, sampling=sampling)
    # multiplier 1 − 2ηa/n + η²a²/(nB) per direction, exactly
    eta = 0.3 * thr
    assert abs(st.spectral_radius(H, eta, B, sampling=sampling) - (1 - 2 * eta * a / n + eta ** 2 * a ** 2 / (n * B))) < 1e-12


def test_dense_operator_is_the_map(gen):
    H = _family(5, 3, 2, gen)
    for method, r in [("sgd", 0.0), ("sam", 0.8)]:
        op = st.mean_square_operator(H, 0.1, 2, method=method, rho_over_alpha=r)
        X = torch.randn(3, 3, generator=gen)  # also non-symmetric X
        torch.testing.assert_close(op.dense() @ X.reshape(-1), op(X).reshape(-1))


def test_operator_is_the_expectation(gen):
    """𝒯(X) = E[(I − ηK̂)X(I − ηK̂)ᵀ] by enumerating every minibatch (w/o replacement) or every subset (Bernoulli)."""
    import itertools

    n, d, B, eta, r = 5, 3, 2, 0.2, 0.6
    H = _family(n, d, 2, gen)
    X = torch.randn(d, d, generator=gen)
    X = X @ X.T
    M = torch.eye(d) + r * H.mean(0)
    for sampling in st.SAMPLINGS:
        op = st.mean_square_operator(H, eta, B, method="sam", sampling=sampling, rho_over_alpha=r)
        acc = torch.zeros(d, d)
        subsets = itertools.combinations(range(n), B) if sampling == "without_replacement" else \
            (s for k in range(n + 1) for s in itertools.combinations(range(n), k))
        for s in subsets:
            if sampling == "without_replacement":
                p = 1 / math.comb(n, B)
            else:
                p = (B / n) ** len(s) * (1 - B / n) ** (n - len(s))
            Kh = H[list(s)].sum(0) @ M / B if s else torch.zeros(d, d)
            A = torch.eye(d) - eta * Kh
            acc += p * A @ X @ A.T
        torch.testing.assert_close(op(X), acc)


def test_sam_with_zero_rho_is_sgd(gen):
    H = _family(6, 4, 2, gen)
    for sampling in st.SAMPLINGS:
        a = st.spectral_radius(H, 0.07, 2, method="sam", sampling=sampling, rho_over_alpha=0.0)
        b = st.spectral_radius(H, 0.07, 2, method="sgd", sampling=sampling)
        assert abs(a - b) < 1e-12
    # and ρ/α > 0 changes it (the test can fail)
    assert abs(st.spectral_radius(H, 0.07, 2, method="sam", rho_over_alpha=1.0) - st.spectral_radius(H, 0.07, 2)) > 1e-6


@pytest.mark.parametrize("method,r", [("sgd", 0.0), ("sam", 0.5)])
def test_matrix_free_radius_matches_dense(gen, method, r):
    H = _family(7, 5, 2, gen)
    dense = st.spectral_radius(H, 0.04, 3, method=method, rho_over_alpha=r, algorithm="dense")
    for algorithm in ("lanczos", "power", "arnoldi"):
        assert abs(st.spectral_radius(H, 0.04, 3, method=method, rho_over_alpha=r, algorithm=algorithm) - dense) < 1e-8


@pytest.mark.parametrize("method,r", [("sgd", 0.0), ("sam", 0.5)])
def test_rank_one_path_matches_dense(gen, method, r):
    G = torch.randn(6, 9, generator=gen)  # p = 9 > n = 6: span of dimension 6
    H = 2.0 * G[:, :, None] * G[:, None, :]
    for sampling in st.SAMPLINGS:
        dense = st.spectral_radius(H, 0.03, 2, method=method, sampling=sampling, rho_over_alpha=r, algorithm="dense")
        for algorithm in ("dense", "lanczos"):
            fast = st.spectral_radius_rank_one(G, 0.03, 2, c=2.0, method=method, sampling=sampling,
                                               rho_over_alpha=r, algorithm=algorithm)
            assert abs(fast - dense) < 1e-9


def test_singular_h_null_space_is_neutral(gen):
    G = torch.randn(4, 6, generator=gen)
    H = G[:, :, None] * G[:, None, :]
    assert st.spectral_radius(H, 1e-3, 2, restrict=False) >= 1 - 1e-12  # null directions: multiplier 1
    assert st.spectral_radius(H, 1e-3, 2) < 1  # on range(H) small steps are stable


def test_diagonal_radius_matches_dense(gen):
    D = torch.rand(6, 4, generator=gen) * (torch.rand(6, 4, generator=gen) < 0.5)
    D[0] += 0.1
    H = torch.diag_embed(D)
    for method, r in [("sgd", 0.0), ("sam", 0.7)]:
        for sampling in st.SAMPLINGS:
            for B in (1, 3, 6):
                fast = float(st.spectral_radius_diagonal(D, 0.9, B, method=method, sampling=sampling, rho_over_alpha=r))
                dense = st.spectral_radius(H, 0.9, B, method=method, sampling=sampling, rho_over_alpha=r, algorithm="dense")
                assert abs(fast - dense) < 1e-12


def test_authors_heatmap_boundary():
    """SPEC §B.8a: largest diverging B at η = 0.5: σ=1: 49, σ=2: 33, σ=5: 16, σ=10: 8, σ=25: 2, σ=50: none."""
    expected = {1: 49, 2: 33, 5: 16, 10: 8, 25: 2, 50: 0}
    Bs = torch.arange(1, 50)
    for s, last in expected.items():
        k, a, d = co.authors_axes(100, s)
        D = torch.zeros(100, d)
        D[torch.arange(100), k] = a
        rho = st.spectral_radius_diagonal(D, 0.5, Bs)
        div = Bs[rho > 1 + 1e-12]
        assert (int(div.max()) if len(div) else 0) == last


def test_operator_matches_monte_carlo():
    """SPEC §B.10: stable instance n=6, d=3, B=2, η=0.15, T=20: MC mean of ‖w_T‖² within 3 s.e. of tr 𝒯^T(W_0)."""
    g = torch.Generator().manual_seed(7)
    H = _family(6, 3, 2, g)
    H = H / float(torch.linalg.eigvalsh(H.mean(0))[-1])  # λ_1(H) = 1
    assert st.spectral_radius(H, 0.15, 2) < 1
    w0 = torch.randn(3, generator=g)
    for method, r in [("sgd", 0.0), ("sam", 0.5)]:
        exact = float(st.second_moments(H, 0.15, 2, torch.outer(w0, w0), 20, method=method, rho_over_alpha=r)[-1])
        mc = sim.simulate(H, 0.15, 2, w0.expand(20_000, 3), 20, method=method, rho_over_alpha=r, generator=g)[-1]
        se = float(mc.std()) / math.sqrt(mc.numel())
        assert abs(float(mc.mean()) - exact) < 3 * se
        assert exact < 0.9 * float(w0.pow(2).sum())  # and it did contract (the comparison is not vacuous)


def test_noise_floor_matches_stationary_moment():
    g = torch.Generator().manual_seed(3)
    H = _family(5, 2, 2, g)
    H = H / float(torch.linalg.eigvalsh(H.mean(0))[-1])
    W = st.stationary_second_moment(H, 0.5, 2, noise_std=1.0)
    mc = sim.simulate(H, 0.5, 2, torch.zeros(6_000, 2), 100, method="random", generator=g)[-1]
    se = float(mc.std()) / math.sqrt(mc.numel())
    assert abs(float(mc.mean()) - float(torch.trace(W))) < 3 * se


def test_masks_without_replacement():
    g = torch.Generator().manual_seed(0)
    B = torch.tensor([1, 4, 9] * 20_000)
    m = sim.batch_masks(B, 10, "without_replacement", g)
    assert torch.equal(m.sum(1).long(), B)
    for b in (1, 4, 9):  # every index equally likely: B/n
        freq = m[B == b].mean(0)
        assert float((freq - b / 10).abs().max()) < 0.02


def test_bad_inputs_are_clear_errors(gen):
    H = _family(4, 3, 2, gen)
    with pytest.raises(ValueError, match="1 ≤ B ≤ n"):
        st.spectral_radius(H, 0.1, 5)
    with pytest.raises(ValueError, match="η"):
        st.spectral_radius(H, 0.0, 2)
    with pytest.raises(ValueError, match="η"):
        st.spectral_radius(H, -1.0, 2)
    bad = H.clone()
    bad[2] = -bad[2]
    with pytest.raises(ValueError, match="not positive semidefinite"):
        st.spectral_radius(bad, 0.1, 2)
    with pytest.raises(ValueError, match="unknown method"):
        st.spectral_radius(H, 0.1, 2, method="adam")
    with pytest.raises(ValueError, match="unknown sampling"):
        st.spectral_radius(H, 0.1, 2, sampling="poisson")
    with pytest.raises(ValueError, match="only makes sense"):
        st.spectral_radius(H, 0.1, 2, rho_over_alpha=0.5)
    with pytest.raises(ValueError, match="1 ≤ B ≤ n"):
        st.spectral_radius_rank_one(torch.randn(4, 8, generator=gen), 0.1, 0)
    with pytest.raises(ValueError, match="no stationary"):
        st.stationary_second_moment(H, 100.0, 2)


def test_floyd_batches_are_uniform_subsets():
    """Floyd's sampler: B distinct indices, every index with probability B/n, every pair with B(B−1)/(n(n−1))."""
    n, B, count = 7, 3, 60_000
    idx = sim.floyd_batches(n, B, count, seed=5)
    assert idx.shape == (count, B)
    srt = torch.from_numpy(idx).sort(1).values
    assert bool((srt[:, 1:] > srt[:, :-1]).all()) and int(idx.min()) >= 0 and int(idx.max()) < n
    m = torch.zeros(count, n).scatter_(1, torch.from_numpy(idx), 1.0)
    assert float((m.mean(0) - B / n).abs().max()) < 0.01
    pair = (m.T @ m / count).fill_diagonal_(B * (B - 1) / (n * (n - 1)))
    assert float((pair - B * (B - 1) / (n * (n - 1))).abs().max()) < 0.01
    # all C(7, 3) = 35 subsets equally likely (chi-square-free check: each within 15% of 1/35)
    codes = (2 ** srt).sum(1)
    freq = torch.unique(codes, return_counts=True)[1].double() / count
    assert freq.numel() == 35 and float((freq * 35 - 1).abs().max()) < 0.15


@pytest.mark.parametrize("method,sampling,r", [("sgd", "without_replacement", 0.0), ("random", "without_replacement", 0.0),
                                               ("sam", "without_replacement", 0.3), ("sgd", "bernoulli", 0.0)])
def test_numba_kernel_matches_torch_backend(method, sampling, r):
    """Same distribution of escape times (different random streams): divergence fractions within 4 s.e."""
    cells = [(2, 3), (4, 2), (4, 6), (10, 1)]  # (σ, B) in the n = 20 construction, stable and unstable ones
    k, a, d, B, _ = sim.authors_grid(20, [s for s, _ in cells], [1])
    B = torch.tensor([b for _, b in cells])
    reps, steps = 1500, 60
    out = {}
    for backend in ("numba", "torch"):
        g = torch.Generator().manual_seed(11)
        out[backend] = sim.escape_times_axes(k, a, d, B, 0.45, reps=reps, steps=steps, method=method,
                                             sampling=sampling, rho_over_alpha=r, generator=g, backend=backend)
    pn, pt = ((out[b] <= steps).double().mean(1) for b in ("numba", "torch"))
    se = ((pn * (1 - pn) + pt * (1 - pt)) / reps).sqrt().clamp_min(1e-3)
    assert bool(((pn - pt).abs() < 4 * se).all()), (pn, pt)
    assert float(pn.max() - pn.min()) > 0.3  # the cells differ (not all stable / all unstable)
    tn, tt = (out[b].double().mean(1) for b in ("numba", "torch"))  # escape times agree too
    assert bool(((tn - tt).abs() < 0.1 * tt + 2).all()), (tn, tt)


def test_numba_kernel_is_deterministic():
    k, a, d, B, _ = sim.authors_grid(20, [3], [2, 5])
    runs = [sim.escape_times_axes(k, a, d, B, 0.5, reps=50, steps=100, method="random",
                                  generator=torch.Generator().manual_seed(4)) for _ in range(2)]
    assert torch.equal(*runs)


def test_diagonal_noise_floor_matches_stationary_moment(gen):
    """Theorem 3.1's noise floor: per-axis closed form = (I − 𝒯)⁻¹(s²𝒯(I)) from the dense operator."""
    D = 0.2 + torch.rand(6, 3, generator=gen)
    for B in (1, 3):
        dense = float(torch.trace(st.stationary_second_moment(torch.diag_embed(D), 0.6, B, noise_std=0.7)))
        assert abs(float(st.diagonal_noise_floor(D, 0.6, B, noise_std=0.7)) - dense) < 1e-10 * dense
    assert math.isinf(float(st.diagonal_noise_floor(D, 50.0, 1)))


def test_perturbed_second_moment_grows_at_rho(gen):
    """Theorem 3.1 (i): with noise the second moment grows at the SGD rate ρ(𝒯) when unstable, plateaus when stable."""
    H = _family(5, 3, 3, gen)
    eta_star = st.critical_eta(H, 2)
    W0 = torch.eye(3)
    for f in (1.3, 3.0):
        rho = st.spectral_radius(H, f * eta_star, 2)
        for s in (0.0, 1.0):
            assert abs(st.second_moment_growth(H, f * eta_star, 2, W0, 600, noise_std=s) / rho - 1) < 1e-8
    assert abs(st.second_moment_growth(H, 0.5 * eta_star, 2, W0, 600, noise_std=1.0) - 1) < 1e-10
    assert st.second_moment_growth(H, 0.5 * eta_star, 2, W0, 600) < 0.999  # SGD decays: the check can fail


def test_critical_eta_diagonal_matches_dense(gen):
    D = 0.1 + torch.rand(7, 3, generator=gen)
    for method, r in [("sgd", 0.0), ("sam", 1.5)]:
        for sampling in st.SAMPLINGS:
            fast = float(st.critical_eta_diagonal(D, 3, method, sampling, r))
            dense = st.critical_eta(torch.diag_embed(D), 3, method=method, sampling=sampling, rho_over_alpha=r)
            assert abs(fast / dense - 1) < 1e-10


def test_sam_condition_has_no_violations():
    """Paper 2 Thm 3.2 (reconstructed): on random full-rank families, the SAM condition ⇒ ρ(𝒯_SAM) ≥ 1 (Bernoulli)."""
    g = torch.Generator().manual_seed(21)
    for _ in range(60):
        n, d = int(torch.randint(4, 9, (1,), generator=g)), int(torch.randint(2, 5, (1,), generator=g))
        H = _family(n, d, d, g) + 0.3 * _family(1, d, d, g)  # full rank, partly shared
        B, r = int(torch.randint(1, n, (1,), generator=g)), float(torch.rand(1, generator=g)) * 3
        eta = st.sam_eta(H, B, r) * (1 + float(torch.rand(1, generator=g)))  # meets the condition
        assert st.spectral_radius(H, eta, B, method="sam", sampling="bernoulli", rho_over_alpha=r) >= 1 - 1e-9
        # and SAM's exact threshold is below SGD's (its unstable region contains SGD's)
        assert st.critical_eta(H, B, "sam", "bernoulli", r) <= st.critical_eta(H, B, sampling="bernoulli") * (1 + 1e-9)


def test_sam_region_contains_sgd_region_on_construction():
    """SPEC §B.10: SAM's unstable (B, σ) region ⊇ SGD's for the Figure-1 family, growing with ρ/α."""
    k, a, d, Bs, _ = sim.authors_grid(100, range(1, 51, 3), range(1, 50, 3))
    D = torch.zeros(len(Bs), 100, int(d.max())).scatter_(2, k[:, :, None], a[:, :, None])
    unstable = [st.spectral_radius_diagonal(D, 0.5, Bs, method="sam" if r else "sgd", rho_over_alpha=r) > 1
                for r in (0.0, 0.05, 0.2, 1.0, 5.0)]
    for small, big in zip(unstable, unstable[1:]):
        assert bool((big | ~small).all())  # ⊇
    assert int(unstable[0].sum()) < int(unstable[2].sum()) < int(unstable[3].sum())  # strictly growing


@pytest.mark.parametrize("sampling", st.SAMPLINGS)
def test_enumerated_operator_is_the_closed_form(gen, sampling):
    """Brute force over every minibatch = the closed-form 𝒯 (Kronecker matrix on all of R^d)."""
    H = _family(6, 3, 2, gen).double()
    for B in (1, 2, 5):
        brute = st.enumerated_operator(H, 0.3, B, sampling)
        closed = st.mean_square_operator(H, 0.3, B, sampling=sampling).dense()
        assert float((brute - closed).abs().max()) < 1e-12


def test_enumerated_second_moments_match_recursion(gen):
    """Brute-force perturbed second moments = 𝒯(W) + s²𝒯(I) of the library, and SGD's without noise."""
    H = _family(5, 3, 3, gen).double()
    W0 = torch.eye(3, dtype=torch.float64)
    for s in (0.0, 0.7):
        lib = st.second_moments(H, 0.4, 2, W0, 30, noise_std=s)
        brute = st.enumerated_second_moments(H, 0.4, 2, W0, 30, noise_std=s).exp()
        assert float(((brute - lib) / lib).abs().max()) < 1e-11
    with pytest.raises(ValueError):
        st.enumerated_operator(_family(30, 2, 2, gen), 0.1, 15)


@pytest.mark.parametrize("method", ["sgd", "random"])
def test_generator_kernel_matches_torch_backend(method):
    """escape_times_axes_rng: same distribution as the torch backend (divergence fractions within 4 s.e.)."""
    cells = [(2, 3), (4, 2), (4, 6), (10, 1)]
    k, a, d, B, _ = sim.authors_grid(20, [s for s, _ in cells], [1])
    B = torch.tensor([b for _, b in cells])
    reps, steps = 1500, 60
    fast = sim.escape_times_axes_rng(k, a, d, B, 0.45, reps=reps, steps=steps, method=method, seed=3)
    ref = sim.escape_times_axes(k, a, d, B, 0.45, reps=reps, steps=steps, method=method,
                                generator=torch.Generator().manual_seed(11), backend="torch")
    pn, pt = ((x <= steps).double().mean(1) for x in (fast, ref))
    se = ((pn * (1 - pn) + pt * (1 - pt)) / reps).sqrt().clamp_min(1e-3)
    assert bool(((pn - pt).abs() < 4 * se).all()), (pn, pt)
    assert float(pn.max() - pn.min()) > 0.3
    tn, tt = (x.double().mean(1) for x in (fast, ref))
    assert bool(((tn - tt).abs() < 0.1 * tt + 2).all()), (tn, tt)
    again = sim.escape_times_axes_rng(k, a, d, B, 0.45, reps=reps, steps=steps, method=method, seed=3)
    assert torch.equal(fast, again)


def test_generator_kernel_uses_numbas_threads_and_does_not_depend_on_them():
    """One thread (as records run: NUMBA_NUM_THREADS=1) and all of numba's threads give the same escape times."""
    import numba

    k, a, d, B, _ = sim.authors_grid(12, [2, 5], [1, 3])
    many = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = sim.escape_times_axes_rng(k, a, d, B, 0.45, reps=40, steps=80, method="random", seed=4)
    finally:
        numba.set_num_threads(many)
    assert torch.equal(one, sim.escape_times_axes_rng(k, a, d, B, 0.45, reps=40, steps=80, method="random", seed=4))
    assert (one <= 80).any() and (one == 81).any()


def test_perron_root_by_arnoldi_equals_every_eigenvalue_on_large_blocks():
    """critical_eta's ρ(L⁻¹Q) from ARPACK (r² ≥ ARNOLDI_MIN_DIM) against the dense eigenvalues: rank-one blocks
    of the sizes of chapter 14's C = 2 net (r up to 30), SGD and SAM, both samplings."""
    g = torch.Generator().manual_seed(14)
    for r, n, B, method, smp, ra in ((12, 40, 5, "sgd", "without_replacement", 0.0),
                                     (20, 60, 10, "sam", "without_replacement", 1.0),
                                     (30, 100, 10, "sgd", "bernoulli", 0.0)):
        U = torch.randn(n, r, dtype=torch.float64, generator=g) * torch.rand(n, 1, dtype=torch.float64, generator=g)
        H = 2 * U[:, :, None] * U[:, None, :]
        op = st._operator(st.family(H), 1.0, B, method, smp, ra)
        L, Q = op.dense_parts()
        assert L.shape[0] >= st.ARNOLDI_MIN_DIM
        dense = float(torch.linalg.eigvals(torch.linalg.solve(L, Q)).abs().max())
        assert st.perron_root(L, Q) == pytest.approx(dense, rel=1e-12)
        star = st.critical_eta(H, B, method, smp, ra)
        lo, hi = (st.spectral_radius(H, star * (1 + e), B, method, smp, ra) for e in (-1e-7, 1e-7))
        assert lo < 1 < hi  # η* is where ρ(𝒯) crosses 1


def test_stable_counts_a_radius_within_round_off_of_one_as_one():
    """A cell at ρ = 1 exactly (η at the threshold) is not stable on any CPU, whatever side of 1 round-off puts
    the computed radius on; clear cells keep Theorem 3.1's answer."""
    ulp = np.finfo(float).eps
    rho = np.array([0.5, 1 - 1e-6, 1 - 4 * ulp, 1.0, 1 + 4 * ulp, 1.5])
    assert st.stable(rho).tolist() == [True, True, False, False, False, False]
    assert st.stable(torch.tensor(rho)).tolist() == [True, True, False, False, False, False]
    # identical Hessians, full batch: ρ(𝒯) = (1 − ηλ)², exactly 1 at η = 2/λ
    H = torch.diag(torch.tensor([3.0, 1.0, 0.5], dtype=torch.float64)).expand(4, 3, 3).clone()
    at_edge = st.spectral_radius(H, 2 / 3.0, 4)
    assert abs(at_edge - 1) < 1e-12 and not st.stable(at_edge)
    assert st.stable(st.spectral_radius(H, 0.99 * 2 / 3.0, 4))
