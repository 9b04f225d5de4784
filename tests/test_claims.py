"""The claims machinery: criteria, kinds of claim, validity conditions, the one status rule, protocol
validation, ids and fingerprints."""

import pytest

from flatbias import claims
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, ProtocolError, Setting, Validity,
                             same)


def protocol(bound=1e-8, reading="paper", changes=(), source="paper"):
    return Protocol(
        chapter="99_test",
        settings={"n": Setting(3, 30, "paper"), "seed": same(0, "ours")},
        claims=[Claim("c", "a claim", "Paper 1, Lemma 1", reading=reading),
                Claim("u", "untestable", "Paper 2", testable=False, why="needs a GPU")],
        checks=[Check("err", "error", Criterion("<=", bound, source), claim="c"),
                Check("slope", "slope", Criterion("in", (0.9, 1.1), "ours"), role="secondary", claim="c"),
                Check("ok", "guard", Criterion("==", True, "ours"), role="guard")],
        changes=changes)


@pytest.mark.parametrize("op,bound,value,expected", [
    ("<=", 1.0, 1.0, True), ("<", 1.0, 1.0, False), (">=", 2, 3, True), (">", 2, 2, False),
    ("in", (0, 1), 0.5, True), ("in", (0, 1), 1.5, False), ("==", True, True, True),
    ("==", True, False, False), ("<=", 1.0, float("nan"), False)])
def test_criterion(op, bound, value, expected):
    assert Criterion(op, bound, "ours").passes(value) is expected


def test_criterion_declaration_errors():
    with pytest.raises(ProtocolError, match="op must be one of"):
        Criterion("~", 1, "ours")
    with pytest.raises(ProtocolError, match="source must be one of"):
        Criterion("<=", 1, "mine")
    with pytest.raises(ProtocolError, match="bound=\\(low, high\\)"):
        Criterion("in", 1, "ours")


def test_the_rule_every_branch():
    p = protocol()
    assert p.evaluate({"err": 0.0, "slope": 1.0, "ok": True}, "full").status("c") == claims.REPRODUCED
    assert p.evaluate({"err": 0.0, "slope": 2.0, "ok": True}, "full").status("c") == claims.PARTLY
    assert p.evaluate({"err": 1.0, "slope": 1.0, "ok": True}, "full").status("c") == claims.NOT_REPRODUCED
    assert p.evaluate(None, "full").status("c") == claims.NOT_YET_RUN
    assert p.evaluate({"err": 0.0}, "full").status("c") == claims.NOT_YET_RUN  # slope not measured
    assert p.evaluate(None, "full").status("u") == claims.NOT_TESTABLE
    ours = protocol(reading="ours").evaluate({"err": 0.0, "slope": 1.0, "ok": True}, "full")
    assert ours.status("c") == claims.UNDER_OUR_READING


def test_partly_when_some_primary_fail():
    p = Protocol("99_t", {}, [Claim("c", "s", "src")],
                 [Check("a", "a", Criterion("<=", 1, "paper"), claim="c"),
                  Check("b", "b", Criterion("<=", 1, "paper"), claim="c")])
    assert p.evaluate({"a": 0, "b": 2}, "full").status("c") == claims.PARTLY
    assert p.evaluate({"a": 2, "b": 2}, "full").status("c") == claims.NOT_REPRODUCED


def test_guards_do_not_enter_a_status_but_stop_the_build():
    ev = protocol().evaluate({"err": 0.0, "slope": 1.0, "ok": False}, "smoke")
    assert ev.status("c") == claims.REPRODUCED
    with pytest.raises(AssertionError, match="guard checks failed"):
        ev.assert_guards()


def test_combine():
    assert claims.combine([claims.REPRODUCED, claims.NOT_TESTABLE]) == claims.REPRODUCED
    assert claims.combine([claims.REPRODUCED, claims.UNDER_OUR_READING]) == claims.UNDER_OUR_READING
    assert claims.combine([claims.REPRODUCED, claims.NOT_REPRODUCED]) == claims.PARTLY
    assert claims.combine([claims.NOT_YET_RUN]) == claims.NOT_YET_RUN


