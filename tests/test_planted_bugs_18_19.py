"""Chapters 18 and 19 catch bugs planted in the package: each test measures a chapter's primary check the chapter's
way at tiny settings, once as is (the claim holds) and once with a bug monkeypatched into a flatbias function the
measurement uses (the value and the status change). Also: the chapters' claims are all in the new form."""

import numpy as np
import pytest
import torch

from flatbias import chapter_record, claims, families, linearization, relu_hessian, relu_net, stability
from flatbias import momentum as mo
from flatbias import threshold_order

protocol = chapter_record.protocol_of  # the chapter's declared PROTOCOL, by notebook stem


@pytest.mark.parametrize("name", ["18_momentum_stability", "19_linearization"])
def test_every_claim_has_an_explicit_kind(name):
    p = protocol(name)
    assert p.legacy_claims() == []
    assert {c.kind for c in p.claims} == {"ours"}  # both chapters are our extensions
    text = p.markdown()
    assert "issue" not in text.lower()  # no tracker references a reader cannot follow


# ---------------------------------------------------------------------------------------------- chapter 18
def _sam_measured(betas=(0.0, 0.9), ra=0.5, n_families=4):
    """The chapter's SAM checks at tiny settings: random families (its loop) and a small Figure-1 grid."""
    from flatbias import simulate

    gen = torch.Generator().manual_seed(0)
    rows = []
    for _ in range(n_families):
        n, d = families.draw_int((3, 5), gen), families.draw_int((2, 3), gen)
        H = mo.random_family(n, d, families.draw_int((1, 2), gen), gen)
        rows.append(mo.family_thresholds(H, families.draw_int((1, n - 1), gen), betas, ra, rtol=1e-6))
    sgd, sam = np.array([r["sgd"] for r in rows]), np.array([r["sam"] for r in rows])
    k, a, d, Bs, _ = simulate.authors_grid(10, list(range(1, 6)), list(range(1, 10)))
    D = torch.zeros(len(Bs), 10, int(d.max()), dtype=torch.float64).scatter_(2, k[:, :, None], a[:, :, None])
    st = {(m, b): mo.spectral_radius_diagonal(D, 0.5, Bs, b, m, rho_over_alpha=ra if m == "sam" else 0.0) < 1
          for m in ("sgd", "sam") for b in betas}
    return {"sam_contains_families": float(np.mean(sam > sgd * (1 + 1e-6))),
            "sam_larger": int(min((~st["sam", b] & st["sgd", b]).sum() for b in betas)),
            "sam_regime": int(min(st["sgd", b].sum() for b in betas))}


def test_18_sam_claim_catches_a_threshold_bug(monkeypatch):
    p = protocol("18_momentum_stability")
    ok = _sam_measured()
    assert ok["sam_contains_families"] == 0 and ok["sam_larger"] >= 1
    assert p.evaluate(ok, "full").status("sam") == claims.HOLDS
    real = mo.critical_eta

    def wrong(H, B, beta, method="sgd", *a, **kw):  # planted: SAM's threshold overestimated by half
        eta = real(H, B, beta, method, *a, **kw)
        return 1.5 * eta if method == "sam" else eta

    monkeypatch.setattr(mo, "critical_eta", wrong)
    bad = _sam_measured()
    assert bad["sam_contains_families"] > 0.5
    assert p.evaluate(bad, "full").status("sam") == claims.HOLDS_IN_PART


