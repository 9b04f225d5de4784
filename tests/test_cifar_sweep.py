"""The CIFAR-10 table runner: plan, parallel processes, skip what is done, time limit, failures."""

import json

import pytest

from flatbias import cifar_sweep as sw
from flatbias import cifar_train as ct

TINY = ["--epochs", "1", "--width", "2", "--batch-size", "10", "--coherence-per-class", "1", "--subset", "20",
        "--test-subset", "10"]


def test_plan_names_every_row_of_the_table(tmp_path):
    runs = sw.plan("reduced", seeds=(0, 1), out=tmp_path)
    assert [r.name for r in runs[:4]] == ["sam_rho0.2_imagenet_seed0_30ep", "sam_rho0.1_imagenet_seed0_30ep",
                                         "sam_rho0.05_imagenet_seed0_30ep", "sgd_imagenet_seed0_30ep"]
    assert len(runs) == 8 and all(r.cfg.protocol == "reduced" for r in runs)
    assert {r.cfg.seed for r in runs} == {0, 1}
    assert all(r.cfg.protocol == "full" and r.cfg.final_coherence_per_class == (100,)
               for r in sw.plan("full", extra=["--coherence-1000"], out=tmp_path))
    with pytest.raises(ValueError, match="bad arguments"):
        sw.plan("full", extra=["--precision", "fp8"], out=tmp_path)


def test_sweep_runs_in_parallel_then_skips_what_is_done(tmp_path, tiny_cifar_folder, capsys):
    argv = ["--parallel", "2", "--out", str(tmp_path / "out"), "--", *TINY, "--data", str(tiny_cifar_folder)]
    assert sw.main(argv) == 0
    records = sorted(p.name for p in (tmp_path / "out").glob("*.json"))
    planned = sw.plan("full", out=tmp_path / "out", extra=[*TINY, "--data", str(tiny_cifar_folder)])
    assert records == sorted(f"{r.name}.json" for r in planned) and len(records) == 4
    for name in records:
        rec = json.loads((tmp_path / "out" / name).read_text())
        assert rec["settings"]["data"]["layout"] == "image-folder" and len(rec["metrics"]["history"]) == 1
    assert all(" complete" in line for line in capsys.readouterr().out.strip().splitlines())
    assert set(sw.sweep(planned, tmp_path / "out", progress=False).values()) == {"done before"}
    assert (tmp_path / "out" / "logs").is_dir()


def test_time_limit_and_failures_are_reported(tmp_path, tiny_cifar_folder):
    extra = [*TINY, "--data", str(tiny_cifar_folder)]
    runs = sw.plan("full", out=tmp_path, extra=extra, table=(("sgd", None),))
    status = sw.sweep(runs, tmp_path, time_limit=0.0, progress=False)
    assert status == {runs[0].name: "not started (time limit)"} and sw.exit_code(status) == ct.EXIT_INCOMPLETE
    bad = sw.plan("full", out=tmp_path, extra=[*extra, "--lr", "1e8"], table=(("sgd", None),))
    status = sw.sweep(bad, tmp_path, progress=False)
    assert status[bad[0].name].startswith("failed (exit 2") and sw.exit_code(status) == 1
    assert "the run stopped" in (tmp_path / "logs" / f"{bad[0].name}.log").read_text()
    assert sw.main(["--out", str(tmp_path), "--", "--precision", "fp8"]) == 2
