"""flatbias.cube_saddles: the cube's non-optimal stationary points, taken apart (chapter 02)."""

import torch

from flatbias import cube_saddles, manifold, optimum, twolayer


def _data():
    gen = torch.Generator().manual_seed(0)
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 0.05)
    return X.double(), y.double(), gen


def test_a_single_zero_is_a_degenerate_saddle_that_falls_at_third_order():
    X, y, gen = _data()
    S = torch.ones(3, 4, dtype=torch.bool)
    S[0, 0] = False
    theta = optimum.cube_stationary_point(manifold.random_point(X, y, "cube", 4, gen), X, y, S)
    out = cube_saddles.examine(theta, X, y, S, 1e-3)
    assert out["zeros"] == 1 and out["on_M"] < 1e-10
    assert out["grad"] < 1e-10 and out["hess_err"] < 1e-9 and out["lam_err"] < 1e-9
    assert out["third"] < 1e-2  # ΔF ≈ −λ_i t³
    assert float(out["ev"][0]) > -1e-10 * float(out["ev"][-1])  # PSD ...
    assert int((out["ev"].abs() <= 1e-10 * out["ev"][-1]).sum()) == 1  # ... with one zero mode
    assert out["F_S"] > optimum.F_star(X, y, "cube", 4) and abs(out["F0"] / out["F_S"] - 1) < 1e-12


def test_the_third_order_check_sees_a_wrong_multiplier(monkeypatch):
    X, y, gen = _data()
    S = torch.ones(3, 4, dtype=torch.bool)
    S[1, 2] = False
    theta = optimum.cube_stationary_point(manifold.random_point(X, y, "cube", 4, gen), X, y, S)
    original = optimum.cube_multipliers
    monkeypatch.setattr(optimum, "cube_multipliers", lambda *a: 1.1 * original(*a))
    assert cube_saddles.examine(theta, X, y, S, 1e-3)["third"] > 0.05


def test_support_snaps_only_small_preactivations():
    X, y, gen = _data()
    theta = optimum.global_optimum(torch.randn(4, 3, generator=gen, dtype=X.dtype), X, y, "cube")
    assert cube_saddles.support(theta, X, 0.05) is None  # z* = (y_i/m)^{1/3} is far from 0
    Z = twolayer.preactivations(theta, X).clone()
    Z[2, 1] = 0.01
    S = cube_saddles.support(manifold.from_preactivations(Z, X), X, 0.05)
    assert S is not None and (~S).nonzero().tolist() == [[2, 1]]
