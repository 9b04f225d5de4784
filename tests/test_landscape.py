"""landscape: the chart of M, the differentiable Hessian, the frontier search, references, rate fits."""
import math
import warnings

import numpy as np
import pytest
import torch

from flatbias import landscape, manifold, optimum, riemannian, twolayer


def _draw(gen, act="sinh", m=6):
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 1e-2)
    return X, y, manifold.random_point(X, y, act, m, gen, init_std=1.5 / 3**0.5)


@pytest.mark.parametrize("act", ["sinh", "cubic"])
def test_chart_lies_on_M_and_inverts(gen, act):
    X, y, theta = _draw(gen, act)
    u = landscape.chart_coords(theta, X)
    torch.testing.assert_close(landscape.chart(u, X, y, act), theta)
    other = landscape.chart(u + 0.1 * torch.randn(u.shape, generator=gen), X, y, act)
    assert float(manifold.constraints(other, X, y, act).abs().max()) < 1e-12
    with pytest.raises(ValueError, match="d = n"):
        landscape.chart_coords(torch.zeros(6, 4), torch.eye(3, 4))


@pytest.mark.parametrize("act", ["sinh", "cubic", "tanh"])
def test_dense_and_reference_match_closed_forms(gen, act):
    X, y, theta = _draw(gen, act)
    if act == "tanh":
        y = 0.3 * y
        theta = manifold.random_point(X, y, act, 6, gen)
    g2, lmin = landscape.grad_norm2_and_lambda_min(theta, X, act)
    g = riemannian.grad(theta, X, act)
    assert float(g2) == pytest.approx(float(g.norm()) ** 2, rel=1e-10)
    assert float(lmin) == pytest.approx(riemannian.lambda_min(theta, X, act), rel=1e-9, abs=1e-10)
    g_ref, H_ref = landscape.reference_grad_hessian(theta, X, act)
    torch.testing.assert_close(g_ref, g)
    ev_ref = torch.linalg.eigvalsh(H_ref)
    ev = torch.linalg.eigvalsh(riemannian.hess_matrix(theta, X, act))
    torch.testing.assert_close(ev_ref, ev)


def test_lambda_min_is_differentiable(gen):
    X, y, theta = _draw(gen)
    u = landscape.chart_coords(theta, X).requires_grad_(True)
    _, lmin = landscape.grad_norm2_and_lambda_min(landscape.chart(u, X, y, "sinh"), X, "sinh")
    (du,) = torch.autograd.grad(lmin, u)
    e = torch.zeros_like(u)
    e[1, 2] = 1e-6
    fd = [float(landscape.grad_norm2_and_lambda_min(landscape.chart(u.detach() + s * e, X, y, "sinh"), X,
                                                    "sinh")[1]) for s in (1, -1)]
    assert float(du[1, 2]) == pytest.approx((fd[0] - fd[1]) / 2e-6, rel=1e-4, abs=1e-6)


def test_frontier_search_finds_the_tanh_saddle(gen):
    """Negative control: tanh's rank-one stationary point has negative curvature at zero gradient."""
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 1e-2)
    y = 0.5 * y
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimum.AssumptionWarning)
        sym = optimum.global_optimum(torch.randn(6, 3, generator=gen), X, y, "tanh")
    assert riemannian.lambda_min(sym, X, "tanh") < 0
    u = landscape.chart_coords(sym, X)
    start = landscape.chart(u + 0.02 * torch.randn(u.shape, generator=gen), X, y, "tanh")
    end = landscape.frontier_search(start, X, y, "tanh")
    assert float(riemannian.grad(end, X, "tanh").norm()) < 1e-5 * float(riemannian.grad(start, X, "tanh").norm())
    assert riemannian.lambda_min(end, X, "tanh") < -1e-8


def test_frontier_search_keeps_negative_curvature_and_lowers_the_gradient(gen):
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 1e-2)
    pts = [manifold.random_point(X, y, "sinh", 6, gen, init_std=1.0) for _ in range(20)]
    start = min(pts, key=lambda th: riemannian.lambda_min(th, X, "sinh"))
    assert riemannian.lambda_min(start, X, "sinh") < 0
    end = landscape.frontier_search(start, X, y, "sinh", maxiter=50)
    assert riemannian.lambda_min(end, X, "sinh") < -1e-8
    assert float(riemannian.grad(end, X, "sinh").norm()) < float(riemannian.grad(start, X, "sinh").norm())


def test_probe_samples_both_sides(gen):
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 5e-2)
    out = landscape.probe(X, y, "sinh", 6, gen, n_random=10, std_range=(1.0, 3.0), n_flows=1, n_searches=1,
                          flow_steps=300, log_every=5, search_iter=30)
    assert len(out["random"]) == 10 and len(out["flow"]) == 1 and len(out["search"]) == 1
    lams = [lm for lm in [p[1] for p in out["random"]] + [q[1] for q in out["flow"][0]] if lm < -1e-8]
    assert lams and math.isfinite(out["delta_star"])
    assert out["flow"][0][-1][1] > 0  # the flow ends in the convex basin


def test_reference_descent_matches_fixed_step_descent(gen):
    X, y, theta = _draw(gen)
    h = 0.2 / riemannian.lambda_max(theta, X, "sinh")
    ref = landscape.reference_descent(theta, X, y, "sinh", h, 5)
    tr = riemannian.descent(theta, X, y, "sinh", step=h, max_steps=5, log_every=1, tol=0.0)
    np.testing.assert_allclose(tr.F, ref, rtol=1e-12)


def test_late_rate_fits_an_exponential():
    t = np.linspace(0, 50, 200)
    v = 3 * np.exp(-0.7 * t) + 1e-30
    r, r2, k = landscape.late_rate(t, v, 1e-12, 1e-2)
    assert r == pytest.approx(0.7, rel=1e-10) and r2 == pytest.approx(1.0) and k > 3
    assert math.isnan(landscape.late_rate(t, v, 10, 20)[0])


def test_the_least_squares_references_give_the_same_bits_twice(gen):
    """Same outputs twice: torch's default CPU lstsq driver (MKL gelsy) differs in the last bits from call to
    call on one thread; the references use gelsd (hessian_fd.LSTSQ_DRIVER)."""
    from flatbias import hessian_fd

    X, y, theta = _draw(gen, "sinh")
    first = [landscape.reference_grad_hessian(theta, X, "sinh") for _ in range(4)]
    assert all(torch.equal(a, b) for g in first[1:] for a, b in zip(g, first[0]))
    runs = [landscape.reference_descent(theta, X, y, "sinh", 0.01, 3) for _ in range(3)]
    assert runs[1] == runs[0] and runs[2] == runs[0]
    out = []
    for _ in range(3):
        guard = dict.fromkeys(hessian_fd.GUARDS, 0.0)
        rows = hessian_fd.probe_point(theta, X, y, "sinh", torch.Generator().manual_seed(1), 2, 1e-3, guard)
        out.append((rows, guard))
    assert out[1] == out[0] and out[2] == out[0]
