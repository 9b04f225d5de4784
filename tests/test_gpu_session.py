"""The GPU session script: its planner on given timings, one-line errors, and the whole chain on the CPU (tiny
protocol): environment, benchmark, plan, runs, records, inside the time budget."""

import json
import os
import subprocess
import sys

import pytest

from flatbias import gpu_session as gs


def _bench(sam1=0.01, sam4=0.02, metric=1.0, big=5.0, compile_ready=70.0):
    runs = [{"optimizer": o, "step_s": sam4 if o == "sam" else sam4 / 2} for o in ("sam", "sam", "sam", "sgd")]
    return {"precision": "tf32", "metrics": {"metric_s": metric, "big_proxy_s": big},
            "one_process": [{"optimizer": "sam", "precision": "tf32", "compile": "none", "step_s": sam1},
                            {"optimizer": "sgd", "precision": "tf32", "compile": "none", "step_s": sam1 / 2}],
            "four_processes": {"runs": runs, "ready_s": 10.0},
            "compile": [{"compile": "reduce-overhead", "step_s": sam1 / 2, "ready_s": compile_ready},
                        {"compile": "default", "error": "not measured"}]}


def test_the_plan_takes_the_full_protocol_for_as_many_seeds_as_fit_else_the_reduced_one():
    protos, bench, modes = gs.protocols(tiny=False), _bench(), ("default", "reduce-overhead")
    # per seed, 4 runs at once, SAM decides: ready + epochs x (391 steps x 0.02 s + 1 s of metrics x 2 (shared))
    assert gs.run_time(bench, protos["reduced"], "none") == pytest.approx(10 + 30 * (391 * 0.02 + 2.0))
    roomy = gs.make_plan(bench, protos, (42, 43, 44), 1e5, "every", modes)
    assert (roomy.protocol, roomy.seeds, roomy.big_proxy, roomy.compile) == ("full", (42, 43, 44), "every",
                                                                             "reduce-overhead")
    two = gs.make_plan(bench, protos, (42, 43, 44), 2.2 * 1.25 * roomy.per_seed_s, "every", modes)
    assert two.protocol == "full" and two.seeds == (42, 43)  # as many seeds as fit, the authors' first
    lent = gs.make_plan(bench, protos, (42, 43, 44), 560, "every", modes)  # a lent GPU's command
    assert (lent.protocol, lent.seeds, lent.big_proxy) == ("reduced", (42,), "last")
    assert lent.compile == "reduce-overhead"  # 60 s of compilation pay for themselves over 30 epochs
    assert lent.estimate_s * 1.25 <= 560 and "reduced protocol" in gs.describe(lent, protos, "tf32")
    slow_compile = gs.make_plan(_bench(compile_ready=1e4), protos, (42,), 560, "every", modes)
    assert slow_compile.protocol == "reduced" and slow_compile.compile is None
    nothing = gs.make_plan(bench, protos, (42,), 100, "every", modes)
    assert nothing.protocol is None and nothing.runs == 0 and "no run fits" in gs.describe(nothing, protos, "tf32")
    unmeasured = gs.make_plan({**bench, "metrics": None}, protos, (42,), 1e5)
    assert unmeasured.protocol is None and "did not time" in gs.describe(unmeasured, protos, "tf32")


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
    assert len(status) == 4 * len(plan["seeds"])
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


def test_compiled_step_check_compares_with_eager():
    """The guard before a compiled run is planned: eager against eager agrees exactly."""
    err, where = gs.compiled_step_error(gs.ct.TrainConfig(width=2, precision="fp32"), gs.torch.device("cpu"), n=20)
    assert err == 0.0 and where
