"""Planted bugs for chapters 05–08: each chapter's primary measurement, rebuilt at tiny settings from the same
package functions, passes its protocol's criterion as the package stands and fails it (or changes the claim's
status) when a bug is planted in a function the chapter uses. Also the new modules of these chapters:
``flatbias.flow_convergence``, ``flatbias.drift_horizon`` and ``flatbias.crossing``."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch

from flatbias import chapter_record, crossing, drift_horizon, flow_convergence, manifold, riemannian, twolayer
from flatbias import label_noise as ln
from flatbias.claims import INCONCLUSIVE, NOT_YET_RUN, UNDER_OUR_READING

protocol = chapter_record.protocol_of  # the chapter's declared PROTOCOL, by notebook stem


# -- chapter 05: the flow's late rate against 2μ --------------------------------------------------------------
def _flow_05(stds=(0.3, 1.0), seed=0):
    """Starts on one well-conditioned draw at the chapter's settings: the measured values of 'exponential'."""
    torch.set_default_dtype(torch.float64)
    P = protocol("05_convergence_rate").at("smoke")
    gen = torch.Generator().manual_seed(seed)
    n, m = P["n_m"]
    X, y = twolayer.conditioned_uniform_data(n, n, gen, 0.05)
    runs = [flow_convergence.flow_run(X, y, manifold.random_point(X, y, "sinh", m, gen, init_std=s / n**0.5),
                                      "sinh", m, tol=P["tol"], max_steps=P["max_steps"], log_every=P["log_every"],
                                      h_cap=P["h_cap"], fit_window=P["fit_window"])
            for s in stds]
    ratios = np.array([r["rate"] / (2 * r["mu"]) for r in runs])
    return {"ratio_min": float(np.nanmin(ratios)), "ratio_max": float(np.nanmax(ratios)),
            "rate_spread": float(np.nanmax([r["rate"] for r in runs]) / np.nanmin([r["rate"] for r in runs]) - 1),
            "fit_r2": float(min(r["r2"] for r in runs)), "fit_power": 8.0}, runs


@functools.lru_cache(maxsize=1)
def _good_05():
    return _flow_05()


def test_05_rate_check_catches_a_wrong_mu(monkeypatch):
    """μ from the package passes ratio_min/ratio_max; a μ off by 1.5 (planted in riemannian.lambda_min) fails."""
    proto = protocol("05_convergence_rate")
    good, runs = _good_05()
    ev = proto.evaluate(good, "full")
    assert ev.passed("ratio_min") and ev.passed("ratio_max")
    assert ev.status("exponential") == UNDER_OUR_READING
    true_lambda_min = riemannian.lambda_min
    monkeypatch.setattr(riemannian, "lambda_min", lambda *a, **k: 1.5 * true_lambda_min(*a, **k))
    bad, _ = _flow_05(stds=(1.0,))
    ev_bad = proto.evaluate(bad, "full")
    assert not ev_bad.passed("ratio_min") and bad["ratio_max"] < 0.8
    assert ev_bad.status("exponential") != ev.status("exponential")


def test_05_horizon_covers_reads_the_horizon_not_the_outcome():
    """horizon_time: the converged runs extrapolate the horizon at their mean step; μ·T exceeds ln(10⁶)."""
    _, runs = _good_05()
    for r in runs:
        assert r["horizon_time"] >= r["t"][-1]
        assert r["mu"] * r["horizon_time"] / math.log(1e6) >= 1
    proto = protocol("05_convergence_rate")
    measured = {"share_converged": 0.9, "stays_small": 0.5, "horizon_covers": 0.63}
    assert proto.evaluate(measured, "full").status("converges") == INCONCLUSIVE
    measured["horizon_covers"] = 1.5
    assert proto.evaluate(measured, "full").status("converges") == "not reproduced"


def test_05_orthogonal_drift_is_zero_for_span_moves():
    X = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=torch.float64)
    th0 = torch.ones(4, 3, dtype=torch.float64)
    assert flow_convergence.orthogonal_drift([th0, th0 + torch.tensor([0.3, -0.2, 0.0])], X) < 1e-15
    assert flow_convergence.orthogonal_drift([th0, th0 + torch.tensor([0.0, 0.0, 0.5])], X) == pytest.approx(1.0)


def _fast_draws():
    """The two well-conditioned draws of chapter 06's seed with the largest μ (fast collapse, tiny runs)."""
    full = ln.draw_problems(8, 4, seed=0)
    keep = np.flatnonzero(full["conditioned"])
    mu = drift_horizon.flow_rates(full["theta0"][keep], full["X"][keep], full["y"][keep])
    pick = keep[np.argsort(mu)[-2:]]
    return {k: full[k][pick] for k in ("theta0", "X", "y")}


