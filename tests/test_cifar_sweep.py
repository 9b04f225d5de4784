"""The CIFAR-10 table on submitit: plan, local jobs in parallel, skip what is done, resume, failures, time limit,
SLURM without a cluster (submitit's own mock of sbatch/sacct), one-line errors."""

import json
import re
import signal
from datetime import datetime

import pytest

from flatbias import cifar_sweep as sw
from flatbias import cifar_train as ct

TINY = ["--epochs", "1", "--width", "2", "--batch-size", "10", "--coherence-per-class", "1", "--subset", "20",
        "--test-subset", "10"]
TWO = [*TINY, "--epochs", "2", "--milestones", "1"]
STRIP = lambda h: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in h]  # noqa: E731


def _record(folder, name):
    return json.loads((folder / f"{name}.json").read_text())


def test_plan_names_every_row_of_the_table(tmp_path):
    runs = sw.plan("reduced", seeds=(42, 43), out=tmp_path)
    assert [r.name for r in runs[:4]] == ["sam_rho0.2_imagenet_seed42_30ep", "sam_rho0.1_imagenet_seed42_30ep",
                                         "sam_rho0.05_imagenet_seed42_30ep", "sgd_imagenet_seed42_30ep"]
    assert len(runs) == 8 and all(r.cfg.protocol == "reduced" for r in runs)
    assert {r.cfg.seed for r in runs} == {42, 43} and sw.SEEDS == (42,)  # the authors' seed first
    assert all(r.cfg.protocol == "full" and r.cfg.final_coherence_per_class == (100,)
               for r in sw.plan("full", extra=["--coherence-1000"], out=tmp_path))
    with pytest.raises(ValueError, match="bad arguments"):
        sw.plan("full", extra=["--precision", "fp8"], out=tmp_path)


def _interval(log):
    """(start, end) of a job from submitit's log lines (their timestamps)."""
    stamps = re.findall(r"submitit \w+ \((\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\)", log.read_text())
    return [datetime.strptime(s, "%Y-%m-%d %H:%M:%S,%f") for s in (stamps[0], stamps[-1])]


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    """The four runs of the table (tiny, 2 epochs), swept once on the local executor, 4 at a time."""
    from PIL import Image

    from conftest import tiny_cifar
    from flatbias import cifar

    tmp = tmp_path_factory.mktemp("sweep")
    data = tiny_cifar()  # as the tiny_cifar_folder fixture, for the whole module
    for split, xs, ys in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            f = tmp / "imgs" / split / cifar.CLASSES[y] / f"{i:04d}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(f)
    extra = [*TWO, "--data", str(tmp / "imgs")]
    out = tmp / "out"
    rc = sw.main(["--parallel", "4", "--out", str(out), "--", *extra])
    return out, extra, rc


def test_local_jobs_run_in_parallel_then_are_skipped(swept):
    out, extra, rc = swept
    assert rc == 0
    planned = sw.plan("full", out=out, extra=extra)
    assert sorted(p.name for p in out.glob("*.json")) == sorted(f"{r.name}.json" for r in planned)
    for r in planned:
        rec = _record(out, r.name)
        assert rec["settings"]["data"]["layout"] == "image-folder" and len(rec["metrics"]["history"]) == 2
        assert rec["settings"]["seed"] == 42 and rec["settings"]["numerics"]["precision"] == "tf32"
    jobs = sw.submissions(out / "logs")
    assert set(jobs) == {r.name for r in planned} and all(j["launcher"] == "local" for j in jobs.values())
    spans = [_interval(sw.log_path(out / "logs", r.name)) for r in planned]  # job ids and logs next to the records
    assert any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(spans) for b in spans[i + 1:])  # overlapping jobs
    n_lines = len((out / "logs" / "jobs.jsonl").read_text().splitlines())
    assert set(sw.sweep(planned, out, progress=False).values()) == {"done before"}
    assert len((out / "logs" / "jobs.jsonl").read_text().splitlines()) == n_lines  # nothing submitted again


