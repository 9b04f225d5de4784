"""Paper-scale chapter records: present, readable, and current (fingerprints match code and protocol)."""

import json
import subprocess
import sys

import pytest

from flatbias import chapter_record, claims, verdict
from flatbias.claims import Check, Claim, Criterion, Protocol, same

CHAPTERS = chapter_record.chapters()
# chapters whose paper-scale run needs hardware this machine does not have (a GPU)
NEEDS_GPU = set(chapter_record.ELSEWHERE)


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
    assert set(paper.record["metrics"]["checks"]) == set(protocol.measured_keys()), \
        f"{paper.path.name} does not measure exactly the checks and validity conditions its PROTOCOL declares"
    assert not paper.evaluation.failed_guards(), f"{paper.path.name}: a guard failed at paper scale"


COMMITTED = lambda root: root / "results" / "chapters"  # noqa: E731 - where make records puts them


def _protocol(bound=1.0):
    return Protocol("99_test", {"n": same(1, "ours")}, [Claim("c", "s", "src")],
                    [Check("x", "x", Criterion("<=", bound, "paper"), claim="c")])


def test_stale_when_protocol_or_module_changes(tmp_path):
    import flatbias.twolayer  # noqa: F401 - a module the 'run' imported

    p = _protocol()
    path = chapter_record.write(p, {"x": 0.5}, {"curve": [1, 2]}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))
    rec = json.loads(path.read_text())
    rec["provenance"]["commit"] = "0" * 40  # as if from a clean commit
    path.write_text(json.dumps(rec))
    assert rec["fingerprint"]["modules"]["flatbias.twolayer"] == chapter_record.current_module_hash(
        "flatbias.twolayer")
    assert chapter_record.load(p, tmp_path).stale == []
    assert "the PROTOCOL of 99_test changed" in chapter_record.load(_protocol(2.0), tmp_path).stale
    rec["fingerprint"]["modules"]["flatbias.twolayer"] = "0" * 16  # the code changed since the run
    rec["fingerprint"]["modules"]["flatbias.gone"] = "0" * 16
    path.write_text(json.dumps(rec))
    reasons = chapter_record.load(p, tmp_path).stale
    assert "module flatbias.twolayer changed" in reasons and "module flatbias.gone was removed" in reasons
    for commit, allow in (("abc+dirty", False), ("abc (declared)", False), ("0" * 40, True)):
        path.write_text(json.dumps({**rec, "provenance": {**rec["provenance"], "commit": commit,
                                                          "allow_dirty": allow}}))
        reasons = chapter_record.load(p, tmp_path).stale
        assert any(("no clean commit" in r) != allow and ("--allow-dirty" in r) == allow for r in reasons), reasons


def _chapter_root(tmp_path, chapter="10_coherence"):
    """A copy of one chapter's source, with a record whose fingerprint matches it (as if from a clean commit)."""
    from flatbias.records import repo_root

    (tmp_path / "notebooks").mkdir()
    src = (repo_root() / "notebooks" / f"{chapter}.py").read_text()
    (tmp_path / "notebooks" / f"{chapter}.py").write_text(src)
    p = Protocol(chapter, {"n": same(1, "ours")}, [Claim("c", "s", "src")],
                 [Check("x", "x", Criterion("<=", 1.0, "ours"), claim="c")])
    path = chapter_record.write(p, {"x": 0.5}, {}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))
    rec = json.loads(path.read_text())
    rec["provenance"]["commit"] = "0" * 40
    path.write_text(json.dumps(rec))
    return p, src, tmp_path / "notebooks" / f"{chapter}.py"


def test_editing_one_code_cell_of_a_chapter_stales_its_record(tmp_path):
    p, src, py = _chapter_root(tmp_path)
    assert chapter_record.load(p, tmp_path).stale == []
    # prose, comments and layout are not code: the record stays current
    py.write_text(src.replace("# %% [markdown]\n", "# %% [markdown]\n# A new sentence of prose.\n", 1)
                  .replace("import ", "import  ", 1) + "\n# a comment\n")
    assert chapter_record.load(p, tmp_path).stale == []
    # one number in one code cell: stale, and the message says which file
    cells = src.split("# %%")
    i = next(k for k, c in enumerate(cells) if "=" in c and not c.startswith(" [markdown]") and "protocol" not in c
             and "parameters" not in c.splitlines()[0])
    cells[i] = cells[i] + "\n_edited = 1\n"
    py.write_text("# %%".join(cells))
    assert chapter_record.load(p, tmp_path).stale == ["the code cells of notebooks/10_coherence.py changed"]


