"""The GPU session script: its planner on given timings, one-line errors, and the whole chain on the CPU (tiny
protocol): environment, benchmark, plan, runs, records, inside the time budget."""

import json
import os
import subprocess
import sys

import pytest

from flatbias import gpu_session as gs


def _bench(fused=0.03, metric=1.0, rank=0.6, proxy=0.2, big=5.0, ready=10.0):
    return {"precision": "tf32", "fused": {"optimizer": "fused", "step_s": fused, "ready_s": ready},
            "metrics": {"metric_s": metric, "rank_s": rank, "proxy_s": proxy, "big_proxy_s": big}}


def test_the_plan_is_one_fused_program_per_seed_full_protocol_for_as_many_seeds_as_fit():
    protos, bench = gs.protocols(tiny=False), _bench()
    # one seed's fused program: start + epochs x (391 fused steps x 1.15 + 4 runs' test accuracy (0.2 s)) +
    # each measured epoch: 4 runs x (rank + small proxy, 0.8 s) [+ 4 runs x the big proxy, 5 s]
    step_epoch = 391 * 0.03 * gs.EPOCH_OVER_STEPS
    assert gs.run_time(bench, protos["reduced"], "none") == pytest.approx(10 + 30 * (step_epoch + 4 * 0.2 + 4 * 0.8))
    assert gs.run_time(bench, protos["full"], "every", 10) == pytest.approx(
        10 + 200 * (step_epoch + 4 * 0.2) + 20 * 4 * (0.8 + 5.0))
    assert gs.run_time(bench, protos["reduced"], "last", 20) == pytest.approx(  # epochs 20 and 30 measured
        10 + 30 * (step_epoch + 4 * 0.2) + 2 * 4 * 0.8 + 4 * 5.0)
    roomy = gs.make_plan(bench, protos, (42, 43, 44), 1e5, "every")
    assert (roomy.protocol, roomy.seeds, roomy.big_proxy, roomy.metrics_every) == ("full", (42, 43, 44), "every", 1)
    assert roomy.trainer == "fused_train" and roomy.runs == 12 and roomy.safety == gs.SAFETY == 1.5
    two = gs.make_plan(bench, protos, (42, 43, 44), 2.2 * 1.5 * roomy.per_seed_s, "every")
    assert two.protocol == "full" and two.seeds == (42, 43)  # as many seeds as fit, the authors' first
    # less time: the full protocol with sparser metrics before the reduced protocol
    sparse = gs.make_plan(bench, protos, (42, 43, 44), 1.5 * gs.run_time(bench, protos["full"], "last", 10) + 1)
    assert (sparse.protocol, sparse.seeds, sparse.metrics_every, sparse.big_proxy) == ("full", (42,), 10, "last")
    assert sparse.estimate_s * 1.5 <= sparse.time_left_s
    lent = gs.make_plan(_bench(fused=0.02), protos, (42, 43, 44), 560, "every")  # a lent GPU's command
    assert (lent.protocol, lent.seeds, lent.metrics_every, lent.big_proxy) == ("reduced", (42,), 5, "last")
    assert lent.estimate_s * 1.5 <= 560
    text = gs.describe(lent, protos, "tf32", {"fused_speedup": {"ratio": 2.5}})
    assert "reduced protocol" in text and "one fused program per seed" in text and "x2.50" in text
    nothing = gs.make_plan(bench, protos, (42,), 100, "every")
    assert nothing.protocol is None and nothing.runs == 0 and "no run fits" in gs.describe(nothing, protos, "tf32")
    unmeasured = gs.make_plan({**bench, "metrics": None}, protos, (42,), 1e5)
    assert unmeasured.protocol is None and "did not time" in gs.describe(unmeasured, protos, "tf32")
    assert gs.make_plan({**bench, "fused": {"error": "stopped"}}, protos, (42,), 1e5).protocol is None


def test_the_margin_covers_the_lent_h200s_shortfall():
    """The calibration the plan states: the H200's real epochs over its benchmark, and the session that ran out of
    time with a margin of 1.25 (its runs needed more than 1.26 x the estimate)."""
    h = gs.H200
    assert gs.EPOCH_OVER_STEPS == pytest.approx(h["sam_epoch_s_in_record"] / h["sam_epoch_s_benchmarked"], abs=0.01)
    assert gs.SAFETY > 1.26
    assert 391 * h["sgd_step_s"] == pytest.approx(2.73, abs=0.01)  # the 2.73 s an SGD epoch


