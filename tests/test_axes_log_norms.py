"""simulate.axes_log_norms against the exact second moment and against the numba heat-map kernel."""

import math

import pytest
import torch

from flatbias import coherence as co
from flatbias import simulate, stability


@pytest.fixture(autouse=True)
def one_thread():
    """Small tensors: a second torch thread only spins (it multiplies the CPU time on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("r", [0.0, 0.2])
def test_mean_matches_exact_second_moment(r):
    n, s, B, eta, T, runs = 12, 3, 4, 0.3, 20, 20_000
    k, a, d = co.authors_axes(n, s)
    D = torch.zeros(n, d, dtype=torch.float64)
    D[torch.arange(n), k] = a
    m = stability.diagonal_multipliers(D, eta, B, "sam" if r else "sgd", rho_over_alpha=r)
    exact = torch.stack([(m ** t).sum() / 3 for t in range(T + 1)])  # E w0_k² = 1/3
    out = simulate.axes_log_norms(k, a, d, B, eta, runs, T, rho_over_alpha=r,
                                  generator=torch.Generator().manual_seed(0)).exp()
    z = (out.mean(0) - exact) / (out.std(0) / math.sqrt(runs))
    assert float(z.abs().max()) < 4.5


def test_escape_fraction_matches_kernel():
    n, eta, reps = 100, 0.5, 100
    cells = [(5, 17), (10, 9)]
    for s, B in cells:
        k, a, d = co.authors_axes(n, s)
        paths = simulate.axes_log_norms(k, a, d, B, eta, reps, 1000,
                                        generator=torch.Generator().manual_seed(1))
        p1 = float(((paths - paths[:, :1]).max(1).values >= math.log(simulate.BLOWUP)).double().mean())
        div = simulate.simulate_axes(k[None], a[None], torch.tensor([d]), torch.tensor([B]), eta,
                                     reps=reps, generator=torch.Generator().manual_seed(2))
        p2 = float(div.double().mean())
        se = math.sqrt(max(p1 * (1 - p1) + p2 * (1 - p2), 1e-4) / reps)
        assert abs(p1 - p2) < 4.5 * se + 1e-9, (s, B, p1, p2)


def test_bad_arguments():
    k, a, d = co.authors_axes(10, 2)
    with pytest.raises(ValueError):
        simulate.axes_log_norms(k, a, d, 0, 0.5, 3, 3)

def _argsort_axes_log_norms(k, a, d, B, eta, runs, steps, rho_over_alpha=0.0, generator=None):
    """The earlier implementation (a full argsort of the keys per step), kept as the reference."""
    n = int(k.shape[0])
    hbar = torch.zeros(d, dtype=torch.float64).scatter_add_(0, k, a) / n
    scale = 1 + float(rho_over_alpha) * hbar
    logw = torch.rand(runs, d, generator=generator, dtype=torch.float64).log()
    out = torch.empty(runs, steps + 1, dtype=torch.float64)
    out[:, 0] = torch.logsumexp(2 * logw, 1)
    for t in range(steps):
        idx = torch.rand(runs, n, generator=generator).argsort(1)[:, :B]
        h = torch.zeros(runs, d, dtype=torch.float64).scatter_add_(1, k[idx], a[idx] / B)
        logw = logw + (1 - eta * h * scale).abs().log()
        out[:, t + 1] = torch.logsumexp(2 * logw, 1)
    return out


def test_topk_minibatches_equal_the_argsort_ones():
    """The subsets by topk: bit for bit the earlier code (a full argsort per step) on the authors' families."""
    for sigma, B, r, runs, steps in ((5, 1, 0.0, 64, 40), (5, 16, 0.0, 64, 40), (1, 49, 0.5, 64, 40),
                                     (20, 16, 0.0, 2000, 25)):
        k, a, d = co.authors_axes(100, sigma)
        new = simulate.axes_log_norms(k, a, d, B, 0.5, runs, steps, rho_over_alpha=r,
                                      generator=torch.Generator().manual_seed(3))
        old = _argsort_axes_log_norms(k, a, d, B, 0.5, runs, steps, rho_over_alpha=r,
                                      generator=torch.Generator().manual_seed(3))
        assert torch.equal(new, old)