def test_protocol_validation():
    with pytest.raises(ProtocolError, match="duplicate check keys"):
        Protocol("99_t", {}, [Claim("c", "s", "src")],
                 [Check("a", "a", Criterion("<=", 1, "ours"), claim="c")] * 2)
    with pytest.raises(ProtocolError, match="not declared"):
        Protocol("99_t", {}, [], [Check("a", "a", Criterion("<=", 1, "ours"), claim="zz")])
    with pytest.raises(ProtocolError, match="no primary check"):
        Protocol("99_t", {}, [Claim("c", "s", "src")], [])
    with pytest.raises(ProtocolError, match="a guard has no claim"):
        Check("g", "g", Criterion("<=", 1, "ours"), role="guard", claim="c")
    with pytest.raises(ProtocolError, match="say why"):
        Claim("c", "s", "src", testable=False)
    with pytest.raises(ProtocolError, match="undeclared checks"):
        protocol().evaluate({"nope": 1.0}, "full")
    with pytest.raises(ProtocolError, match="Setting"):
        Protocol("99_t", {"n": 3}, [], [])


def test_fingerprint_tracks_every_threshold_and_setting():
    base = protocol().fingerprint()
    assert protocol().fingerprint() == base
    assert protocol(bound=1e-7).fingerprint() != base
    assert protocol(reading="ours").fingerprint() != base
    assert protocol(changes=[Change("err", "1e-7", "1e-8", "why")]).fingerprint() != base


def test_settings_by_scale_are_read_only():
    p = protocol()
    assert p.at("smoke")["n"] == 3 and p.at("full")["n"] == 30
    with pytest.raises(TypeError):
        p.at("full")["n"] = 4
    with pytest.raises(ProtocolError, match="scale"):
        p.at("huge")


def test_report_and_key_number():
    ev = protocol().evaluate({"err": 4e-14, "slope": 1.0, "ok": True}, "full")
    assert ev.key_number("c") == "error 4e-14 (criterion ≤ 1e-08)"
    text = ev.report()
    assert "[c] reproduced (full scale)" in text and "needs a GPU" in text
    assert "4e-14" not in ev.report(values=False)
    assert "| `n` | 3 | 30 | paper |" in protocol().markdown()


# -- second version of the rule: kinds, validity conditions, inconclusive --------------------------------

QUOTE = dict(quote="the Riemannian gradient flow on the manifold linearly converges", locator="Theorem 3.5")


def kinds_protocol(validity=True, primary_source="paper"):
    """One claim of each kind; validity conditions (power, reached) on the paper claim and the ours claim."""
    return Protocol(
        chapter="42_kinds",
        settings={"n": same(3, "paper")},
        claims=[Claim("conv", "the flow converges", "Paper 1", kind="paper", **QUOTE),
                Claim("rate", "late rate 2μ", "Paper 1, Theorem 3.5 (rate: SPEC §A.8)", kind="reading",
                      ours_part="the rate 2μ and the 20 % band"),
                Claim("cond", "rate ∝ λ_min(XXᵀ)", "ours", kind="ours")],
        checks=[Check("share", "share converged", Criterion(">=", 1.0, primary_source), claim="conv"),
                Check("ratio", "rate / 2μ", Criterion("in", (0.8, 1.2), "ours"), claim="rate"),
                Check("slope", "log-log slope", Criterion("in", (0.7, 1.4), "ours"), claim="cond"),
                Check("r2", "fit R²", Criterion(">=", 0.999, "ours"), role="secondary", claim="cond")],
        validity=[Validity("n_fit", "runs that fit", Criterion(">=", 3, "ours"), "power", claim="conv"),
                  Validity("slowest", "slowest run's predicted time / horizon", Criterion("<=", 1.0, "ours"),
                           "reached", claim="cond"),
                  Validity("control", "passes on a built case", Criterion("==", True, "ours"),
                           "positive control", claim="cond")] if validity else ())


GOOD = {"share": 1.0, "ratio": 1.0, "slope": 1.0, "r2": 0.9999, "n_fit": 5, "slowest": 0.5, "control": True}


def test_each_kind_when_everything_passes():
    ev = kinds_protocol().evaluate(GOOD, "full")
    assert ev.statuses() == {"conv": claims.REPRODUCED, "rate": claims.UNDER_OUR_READING, "cond": claims.HOLDS}
    assert ev.headline() == claims.UNDER_OUR_READING  # an ours claim does not enter the headline


