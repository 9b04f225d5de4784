import json
import os

import numpy as np
import pytest
import torch

from flatbias import records, repro


def test_seed_everything_reproducible():
    g1 = repro.seed_everything(7)
    a = torch.randn(5, generator=g1), np.random.rand(3), torch.randn(2)
    g2 = repro.seed_everything(7)
    b = torch.randn(5, generator=g2), np.random.rand(3), torch.randn(2)
    for u, v in zip(a, b):
        assert np.array_equal(np.asarray(u), np.asarray(v))
    with pytest.raises(ValueError, match="non-negative int"):
        repro.seed_everything(-1)


def test_device_choice():
    assert repro.device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert repro.device().type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            repro.device("cuda")


def test_record_roundtrip(tmp_path):
    path = records.write_record(tmp_path / "sub" / "r.json", "demo", "smoke",
                                settings={"n": 3, "arr": np.arange(3)},
                                metrics={"err": torch.tensor(1.5), "nan": float("nan"), "inf": float("inf")},
                                wall_time_s=1.23456)
    rec = records.read_record(path)
    assert rec["name"] == "demo" and rec["settings"]["arr"] == [0, 1, 2]
    assert rec["metrics"] == {"err": 1.5, "nan": None, "inf": "inf"}
    prov = rec["provenance"]
    for key in ("commit", "date_utc", "hardware", "torch", "scale", "wall_time_s"):
        assert key in prov
    assert prov["wall_time_s"] == 1.235 and prov["scale"] == "smoke" and prov["hardware"]["cpu"]
    assert records.find_records(tmp_path) == [path]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file, not mkstemp's 0600


def test_atomic_write_leaves_nothing_half_written(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    target.write_text('{"old": true}')

    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        records.atomic_write_text(target, "new content")
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]  # temporary file removed


def test_read_record_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the experiment"):
        records.read_record(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        records.read_record(tmp_path / "bad.json")
    (tmp_path / "partial.json").write_text('{"name": "x"}')
    with pytest.raises(ValueError, match="missing scale"):
        records.read_record(tmp_path / "partial.json")


def test_git_commit_and_stopwatch():
    assert records.git_commit() != ""
    with records.stopwatch() as t:
        sum(range(1000))
    assert 0 <= t["s"] < 5


def test_git_commit_marks_untracked_package_code_dirty(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q")
    git("-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "init")
    (tmp_path / "lib").mkdir()
    (tmp_path / "notes.txt").write_text("untracked outside lib: not code that ran")
    assert not records.git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "lib" / "new_module.py").write_text("x = 1")
    assert records.git_commit(tmp_path).endswith("+dirty")
    assert records.dirty_paths(tmp_path) == ["lib/new_module.py"]


def test_records_a_run_writes_under_results_are_not_dirt(tmp_path):
    import subprocess

    def git(*args):
        subprocess.run(["git", "-c", "user.email=a@b", "-c", "user.name=a", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    for f in ("results/chapters/01.json", "notebooks/01.py"):
        (tmp_path / f).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / f).write_text("{}")
    git("add", ".")
    git("commit", "-q", "-m", "init")
    (tmp_path / "results/chapters/01.json").write_text('{"new": 1}')  # the records run's own output
    (tmp_path / "results/chapters/02.json").write_text("{}")
    assert records.dirty_paths(tmp_path) == [] and not records.git_commit(tmp_path).endswith("+dirty")
    (tmp_path / "notebooks/01.py").write_text("x = 2")  # a chapter's code: dirt
    assert records.dirty_paths(tmp_path) == ["notebooks/01.py"] and records.git_commit(tmp_path).endswith("+dirty")


def test_git_commit_outside_git_uses_the_declared_commit(tmp_path, monkeypatch):
    monkeypatch.delenv("FLATBIAS_COMMIT", raising=False)
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert records.git_commit(tmp_path) == "unknown"
    monkeypatch.setenv("FLATBIAS_COMMIT", "abc123+dirty")
    assert records.git_commit(tmp_path) == "abc123+dirty (declared)"


def test_is_dirty_reads_the_mark_git_commit_writes():
    assert records.is_dirty("f9ba255780" + records.DIRTY) and not records.is_dirty("f9ba255780")
    assert not records.is_dirty("abc (declared)") and not records.is_dirty("unknown")