def test_interrupted_run_resumes_to_identical_metrics(swept, tmp_path):
    ref_out, extra, _ = swept
    one = (("sam", 0.1),)
    # interrupted after its first epoch (the run's own time limit: checkpoint and exit 3) ...
    cut = sw.plan("full", out=tmp_path, extra=[*extra, "--checkpoint-every", "5", "--time-limit", "0"], table=one)
    status = sw.sweep(cut, tmp_path, progress=False)
    assert status == {cut[0].name: "stopped at the time limit"} and sw.exit_code(status) == ct.EXIT_INCOMPLETE
    assert not (tmp_path / f"{cut[0].name}.json").exists() and (tmp_path / "checkpoints").is_dir()
    # ... and the same sweep again goes on from the checkpoint, to the very same numbers as the uninterrupted run
    again = sw.plan("full", out=tmp_path, extra=extra, table=one)
    assert sw.sweep(again, tmp_path, progress=False) == {again[0].name: "complete"}
    got, want = _record(tmp_path, again[0].name), _record(ref_out, again[0].name)
    assert STRIP(got["metrics"]["history"]) == STRIP(want["metrics"]["history"])
    logs = [f.read_text() for f in (tmp_path / "logs" / cut[0].name).glob("*_log.out")]
    assert len(logs) == 2 and any("stopped at epoch 1/2" in text for text in logs)  # both jobs' logs kept


def test_a_failed_run_stops_nothing_else_and_time_limits(tmp_path, tiny_cifar_folder):
    extra = [*TINY, "--data", str(tiny_cifar_folder)]
    good = sw.plan("full", out=tmp_path, extra=extra, table=(("sgd", None),))
    bad = sw.plan("full", out=tmp_path, extra=[*extra, "--lr", "1e8"], table=(("sam", 0.1),))  # diverges
    status = sw.sweep(bad + good, tmp_path, parallel=2, time_limit=600, progress=False)
    assert status[good[0].name] == "complete" and status[bad[0].name].startswith("failed (exit 2; see ")
    assert sw.exit_code(status) == 1
    assert "the run stopped" in sw.log_path(tmp_path / "logs", bad[0].name).read_text()
    command = sw.log_path(tmp_path / "logs", good[0].name).read_text().split("$ ")[1].splitlines()[0]
    limit = float(command.split("--time-limit ")[1].split()[0])
    assert 500 < limit < 600  # the sweep's time limit, less what had passed when the run started
    late = sw.plan("full", out=tmp_path / "late", extra=extra, table=(("sgd", None),))
    status = sw.sweep(late, tmp_path / "late", time_limit=0.0, progress=False)
    assert status == {late[0].name: "not started (time limit)"} and sw.exit_code(status) == ct.EXIT_INCOMPLETE


def test_train_run_passes_the_time_left_and_checkpoint_resubmits_it():
    run = sw.TrainRun(["--epochs", "2"], deadline=1e12, time_limit=50.0, threads=1)
    again = run.checkpoint()
    assert isinstance(again, sw.submitit.helpers.DelayedSubmission) and isinstance(again.function, sw.TrainRun)
    assert again.function is not run and vars(again.function) == vars(run) and again.args == ()
    assert sw.TrainRun(["--epochs", "2"], deadline=0.0)() == ct.EXIT_INCOMPLETE  # past the deadline: no start


def test_local_gpus_follow_cuda_visible_devices(monkeypatch, tmp_path):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,3")
    assert sw.local_gpus() == [2, 3]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert sw.local_gpus() == []
    ex = sw.local_executor(tmp_path / "a", "r", gpu=3)
    assert ex.parameters["gpus_per_node"] == 1 and ex.parameters["visible_gpus"] == (3,)
    ex = sw.local_executor(tmp_path / "b", "r", gpu="GPU-8d1e")
    assert ex.parameters["setup"] == ["export CUDA_VISIBLE_DEVICES=GPU-8d1e"]
    assert sw.local_executor(tmp_path / "c", "r").parameters["gpus_per_node"] == 0


@pytest.fixture
def mocked_slurm(monkeypatch):
    """submitit's own stand-in for sbatch/sacct/scancel (job ids 12, 13, ...); signal handlers restored after."""
    from submitit.core.test_core import MockedSubprocess
    from submitit.slurm import slurm

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGCONT, signal.SIGUSR2)}
    monkeypatch.setenv("SUBMITIT_FOLDER", "")
    try:
        yield MockedSubprocess(known_cmds=["srun"])  # its .context() replaces subprocess calls: enter it around them
    finally:
        slurm.SlurmJob.watcher.clear()
        for s, h in saved.items():
            signal.signal(s, h)


