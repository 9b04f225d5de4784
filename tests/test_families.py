"""The random Hessian families of the stability chapters: the draws the chapters made before they shared them,
PSD and rank, coherent as τ → 0, and clear errors."""

import pytest
import torch

from flatbias import coherence as co
from flatbias import families
from flatbias.validate import InvalidArgumentError


def _chapter_copy(n, d, k, tau, g):  # the helper chapters 10-13 each defined before (same draws, same order)
    base = torch.randn(1, d, k, generator=g, dtype=torch.float64)
    A = base + tau * torch.randn(n, d, k, generator=g, dtype=torch.float64)
    return A @ A.transpose(1, 2)


def test_same_draws_as_the_chapters_own_copies():
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for n, d, k, tau in ((5, 4, 2, 0.3), (3, 3, 3, 1.5), (7, 2, 1, 0.0)):
        assert torch.equal(families.clustered_family(n, d, k, tau, g1), _chapter_copy(n, d, k, tau, g2))
        lo_hi = (2, 9)
        assert families.draw_int(lo_hi, g1) == int(torch.randint(2, 10, (1,), generator=g2))


def test_psd_rank_and_coherence_limits():
    g = torch.Generator().manual_seed(0)
    H = families.clustered_family(6, 5, 2, 0.5, g)
    assert H.shape == (6, 5, 5) and torch.allclose(H, H.transpose(1, 2))
    eig = torch.linalg.eigvalsh(H)
    assert eig.min() > -1e-10 and (eig > 1e-8).sum(1).tolist() == [2] * 6  # rank k each
    same = families.clustered_family(6, 5, 1, 0.0, g)  # τ = 0: every H_i the same rank-one matrix: σ = n
    assert co.coherence(same)[0] == pytest.approx(6.0, rel=1e-10)


@pytest.mark.parametrize("call,match", [
    (lambda: families.clustered_family(0, 3, 1, 0.1), "n must be"),
    (lambda: families.clustered_family(3, 3, 1, -0.1), "tau must be"),
    (lambda: families.draw_int((5, 2)), "lo <= hi"),
    (lambda: families.draw_int(3), "pair"),
])
def test_bad_arguments_name_themselves(call, match):
    with pytest.raises((InvalidArgumentError, TypeError, ValueError), match=match):
        call()