# -- chapter 06: the eigenvalues of ΦΦᵀ on M collapse ---------------------------------------------------------
def _collapse_06(steps=600_000):
    """The chapter's rank_one measurement at tiny settings (s = 0.5, 2 draws): its checks and validity values."""
    prob = _fast_draws()
    res = ln.collapse(prob["theta0"], prob["X"], prob["y"], s_values=[0.5], steps=steps, record_every=steps // 20,
                      seed=1, progress=False)
    r = res["eig_M"][0][:, :, 1:] / res["eig_M"][0][:, :, :1]
    drop = r[:, -1] / r[:, 0]
    gap = (res["F_M"][0][:, -1] - res["F_star"]) / res["F_star"]
    mu = drift_horizon.flow_rates(prob["theta0"], prob["X"], prob["y"])
    c = drift_horizon.drift_per_step("sgd", 0.05, 3, s=0.5)
    return {"worst_drop": float(np.nanmax(drop)), "F_gap": float(np.nanmax(gap)),
            "horizon_reaches": float(drift_horizon.predicted_drop(mu, steps, c).max()),
            "demo_median_drop": float(np.nanmax(np.nanmedian(drop, 0)))}


def test_06_collapse_check_catches_a_wrong_noise_level(monkeypatch):
    """At the declared noise the drop passes; with the label noise scaled by 0.1 inside the runner (planted in
    label_noise.run, which collapse calls) the drift is 100 times slower: the primary check fails, and so does
    the positive control, so the claim's status changes (to inconclusive: the control catches the bug)."""
    proto = protocol("06_label_noise_rank_one")
    good = _collapse_06()
    ev = proto.evaluate(good, "full")
    assert ev.passed("worst_drop") and ev.passed("horizon_reaches")
    assert ev.status("rank_one") == UNDER_OUR_READING
    true_run = ln.run
    monkeypatch.setattr(ln, "run", lambda *a, s, **k: true_run(*a, s=0.1 * np.asarray(s), **k))
    bad = _collapse_06()
    ev_bad = proto.evaluate(bad, "full")
    assert not ev_bad.passed("worst_drop") and not ev_bad.passed("demo_median_drop")
    assert ev_bad.status("rank_one") == INCONCLUSIVE


def test_drift_horizon_rule():
    assert drift_horizon.drift_per_step("sgd", 0.05, 3, s=math.sqrt(0.03)) == pytest.approx(6.25e-6)
    assert drift_horizon.drift_per_step("sam", 0.05, 3, rho=math.sqrt(0.05 * 0.03 / 2)) == pytest.approx(6.25e-6)
    with pytest.raises(ValueError):
        drift_horizon.drift_per_step("adam", 0.05, 3)
    assert drift_horizon.predicted_drop([0.5, 1.0], 100, 0.01)[1] == pytest.approx(math.exp(-2.0))
    prob = ln.draw_problems(draws=2, raw_draws=0, seed=0)
    mu = drift_horizon.flow_rates(prob["theta0"], prob["X"], prob["y"])
    star = torch.as_tensor(ln.closed_form_optimum(prob["theta0"], prob["X"], prob["y"])[0])
    X0 = torch.as_tensor(prob["X"][0])
    assert mu[0] == pytest.approx(riemannian.lambda_min(star, X0, "sinh", span_only=True))
    assert np.all(mu > 0)


# -- chapter 07: SGD's time constant against the flow's ---------------------------------------------------------
def _time_constant_07():
    """ĉ/c at η = 0.02 and 0.01 on one draw (8 chains), extrapolated to η = 0: the chapter's 'limit' value."""
    S, N, etas = 1.0, 3, (0.02, 0.01)
    prob = ln.draw_problems(draws=1, raw_draws=0, seed=0)
    X, y = prob["X"], prob["y"]
    th0 = ln.retract_batch(prob["theta0"], X, y)
    fl = ln.sharpness_flow(th0[0], X[0], y[0], t_max=6.0, n_eval=3001)
    F_star = float(ln.summarize(ln.closed_form_optimum(th0, X, y)[None], X, y)[1][0][0])
    ratios = []
    for eta in etas:
        c = eta**2 * S**2 / (4 * N)
        K = int(round(4.0 / c / 100)) * 100
        rep = lambda a: np.repeat(a, 8, axis=0)  # noqa: E731
        res = ln.collapse(rep(th0), rep(X), rep(y), s_values=[S], steps=K, record_every=K // 100, eta=eta,
                          seed=3, progress=False)
        F = res["F_M"][0].mean(0)
        ratios.append(ln.fitted_time_constant(res["steps"], F, fl["t"], fl["F"], F_star, 0.02) / c)
    return float(np.polyfit(np.array(etas), np.array(ratios), 1)[1])


