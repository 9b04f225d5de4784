import math

import numpy as np
import pytest
import torch

from flatbias import coherence, gen_mem_minima as gm, relu_hessian, stability


@pytest.fixture(scope="module")
def minima():
    torch.set_default_dtype(torch.float64)
    d, h, n = 12, 40, 40
    X, y, Xf, yf, sols = gm.build(0, d, h, n, [2, 3], fresh=200)
    return d, h, X, y, Xf, yf, sols


def test_names():
    assert gm.names([2, 5]) == ["C=2", "C=5", "memorizing"]


def test_build_is_deterministic_and_equally_flat(minima):
    d, h, X, y, Xf, yf, sols = minima
    X2 = gm.build(0, d, h, X.shape[0], [2, 3], fresh=200)[0]
    assert torch.equal(X, X2) and list(sols) == ["C=2", "C=3", "memorizing"]
    flat = 4 * math.sqrt(d + 1)
    for k, t in sols.items():
        r = gm.describe(t, X, y, Xf, yf, h=h)
        assert r["fit_err"] < 1e-12 and abs(r["tr_H"] / flat - 1) < 1e-12
        assert abs(r["max_lam_Hi"] / flat - 1) < 1e-12 and abs(r["sigma"] / r["sigma_G"] - 1) < 1e-10
        assert abs(r["lam_H"] / r["lam_gram"] - 1) < 1e-8
    mem = gm.describe(sols["memorizing"], X, y, Xf, yf, h=h)
    assert mem["offdiag"] == 0 and mem["fresh_acc"] <= 0.05 and abs(mem["sigma"] - 1) < 1e-12
    assert gm.describe(sols["C=2"], X, y, Xf, yf, h=h)["fresh_acc"] == 1.0


def test_thresholds_are_where_the_radius_crosses_one(minima):
    d, h, X, y, Xf, yf, sols = minima
    G = {k: relu_hessian.per_sample_gradients(t, X, h=h) for k, t in sols.items()}
    eta, sam = gm.thresholds(G, list(G), [1, 5], 5, [1.0])
    assert eta.shape == (2, 3) and sam.shape == (1, 3)
    for j, B in enumerate([1, 5]):
        for i, k in enumerate(G):
            assert stability.spectral_radius_rank_one(G[k], eta[j, i], B) == pytest.approx(1, abs=1e-8)
    assert sam[0, 0] < eta[1, 0]  # SAM's threshold is below SGD's at the same B


def test_sam_sigma_at_zero_is_sgds_and_the_gaps():
    torch.manual_seed(0)
    G = torch.randn(6, 9).abs()
    assert gm.sam_sigma(G, 0.0) == pytest.approx(coherence.coherence_from_gradients(G)[0], rel=1e-12)
    sig = np.array([[[4.0, 6.0, 7.0], [2.0, 2.0, 2.5]]])  # (1 seed, 2 nets, 3 ρ/α)
    gap = gm.sam_gaps(sig, 0, 1)
    np.testing.assert_allclose(gap, [[2.0, 3.0, 2.8]])
    assert gm.gap_over_sgd(gap) == pytest.approx(1.4)
    assert gm.gap_step_growth(gap) == pytest.approx(2.8 / 3.0)
