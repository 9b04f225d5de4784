"""Chapter 18's guards of the heavy-ball operator (flatbias.momentum_guards): round-off on the package as it is,
large when a bug is planted in what they guard."""
import numpy as np
import pytest
import torch

from flatbias import momentum as mo
from flatbias import momentum_guards as guards
from flatbias import stability

BETAS = [0.0, 0.5, 0.9]


@pytest.fixture
def H(gen):
    return mo.random_family(4, 2, 2, gen)


def test_guards_pass_on_the_package(H, gen):
    assert guards.brute_force(H, 0.3, 2, BETAS) < 1e-12
    Z = torch.randn(4, 4, dtype=torch.float64, generator=gen)
    assert guards.beta_zero(H, 0.3, 2, Z @ Z.T) < 1e-6
    D = torch.rand(4, 3, dtype=torch.float64, generator=gen) + 0.05
    assert guards.diagonal(D, 0.3, 2, BETAS, 0.1) < 1e-6
    assert guards.edge_full_batch(H, BETAS) < 1e-5
    thresholds = [mo.critical_eta(H, 2, b) for b in BETAS]
    assert guards.margin_mismatches(H, 2, BETAS, thresholds) == 0
    assert guards.monte_carlo(H, 0.3, 2, 0.5, 6, 4000, gen) < 4.5


def test_brute_force_catches_wrong_sampling_coefficients(H, monkeypatch):
    real = stability.sampling_coefficients
    monkeypatch.setattr(stability, "sampling_coefficients", lambda n, B, s: tuple(1.1 * x for x in real(n, B, s)))
    assert guards.brute_force(H, 0.3, 2, BETAS) > 1e-6


def test_edge_guard_catches_a_wrong_threshold(H, monkeypatch):
    real = mo.critical_eta
    monkeypatch.setattr(mo, "critical_eta", lambda *a, **kw: 1.01 * real(*a, **kw))
    assert guards.edge_full_batch(H, BETAS) > 1e-3


def test_never_falls():
    assert guards.never_falls(np.array([[1.0, 2.0], [1.0, 2.5], [1.5, 2.5]])) == 0.0
    assert guards.never_falls(np.array([[1.0, 2.0], [0.9, 2.5]])) == 0.5
    assert guards.never_falls(np.array([[1.0], [1.0 - 1e-15]])) == 0.0  # round-off is not a fall