def test_07_limit_check_catches_a_wrong_flow_speed(monkeypatch):
    """The extrapolated ĉ/c meets 1 ± 0.05; a flow whose gradient is 25 % too large (planted in the closed form
    riemannian._grad that sharpness_flow integrates) moves the intercept out of the band."""
    proto = protocol("07_sgd_tracks_the_flow")
    good = _time_constant_07()
    assert proto.evaluate({"intercept": good}, "full").passed("intercept")
    true_grad = riemannian._grad
    monkeypatch.setattr(riemannian, "_grad", lambda *a, **k: tuple(1.25 * v for v in true_grad(*a, **k)))
    bad = _time_constant_07()
    assert not proto.evaluate({"intercept": bad}, "full").passed("intercept")
    assert bad < good


def test_07_power_conditions_decide_with_two_draws():
    proto = protocol("07_sgd_tracks_the_flow")
    measured = {"intercept": 1.0, "draws_limit": 2.0}
    assert proto.evaluate(measured, "full").status("limit") == INCONCLUSIVE
    measured["draws_limit"] = 6.0
    assert proto.evaluate(measured, "full").status("limit") == UNDER_OUR_READING


# -- chapter 08: 1-SAM at a matched radius -----------------------------------------------------------------------
def _sam_08(steps=600_000):
    """The chapter's 1-SAM collapse at tiny settings (ρ = 0.1, 2 draws): eig₂,₃/eig₁ drop and sharpness gap."""
    prob = _fast_draws()
    res = ln.collapse(prob["theta0"], prob["X"], prob["y"], s_values=[0.0], steps=steps,
                      record_every=steps // 20, method="sam", rho=np.full(2, 0.1), eta=np.full(2, 0.05), seed=2,
                      progress=False)
    gap = (res["F_M"][0][:, -1] - res["F_star"]) / res["F_star"]
    return {"collapse_paper": float(np.nanmax(res["ratio_drop"][0])), "Fgap_paper": float(np.nanmax(gap))}


def test_08_collapse_check_catches_a_wrong_radius(monkeypatch):
    """1-SAM with the declared radius collapses; with the radius scaled by 0.1 inside the runner (planted in
    label_noise.run, which collapse calls) it does not: both primary checks of sam_rank_one fail."""
    proto = protocol("08_one_sam")
    good = _sam_08()
    ev = proto.evaluate(good, "full")
    assert ev.passed("collapse_paper") and ev.passed("Fgap_paper")
    true_run = ln.run
    monkeypatch.setattr(ln, "run", lambda *a, rho=0.0, **k: true_run(*a, rho=0.1 * np.asarray(rho), **k))
    bad = _sam_08()
    ev_bad = proto.evaluate(bad, "full")
    assert not ev_bad.passed("collapse_paper") and not ev_bad.passed("Fgap_paper")
    assert ev_bad.status("sam_rank_one") == NOT_YET_RUN  # the other checks were not measured here


def test_08_reached_all_is_a_validity_condition():
    proto = protocol("08_one_sam")
    measured = {"ratio_limit_err": 0.05, "ratio_err_eta": 0.1, "ratio_err_shrinks": 0.5,
                "sam_faster_every_draw": 2.0, "reached_all": False}
    assert proto.evaluate(measured, "full").status("speed") == INCONCLUSIVE
    measured["reached_all"] = True
    assert proto.evaluate(measured, "full").status("speed") == "holds"


def test_crossing_interpolates_in_log():
    steps = [0, 10, 20, 30]
    assert crossing.first_crossing(steps, [1.0, 1e-1, 1e-3, 1e-4], 1e-2) == pytest.approx(15.0)
    assert crossing.first_crossing(steps, [1e-6, 1e-7, 1e-8, 1e-9], 1e-5) == 0.0
    assert crossing.first_crossing(steps, [1.0, 0.5, 0.4, 0.3], 1e-5) == math.inf
    res = {"steps": np.array(steps), "F_star": np.array([1.0, 2.0]),
           "F_M": np.array([[[2.0, 1.1, 1.001, 1.0001], [4.0, 4.0, 4.0, 4.0]]])}
    out = crossing.steps_to(res, 1e-2)
    assert out[0] == pytest.approx(15.0) and out[1] == math.inf


def test_no_legacy_claims_in_05_to_08():
    for name in ("05_convergence_rate", "06_label_noise_rank_one", "07_sgd_tracks_the_flow", "08_one_sam"):
        assert protocol(name).legacy_claims() == []