def test_a_record_without_the_chapter_code_hash_is_stale(tmp_path):
    p, _, _ = _chapter_root(tmp_path)
    path = chapter_record.record_path(p.chapter, tmp_path)
    rec = json.loads(path.read_text())
    del rec["fingerprint"]["chapter_code"]
    path.write_text(json.dumps(rec))
    assert "no hash of the chapter's code cells" in "; ".join(chapter_record.load(p, tmp_path).stale)


def test_differences_respect_each_checks_tolerance():
    class C:
        def __init__(self, key, tolerance="round-off"):
            self.key, self.tolerance = key, tolerance

    proto = type("P", (), {"checks": [C("a"), C("b", "exact"), C("c", 0.05), C("d")], "validity": [C("e")]})()
    old = {"a": 1.0, "b": 3, "c": 10.0, "d": True, "e": "inf"}
    assert chapter_record.differences(proto, {"a": 1.0 + 1e-12, "b": 3, "c": 10.4, "d": True, "e": "inf"}, old) == []
    got = chapter_record.differences(proto, {"a": 1.0 + 1e-6, "b": 3.0000001, "c": 11.0, "d": False, "e": 1e300},
                                     old)
    assert [line.split(":")[0] for line in got] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ValueError, match="tolerance must be"):
        chapter_record.tolerance_of(C("z", -1))


def test_an_error_agrees_within_a_factor_of_ten_and_a_flipped_verdict_always_differs():
    from flatbias.claims import Check, Criterion

    def proto(*checks):
        return type("P", (), {"checks": list(checks), "validity": []})()

    err = Check("fd", "a finite-difference error", Criterion("<=", 1e-3, "ours"), claim="c", tolerance="error")
    p = proto(err)
    assert chapter_record.differences(p, {"fd": 1.05e-5}, {"fd": 1.06e-5}) == []  # round-off would flag this
    assert chapter_record.differences(p, {"fd": 9e-5}, {"fd": 1e-5}) == []
    assert chapter_record.differences(p, {"fd": 2e-12}, {"fd": 1e-14}) != []  # above the floor: a factor 200
    assert chapter_record.differences(p, {"fd": 1e-13}, {"fd": 0.0}) == []  # both at round-off level
    assert [line.split(":")[0] for line in chapter_record.differences(p, {"fd": 1.1e-4}, {"fd": 1e-5})] == ["fd"]
    assert chapter_record.differences(p, {"fd": -1e-5}, {"fd": 1e-5}) != []  # the sign is part of the value
    assert chapter_record.differences(proto(Check("x", "x", Criterion("<=", 1e-3, "ours"), claim="c")),
                                      {"x": 1e-3}, {"x": 1e-3 * (1 + 1e-6)}) != []  # round-off stays strict
    # within its tolerance, but one value passes and the other fails: always reported
    wide = Check("w", "a long run", Criterion("<=", 1.0, "ours"), claim="c", tolerance=0.5)
    got = chapter_record.differences(proto(wide), {"w": 0.9}, {"w": 1.1})
    assert len(got) == 1 and "now passes its criterion" in got[0] and "record fails it" in got[0]
    assert chapter_record.differences(proto(wide), {"w": 0.9}, {"w": 0.8}) == []
    assert chapter_record.differences(proto(err), {"fd": 9e-4}, {"fd": 2e-3})[0].startswith("fd: 0.0009 now passes")


def test_a_full_scale_run_never_writes_results(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv(chapter_record.OUTPUT_ENV, str(tmp_path / "build" / "records"))
    p = _protocol()
    chapter_record.write(p, {"x": 0.5}, {}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))  # committed: x = 0.5
    _, paper = chapter_record.conclude(p, "full", {"x": 2.0}, {}, time.perf_counter(), root=tmp_path)
    assert paper.path == tmp_path / "build" / "records" / "99_test.json"
    assert paper.changed == ["x: 2.0 now, 0.5 in the committed record (tolerance round-off)"]
    assert "differs from the committed record: x" in paper.provenance()
    assert json.loads(chapter_record.record_path("99_test", tmp_path).read_text())["metrics"]["checks"] == {"x": 0.5}


