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