def test_a_seeds_runs_are_the_tables_and_their_status_comes_from_disk(tmp_path):
    protos = gs.protocols(tiny=True)
    plan = gs.Plan("reduced", (43,), "every", metrics_every=1)
    cfgs = gs.seed_configs(plan, protos["reduced"], 43, "tf32")
    assert [(c.optimizer, c.rho if c.optimizer == "sam" else None, c.seed) for c in cfgs] == [
        (o, r, 43) for o, r in gs.TABLE_MIX]
    assert {(c.epochs, c.width, c.subset, c.coherence_per_class) for c in cfgs} == {(2, 4, 100, (1, 2))}
    from conftest import tiny_cifar

    # out of time after the first epoch: every run checkpointed, its partial record on disk, and so its status
    status = gs.run_seed(cfgs, tiny_cifar(20), tmp_path, tmp_path / "work", 0.0, gs.torch.device("cpu"))
    assert status == {c.name: "stopped at the time limit" for c in cfgs}
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(f"{c.name}.partial.json" for c in cfgs)
    # 2 images a class where the protocol takes 10: the program fails before training, and every run says why
    status = gs.run_seed(cfgs, tiny_cifar(2), tmp_path / "b", tmp_path / "work", 600.0, gs.torch.device("cpu"))
    assert all(s.startswith("failed (ValueError: fewer than 10 examples") for s in status.values()), status


@pytest.mark.parametrize("argv", [["--time-budget", "60"], ["--out", "x", "--time-budget", "-1"],
                                  ["--out", "x", "--time-budget", "60", "--precision", "fp8"],
                                  ["--out", "x", "--time-budget", "60", "--device", "cuda:0"],
                                  ["--out", "x", "--time-budget", "sixty"]])
def test_bad_arguments_print_one_line(argv, capsys):
    if "cuda:0" in argv and gs.torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    assert gs.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"{gs.PROG}: error: ") and err.count("\n") == 1, err


def test_missing_data_is_one_line(tmp_path, capsys):
    assert gs.main(["--out", str(tmp_path / "o"), "--time-budget", "30", "--data", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err
    assert "CIFAR-10 not found" in err and err.count("\n") == 1


def test_session_end_to_end_on_the_cpu_within_its_budget(tmp_path, tiny_cifar_folder):
    """The command a bare GPU machine would run, on the CPU with the tiny protocol: 50 s for everything.

    Nothing here depends on the machine's load. The budget is the program's own: it counts from the command's
    start (``gpu_session.STARTED``, before torch is imported) and every phase ends within it by that clock, which
    the session record reports. The wall time outside that clock (the interpreter's start and exit) is not bounded
    here: on a loaded machine it is seconds. Each run's status is checked against the records on disk."""
    out, budget = tmp_path / "out", 50
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "flatbias.gpu_session", "--out", str(out), "--time-budget",
                           str(budget), "--data", str(tiny_cifar_folder), "--bench-seconds", "20",
                           "--work", str(tmp_path / "work")], capture_output=True, text=True, env=env, timeout=600)
    text = proc.stdout
    assert "environment: torch" in text and "micro-benchmark" in text and "PLAN: " in text, (text, proc.stderr)
    assert text.index("PLAN: ") < text.index("done in")  # the plan is printed before anything runs
    session = json.loads((out / "gpu_session.json").read_text())
    bench = json.loads((out / "gpu_benchmark.json").read_text())
    assert session["metrics"]["phases"]["total_s"] <= budget, session["metrics"]["phases"]
    assert bench["name"] == "cifar10_gpu_benchmark" and bench["settings"]["environment"]["data"]["n_train"] == 20
    assert bench["settings"]["environment"]["data"]["source_kind"] == "PNG image folder"
    assert session["metrics"]["exit_code"] == proc.returncode
    status, plan = session["metrics"]["status"], session["metrics"]["plan"]
    assert len(status) == 4 * len(plan["seeds"]) and plan["trainer"] == "fused_train"
    assert "one fused program per seed" in text or plan["protocol"] is None
    assert "step_s" in bench["metrics"]["benchmark"]["fused"] or plan["protocol"] is None
    records = sorted(p.name for p in out.iterdir())
    done = sorted(f"{n}.json" for n, s in status.items() if s == "complete")
    stopped = sorted(f"{n}.partial.json" for n, s in status.items() if s == "stopped at the time limit")
    # small JSON only, nothing else; a run stopped cleanly at the limit brings its history back; the statuses are
    # exactly what the disk says (complete iff the final record exists, stopped iff only the partial one does)
    assert records == sorted(["gpu_benchmark.json", "gpu_session.json", *done, *stopped]), (records, status)
    for name in done:
        rec = json.loads((out / name).read_text())
        assert rec["settings"]["numerics"]["precision"] == "tf32" and rec["settings"]["seed"] in plan["seeds"]
    if plan["protocol"] is not None:  # at least one seed of four runs was planned: each finished or stopped in time
        assert proc.returncode in (0, 3) and status
        assert all(s == "complete" or s.startswith(("stopped at the time limit", "not started", "cancelled at"))
                   for s in status.values()), status
        assert (proc.returncode == 0) == (set(status.values()) == {"complete"})
    else:  # a machine so loaded that the benchmark did not finish in its share: a benchmark record only
        assert proc.returncode == 3 and not status