def test_a_reading_claim_says_under_our_reading_whether_it_passes_or_fails():
    p = kinds_protocol()
    assert p.evaluate(GOOD | {"ratio": 2.0}, "full").status("rate") == claims.NOT_REPRODUCED_UNDER_OUR_READING
    assert all("under our reading" in s for s in (claims.UNDER_OUR_READING, claims.PARTLY_UNDER_OUR_READING,
                                                  claims.NOT_REPRODUCED_UNDER_OUR_READING))


def test_a_paper_claim_judged_by_a_constant_of_ours_is_at_best_under_our_reading():
    p = kinds_protocol(primary_source="ours")
    assert p.evaluate(GOOD, "full").status("conv") == claims.UNDER_OUR_READING
    assert p.evaluate(GOOD | {"share": 0.5}, "full").status("conv") == claims.NOT_REPRODUCED_UNDER_OUR_READING
    assert protocol(source="ours").evaluate({"err": 0.0, "slope": 1.0}, "full").status("c") == \
        claims.UNDER_OUR_READING  # the old form too


@pytest.mark.parametrize("values,expected", [
    ({}, claims.HOLDS), ({"r2": 0.5}, claims.HOLDS_IN_PART), ({"slope": 3.0}, claims.DOES_NOT_HOLD),
    ({"slope": 3.0, "r2": 0.5}, claims.DOES_NOT_HOLD), ({"slowest": 2.0}, claims.INCONCLUSIVE),
    ({"control": False}, claims.INCONCLUSIVE), ({"slowest": None}, claims.NOT_YET_RUN)])
def test_an_ours_claim_holds_or_not_and_never_reads_not_reproduced(values, expected):
    status = kinds_protocol().evaluate(GOOD | values, "full").status("cond")
    assert status == expected and status in claims.OURS_STATUSES and "reproduced" not in status


def test_a_failed_validity_condition_gives_inconclusive_and_is_named():
    p = kinds_protocol()
    ev = p.evaluate(GOOD | {"n_fit": 2, "share": 0.0}, "full")  # the check fails too: still inconclusive
    assert ev.status("conv") == claims.INCONCLUSIVE and ev.failed_validity("conv") == ["n_fit"]
    assert ev.why_inconclusive("conv") == "power: runs that fit = 2 (criterion ≥ 3)"
    assert "failed validity: power: runs that fit = 2" in ev.key_number("conv")
    assert "failed validity: power: runs that fit" in ev.report()
    assert ev.to_json()["inconclusive"] == {"conv": ["n_fit"]}
    assert ev.to_json()["validity"]["n_fit"] == {"value": 2, "passed": False}
    assert p.evaluate(GOOD | {"n_fit": None}, "full").status("conv") == claims.NOT_YET_RUN
    assert p.evaluate({k: v for k, v in GOOD.items() if k != "n_fit"}, "full").status("conv") == claims.NOT_YET_RUN


def test_flip_validity_gives_inconclusive_for_every_condition():
    p = kinds_protocol()
    assert p.evaluate(GOOD, "full").status("conv") == claims.REPRODUCED
    flipped = claims.flip_validity(p, GOOD, "n_fit")
    assert flipped["n_fit"] < 3 and {k: v for k, v in flipped.items() if k != "n_fit"} == \
        {k: v for k, v in GOOD.items() if k != "n_fit"}
    assert p.evaluate(flipped, "full").status("conv") == claims.INCONCLUSIVE
    assert claims.assert_validity_decides(p, GOOD) == {k: claims.INCONCLUSIVE for k in ("n_fit", "slowest", "control")}
    with pytest.raises(ProtocolError, match="no validity condition 'share'"):
        claims.flip_validity(p, GOOD, "share")


@pytest.mark.parametrize("op,bound", [("<=", 1.0), ("<", -2.0), (">=", 3), (">", 0.0), ("==", 4.0),
                                      ("in", (0.5, 2.0)), ("==", True), ("==", False)])
def test_failing_value_fails(op, bound):
    crit = Criterion(op, bound, "ours")
    assert not crit.passes(claims.failing_value(crit))