def test_records_cli_refuses_a_dirty_tree_and_names_the_paths(monkeypatch, capsys):
    monkeypatch.setattr(chapter_record.records, "dirty_paths", lambda root: ["lib/flatbias/stability.py"])
    with pytest.raises(chapter_record.DirtyTree, match="lib/flatbias/stability.py.*--allow-dirty"):
        chapter_record.require_clean()
    assert chapter_record.require_clean(allow_dirty=True)
    with pytest.raises(SystemExit) as exit_:
        chapter_record.main(["10", "--all"])
    assert exit_.value.code == 2 and "lib/flatbias/stability.py" in capsys.readouterr().err


def test_records_cli_skips_the_gpu_chapters_unless_named(monkeypatch, capsys):
    """``make records`` (no chapter named) says where chapter 17's records come from and does not run it; named,
    it is listed like any other chapter."""
    assert chapter_record.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "17_sam_vs_sgd_cifar10: paper scale needs CIFAR-10 and a GPU" in out and "01_trace_of_hessian:" in out
    assert chapter_record.main(["17", "--list"]) == 0
    assert capsys.readouterr().out.strip() == "17_sam_vs_sgd_cifar10: missing"


def _git(*args):
    from flatbias.records import repo_root

    return subprocess.run(["git", *args], cwd=repo_root(), capture_output=True, text=True)


@pytest.mark.parametrize("nb,protocol", CHAPTERS, ids=[nb.stem for nb, _ in CHAPTERS])
def test_record_names_a_clean_commit_whose_code_hashes_to_its_fingerprint(nb, protocol):
    """Check out (in git's object store) the commit a record names: its modules, the chapter's code cells and its
    PROTOCOL there hash to the record's fingerprint, and the commit is in this branch's history."""
    paper = chapter_record.load(protocol)
    if paper.record is None:
        pytest.skip(f"{nb.stem} has no record (test_record_is_present_and_current decides whether it must)")
    if _git("rev-parse", "--is-shallow-repository").stdout.strip() != "false":
        pytest.skip("a shallow clone (or no git): the records' commits are not here to check out")
    commit, fp = paper.record["provenance"]["commit"], paper.record["fingerprint"]
    assert len(commit) == 40 and _git("cat-file", "-e", f"{commit}^{{commit}}").returncode == 0, \
        f"{nb.stem}: the record names {commit!r}, not a commit of this repository"
    assert _git("merge-base", "--is-ancestor", commit, "HEAD").returncode == 0, f"{commit} is not in HEAD's history"
    at = lambda path: _git("show", f"{commit}:{path}").stdout  # noqa: E731
    for name, h in fp["modules"].items():
        path = "lib/" + name.replace(".", "/") + ".py"
        assert chapter_record.code_hash(at(path)) == h, f"{nb.stem}: {path} at {commit[:12]} is not what ran"
    assert chapter_record.chapter_code_hash(nb.stem, text=at(f"notebooks/{nb.stem}.py")) == fp["chapter_code"]
    then = chapter_record.read_protocol_text(at(f"notebooks/{nb.stem}.ipynb"), nb.name)
    assert then.fingerprint() == fp["protocol"], f"{nb.stem}: its PROTOCOL at {commit[:12]} is not the record's"


CHEAP = ("01_trace_of_hessian", "03_riemannian_hessian", "10_coherence")  # about 10 s each at full scale


@pytest.mark.parametrize("stem", CHEAP)
def test_cheap_chapters_rerun_at_full_scale_agree_with_their_records(stem, tmp_path):
    """The paper scale re-checked in CI: the cheapest chapters run at full scale on this machine and agree with the
    committed records within each check's declared tolerance (round-off unless the check states more)."""
    nb, protocol = next((nb, p) for nb, p in CHAPTERS if nb.stem == stem)
    chapter_record.execute_at_full(nb, tmp_path, timeout_s=900)
    fresh = chapter_record.load(protocol, folder=tmp_path)
    assert fresh.record is not None and fresh.changed == [], fresh.changed