def test_slurm_jobs_sbatch_requeue_and_follow_up(tmp_path, tiny_cifar_folder, mocked_slurm):
    from unittest.mock import patch

    from submitit.core import job_environment, submission, utils
    from submitit.slurm.slurm import SlurmJob, SlurmJobEnvironment

    out = tmp_path / "out"
    argv = ["--launcher", "slurm", "--slurm-partition", "gpu", "--slurm-time", "60", "--slurm-setup",
            "source .venv/bin/activate", "--slurm-account", "lab", "--no-wait", "--out", str(out), "--",
            *TINY, "--data", str(tiny_cifar_folder)]
    with mocked_slurm.context():
        assert sw.main(argv) == ct.EXIT_INCOMPLETE  # submitted, not waited for
    jobs = sw.submissions(out / "logs")
    assert len(jobs) == 4 and {j["launcher"] for j in jobs.values()} == {"slurm"}
    name, entry = next((n, e) for n, e in jobs.items() if n.startswith("sgd"))
    job = SlurmJob(entry["folder"], entry["job_id"])
    sbatch = job.paths.submission_file.read_text()
    for line in ("--partition=gpu", "--time=60", "--gpus-per-node=1", "--cpus-per-task=8", "--account=lab",
                 f"--job-name={name}", "--signal=USR2@120", "--open-mode=append"):
        assert f"#SBATCH {line}\n" in sbatch, line
    assert "\nsource .venv/bin/activate\n" in sbatch and "submitit.core._submit" in sbatch
    # preempted before it got far: submitit calls TrainRun.checkpoint and requeues the job
    delayed = utils.DelayedSubmission.load(job.paths.submitted_pickle)
    with mocked_slurm.job_context(job.job_id), patch.object(SlurmJobEnvironment, "_requeue") as requeue:
        handler = job_environment.SignalHandler(SlurmJobEnvironment(), job.paths, delayed)
        with pytest.raises(SystemExit):
            handler.checkpoint_and_try_requeue(signal.SIGUSR2)
    requeue.assert_called_once()
    resubmitted = utils.DelayedSubmission.load(job.paths.submitted_pickle).function
    assert isinstance(resubmitted, sw.TrainRun) and resubmitted.argv == delayed.function.argv
    # the requeued job runs (here, in this process) and writes the record
    with mocked_slurm.job_context(job.job_id):
        submission.process_job(job.paths.folder)
    assert (out / f"{name}.json").is_file()
    # a second call: the finished run is skipped, the three still "RUNNING" are followed, not submitted again
    with mocked_slurm.context():
        assert job.result() == 0
        n_submitted = mocked_slurm.job_count
        assert sw.main(argv) == ct.EXIT_INCOMPLETE and mocked_slurm.job_count == n_submitted


def test_bad_arguments_print_one_line(capsys, tmp_path, tiny_cifar_folder):
    for argv in (["--parallel", "0"], ["--launcher", "pbs"], ["--seeds", "x"], ["--no-wait"],
                 ["--out", str(tmp_path), "--", "--precision", "fp8"],
                 ["--launcher", "slurm", "--out", str(tmp_path), "--", "--data", str(tiny_cifar_folder)]):
        assert sw.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith(f"{sw.PROG}: error: ") and err.count("\n") == 1, (argv, err)


class _Job:
    """A local job that the sweep never sees finish (its controller is slow to notice, as under load); at submit
    it leaves on disk what ``leaves`` says: the final record, the partial one, or nothing."""

    def __init__(self, out, name, leaves):
        self.job_id, self.cancelled = f"fake-{name}", False
        self.paths = type("P", (), {"folder": out / "logs" / name, "stdout": out / "logs" / name / "log.out"})
        if leaves:
            (out / f"{name}{leaves}").write_text("{}")

    def done(self):
        return False

    def cancel(self, check=False):
        self.cancelled = True


def test_status_at_the_limit_comes_from_the_records_on_disk(tmp_path, tiny_cifar_folder, monkeypatch):
    """The race of a sweep at its time limit: a run that wrote its record just before the limit is complete, one
    that wrote only its partial record stopped at the limit, one with neither was cancelled, whatever the jobs'
    own exit (never seen here)."""
    extra = [*TINY, "--data", str(tiny_cifar_folder)]
    runs = sw.plan("full", out=tmp_path, extra=extra)
    leaves = dict(zip((r.name for r in runs), (".json", ".partial.json", None, ".json")))
    jobs = []

    class Executor:
        def __init__(self, name):
            self.name = name

        def submit(self, fn):
            jobs.append(_Job(tmp_path, self.name, leaves[self.name]))
            return jobs[-1]

    monkeypatch.setattr(sw, "local_executor", lambda folder, name, gpu, timeout: Executor(name))
    status = sw.sweep(runs, tmp_path, time_limit=0.2, min_start_s=0.0, grace_s=0.0, progress=False, poll_s=0.05)
    assert all(job.cancelled for job in jobs) and len(jobs) == 4
    names = [r.name for r in runs]
    assert status[names[0]] == status[names[3]] == "complete"
    assert status[names[1]] == sw.STOPPED and status[names[2]].startswith(sw.CANCELLED)
    assert sw.exit_code(status) == ct.EXIT_INCOMPLETE
    assert sw.on_disk(tmp_path, names[0]) == "complete" and sw.on_disk(tmp_path, names[2]) is None