def test_assert_validity_decides_names_a_condition_that_cannot_decide():
    p = Protocol("42_k", {}, [Claim("c", "s", "src", testable=False, why="no GPU")],
                 [Check("x", "x", Criterion("<=", 1, "ours"), role="secondary", claim="c")],
                 validity=[Validity("v", "v", Criterion("<=", 1, "ours"), "regime", claim="c")])
    with pytest.raises(AssertionError, match="v \\(claim c\\): not testable here"):
        claims.assert_validity_decides(p, {"x": 0, "v": 0})


def test_kind_declaration_errors():
    with pytest.raises(ProtocolError, match="needs quote="):
        Claim("c", "s", "Paper 1", kind="paper")
    with pytest.raises(ProtocolError, match="needs quote="):
        Claim("c", "s", "Paper 1", kind="paper", quote="text", locator=" ")
    with pytest.raises(ProtocolError, match="needs ours_part="):
        Claim("c", "s", "Paper 2 via SPEC.md §B.6", kind="reading")
    with pytest.raises(ProtocolError, match="kind must be one of"):
        Claim("c", "s", "src", kind="theirs")
    with pytest.raises(ProtocolError, match="give kind= only"):
        Claim("c", "s", "src", kind="ours", reading="ours")
    with pytest.raises(ProtocolError, match="need kind="):
        Claim("c", "s", "src", quote="text", locator="Fig. 1")
    with pytest.raises(ProtocolError, match="a quote needs its locator"):
        Claim("c", "s", "a reviewer", kind="ours", quote="SAM achieves lower coherence")
    with pytest.raises(ProtocolError, match="belongs to kind 'reading'"):
        Claim("c", "s", "src", kind="ours", ours_part="x")
    with pytest.raises(ProtocolError, match="name its source"):
        Claim("c", "s", " ", kind="ours")
    ok = Claim("c", "s", "reviewer 2", kind="ours", quote="SAM achieves lower coherence", locator="review 2")
    assert ok.kind == "ours" and not ok.legacy


def test_validity_declaration_errors():
    crit = Criterion(">=", 3, "ours")
    with pytest.raises(ProtocolError, match="kind must be one of"):
        Validity("v", "v", crit, "luck", claim="c")
    base = dict(settings={}, claims=[Claim("c", "s", "src")],
                checks=[Check("x", "x", Criterion("<=", 1, "ours"), claim="c")])
    with pytest.raises(ProtocolError, match="has the key of a check"):
        Protocol("42_k", **base, validity=[Validity("x", "v", crit, "power", claim="c")])
    with pytest.raises(ProtocolError, match="names claim 'zz'"):
        Protocol("42_k", **base, validity=[Validity("v", "v", crit, "power", claim="zz")])
    with pytest.raises(ProtocolError, match="duplicate validity keys"):
        Protocol("42_k", **base, validity=[Validity("v", "v", crit, "power", claim="c")] * 2)
    with pytest.raises(ProtocolError, match="undeclared checks \\['w'\\]"):
        Protocol("42_k", **base, validity=[Validity("v", "v", crit, "power", claim="c")]).evaluate(
            {"x": 0, "v": 3, "w": 1}, "full")


def test_old_form_maps_onto_kinds_and_keeps_its_declaration():
    old = protocol()
    assert [(c.kind, c.legacy) for c in old.claims] == [("paper", True), ("paper", True)]
    assert protocol(reading="ours").claims[0].kind == "reading"
    assert old.legacy_claims() == ["99.c", "99.u"]
    assert kinds_protocol().legacy_claims() == []
    d = old.as_dict()  # exactly the keys of the first version: existing records stay current
    assert set(d) == {"chapter", "settings", "claims", "checks", "changes"}
    assert all(set(c) == {"key", "statement", "source", "reading", "testable", "why"} for c in d["claims"])
    assert old.fingerprint() == "06ccc17cdf5c6b0e"  # this declaration's hash under the first version


def test_validity_is_part_of_the_fingerprint():
    base = kinds_protocol().fingerprint()
    assert kinds_protocol().fingerprint() == base and kinds_protocol(validity=False).fingerprint() != base
    assert "validity" in kinds_protocol().as_dict() and "validity" not in kinds_protocol(validity=False).as_dict()
    looser = kinds_protocol()
    looser.validity = (Validity("n_fit", "runs that fit", Criterion(">=", 2, "ours"), "power", claim="conv"),
                       ) + looser.validity[1:]
    assert looser.fingerprint() != base