def test_module_hash_ignores_docstrings_and_comments(tmp_path):
    a, b, c = tmp_path / "a.py", tmp_path / "b.py", tmp_path / "c.py"
    a.write_text('"""doc"""\ndef f(x):\n    """doc"""\n    return 2 * x  # note\n')
    b.write_text('"""other doc"""\ndef f(x):\n    return 2 * x\n')
    c.write_text('"""doc"""\ndef f(x):\n    return 3 * x\n')
    assert chapter_record.module_hash(a) == chapter_record.module_hash(b) != chapter_record.module_hash(c)


def test_write_rejects_undeclared_checks(tmp_path):
    with pytest.raises(ValueError, match="undeclared checks"):
        chapter_record.write(_protocol(), {"x": 0.5, "y": 1}, {}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))
    assert not chapter_record.record_path("99_test", tmp_path).exists()


def test_not_yet_run_without_record(tmp_path):
    paper = chapter_record.load(_protocol(), tmp_path)
    assert paper.record is None and paper.evaluation.status("c") == "not yet run"
    assert "not yet run" in verdict.verdict_line(paper)
    assert "no record" in paper.provenance()


def test_verdict_report_from_record(tmp_path):
    p = _protocol()
    chapter_record.write(p, {"x": 2.0}, {}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))
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


