"""The changes several protocols share (flatbias.protocol_changes) say what the protocols do."""

from flatbias import chapter_record
from flatbias.protocol_changes import error_tolerance, rho_at_one

CHAPTERS = chapter_record.chapters()


def _error_changes(protocol):
    return [c for c in protocol.changes if c.what.startswith("tolerance of ") and c.after.startswith("error")]


def test_the_changes_name_their_checks_and_what_each_chapter_saw():
    c = error_tolerance(["a", "b"], "a moved by 1 %")
    assert c.what == "tolerance of a, b" and c.before.startswith("round-off") and c.after.startswith("error")
    assert "a moved by 1 %" in c.why and "criteria unchanged" in c.why
    t = rho_at_one("no value moved")
    assert "stability.stable" in t.after and "no value moved" in t.why


def test_every_check_a_chapter_lists_as_changed_to_error_declares_it_and_no_other_does():
    """A chapter whose change lists a check that still declares 'round-off', or a check declaring 'error' that no
    change lists, fails: the protocol's text and its checks must agree."""
    seen = 0
    for nb, protocol in CHAPTERS:
        listed = {k for c in _error_changes(protocol) for k in c.what.removeprefix("tolerance of ").split(", ")}
        declared = {c.key for c in (*protocol.checks, *protocol.validity) if c.tolerance == "error"}
        assert listed == declared, (nb.stem, listed ^ declared)
        seen += len(declared)
    assert seen == 20  # chapters 01, 02, 03, 07, 10, 18 and 19


def test_the_chapters_that_draw_the_exact_map_list_the_rule_at_rho_one():
    listed = {nb.stem[:2] for nb, p in CHAPTERS if any(c.what == "exact map at ρ(𝒯) = 1" for c in p.changes)}
    assert listed == {"11", "12", "13", "18"}
