"""Paper-scale chapter records: present, readable, and current (fingerprints match code and protocol)."""

import json
import subprocess
import sys

import pytest

from flatbias import chapter_record, verdict
from flatbias.claims import Check, Claim, Criterion, Protocol, same

CHAPTERS = chapter_record.chapters()
# chapters whose paper-scale run needs hardware this machine does not have (a GPU)
NEEDS_GPU = {"17_sam_vs_sgd_cifar10"}


def test_every_chapter_declares_a_protocol():
    from flatbias.records import repo_root

    stems = {nb.stem for nb in (repo_root() / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    missing = sorted(stems - {nb.stem for nb, _ in CHAPTERS})
    assert not missing, f"chapters without a cell tagged 'protocol' defining PROTOCOL: {missing}"


@pytest.mark.parametrize("nb,protocol", CHAPTERS, ids=[nb.stem for nb, _ in CHAPTERS])
def test_record_is_present_and_current(nb, protocol):
    paper = chapter_record.load(protocol)
    if paper.record is None:
        assert nb.stem in NEEDS_GPU, (
            f"{nb.stem} has no paper-scale record at {paper.path}: run `make records CHAPTERS={nb.stem[:2]}`")
        return
    assert not paper.stale, (f"{paper.path.name} is stale ({'; '.join(paper.stale)}): regenerate it with "
                             f"`make records CHAPTERS={nb.stem[:2]}`, then `make notebooks`")
    assert paper.record["scale"] == "full" and paper.record["name"] == nb.stem
    assert set(paper.record["metrics"]["checks"]) == {c.key for c in protocol.checks}, \
        f"{paper.path.name} does not measure exactly the checks its PROTOCOL declares"
    assert not paper.evaluation.failed_guards(), f"{paper.path.name}: a guard failed at paper scale"


def _protocol(bound=1.0):
    return Protocol("99_test", {"n": same(1, "ours")}, [Claim("c", "s", "src")],
                    [Check("x", "x", Criterion("<=", bound, "ours"), claim="c")])


def test_stale_when_protocol_or_module_changes(tmp_path):
    import flatbias.twolayer  # noqa: F401 - a module the 'run' imported

    p = _protocol()
    path = chapter_record.write(p, {"x": 0.5}, {"curve": [1, 2]}, 1.0, root=tmp_path)
    rec = json.loads(path.read_text())
    assert rec["fingerprint"]["modules"]["flatbias.twolayer"] == chapter_record.current_module_hash(
        "flatbias.twolayer")
    assert chapter_record.load(p, tmp_path).stale == []
    assert "the PROTOCOL of 99_test changed" in chapter_record.load(_protocol(2.0), tmp_path).stale
    rec["fingerprint"]["modules"]["flatbias.twolayer"] = "0" * 16  # the code changed since the run
    rec["fingerprint"]["modules"]["flatbias.gone"] = "0" * 16
    path.write_text(json.dumps(rec))
    reasons = chapter_record.load(p, tmp_path).stale
    assert "module flatbias.twolayer changed" in reasons and "module flatbias.gone was removed" in reasons


def test_module_hash_ignores_docstrings_and_comments(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""doc"""\ndef f(x):\n    """doc"""\n    return 2 * x  # note\n')
    b.write_text('"""other doc"""\ndef f(x):\n    return 2 * x\n')
    c.write_text('"""doc"""\ndef f(x):\n    return 3 * x\n')
    assert chapter_record.module_hash(a) == chapter_record.module_hash(b) != chapter_record.module_hash(c)


def test_write_rejects_undeclared_checks(tmp_path):
    with pytest.raises(ValueError, match="undeclared checks"):
        chapter_record.write(_protocol(), {"x": 0.5, "y": 1}, {}, 1.0, root=tmp_path)
    assert not chapter_record.record_path("99_test", tmp_path).exists()


def test_not_yet_run_without_record(tmp_path):
    paper = chapter_record.load(_protocol(), tmp_path)
    assert paper.record is None and paper.evaluation.status("c") == "not yet run"
    assert "not yet run" in verdict.verdict_line(paper)
    assert "no record" in paper.provenance()


def test_verdict_report_from_record(tmp_path):
    p = _protocol()
    chapter_record.write(p, {"x": 2.0}, {}, 1.0, root=tmp_path)
    paper = chapter_record.load(p, tmp_path)
    smoke = p.evaluate({"x": 0.5}, "smoke")
    text = verdict.report(paper, smoke)
    assert "[c] not reproduced (full scale)" in text and "[c] reproduced (smoke scale)" in text
    assert "smoke status differs for c" in verdict.live_mark(paper, smoke)


def test_cli_lists_and_rejects_unknown_chapters():
    run = subprocess.run([sys.executable, "-m", "flatbias.chapter_record", "--list"],
                         capture_output=True, text=True)
    assert run.returncode == 0 and all(nb.stem in run.stdout for nb, _ in CHAPTERS)
    bad = subprocess.run([sys.executable, "-m", "flatbias.chapter_record", "nope"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "unknown chapter" in bad.stderr and "Traceback" not in bad.stderr


def test_conclude_writes_at_full_reads_at_smoke_and_stops_on_a_guard(tmp_path):
    import time

    p = _protocol()
    smoke, paper = chapter_record.conclude(p, "smoke", {"x": 0.5}, {}, time.perf_counter(), root=tmp_path)
    assert smoke.status("c") == "reproduced" and paper.record is None  # smoke never writes
    smoke, paper = chapter_record.conclude(p, "full", {"x": 2.0}, {"d": 1}, time.perf_counter(), root=tmp_path)
    assert paper.record is not None and paper.data == {"d": 1} and paper.evaluation.status("c") == "not reproduced"
    guarded = Protocol("99_test", {"n": same(1, "ours")}, [Claim("c", "s", "src")],
                       [Check("x", "x", Criterion("<=", 1.0, "ours"), claim="c"),
                        Check("g", "g", Criterion("<=", 0.0, "ours"), role="guard")])
    with pytest.raises(AssertionError, match="guard checks failed"):
        chapter_record.conclude(guarded, "full", {"x": 0.5, "g": 1.0}, {}, time.perf_counter(), root=tmp_path)
    assert chapter_record.load(p, tmp_path).evaluation.status("c") == "not reproduced"  # nothing overwritten


def test_record_refuses_code_that_changed_after_import(tmp_path, monkeypatch):
    import flatbias.twolayer  # noqa: F401 - a module the 'run' imported

    assert "flatbias.twolayer" in chapter_record.AT_IMPORT  # hashed when it was imported
    monkeypatch.setitem(chapter_record.AT_IMPORT, "flatbias.twolayer", "0" * 16)  # the file changed since
    with pytest.raises(RuntimeError, match="flatbias.twolayer changed on disk after this run imported it"):
        chapter_record.write(_protocol(), {"x": 0.5}, {}, 1.0, root=tmp_path)
    assert not chapter_record.record_path("99_test", tmp_path).exists()


def test_modules_imported_after_chapter_record_are_hashed_at_import():
    import importlib
    import sys

    sys.modules.pop("flatbias.landscape", None)
    chapter_record.AT_IMPORT.pop("flatbias.landscape", None)
    importlib.import_module("flatbias.landscape")
    assert chapter_record.AT_IMPORT["flatbias.landscape"] == chapter_record.current_module_hash("flatbias.landscape")
