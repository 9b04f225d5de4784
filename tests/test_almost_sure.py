"""The almost-sure growth rate on the authors' construction: closed forms at σ = n and σ = 1, and Monte Carlo."""

import math

import numpy as np
import pytest
from flatbias import almost_sure


def test_identical_samples_give_the_deterministic_rate():
    assert almost_sure.authors_growth_rate(100, 7, 100, 0.3) == pytest.approx(math.log(abs(1 - 2 * 0.3)))


def test_orthogonal_samples():
    n, B, eta = 100, 4, 0.5
    expected = (B / n) * math.log(abs(1 - eta * 2 * n / B))
    assert almost_sure.authors_growth_rate(1, B, n, eta) == pytest.approx(expected)


def test_matches_monte_carlo_over_minibatches():
    """E log|1 − ηĥ| on the shared axis from random B-subsets (numpy), the orthogonal axes in closed form."""
    n, s, B, eta = 100, 10, 8, 0.5
    a = 2 * n / s
    rng = np.random.default_rng(0)
    x = np.array([(rng.permutation(n)[:B] < s).sum() for _ in range(20000)])
    shared = float(np.mean(np.log(np.abs(1 - eta * a * x / B))))
    orth = (B / n) * math.log(abs(1 - eta * a / B))
    assert almost_sure.authors_growth_rate(s, B, n, eta) == pytest.approx(max(shared, orth), abs=0.01)
