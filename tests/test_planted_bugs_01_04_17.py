"""Planted bugs, chapters 01-04 and 17: a bug planted in a flatbias function that a chapter's measurement uses must
change the value (and the pass/fail, hence the status) of the chapter's primary check, at tiny settings; the
unplanted run must pass. Each test runs the chapter's own measurement code (the package functions its notebook
calls) and judges it with the chapter's own declared protocol (read from its notebook)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from flatbias import (cifar_results, hessian_fd, manifold, optimum, riemannian, sam_sgd_gaps, trace_check,
                      twolayer)
from flatbias import chapter_record

protocol = chapter_record.protocol_of  # the chapter's declared PROTOCOL, by notebook stem


# --- 01: the closed form 2F of the trace of the Hessian -------------------------------------------------------------
def _ch01(gen_seed: int = 0) -> dict:
    gen = torch.Generator().manual_seed(gen_seed)
    rows = trace_check.on_manifold(["sinh"], [[3, 3, 3]], 1, gen)
    ts = np.append(np.logspace(-5, -2.5, 6), 1.0)  # slopes: the first 6; gap_at_1: the last
    X, y = twolayer.uniform_data(3, 3, gen)
    off, guard = trace_check.off_manifold(X, y, ["sinh"], 3, ts, gen)
    return trace_check.measure(rows, off, guard, ts)


def test_01_planted_bug_in_sharpness_breaks_the_trace_claim(monkeypatch):
    proto = protocol("01_trace_of_hessian")
    clean = proto.evaluate(_ch01(), "smoke")
    assert clean.passed("rel_err_on_M") and clean.passed("slope_off_M")
    assert clean.status("trace_on_M") == "reproduced under our reading"
    assert clean.status("residual_off_M") == "holds"
    original = twolayer.sharpness
    monkeypatch.setattr(twolayer, "sharpness", lambda *a, **k: 1.001 * original(*a, **k))  # a wrong constant
    bugged = proto.evaluate(_ch01(), "smoke")
    assert bugged.value("rel_err_on_M") > 1e-4 and not bugged.passed("rel_err_on_M")
    assert bugged.status("trace_on_M") == "not reproduced under our reading"
    assert not bugged.passed("slope_off_M")  # the gap no longer vanishes on M: no linear growth from 0


# --- 02: stationary points of F on M are the rank-one optimum ------------------------------------------------------
def _ch02_rank_one() -> dict:
    gen = torch.Generator().manual_seed(0)
    n, d, m = 3, 3, 4
    X, y = twolayer.conditioned_uniform_data(n, d, gen, 0.05)
    F_star = optimum.F_star(X, y, "sinh", m)
    theta0 = manifold.random_point(X, y, "sinh", m, gen)
    tr = riemannian.descent(theta0, X, y, "sinh", tol=1e-9, max_steps=3000)
    s = torch.linalg.svdvals(twolayer.feature_matrix(tr.theta, X, "sinh"))
    return {"dz_rank_one": optimum.distance_to_optimum(tr.theta, X, y, "sinh"),
            "dF_rank_one": (tr.F[-1] - F_star) / F_star, "sigma_rank_one": float(s[1] / s[0])}


def test_02_planted_bug_in_the_closed_form_optimum_breaks_rank_one(monkeypatch):
    proto = protocol("02_stationary_points")
    clean = proto.evaluate(_ch02_rank_one(), "smoke")
    assert all(clean.passed(k) for k in ("dz_rank_one", "dF_rank_one", "sigma_rank_one"))
    original = optimum._optimal_preactivations

    def wrong_width(X, y, act, m, a=None):  # φ⁻¹(y_i/(m+1)) instead of φ⁻¹(y_i/m)
        return original(X, y, act, m + 1, a)[:, :m]

    monkeypatch.setattr(optimum, "_optimal_preactivations", wrong_width)
    bugged = proto.evaluate(_ch02_rank_one(), "smoke")
    assert not bugged.passed("dz_rank_one") and not bugged.passed("dF_rank_one")
    assert bugged.passed("sigma_rank_one")  # the descent itself is untouched: Φ is still rank one


# --- 03: the Riemannian Hessian against differences of F along the retraction ---------------------------------------
def _ch03() -> dict:
    gen = torch.Generator().manual_seed(0)
    X, y = twolayer.uniform_data(3, 5, gen)
    guard = dict.fromkeys(hessian_fd.GUARDS, 0.0)
    rows = []
    for _ in range(2):
        theta = manifold.random_point(X, y, "sinh", 4, gen)
        rows += hessian_fd.probe_point(theta, X, y, "sinh", gen, 2, 5e-3, guard)
    return {"fd_hess": max(r[1] for r in rows), "fd_grad": max(r[2] for r in rows)}


def test_03_planted_bug_in_hess_vec_breaks_the_hessian_claim(monkeypatch):
    proto = protocol("03_riemannian_hessian")
    clean = proto.evaluate(_ch03(), "smoke")
    assert clean.passed("fd_hess") and clean.passed("fd_grad")
    original = riemannian.hess_vec
    monkeypatch.setattr(riemannian, "hess_vec", lambda *a, **k: 1.02 * original(*a, **k))
    bugged = proto.evaluate(_ch03(), "smoke")
    assert not bugged.passed("fd_hess")
    assert bugged.passed("fd_grad")  # the gradient is untouched


# --- 04: the Hessian at the optimum is positive definite -----------------------------------------------------------
def _ch04_lmin_at_optimum() -> dict:
    gen = torch.Generator().manual_seed(0)
    X, y = twolayer.conditioned_uniform_data(3, 3, gen, 1e-2)
    star = optimum.global_optimum(torch.randn(10, 3, generator=gen), X, y, "sinh")
    return {"lmin_at_optimum": riemannian.lambda_min(star, X, "sinh")}


def test_04_planted_bug_in_the_hessian_weights_breaks_strict_convexity(monkeypatch):
    proto = protocol("04_local_g_convexity")
    clean = proto.evaluate(_ch04_lmin_at_optimum(), "smoke")
    assert clean.passed("lmin_at_optimum")
    assert clean.status("strict_at_optimum") == "reproduced under our reading"

    def without_third_derivative(p, lam):  # drops the φ'φ''' term of w_ij
        return 2 * p.x2[:, None] * p.a**2 * p.d2**2 - lam[:, None] * p.a * p.d2

    monkeypatch.setattr(riemannian, "_weights", without_third_derivative)
    bugged = proto.evaluate(_ch04_lmin_at_optimum(), "smoke")
    assert not bugged.passed("lmin_at_optimum")
    assert bugged.status("strict_at_optimum") == "not reproduced under our reading"


# --- 17: SAM vs SGD on CIFAR-10, from training records -------------------------------------------------------------
def _record(optimizer: str, rho: float, seed: int, rank_999: int, rank_90: int, proxy: float) -> dict:
    final = {"rank": {"0.9": rank_90, "0.95": rank_90 + 5, "0.99": rank_90 + 40, "0.999": rank_999},
             "coherence_100": proxy, "test_acc": 0.9}
    return {"settings": {"optimizer": optimizer, "rho": rho, "seed": seed, "protocol": "full"},
            "metrics": {"final": final, "history": []}}


def _runs() -> dict:
    return {"SGD": [_record("sgd", 0.0, s, 148 + s - 43, 11, 1.004) for s in (42, 43, 44)],
            "SAM ρ=0.2": [_record("sam", 0.2, s, 129 + s - 43, 14, 1.09) for s in (42, 43, 44)]}


def test_17_planted_bug_in_reading_the_final_rank_breaks_the_rank_claim(monkeypatch):
    proto = protocol("17_sam_vs_sgd_cifar10")
    clean = proto.evaluate(sam_sgd_gaps.gaps(_runs()), "full")
    assert clean.value("rank_gap") == pytest.approx(19.0)
    assert clean.status("rank") == "reproduced" and clean.status("proxy") == "holds"
    original = cifar_results.final

    def wrong_threshold(recs, key):  # reads the rank at 90 % instead of 99.9 %
        if key != "rank":
            return original(recs, key)
        shifted = copy.deepcopy(recs)
        for r in shifted:
            r["metrics"]["final"]["rank"]["0.999"] = r["metrics"]["final"]["rank"]["0.9"]
        return original(shifted, key)

    monkeypatch.setattr(cifar_results, "final", wrong_threshold)
    bugged = proto.evaluate(sam_sgd_gaps.gaps(_runs()), "full")
    assert bugged.value("rank_gap") == pytest.approx(-3.0)
    assert bugged.status("rank") == "not reproduced"
    assert bugged.status("proxy") == "holds"  # the proxy is read by another key