def test_18_relu_order_counts_no_tie_as_a_reversal(monkeypatch):
    # thresholds as the chapter records them at β = 0.9, B = 10: three minima share η* and differ by bisection
    # noise (below rtol), in another order at β = 0 than at β = 0.9
    p = protocol("18_momentum_stability")
    eta = {(0, 10): np.array([[0.41, 0.1017], [0.55, 0.1002], [0.76, 0.09920065], [0.79, 0.0992007],
                              [0.90, 0.09920063]])}
    meas = {"relu_order_agree": threshold_order.by_column(eta, [0.9], 1e-6)[0.9, (0, 10)]["kept"],
            "relu_resolved": 1.0}
    assert abs(meas["relu_order_agree"] - 0.3) < 1e-12  # 7 of 10 pairs reversed; the 3 tied pairs are not
    # planted: the bug the readers found, a tie read as a difference
    monkeypatch.setattr(threshold_order, "tied", lambda a, b, rtol: False)
    c = threshold_order.by_column(eta, [0.9], 1e-6)[0.9, (0, 10)]
    assert c["tied_new"] == 0 and c["reversed"] == 9  # 7 true reversals + 2 of the 3 noisy pairs
    assert c["kept"] < meas["relu_order_agree"]
    monkeypatch.undo()
    # and the unplanted check passes where momentum keeps the order
    keep = {(0, 10): np.array([[0.41, 0.30], [0.55, 0.35], [0.76, 0.40]])}
    ok = dict(meas, relu_order_agree=threshold_order.by_column(keep, [0.9], 1e-6)[0.9, (0, 10)]["kept"])
    assert p.evaluate(ok, "full").status("relu_order") == claims.HOLDS
    assert p.evaluate(meas, "full").status("relu_order") == claims.DOES_NOT_HOLD


# ---------------------------------------------------------------------------------------------- chapter 19
def _small_r_measured(steps=120):
    """Chapter 19's small-r measurement at tiny settings: the C=2 minimum of a small net, SGD at B = 2, far
    factors 0.5 and 2, one small radius; the agreement of the nonlinear runs and of the linearized map, and the
    'reached' validity condition from separate Lyapunov runs."""
    d, h, n = 6, 8, 8
    X, y = relu_net.parity_data(n, d, torch.Generator().manual_seed(0))
    theta = relu_net.generalizing_solution(2, d, h)
    G = relu_hessian.per_sample_gradients(theta, X, h=h)
    star = stability.critical_eta_rank_one(G, 2)
    gen = torch.Generator().manual_seed(1)
    agree, lin, decided = [], [], []
    for f in (0.5, 2.0):
        dirs = linearization.directions(6, theta.numel(), gen)
        sched = linearization.minibatch_schedule(6, n, 2, steps, gen)
        out = linearization.sweep(theta, X, y, G, [1e-3], dirs, sched, f * star)
        s = linearization.summarize(out, [1e-3], f > 1)
        agree.append(s["agree"][0]), lin.append(s["lin_agree"])
        ex = linearization.lyapunov(G, linearization.directions(4, theta.numel(), gen),
                                    linearization.minibatch_schedule(4, n, 2, 400, gen), f * star)
        iv = linearization.exponent_interval(ex)
        share = (int(torch.linalg.matrix_rank(G)) / theta.numel()) ** 0.5
        decided.append(linearization.decided(iv["lo"], iv["hi"], steps, 10.0, share))
    return {"agree_far_small": min(agree), "lin_agree_far": min(lin), "far_decided": float(np.mean(decided))}


def test_19_small_r_catches_a_gradient_bug(monkeypatch):
    p = protocol("19_linearization")
    ok = _small_r_measured()
    assert ok["agree_far_small"] == 1.0 and ok["far_decided"] == 1.0
    assert p.evaluate(ok, "full").status("small_r") == claims.HOLDS
    real = linearization._grad

    def half(T, Xb, yb, d):  # planted: the loss read as mean (f − y)²/2, a gradient half as large
        return 0.5 * real(T, Xb, yb, d)

    monkeypatch.setattr(linearization, "_grad", half)
    bad = _small_r_measured()
    assert bad["agree_far_small"] < 0.9  # at η = 2η* the nonlinear runs now sit at the threshold and stay
    assert bad["lin_agree_far"] == 1.0  # the linearized map (exact, no gradient code) still escapes
    assert p.evaluate(bad, "full").status("small_r") == claims.DOES_NOT_HOLD


def test_19_reached_is_measured_apart_from_the_checks():
    p = protocol("19_linearization")
    checks = {c.key for c in p.checks}
    assert {v.kind for v in p.validity} == {"reached"}
    assert not ({v.key for v in p.validity} & checks)
    assert {v.claim for v in p.validity} == {"small_r", "radius", "near_first"}
