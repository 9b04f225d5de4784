"""Closed-form per-sample Hessians of the ReLU net against torch.func (SPEC §B.2, §B.8(b))."""

import numpy as np
import pytest
import torch

from flatbias import relu_hessian as rh
from flatbias import relu_net as rn


def _random_point(gen, d=5, h=7, n=6, scale=2.0):
    X, y = rn.parity_data(n, d, gen)
    theta = rn.init_flat(d, h, gen) * scale
    assert rh.parts(theta, X, y, h=h).r.abs().max() > 0.1  # off the zero-loss set: residual terms matter
    return theta, X, y, h


def _hessians(theta, X, y, h):
    return torch.stack([rh.per_sample_hessian_autograd(theta, X[i], y[i], h=h) for i in range(X.shape[0])])


def test_gradients_match_autograd(gen):
    theta, X, _, h = _random_point(gen)
    J = torch.func.jacrev(lambda t: rn.forward(t, X, h=h))(theta)
    assert torch.allclose(rh.per_sample_gradients(theta, X, h=h), J, atol=1e-13)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trace_products_match_dense_hessians_off_the_minimum(seed):
    gen = torch.Generator().manual_seed(seed)
    theta, X, y, h = _random_point(gen)
    H = _hessians(theta, X, y, h)
    exact = torch.einsum("iab,jba->ij", H, H)
    closed = rh.trace_products(theta, X, y, h=h)
    assert torch.allclose(closed, exact, rtol=1e-11, atol=1e-10 * float(exact.abs().max()))
    # the residual terms matter here: Gauss-Newton alone is wrong
    G = rh.per_sample_gradients(theta, X, h=h)
    assert float((4 * (G @ G.T) ** 2 - exact).abs().max()) > 1e-3 * float(exact.abs().max())


def test_lambda_max_of_each_hessian_and_coherence(gen):
    theta, X, y, h = _random_point(gen, d=4, h=6, n=8)
    H = _hessians(theta, X, y, h)
    lam = torch.linalg.eigvalsh(H)[:, -1]
    assert torch.allclose(rh.per_sample_lambda_max(theta, X, y, h=h), lam, rtol=1e-11, atol=1e-11)
    coh = rh.coherence(theta, X, y, h=h)
    TT = torch.einsum("iab,jba->ij", H, H)
    S = torch.sqrt(torch.clamp(TT, min=0))
    assert coh.negative_entries == int((TT < 0).sum())
    assert coh.sigma == pytest.approx(float(torch.linalg.eigvalsh(S)[-1] / lam.max()), rel=1e-10)
    assert coh.sigma >= 1 - 1e-12


def test_rows_method_equals_func_hessian(gen):
    theta, X, y, h = _random_point(gen, d=3, h=4, n=2)
    assert torch.allclose(rh.per_sample_hessian_rows(theta, X[0], y[0], h=h),
                          rh.per_sample_hessian_autograd(theta, X[0], y[0], h=h), atol=1e-13)


def test_full_batch_trace_hvp_and_lanczos(gen):
    theta, X, y, h = _random_point(gen, d=6, h=10, n=12)
    Hf = torch.func.hessian(lambda t: rn.mse_loss(t, X, y, h=h))(theta)
    assert rh.full_hessian_trace(theta, X, y, h=h) == pytest.approx(float(torch.trace(Hf)), rel=1e-12)
    v = torch.randn(theta.numel(), generator=gen)
    assert torch.allclose(rh.full_hessian_hvp(theta, X, y, h=h)(v), Hf @ v, atol=1e-12)
    assert rh.full_hessian_lambda_max(theta, X, y, h=h) == pytest.approx(float(torch.linalg.eigvalsh(Hf)[-1]),
                                                                         rel=1e-9)


def test_constructions_equal_flatness_and_coherence_order(gen):
    d, h, n = 14, 40, 30
    X, y = rn.parity_data(n, d, gen)
    assert torch.unique(X, dim=0).shape[0] == n
    sigmas, traces = [], []
    for C in (2, 3, 4):
        theta = rn.generalizing_solution(C, d, h)
        coh = rh.coherence(theta, X, y, h=h)
        sigmas.append(coh.sigma)
        traces.append(rh.full_hessian_trace(theta, X, y, h=h))
        assert coh.max_lambda_Hi == pytest.approx(4 * np.sqrt(d + 1), rel=1e-12)
    mem = rn.memorizing_solution(X, y, h)
    coh = rh.coherence(mem, X, y, h=h)
    off = coh.S - torch.diag(torch.diag(coh.S))
    assert float(off.abs().max()) == 0.0 and coh.sigma == pytest.approx(1.0, abs=1e-12)
    traces.append(rh.full_hessian_trace(mem, X, y, h=h))
    assert np.allclose(traces, 4 * np.sqrt(d + 1), rtol=1e-12)
    assert sigmas[0] > sigmas[1] > sigmas[2] > 1


def test_effective_rank():
    rng = np.random.default_rng(0)
    F = rng.standard_normal((200, 3)) @ rng.standard_normal((3, 20))  # rank 3
    assert rh.effective_rank(F, 0.999999) == 3
    F = rng.standard_normal((500, 10)) * np.array([10.0] + [0.01] * 9)
    assert rh.effective_rank(F, 0.9) == 1
    with pytest.raises(ValueError, match="threshold"):
        rh.effective_rank(F, 1.5)


def test_bad_y_shape(gen):
    theta, X, y, h = _random_point(gen)
    with pytest.raises(ValueError, match="y must have shape"):
        rh.trace_products(theta, X, y[:-1], h=h)


def test_reference_errors_agree_with_the_closed_forms(gen):
    theta, X, y, h = _random_point(gen, d=3, h=4, n=5)
    err = rh.reference_errors(theta, X, y, [0, 2, 4], h=h)
    assert err["trHiHj"] < 1e-11 and err["lambda_Hi"] < 1e-11
    with pytest.raises(ValueError, match="samples"):
        rh.reference_errors(theta, X, y, [], h=h)


def test_sam_effective_gram_reproduces_the_sam_operator(gen):
    from flatbias import stability

    d, h, n = 8, 20, 12
    X, y = rn.parity_data(n, d, gen)
    G = rh.per_sample_gradients(rn.generalizing_solution(2, d, h), X, h=h)
    for ra in (0.5, 3.0):
        sam = stability.spectral_radius_rank_one(G, 0.5, 3, method="sam", rho_over_alpha=ra, algorithm="dense")
        U = rh.gram_factor(rh.sam_effective_gram(G, ra))
        assert stability.spectral_radius_rank_one(U, 0.5, 3, algorithm="dense") == pytest.approx(sam, rel=1e-9)
    assert torch.allclose(rh.sam_effective_gram(G, 0.0), G @ G.T)
