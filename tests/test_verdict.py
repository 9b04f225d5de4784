from flatbias.verdict import PlainText


def test_plain_text_has_no_quotes():
    v = PlainText("reproduced: max. rel. error 1e-14")
    assert repr(v) == "reproduced: max. rel. error 1e-14"


from flatbias import claims, verdict
from flatbias.claims import Check, Claim, Criterion, Protocol, Validity


class _Paper:
    """Stands in for chapter_record.PaperScale: a record and its evaluation."""

    def __init__(self, evaluation):
        self.evaluation, self.record, self.stale = evaluation, {"metrics": {}}, []

    def provenance(self):
        return "record results/chapters/42_v.json"


def _protocol():
    return Protocol("42_v", {}, [Claim("h", "a hypothesis", "ours", kind="ours")],
                    [Check("x", "slope", Criterion("<=", 1.0, "ours"), claim="h")],
                    validity=[Validity("runs", "runs that fit", Criterion(">=", 3, "ours"), "power", claim="h")])


def test_verdict_names_an_inconclusive_claims_failed_condition():
    paper = _Paper(_protocol().evaluate({"x": 0.5, "runs": 2}, "full"))
    line = verdict.verdict_line(paper)
    assert line.startswith("? inconclusive: slope 0.5") and "failed validity: power: runs that fit = 2" in line
    text = verdict.report(paper, _protocol().evaluate({"x": 0.5, "runs": 5}, "smoke"))
    assert "[h] inconclusive [ours] (full scale)" in text and "[h] holds [ours] (smoke scale)" in text
    assert "val runs that fit (criterion ≥ 3, ours): pass" in text  # smoke: values left out
    assert "smoke status differs for h" in verdict.live_mark(paper, _protocol().evaluate({"x": 0.5, "runs": 5}, "s"))


def test_verdict_of_an_ours_claim_never_says_not_reproduced():
    paper = _Paper(_protocol().evaluate({"x": 5.0, "runs": 5}, "full"))
    assert verdict.verdict_line(paper).startswith(f"{claims.MARKS[claims.DOES_NOT_HOLD]} does not hold")
    assert "reproduced" not in verdict.report(paper)
