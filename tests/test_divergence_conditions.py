"""Sufficient divergence conditions against the exact threshold: closed forms, the chapters' draws, counting."""

import math

import numpy as np
import pytest
import torch

from flatbias import divergence_conditions as dc
from flatbias import stability
from flatbias.families import clustered_family, draw_int


def _identical(n, d=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(d, 1, generator=g, dtype=torch.float64)  # rank one: σ = n exactly
    return (A @ A.T).expand(n, d, d).clone()


@pytest.mark.parametrize("n,B", [(6, 1), (8, 3), (5, 4)])
def test_sgd_trial_on_identical_samples_matches_the_closed_forms(n, B):
    H = _identical(n)
    lam1 = float(torch.linalg.eigvalsh(H.mean(0))[-1])
    row, crossing = dc.sgd_trial(H, B, 1.0, samplings=("bernoulli",))
    eta_d = n / (lam1 * math.sqrt(n / B - 1))  # σ = n for identical samples
    eta_star = 2 * n * B / ((n * B + n - B) * lam1)  # SPEC §B.4, Bernoulli
    assert crossing and row[0] == 1.0
    assert row[2] == pytest.approx(eta_d / eta_star, rel=1e-8)
    assert row[1] == pytest.approx(stability.spectral_radius(H, eta_d, B, sampling="bernoulli"), rel=1e-12)


def test_sam_trial_columns():
    g = torch.Generator().manual_seed(1)
    H = clustered_family(6, 3, 3, 0.5, g)
    row, crossing = dc.sam_trial(H, 2, 0.5, 1.5)
    f, rho_f, ratio, star_ratio, r, sigma, kappa = row
    assert crossing and (f, r) == (1.5, 0.5)
    star = stability.critical_eta(H, 2, "sam", sampling="bernoulli", rho_over_alpha=0.5)
    assert ratio == pytest.approx(stability.sam_eta(H, 2, 0.5) / star, rel=1e-10)
    assert 0 < star_ratio < 1 and sigma >= 1 and kappa >= 1
    assert rho_f == pytest.approx(stability.spectral_radius(H, 1.5 * stability.sam_eta(H, 2, 0.5), 2, "sam",
                                                            sampling="bernoulli", rho_over_alpha=0.5), rel=1e-12)


def test_random_sgd_trials_draw_as_the_chapter_did():
    """Chapter 11's own loop (before it moved here): the same generator order gives the same rows."""
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    R, _ = dc.random_sgd_trials(3, (4, 8), (2, 4), (1, 2), (0.5, 2.0), g1)
    for row in R:
        n, d, k = draw_int((4, 8), g2), draw_int((2, 4), g2), draw_int((1, 2), g2)
        tau = float(10 ** (2 * torch.rand(1, generator=g2) - 1.5))
        B = int(torch.randint(1, n, (1,), generator=g2))
        H = clustered_family(n, d, k, tau, g2)
        f = 0.5 + 1.5 * float(torch.rand(1, generator=g2))
        assert np.allclose(row, dc.sgd_trial(H, B, f)[0], rtol=1e-12)


def test_random_sam_trials_shapes_and_ratios():
    R, crossing = dc.random_sam_trials(4, (4, 6), (2, 3), [0.1, 1.0], (0.5, 2.0), torch.Generator().manual_seed(2))
    assert R.shape == (4, 7) and crossing
    assert set(R[:, 4]) <= {0.1, 1.0} and ((R[:, 0] >= 0.5) & (R[:, 0] <= 2.0)).all()


def test_violations_counts_only_families_that_meet_the_condition():
    R = np.array([[1.2, 0.9], [0.8, 0.5], [1.0, 1.0], [1.5, 1 - 1e-12], [2.0, 0.2]])
    assert dc.violations(R, 1) == 2  # rows 0 and 4; row 3 is round-off at the threshold
