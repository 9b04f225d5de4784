"""The claims machinery: criteria, the one status rule, protocol validation and fingerprints."""

import pytest

from flatbias import claims
from flatbias.claims import Change, Check, Claim, Criterion, Protocol, ProtocolError, Setting, same


def protocol(bound=1e-8, reading="paper", changes=()):
    return Protocol(
        chapter="99_test",
        settings={"n": Setting(3, 30, "paper"), "seed": same(0, "ours")},
        claims=[Claim("c", "a claim", "Paper 1, Lemma 1", reading=reading),
                Claim("u", "untestable", "Paper 2", testable=False, why="needs a GPU")],
        checks=[Check("err", "error", Criterion("<=", bound, "ours"), claim="c"),
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
                 [Check("a", "a", Criterion("<=", 1, "ours"), claim="c"),
                  Check("b", "b", Criterion("<=", 1, "ours"), claim="c")])
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