def test_conclude_writes_at_full_reads_at_smoke_and_stops_on_a_guard(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv(chapter_record.OUTPUT_ENV, str(COMMITTED(tmp_path)))
    p = _protocol()
    smoke, paper = chapter_record.conclude(p, "smoke", {"x": 0.5}, {}, time.perf_counter(), root=tmp_path)
    assert smoke.status("c") == "reproduced" and paper.record is None  # smoke never writes
    smoke, paper = chapter_record.conclude(p, "full", {"x": 2.0}, {"d": 1}, time.perf_counter(), root=tmp_path)
    assert paper.record is not None and paper.data == {"d": 1} and paper.evaluation.status("c") == "not reproduced"
    guarded = Protocol("99_test", {"n": same(1, "ours")}, [Claim("c", "s", "src")],
                       [Check("x", "x", Criterion("<=", 1.0, "paper"), claim="c"),
                        Check("g", "g", Criterion("<=", 0.0, "ours"), role="guard")])
    with pytest.raises(AssertionError, match="guard checks failed"):
        chapter_record.conclude(guarded, "full", {"x": 0.5, "g": 1.0}, {}, time.perf_counter(), root=tmp_path)
    assert chapter_record.load(p, tmp_path).evaluation.status("c") == "not reproduced"  # nothing overwritten


def test_record_refuses_code_that_changed_after_import(tmp_path, monkeypatch):
    import flatbias.twolayer  # noqa: F401 - a module the 'run' imported

    assert "flatbias.twolayer" in chapter_record.AT_IMPORT  # hashed when it was imported
    monkeypatch.setitem(chapter_record.AT_IMPORT, "flatbias.twolayer", "0" * 16)  # the file changed since
    with pytest.raises(RuntimeError, match="flatbias.twolayer changed on disk after this run imported it"):
        chapter_record.write(_protocol(), {"x": 0.5}, {}, 1.0, root=tmp_path, folder=tmp_path)
    assert not chapter_record.record_path("99_test", folder=tmp_path).exists()


def test_modules_imported_after_chapter_record_are_hashed_at_import():
    import importlib
    import sys

    sys.modules.pop("flatbias.landscape", None)
    chapter_record.AT_IMPORT.pop("flatbias.landscape", None)
    importlib.import_module("flatbias.landscape")
    assert chapter_record.AT_IMPORT["flatbias.landscape"] == chapter_record.current_module_hash("flatbias.landscape")


@pytest.mark.parametrize("nb,protocol", CHAPTERS, ids=[nb.stem for nb, _ in CHAPTERS])
def test_every_claim_has_a_kind_and_paper_claims_quote_the_paper(nb, protocol):
    """Issue 20's first rule: no claim in the old form (a paper claim without its verbatim quote and locator, or a
    reading that does not say what is ours)."""
    assert protocol.legacy_claims() == [], f"{nb.stem}: claims without kind/quote/ours_part"


@pytest.mark.parametrize("nb,protocol", CHAPTERS, ids=[nb.stem for nb, _ in CHAPTERS])
def test_each_validity_condition_alone_makes_its_claim_inconclusive(nb, protocol):
    """On the committed paper-scale record: flip one validity condition at a time and the claim it guards reads
    'inconclusive' (the scoreboard then names that condition); unflipped, the record's own status stands."""
    paper = chapter_record.load(protocol)
    if not protocol.validity:
        pytest.skip(f"{nb.stem} declares no validity condition")
    if paper.record is None:
        pytest.skip(f"{nb.stem} has no record")
    measured = paper.record["metrics"]["checks"]
    flipped = claims.assert_validity_decides(protocol, measured)
    assert set(flipped) == {v.key for v in protocol.validity}
    for v in protocol.validity:
        ev = protocol.evaluate(claims.flip_validity(protocol, measured, v.key), "full")
        assert v.key in ev.why_inconclusive(v.claim) or v.what in ev.why_inconclusive(v.claim)


def test_a_record_measuring_a_dropped_check_is_stale_but_still_renders(tmp_path):
    p = _protocol()
    path = chapter_record.write(p, {"x": 0.5}, {}, 1.0, root=tmp_path, folder=COMMITTED(tmp_path))
    rec = json.loads(path.read_text())
    rec["metrics"]["checks"]["old_check"] = 1.0  # declared by an earlier PROTOCOL, since removed
    path.write_text(json.dumps(rec))
    paper = chapter_record.load(p, tmp_path)
    assert "it measures checks the PROTOCOL no longer declares: old_check" in paper.stale
    assert paper.evaluation.status("c") == "reproduced"


def test_every_quote_is_verbatim_in_our_sources():
    """Each claim's quote appears word for word in the sources we hold (Paper 1's extracted text, Paper 2's review
    page with the rebuttal, SPEC.md), up to whitespace, quotation marks and elisions ('…', '[...]'). The sources
    are not in this repository: they sit beside a development clone (../shared/papers); elsewhere this is skipped."""
    import re

    from flatbias.records import repo_root

    folder = repo_root().parent / "shared" / "papers"
    if not folder.is_dir():
        pytest.skip(f"the papers' texts are not here ({folder})")
    text = " ".join(f.read_text(errors="replace") for f in sorted(folder.glob("*")) if f.suffix in (".txt", ".md"))

    def norm(t):
        t = t.replace("’", "'").replace("“", '"').replace("”", '"')
        return re.sub(r"\s+", " ", t).strip().lower()

    source, missing, quotes = norm(text), [], 0
    for nb, protocol in CHAPTERS:
        for c in protocol.claims:
            if c.quote:
                quotes += 1
                parts = [p.strip() for p in re.split(r"\.\.\.|…|\[[^\]]*\]", norm(c.quote)) if len(p.strip()) > 12]
                missing += [f"{protocol.claim_id(c.key)}: {p[:80]}" for p in parts if p not in source]
    assert quotes >= 10 and not missing, missing


def test_chapters_run_on_one_thread(tmp_path):
    """``make records`` runs each chapter's kernel on one thread, whatever the caller's environment: records do not
    depend on the core count, and chapters side by side (``--jobs``) do not spin threads against each other."""
    import nbformat

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "import os, json, pathlib\n"
        f"names = {list(chapter_record.THREAD_ENV)!r}\n"
        "pathlib.Path(os.environ['FLATBIAS_RECORD_DIR'], 'env.json').write_text("
        "json.dumps({k: os.environ.get(k) for k in names + ['BOOK_SCALE']}))")])
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    chapter_record.execute_at_full(path, tmp_path, timeout_s=120)
    seen = json.loads((tmp_path / "env.json").read_text())
    assert seen == {**{k: "1" for k in chapter_record.THREAD_ENV}, "BOOK_SCALE": "full"}


def test_longest_chapters_are_scheduled_first():
    ordered = chapter_record.longest_first(list(CHAPTERS))
    walls = [chapter_record.load(p).record for _, p in ordered]
    keys = [float("inf") if r is None else r["provenance"]["wall_time_s"] for r in walls]
    assert keys == sorted(keys, reverse=True) and len(ordered) == len(CHAPTERS)
