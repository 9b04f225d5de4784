"""Planted bugs, chapters 14-16: a bug planted in a flatbias function that a chapter's measurement uses must change
the value (and the pass/fail, hence the status) of the chapter's primary check, at tiny settings; the unplanted run
must pass. Each test runs the chapter's own measurement code (the package functions its notebook calls) and judges
it with the chapter's own declared protocol (read from its notebook)."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from flatbias import gen_mem_minima as gm
from flatbias import relu_hessian, relu_net, run_endpoints, train_relu
from flatbias import chapter_record

UNDER = "reproduced under our reading"
NOT_UNDER = "not reproduced under our reading"

protocol = chapter_record.protocol_of  # the chapter's declared PROTOCOL, by notebook stem


# --- 14: SAM's effective coherence amplifies the gap between C = 2 and C = 6 -----------------------------------------
def _ch14_sam_gap() -> dict:
    d, h, n, Cs = 30, 120, 100, [2, 6]
    X, y, Xf, yf, sols = gm.build(0, d, h, n, Cs, fresh=10)
    names = gm.names(Cs)
    G = {k: relu_hessian.per_sample_gradients(sols[k], X, h=h) for k in names}
    sig_sam = np.array([[[gm.sam_sigma(G[k], ra) for ra in (0.0, 1.0, 5.0)] for k in names]])
    gap = gm.sam_gaps(sig_sam, 0, 1)
    fit = max(float((relu_net.forward(sols[k], X, h=h) - y).abs().max()) for k in names)
    return {"sam_gap_vs_sgd": gm.gap_over_sgd(gap), "at_minimum_sam_amplifies": fit}


def test_14_planted_bug_in_sams_effective_gram_breaks_the_amplified_gap(monkeypatch):
    proto = protocol("14_generalizing_vs_memorizing")
    clean = proto.evaluate(_ch14_sam_gap(), "smoke")
    assert clean.value("sam_gap_vs_sgd") > 1.05
    assert clean.status("sam_amplifies") == UNDER
    # the bug: SAM's effective Gram matrix loses its (ρ/α)(2/n)(GGᵀ)² term, so SAM's coherence is SGD's
    monkeypatch.setattr(relu_hessian, "sam_effective_gram", lambda G, ra, c=2.0: G @ G.T)
    bugged = proto.evaluate(_ch14_sam_gap(), "smoke")
    assert bugged.value("sam_gap_vs_sgd") == pytest.approx(1.0, abs=1e-12)
    assert bugged.status("sam_amplifies") == NOT_UNDER


def test_14_planted_bug_in_the_lambda_max_flips_the_equal_lambda_reading(monkeypatch):
    """κ* = η* λ1(H): a λ1(H) that returns the mean eigenvalue tr H / P (the same for every net) instead."""
    proto = protocol("14_generalizing_vs_memorizing")
    d, h, n, Cs = 12, 40, 40, [2, 3]

    def kappa_ratio():
        X, y, Xf, yf, sols = gm.build(0, d, h, n, Cs, fresh=10)
        names = gm.names(Cs)
        G = {k: relu_hessian.per_sample_gradients(sols[k], X, h=h) for k in names}
        eta, _ = gm.thresholds(G, names, [10], 10, [])
        lam = [relu_hessian.full_hessian_lambda_max(sols[k], X, y, h=h) for k in names]
        kap = eta[0] * np.array(lam)
        fit = max(float((relu_net.forward(sols[k], X, h=h) - y).abs().max()) for k in names)
        return {"kappa_ratio": float(kap[0] / kap[-1]), "kappa_order": float(np.mean(np.diff(kap) < 0)),
                "at_minimum_sgd_equal_lambda": fit}

    clean = proto.evaluate(kappa_ratio(), "smoke")
    assert clean.status("sgd_equal_lambda") == UNDER
    monkeypatch.setattr(relu_hessian, "full_hessian_lambda_max",
                        lambda theta, X, y, tol=1e-10, *, h: relu_hessian.full_hessian_trace(theta, X, y, h=h)
                        / theta.numel())
    bugged = proto.evaluate(kappa_ratio(), "smoke")
    assert bugged.value("kappa_ratio") < 1 and bugged.status("sgd_equal_lambda") == NOT_UNDER


# --- 15 and 16: SAM ends less coherent than SGD (a reviewer's summary of the paper's experiment) ---------------------
def _sam_is_sgd(theta, xb, yb, lr, rho):  # the planted bug: the SAM ascent step is dropped
    return theta - lr * train_relu._batch_gradient(theta, xb, yb)


def _coherence_checks(**overrides) -> dict:
    runs = train_relu.run([0], ["sgd", "sam_0.2"], progress=False, **overrides)
    return {"sigma_drop": run_endpoints.mean_drop(runs, "sigma"),
            "sigma_drop_seeds": run_endpoints.share_lower(runs, "sigma"),
            "sigma_falls_as_note": run_endpoints.share_falling(runs, "sigma", ["sgd", "sam_0.2"]),
            "sigma_gap": -run_endpoints.mean_drop(runs, "sigma"),
            "flatter_seeds": run_endpoints.share_lower(runs, "max_lambda_Hi"),
            "lmax_seeds": run_endpoints.share_lower(runs, "hess_lambda_max")}


def test_15_planted_bug_in_the_sam_step_breaks_lower_coherence_and_flatter(monkeypatch):
    proto = protocol("15_training_dynamics")
    keys = {c.key for c in proto.checks} | {v.key for v in proto.validity}
    clean = proto.evaluate({k: v for k, v in _coherence_checks(epochs=8).items() if k in keys}, "smoke")
    assert clean.value("sigma_drop") > 0.5
    assert clean.status("lower_coherence") == UNDER and clean.status("flatter") == UNDER
    assert clean.status("more_coherent") == "does not hold"
    monkeypatch.setattr(train_relu, "_step", _sam_is_sgd)
    bugged = proto.evaluate({k: v for k, v in _coherence_checks(epochs=8).items() if k in keys}, "smoke")
    assert bugged.value("sigma_drop") == 0.0  # SAM now takes SGD's steps: the same runs
    assert bugged.status("lower_coherence") == NOT_UNDER and bugged.status("flatter") == NOT_UNDER


def test_16_planted_bug_in_the_sam_step_breaks_lower_coherence(monkeypatch):
    proto = protocol("16_escaping_from_c3")
    keys = {c.key for c in proto.checks}
    pick = {"sigma_drop", "sigma_drop_seeds", "sigma_gap"}
    checks = _coherence_checks(epochs=5, init="generalizing", noise=0.01)
    clean = proto.evaluate({k: checks[k] for k in pick & keys}, "smoke")
    assert clean.value("sigma_drop") > 0 and clean.status("lower_coherence") == UNDER
    monkeypatch.setattr(train_relu, "_step", _sam_is_sgd)
    checks = _coherence_checks(epochs=5, init="generalizing", noise=0.01)
    bugged = proto.evaluate({k: checks[k] for k in pick & keys}, "smoke")
    assert bugged.value("sigma_drop") == 0.0
    assert bugged.status("lower_coherence") == NOT_UNDER


def test_16_planted_bug_in_the_gradients_breaks_the_stable_start(monkeypatch):
    """The chapter's radius: ρ(𝒯) of linearized SGD at the C = 3 minimum from its per-sample gradients."""
    from flatbias import stability

    proto = protocol("16_escaping_from_c3")

    def start():
        cfg = train_relu.Config(init="generalizing", noise=0.0)
        X, y = train_relu.data(cfg)[:2]
        theta3 = relu_net.generalizing_solution(3, 30, 120)
        G3 = relu_hessian.per_sample_gradients(theta3, X, h=120)
        return {"radius": stability.spectral_radius_rank_one(G3, 0.1, 10),
                "start_at_minimum": float((relu_net.forward(theta3, X, h=120) - y).abs().max())}

    clean = proto.evaluate(start(), "smoke")
    assert clean.status("start_stable") == "holds"
    original = relu_hessian.per_sample_gradients
    monkeypatch.setattr(relu_hessian, "per_sample_gradients", lambda *a, **k: 3.0 * original(*a, **k))
    bugged = proto.evaluate(start(), "smoke")
    assert bugged.value("radius") > 1 and bugged.status("start_stable") == "does not hold"
