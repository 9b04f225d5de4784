"""Planted bugs in the package move the primary checks of chapters 11 and 13 (issue 20, item 8).

Each test measures a chapter's primary check at tiny settings with the package functions the chapter calls, judges
it with the chapter's own PROTOCOL (read from the notebook), then plants a bug in one of those functions and
requires the check's value and the claim's status to change. The unplanted run must pass, so the checks can fail in
both directions.
"""


import numpy as np
import pytest
import torch

from flatbias import chapter_record, claims
from flatbias import coherence as co
from flatbias import divergence_conditions as dc
from flatbias import simulate, stability


@pytest.fixture(scope="module")
def protocol11():
    return chapter_record.protocol_of("11_sgd_stability")


@pytest.fixture(scope="module")
def protocol13():
    return chapter_record.protocol_of("13_sam_stability")


def _halve_coherence(monkeypatch):
    """The planted bug: σ computed half as large (e.g. a lost factor in λ_1(S))."""
    true = co.coherence

    def half(H):
        sigma, S = true(H)
        return sigma / 2, S

    monkeypatch.setattr(co, "coherence", half)
    monkeypatch.setattr(stability, "coherence", half)


def _thm1(protocol, count=30):
    P = protocol.at("smoke")
    R, crossing = dc.random_sgd_trials(count, P["family_n"], P["family_d"], P["family_rank"],
                                       P["eta_factor"], torch.Generator().manual_seed(0))
    measured = {"viol_bern": dc.violations(R, 1), "ratio_bern": float(R[:, 2].min()),
                "power": float((R[:, 0] >= 1).mean())}
    return measured, protocol.evaluate(measured, "full").status("thm1")


def test_11_thm1_sees_a_planted_coherence_bug(protocol11, monkeypatch):
    clean, status = _thm1(protocol11)
    assert clean["viol_bern"] == 0 and status == claims.UNDER_OUR_READING
    _halve_coherence(monkeypatch)
    planted, status = _thm1(protocol11)
    assert planted["viol_bern"] > 0 and planted["ratio_bern"] < 1
    assert status == claims.NOT_REPRODUCED_UNDER_OUR_READING


def _thm32(protocol, count=40):
    P = protocol.at("smoke")
    R, crossing = dc.random_sam_trials(count, P["family_n"], P["family_d"], P["ratios"], P["eta_factor"],
                                       torch.Generator().manual_seed(0))
    measured = {"viol": dc.violations(R, 1), "ratio_min": float(R[:, 2].min()),
                "power": float((R[:, 0] >= 1).mean())}
    return measured, protocol.evaluate(measured, "full").status("thm32")


def test_13_thm32_sees_an_operator_that_drops_sam(protocol13, monkeypatch):
    clean, status = _thm32(protocol13)
    assert clean["viol"] == 0 and status == claims.UNDER_OUR_READING
    true = stability._operator

    def sgd_operator(fam, eta, B, method, sampling, rho_over_alpha):  # the planted bug: 𝒯_SAM built as 𝒯_SGD
        return true(fam, eta, B, "sgd", sampling, 0.0)

    monkeypatch.setattr(stability, "_operator", sgd_operator)
    planted, status = _thm32(protocol13)
    assert planted["viol"] > 0 and planted["ratio_min"] < 1
    assert status == claims.NOT_REPRODUCED_UNDER_OUR_READING


def _fig1c(protocol, sweep=(0.0, 1.0)):
    """The chapter's fig1c measurement on a 4 × 3 corner of the grid, 300 steps."""
    P = protocol.at("smoke")
    n, eta = P["n"], P["eta"]
    k, a, d, Bs, ss = simulate.authors_grid(n, [2, 10, 30, 50], [5, 20, 40])
    D = torch.zeros(len(Bs), n, int(d.max()), dtype=torch.float64).scatter_(2, k[:, :, None], a[:, :, None])
    gen = torch.Generator().manual_seed(0)
    unst_sim, unst_exact = [], []
    for r in sweep:
        method = "sam" if r else "sgd"
        div = simulate.simulate_axes(k, a, d, Bs, eta, reps=P["reps"], steps=300, method=method,
                                     rho_over_alpha=r, generator=gen)
        unst_sim.append(~simulate.stable_cells(div).numpy())
        unst_exact.append(stability.spectral_radius_diagonal(D, eta, Bs, method=method,
                                                             rho_over_alpha=r).numpy() >= 1)
    measured = {"sim_nested": sum(int((u & ~v).sum()) for i, u in enumerate(unst_sim) for v in unst_sim[i + 1:]),
                "sim_grows": float(unst_sim[-1].mean() - unst_sim[0].mean()),
                "exact_grows": float(unst_exact[-1].mean() - unst_exact[0].mean())}
    return measured, protocol.evaluate(measured, "full").status("fig1c")


def test_13_fig1c_sees_a_simulator_that_ignores_rho(protocol13, monkeypatch):
    clean, status = _fig1c(protocol13)
    assert clean["sim_grows"] > 0 and clean["sim_nested"] == 0 and status == claims.UNDER_OUR_READING
    true = simulate.simulate_axes

    def sgd_only(*args, **kwargs):  # the planted bug: SAM runs as SGD
        kwargs.update(method="sgd", rho_over_alpha=0.0)
        return true(*args, **kwargs)

    monkeypatch.setattr(simulate, "simulate_axes", sgd_only)
    planted, status = _fig1c(protocol13)
    assert planted["sim_grows"] <= 0 and planted["exact_grows"] == clean["exact_grows"]
    assert status not in (claims.UNDER_OUR_READING, claims.INCONCLUSIVE)
