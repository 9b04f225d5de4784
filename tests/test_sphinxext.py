"""The scoreboard and claims.json of the book's Sphinx extension: two tables, ids, anchors, inconclusive rows."""

import json
from pathlib import Path

import pytest

from flatbias import chapter_record, claims, sphinxext
from flatbias.records import repo_root

PROTOCOL_CELL = '''
from flatbias.claims import Check, Claim, Criterion, Protocol, Validity, same
PROTOCOL = Protocol(
    chapter="12_toy", settings={"n": same(3, "ours")},
    claims=[Claim("thm", "a theorem", "Paper 2", kind="paper", quote="SAM escapes", locator="rebuttal, para. 2"),
            Claim("hyp", "a hypothesis", "ours", kind="ours")],
    checks=[Check("x", "escape share", Criterion(">=", 0.9, "paper"), claim="thm"),
            Check("y", "slope", Criterion("<=", 1.0, "ours"), claim="hyp")],
    validity=[Validity("runs", "runs that fit", Criterion(">=", 3, "ours"), "power", claim="hyp")])
'''


@pytest.fixture
def toy_book(tmp_path):
    """A book with one chapter (a protocol cell and a paper-scale record whose validity condition fails)."""
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2.3.4"\n')
    cell = {"cell_type": "code", "metadata": {"tags": ["protocol"]}, "source": PROTOCOL_CELL.splitlines(True),
            "outputs": [], "execution_count": None}
    nb = {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks" / "12_toy.ipynb").write_text(json.dumps(nb))
    (_, protocol), = chapter_record.chapters(tmp_path)
    path = chapter_record.write(protocol, {"x": 0.95, "y": 0.5, "runs": 2}, {}, 1.0, root=tmp_path)
    committed = chapter_record.record_path(protocol.chapter, tmp_path)  # where the book reads it from
    committed.parent.mkdir(parents=True, exist_ok=True)
    if path != committed:
        path.replace(committed)
    return tmp_path


def test_scoreboard_has_two_tables_anchors_and_names_failed_validity(toy_book):
    md = sphinxext.scoreboard_markdown(toy_book)
    t1, t2 = md.index("**Table 1."), md.index("**Table 2. What we tested beyond the papers' statements")
    row_thm = md.index('<a id="claim-12-thm" href="#claim-12-thm">12.thm</a> ✓ reproduced')
    row_hyp = md.index('<a id="claim-12-hyp" href="#claim-12-hyp">12.hyp</a> ? inconclusive')
    assert t1 < row_thm < t2 < row_hyp
    assert "failed validity: power: runs that fit = 2 (criterion ≥ 3)" in md[row_hyp:]
    assert "“SAM escapes” (rebuttal, para. 2)" in md
    assert "Paper 2</b>, the papers&#x27; statements (1)" in md and "our hypotheses (1)" in md
    assert 'id="claims-filter-input"' in md and "http" not in sphinxext.FILTER  # works offline


def test_claims_json_version_ids_kinds_and_statuses(toy_book):
    data = sphinxext.claims_json(toy_book)
    assert data["version"] == "2.3.4" and data["statuses"] == list(claims.STATUSES)
    ch, = data["chapters"]
    assert [(c["id"], c["kind"]) for c in ch["protocol"]["claims"]] == [("12.thm", "paper"), ("12.hyp", "ours")]
    assert ch["paper_scale"]["statuses"] == {"thm": claims.REPRODUCED, "hyp": claims.INCONCLUSIVE}
    assert ch["paper_scale"]["inconclusive"] == {"hyp": ["runs"]} and ch["legacy_claims"] == []


def test_parts_of_the_book():
    p = claims.Protocol("13_x", {}, [], [])
    assert sphinxext.part_of(p) == "Paper 2"
    assert sphinxext.part_of(claims.Protocol("09_x", {}, [], [])) == "Paper 1"
    assert sphinxext.part_of(claims.Protocol("18_x", {}, [], [])).startswith("Beyond the papers")


def test_the_books_claim_ids_and_anchors_are_unique_and_json_matches_its_schema():
    root = repo_root()
    data = sphinxext.claims_json(root)
    ids = [c["id"] for ch in data["chapters"] for c in ch["protocol"]["claims"]]
    assert len(ids) == len(set(ids)) and len({claims.anchor(i) for i in ids}) == len(ids)
    assert data["version"] == sphinxext.book_version(root)
    schema_path = Path(root) / "book" / "claims.schema.json"
    jsonschema = pytest.importorskip("jsonschema")
    if schema_path.exists():
        jsonschema.validate(json.loads(json.dumps(data, default=str)), json.loads(schema_path.read_text()))
