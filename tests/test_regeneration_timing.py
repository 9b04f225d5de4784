import runpy
from pathlib import Path

TIMING = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "regeneration_timing.py"))


def test_parse_reads_chapter_times_and_the_elapsed_line():
    log = ("02_stationary_points: 81 s\n 19_linearization: 154 s\nchapter wall time\n"
           "02_stationary_points                     81 s   agrees\nsum 235 s\nelapsed (--jobs 2)    120 s\n")
    assert TIMING["parse"](log) == ({"02_stationary_points": 81, "19_linearization": 154}, 120)
    assert TIMING["parse"]("01_trace_of_hessian: 12 s\n")[1] is None  # a run stopped before its end


def test_main_writes_one_record_with_every_named_run(tmp_path):
    import json

    logs = []
    for i, text in enumerate(["01_trace_of_hessian: 12 s\nelapsed (--jobs 1)   13 s\n",
                              "01_trace_of_hessian: 10 s\n"]):
        path = tmp_path / f"{i}.log"
        path.write_text(text)
        logs.append(str(path))
    out = tmp_path / "timing.json"
    TIMING["main"](["--run", "before_1_job", "abc", logs[0], "--run", "after_2_jobs", "def", logs[1],
                    "--stopped-at", "1800", "--record", str(out)])
    rec = json.loads(out.read_text())
    assert rec["settings"]["commits"] == {"before_1_job": "abc", "after_2_jobs": "def"}
    assert rec["metrics"]["totals"]["before_1_job"] == {"sum_of_chapters_s": 12, "elapsed_s": 13}
    assert rec["metrics"]["totals"]["after_2_jobs"] == {"sum_of_chapters_s": 10, "elapsed_s": None,
                                                        "stopped_at_s": 1800}


def test_keep_carries_a_run_of_an_earlier_record(tmp_path):
    import json

    import pytest

    log = tmp_path / "a.log"
    log.write_text("01_trace_of_hessian: 9 s\nelapsed (--jobs 2)   10 s\n")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    TIMING["main"](["--run", "after_2_jobs", "abc", str(log), "--conditions", "idle", "--record", str(first)])
    TIMING["main"](["--keep", str(first), "after_2_jobs", "earlier_2_jobs", "--run", "after_2_jobs", "def",
                    str(log), "--record", str(second)])
    rec = json.loads(second.read_text())
    assert rec["settings"]["commits"] == {"earlier_2_jobs": "abc", "after_2_jobs": "def"}
    assert rec["metrics"]["totals"]["earlier_2_jobs"] == {"sum_of_chapters_s": 9, "elapsed_s": 10}
    assert rec["settings"]["kept_runs"]["earlier_2_jobs"]["conditions"] == "idle"
    third = tmp_path / "third.json"  # kept again: the conditions it was measured under, not the new record's
    TIMING["main"](["--keep", str(second), "earlier_2_jobs", "earlier_2_jobs", "--run", "later", "ghi", str(log),
                    "--conditions", "loaded", "--record", str(third)])
    rec3 = json.loads(third.read_text())
    assert rec3["settings"]["kept_runs"]["earlier_2_jobs"]["conditions"] == "idle"
    assert rec3["settings"]["kept_runs"]["earlier_2_jobs"]["from"] == "after_2_jobs"
    assert rec3["settings"]["commits"]["earlier_2_jobs"] == "abc"
    with pytest.raises(SystemExit, match="no run 'before_1_job'"):
        TIMING["main"](["--keep", str(first), "before_1_job", "x", "--run", "a", "b", str(log),
                        "--record", str(tmp_path / "fourth.json")])


def test_each_run_names_its_machine_and_a_kept_run_keeps_its_own(tmp_path):
    import json

    log = tmp_path / "a.log"
    log.write_text("01_trace_of_hessian: 9 s\nelapsed (--jobs 2)   10 s\n")
    first, second = tmp_path / "first.json", tmp_path / "second.json"
    TIMING["main"](["--run", "a", "abc", str(log), "--hardware", "AMD", "--record", str(first)])
    TIMING["main"](["--keep", str(first), "a", "amd_run", "--run", "b", "def", str(log), "--hardware", "Intel",
                    "--record", str(second)])
    rec = json.loads(second.read_text())
    assert rec["settings"]["hardware"] == {"amd_run": "AMD", "b": "Intel"}
    old = json.loads(first.read_text())  # a record from before runs named their machine: one string for all
    old["settings"]["hardware"] = "AMD EPYC"
    first.write_text(json.dumps(old))
    assert TIMING["kept_run"](str(first), "a")["hardware"] == "AMD EPYC"


def test_the_reproducing_page_quotes_the_records_times():
    """The times the Reproducing page and the README give are the committed record's (no stale hand-typed number)."""
    import json

    root = Path(__file__).resolve().parents[1]
    totals = json.loads((root / "results/regeneration/chapter_records_timing.json").read_text())["metrics"]["totals"]
    two, one = totals["after_2_jobs"]["elapsed_s"], totals["after_1_job"]["elapsed_s"]
    page = " ".join((root / "book/reproduce.md").read_text().split())
    assert f"took {two} s with `JOBS=2` and {one} s with one job" in page
    readme = " ".join((root / "README.md").read_text().split())
    assert f"about {round(two / 60)} minutes with `make records JOBS=2` and about {round(one / 60)} with one job" in readme
    xtwo, xone = totals["xeon_2_jobs"]["elapsed_s"], totals["xeon_1_job"]["elapsed_s"]
    assert f"Intel Xeon with AVX-512 it took {xtwo} s with `JOBS=2` and {xone} s with one job" in page
    assert f"Intel Xeon with AVX-512 about {round(xtwo / 60)} and {round(xone / 60)} (" in readme
