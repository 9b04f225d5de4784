"""Planted bugs for chapters 09, 10 and 12: a bug planted in a flatbias function that a chapter's measurement
uses must change the chapter's primary check (value and pass/fail), and without the bug the same measurement,
at tiny settings, passes.

The measurement is the chapter's own code: the cells that define it are executed from the committed notebook
(``.ipynb``, what the book runs), and the verdict comes from the chapter's own ``PROTOCOL``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from flatbias import chapter_record
from flatbias import coherence as co
from flatbias import label_noise as ln
from flatbias import stability

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def chapter_cells(name: str, *markers: str) -> list[str]:
    """Source of the chapter's code cells that contain each marker, in notebook order."""
    cells = json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    found = []
    for marker in markers:
        hits = [src for src in code if marker in src]
        assert len(hits) == 1, f"{name}: expected one code cell with {marker!r}, found {len(hits)}"
        found.append(hits[0])
    return found


def run_cells(name: str, namespace: dict, *markers: str) -> dict:
    for src in chapter_cells(name, *markers):
        exec(compile(src, f"{name}.ipynb", "exec"), namespace)  # noqa: S102 - the chapter's own code
    return namespace


# -- chapter 09: rank two for n = 5 ------------------------------------------------------------------------------
CH09 = "09_beyond_theory"


def rank_two_runs(draws: int = 3) -> list:
    """Fake finished runs for n = 5, d = 3 whose last iterate has its ten neurons in two groups (5 + 5), a little
    off M. Newton's min-norm steps move identical neurons identically, so the chapter's retraction keeps the two
    groups: a state where the claim holds. Built with the real retraction, before any bug is planted."""
    g = np.random.default_rng(0)
    out = []
    for _ in range(draws):
        X = g.uniform(0, 1, (5, 3))
        w = np.array([[1.0, -1.0, 0.3], [-0.8, 0.2, 1.0]]) + 0.1 * g.normal(size=(2, 3))
        y = 5 * np.sinh(X @ w.T).sum(1)  # the two-group network fits: it lies on M
        w = w + 0.01 * g.normal(size=(2, 3))  # the two groups, moved off M together
        raw = np.concatenate([np.repeat(w[:1], 5, 0), np.repeat(w[1:], 5, 0)])
        r = SimpleNamespace(loss=np.zeros((40, 1)), theta=np.repeat(raw[None, None], 2, 0))
        out.append((X, y, g.normal(0, 1 / math.sqrt(3), (10, 3)), r))
    return out


def rank_two_primary(protocol, runs) -> tuple[float, bool, str]:
    """The chapter's judge() on the runs, then its rank_two checks, validity and status."""
    P = dict(protocol.at("smoke"))
    ns = run_cells(CH09, {"P": P, "runs": {}, "S": 0.1, "np": np, "math": math, "ln": ln,
                          "clusters": __import__("flatbias.clusters", fromlist=["x"])},
                   "def on_manifold", "def judge")
    rows = [ns["judge"](5, p, *run) for p, run in enumerate(runs)]

    def over(f, agg):
        vals = [f(r) for r in rows if r["fits"]]
        return float(agg(vals)) if vals else float("nan")

    measured = {"n5_eig3_median": over(lambda r: r["eig_M"][2], np.median),
                "n5_eig3": over(lambda r: r["eig_M"][2], max), "n5_eig2": over(lambda r: r["eig_M"][1], min),
                "n5_U2": over(lambda r: r["U"], max), "n5_fit_share": float(np.mean([r["fits"] for r in rows]))}
    ev = protocol.evaluate(measured, "full")
    return measured["n5_eig3_median"], ev.passed("n5_eig3_median"), ev.status("rank_two")


def test_09_planted_bug_in_retraction_changes_rank_two(monkeypatch):
    protocol = chapter_record.protocol_of(CH09)
    runs = rank_two_runs()
    value, ok, status = rank_two_primary(protocol, runs)
    assert ok and value <= 1e-10
    assert status == "reproduced under our reading"

    real = ln.retract_batch

    def one_step(*a, **k):  # the bug: an off-by-one iteration count, one Newton step only
        return real(*a, **{**k, "max_iter": 1})

    monkeypatch.setattr(ln, "retract_batch", one_step)
    bad_value, bad_ok, bad_status = rank_two_primary(protocol, runs)
    assert not bad_ok and math.isnan(bad_value)  # no run retracts, so none fits
    assert bad_status == "inconclusive"  # the power condition fails: never a false "not reproduced"


# -- chapter 10: the authors' construction has coherence exactly σ ------------------------------------------------
CH10 = "10_coherence"


def construction_primary(protocol) -> tuple[float, bool, str]:
    P = dict(protocol.at("smoke"))
    P["construction_sigmas"] = [1, 5, 25]
    ns = run_cells(CH10, {"P": P, "co": co, "torch": torch}, "co.authors_family(n_c, s)")
    ev = protocol.evaluate({"construction_sigma": ns["err_sigma"], "construction_lam": ns["err_lam"]}, "full")
    return ns["err_sigma"], ev.passed("construction_sigma"), ev.status("construction")


def test_10_planted_bug_in_coherence_matrix_flips_construction(monkeypatch):
    protocol = chapter_record.protocol_of(CH10)
    value, ok, status = construction_primary(protocol)
    assert ok and value <= 1e-12
    assert status == "reproduced under our reading"

    def no_sqrt(H):  # the bug of a secondary summary: S_ij = tr(H_i H_j), without the square root
        flat = H.reshape(H.shape[0], -1)
        return (flat @ flat.T).clamp_min(0)

    monkeypatch.setattr(co, "coherence_matrix", no_sqrt)
    bad_value, bad_ok, bad_status = construction_primary(protocol)
    assert not bad_ok and bad_value > 1e-3
    assert bad_status == "partly reproduced under our reading"  # λ₁(H) = 2 still holds


# -- chapter 12: the perturbed mean square exceeds SGD's by a factor c > 1 ----------------------------------------
CH12 = "12_perturbed_sgd"


def factor_primary(protocol) -> tuple[float, bool]:
    P = dict(protocol.at("smoke"))
    P.update(families=8, guard_families=1, horizon=60)
    from flatbias.families import clustered_family, draw_int

    ns = {"P": P, "S": P["noise_std"], "np": np, "math": math, "torch": torch, "stability": stability,
          "clustered_family": clustered_family, "draw_int": draw_int,
          "gen": torch.Generator().manual_seed(3)}
    run_cells(CH12, ns, "def one_family", "fam = []")
    F = ns["F"]
    unst = F[:, 0] > 1
    assert unst.any(), "the tiny draw needs an unstable family"
    c_min = float(np.exp(F[unst, 3]).min())
    return c_min, protocol.evaluate({"c_min": c_min}, "full").passed("c_min")


def test_12_planted_bug_in_second_moments_flips_c_min(monkeypatch):
    protocol = chapter_record.protocol_of(CH12)
    value, ok = factor_primary(protocol)
    assert ok and value > 1.0 + 1e-6

    real = stability.enumerated_second_moments

    def noise_dropped(*a, noise_std=0.0, **k):  # the bug: the forcing s²𝒯(I) is never added
        return real(*a, noise_std=0.0, **k)

    monkeypatch.setattr(stability, "enumerated_second_moments", noise_dropped)
    bad_value, bad_ok = factor_primary(protocol)
    assert not bad_ok and bad_value == pytest.approx(1.0, abs=1e-12)