def test_claim_ids_are_unique_stable_and_anchored():
    p = kinds_protocol()
    assert p.number == "42" and [p.claim_id(c.key) for c in p.claims] == ["42.conv", "42.rate", "42.cond"]
    assert kinds_protocol().claim_id("rate") == p.claim_id("rate")
    assert claims.anchor("13.fig1c") == "claim-13-fig1c" and claims.anchor("14.sam_amplifies") == \
        "claim-14-sam-amplifies"
    d = p.as_dict(ids=True)["claims"]
    assert [(c["id"], c["kind"]) for c in d] == [("42.conv", "paper"), ("42.rate", "reading"), ("42.cond", "ours")]
    assert "id" not in p.as_dict()["claims"][0]  # ids are derived: not in the fingerprint
    with pytest.raises(ProtocolError, match="no claim 'nope'"):
        p.claim_id("nope")


def test_statuses_marks_and_combine():
    assert len(set(claims.STATUSES)) == len(claims.STATUSES) == len(claims.MARKS)
    assert set(claims.MARKS) == set(claims.STATUSES) == set(claims.PAPER_STATUSES) | set(claims.OURS_STATUSES)
    assert len(set(claims.MARKS.values())) == len(claims.MARKS)  # every mark distinct
    assert not any("reproduced" in s for s in claims.OURS_STATUSES)
    assert claims.combine([claims.REPRODUCED, claims.INCONCLUSIVE]) == claims.PARTLY
    assert claims.combine([claims.INCONCLUSIVE, claims.NOT_YET_RUN]) == claims.INCONCLUSIVE
    assert claims.combine([claims.UNDER_OUR_READING, claims.NOT_REPRODUCED]) == claims.PARTLY_UNDER_OUR_READING
    assert claims.combine([claims.HOLDS, claims.DOES_NOT_HOLD]) == claims.HOLDS_IN_PART
    assert claims.combine([claims.HOLDS, claims.NOT_TESTABLE]) == claims.HOLDS
    with pytest.raises(ProtocolError, match="unknown statuses"):
        claims.combine(["fine"])


def test_an_all_ours_chapter_headlines_its_ours_claims():
    p = Protocol("18_x", {}, [Claim("a", "s", "ours", kind="ours"), Claim("b", "s", "ours", kind="ours")],
                 [Check("x", "x", Criterion("<=", 1, "ours"), claim="a"),
                  Check("y", "y", Criterion("<=", 1, "ours"), claim="b")])
    assert p.evaluate({"x": 0, "y": 0}, "full").headline() == claims.HOLDS
    assert p.evaluate({"x": 0, "y": 2}, "full").headline() == claims.HOLDS_IN_PART


def test_rule_text_covers_the_second_version():
    for word in ("paper", "reading", "ours", "validity", "inconclusive", "holds", "does not hold", "power",
                 "reached", "regime", "positive control", "never reads"):
        assert word in claims.RULE


def test_a_check_declares_how_far_two_runs_may_differ():
    from flatbias.claims import Check, Criterion, ProtocolError

    assert Check("x", "x", Criterion("<=", 1, "paper"), claim="c").tolerance == "round-off"
    for ok in ("exact", "round-off", "error", 0.05):
        assert Check("x", "x", Criterion("<=", 1, "paper"), claim="c", tolerance=ok).tolerance == ok
    for bad in ("loose", 0, -0.1, True, float("nan")):
        with pytest.raises(ProtocolError, match="check 'x': tolerance must be"):
            Check("x", "x", Criterion("<=", 1, "paper"), claim="c", tolerance=bad)
    plain = Protocol("99_t", {}, [Claim("c", "s", "src")], [Check("x", "x", Criterion("<=", 1, "paper"), claim="c")])
    loose = Protocol("99_t", {}, [Claim("c", "s", "src")],
                     [Check("x", "x", Criterion("<=", 1, "paper"), claim="c", tolerance=0.05)])
    assert plain.fingerprint() != loose.fingerprint() and "±0.05 (relative)" in loose.markdown()
    error = Protocol("99_t", {}, [Claim("c", "s", "src")],
                     [Check("x", "x", Criterion("<=", 1, "paper"), claim="c", tolerance="error")])
    assert error.fingerprint() != plain.fingerprint() and "error: within a factor of 10" in error.markdown()
