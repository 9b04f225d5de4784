"""Paper 2's CIFAR-10 table in one command: every optimizer × seed of a protocol as submitit jobs, resumable.

    python -m flatbias.cifar_sweep --protocol reduced                    # 4 optimizers, seed 42, 30 epochs
    python -m flatbias.cifar_sweep --seeds 42 43 44 --time-limit 540 -- --coherence-1000 every
    python -m flatbias.cifar_sweep --launcher slurm --slurm-partition gpu --slurm-time 240 --seeds 42 43 44

Each run is one job of `submitit <https://github.com/facebookincubator/submitit>`_ that calls the ``main`` of
``python -m flatbias.cifar_train`` (:class:`TrainRun`):

- ``--launcher local`` (default): submitit's ``LocalExecutor`` on this machine, at most ``--parallel`` runs at a
  time, sharing the GPU (separate processes hide the launch overhead of this small model; with several GPUs, the
  k-th run goes to GPU k mod n). The command waits for the runs; Ctrl-C stops them (their checkpoints stay).
- ``--launcher slurm``: submitit's ``AutoExecutor`` on a SLURM cluster, one job per run (``--slurm-*`` options).
  SLURM signals a job ``--slurm-signal-delay`` seconds before its time is up, or when it is preempted; submitit
  then calls :meth:`TrainRun.checkpoint`, which resubmits the same run, and requeues the job, which resumes from
  the run's last saved epoch (cifar_train saves every ``--checkpoint-every`` epochs, 5 by default: pass
  ``-- --checkpoint-every 1`` on a preemptible partition). The command waits for the jobs unless ``--no-wait``;
  running it again reports them and never submits a run that is still queued or running.

Kept from the process pool this replaces: a run whose record exists is skipped, an interrupted one resumes from its
checkpoint, ``--time-limit`` reaches every run, a failed run stops nothing else. Arguments after ``--`` go to every
run unchanged. Logs and job ids sit next to the records (git-ignored): ``<out>/logs/<run>/<job id>_0_log.out``
(submitit's folder of the run) and ``<out>/logs/jobs.jsonl`` (one line per submission).

Exit code: 0 when every run has its record, 3 (as ``cifar_train``) when some stopped at the time limit or are
still queued (run the same command again to go on), 1 when a run failed (its log says why), 2 for bad arguments
(one line on stderr).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import submitit
from submitit.core.utils import FailedJobError, UncompletedJobError

from . import cifar, records
from . import cifar_train as ct

PROG = "python -m flatbias.cifar_sweep"
TABLE = (("sam", 0.2), ("sam", 0.1), ("sam", 0.05), ("sgd", None))  # the paper's rows, SAM (twice the cost) first
SEEDS = (ct.AUTHORS_SEED,)  # the authors' script's seed first; the table's further seeds are ours (43, 44, ...)
LAUNCHERS = ("local", "slurm")
SLURM_LIVE = {"PENDING", "RUNNING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "CONFIGURING", "COMPLETING",
              "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING"}  # sacct states of a job that is not over
NO_LIMIT_MIN = 60 * 24 * 30  # the local executor's own timeout when the sweep has none
STOPPED = "stopped at the time limit"  # its partial record exists, its final one does not
NOT_STARTED = "not started (time limit)"
CANCELLED = "cancelled at the time limit"  # still running grace_s after the limit, and no record on disk


class LauncherUnavailable(RuntimeError):
    """The launcher asked for cannot run here (``--launcher slurm`` without SLURM)."""


@dataclass
class Run:
    cfg: ct.TrainConfig
    argv: list[str]  # arguments of python -m flatbias.cifar_train, without --time-limit

    @property
    def name(self) -> str:
        return self.cfg.name


@dataclass
class Slurm:
    """The SLURM settings of ``--launcher slurm`` (one job per run)."""

    partition: str | None = None
    gpus_per_node: int = 1
    time_min: int = 240  # per job; a run that needs longer is requeued (checkpointed) up to max_requeue times
    cpus_per_task: int = 8
    mem_gb: float | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    setup: tuple[str, ...] = ()  # shell lines run before the job, e.g. "source .venv/bin/activate"
    signal_delay_s: int = 120  # SLURM's USR2 comes this long before the time limit: time to checkpoint
    max_requeue: int = 10  # time-outs after which submitit gives up (preemptions do not count)
    extra: dict = field(default_factory=dict)  # any other sbatch option, e.g. {"exclude": "node12"}

    def parameters(self, name: str) -> dict:
        """The ``AutoExecutor.update_parameters`` of one run's job."""
        p = dict(timeout_min=int(self.time_min), gpus_per_node=int(self.gpus_per_node),
                 cpus_per_task=int(self.cpus_per_task), name=name, stderr_to_stdout=True,
                 slurm_signal_delay_s=int(self.signal_delay_s), slurm_setup=list(self.setup))
        for key in ("partition", "account", "qos", "constraint"):
            if getattr(self, key):
                p[f"slurm_{key}"] = getattr(self, key)
        if self.mem_gb:
            p["mem_gb"] = self.mem_gb
        if self.extra:
            p["slurm_additional_parameters"] = dict(self.extra)
        return p


def plan(protocol: str = "full", seeds=SEEDS, extra: list[str] | tuple[str, ...] = (),
         out: str | os.PathLike = "results/cifar10", table=TABLE) -> list[Run]:
    """The runs of ``table`` × ``seeds``, seed by seed; a bad extra argument or setting is an error here, before
    anything starts."""
    runs = []
    for seed in seeds:
        for opt, rho in table:
            argv = ["--optimizer", opt, *(["--rho", f"{rho:g}"] if rho else []), "--seed", str(seed),
                    "--protocol", protocol, "--out", str(out), *extra]
            try:
                args = ct.parser().parse_args(argv)
            except ct.ArgumentError as exc:
                raise ValueError(f"bad arguments for python -m flatbias.cifar_train: {exc}") from None
            runs.append(Run(ct.config_from_args(args), argv))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"the sweep names a run twice: {names}")
    return runs


class TrainRun(submitit.helpers.Checkpointable):
    """One ``python -m flatbias.cifar_train`` run as a submitit job; calling it returns cifar_train's exit code.

    ``deadline`` (a ``time.time()``) or ``time_limit`` (seconds from the job's start) become the run's
    ``--time-limit``: it checkpoints and stops (exit 3) before then. ``threads``: torch's CPU threads (runs that
    share a CPU). :meth:`checkpoint` is what submitit calls on preemption or time-out."""

    def __init__(self, argv: list[str], deadline: float | None = None, time_limit: float | None = None,
                 threads: int | None = None):
        self.argv, self.deadline, self.time_limit, self.threads = list(argv), deadline, time_limit, threads

    def __call__(self) -> int:
        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        argv, limit = list(self.argv), self.time_limit
        if self.deadline is not None:
            left = self.deadline - time.time()
            limit = left if limit is None else min(limit, left)
        if limit is not None:
            if limit <= 0:
                print("no time left before the sweep's time limit: not started", file=sys.stderr, flush=True)
                return ct.EXIT_INCOMPLETE
            argv += ["--time-limit", f"{limit:.1f}"]
        print("$ python -m flatbias.cifar_train " + shlex.join(argv), flush=True)
        return ct.main(argv)

    def checkpoint(self, *args, **kwargs) -> submitit.helpers.DelayedSubmission:
        """Resubmit the same run (submitit requeues the job with it): it resumes from the last epoch that
        cifar_train checkpointed; the epochs since then are trained again, identically (seeded by epoch)."""
        return submitit.helpers.DelayedSubmission(TrainRun(self.argv, self.deadline, self.time_limit, self.threads))


# --- executors -----------------------------------------------------------------------------------

def local_gpus() -> list[int | str]:
    """The GPUs the local runs may use: those of ``$CUDA_VISIBLE_DEVICES`` (ints, or UUIDs kept as strings), else
    all CUDA devices; none on a machine without CUDA."""
    env = os.environ.get("CUDA_VISIBLE_DEVICES")
    if env is not None:
        return [int(d) if d.isdigit() else d for d in (d.strip() for d in env.split(",")) if d]
    import torch

    return list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []


def local_executor(folder: str | os.PathLike, name: str, gpu: int | str | None = None,
                   timeout_min: float = NO_LIMIT_MIN) -> submitit.LocalExecutor:
    """submitit's LocalExecutor for one run: its folder, its GPU (None: no GPU), stderr into the one log."""
    ex = submitit.LocalExecutor(folder)
    params = dict(timeout_min=timeout_min, stderr_to_stdout=True, name=name)
    if gpu is None:
        params["gpus_per_node"] = 0  # submitit then hides every GPU (CUDA_VISIBLE_DEVICES="")
    elif isinstance(gpu, int):
        params.update(gpus_per_node=1, visible_gpus=(gpu,))
    else:  # a GPU UUID: submitit only takes indices, so the job's shell sets it
        params.update(gpus_per_node=0, setup=[f"export CUDA_VISIBLE_DEVICES={shlex.quote(gpu)}"])
    ex.update_parameters(**params)
    return ex


def slurm_executor(folder: str | os.PathLike, name: str, slurm: Slurm) -> submitit.AutoExecutor:
    """submitit's AutoExecutor on SLURM for one run (a clear :class:`LauncherUnavailable` without SLURM)."""
    try:
        ex = submitit.AutoExecutor(folder, cluster="slurm", slurm_max_num_timeout=int(slurm.max_requeue))
    except RuntimeError as exc:
        raise LauncherUnavailable(f"--launcher slurm needs a SLURM login node ({exc}); use --launcher local "
                                  "on a single machine") from None
    ex.update_parameters(**slurm.parameters(name))
    return ex


# --- the job registry: which job ran which run -----------------------------------------------------

def _register(logs: Path, run: str, launcher: str, job) -> None:
    logs.mkdir(parents=True, exist_ok=True)
    entry = {"run": run, "launcher": launcher, "job_id": str(job.job_id), "folder": str(job.paths.folder),
             "log": str(job.paths.stdout), "submitted_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(
                 timespec="seconds")}
    with open(logs / "jobs.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps(entry) + "\n")


def submissions(logs: str | os.PathLike) -> dict[str, dict]:
    """``{run: its last submission}`` from ``<logs>/jobs.jsonl`` (job id, launcher, log path, UTC time)."""
    path = Path(logs) / "jobs.jsonl"
    out: dict[str, dict] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                entry = json.loads(line)
                out[entry["run"]] = entry
    return out


def log_path(logs: str | os.PathLike, run: str) -> Path | None:
    """The log of ``run``'s last job (None if it never ran)."""
    entry = submissions(logs).get(run)
    return Path(entry["log"]) if entry else None


# --- the sweep -----------------------------------------------------------------------------------

def on_disk(out: str | os.PathLike, name: str) -> str | None:
    """A run's state as its records on disk say: 'complete' iff its final record ``<out>/<name>.json`` exists,
    'stopped at the time limit' iff its partial record ``<name>.partial.json`` exists and the final one does not,
    None when neither exists. The sweep's statuses come from here, never from the timing of a job's exit."""
    out = Path(out)
    if (out / f"{name}.json").is_file():
        return "complete"
    if (out / f"{name}.partial.json").is_file():
        return STOPPED
    return None


def _outcome(job, log: str, disk: str | None) -> str:
    """A finished job's status: its records on disk first (``disk``: :func:`on_disk`), then its exit."""
    if disk == "complete":
        return disk
    try:
        rc = job.result()
    except FailedJobError as exc:  # an exception in the run: its last line says which
        last = [line for line in str(exc).strip().splitlines() if line.strip()][-1].strip()
        return f"failed ({last[:200]}; see {log})"
    except UncompletedJobError:  # killed (out of memory, signal) before it returned
        return f"failed (the job ended without a result; see {log})"
    if rc == ct.EXIT_INCOMPLETE:
        return disk or NOT_STARTED  # exit 3 without a partial record: it had no time to start
    if rc == 0:  # exit 0 without a final record cannot happen in cifar_train: report it, do not trust it
        return disk or f"failed (exit 0 but no record on disk; see {log})"
    return f"failed (exit {rc}; see {log})"


def _cancel(job, wait_s: float = 30.0) -> None:
    job.cancel(check=False)
    proc = getattr(job, "_process", None)  # a local job: wait until its processes are gone
    if proc is not None:
        try:
            proc.wait(timeout=wait_s)
        except Exception:  # noqa: BLE001 - still alive: kill the controller
            proc.kill()


def sweep(runs: list[Run], out: str | os.PathLike, parallel: int = 4, time_limit: float | None = None,
          min_start_s: float = 30.0, progress: bool | None = None, poll_s: float | None = None, *,
          launcher: str = "local", slurm: Slurm | None = None, logs: str | os.PathLike | None = None,
          wait: bool = True, grace_s: float = 60.0) -> dict[str, str]:
    """Run ``runs`` as submitit jobs; return ``{name: status}``, status one of 'done before' (its record existed),
    'complete', 'stopped at the time limit', 'cancelled at the time limit (...)', 'not started (time limit)',
    'failed (...; see LOG)' or, for SLURM jobs not waited for, 'queued or running (slurm job ID)'.

    ``launcher="local"``: at most ``parallel`` runs at a time on this machine. With ``time_limit`` (seconds from
    now) every run stops, checkpointed, before it; no run starts with less than ``min_start_s`` left, and a run
    still going ``grace_s`` after it is cancelled. ``launcher="slurm"``: one SLURM job per run (``slurm``:
    settings); ``time_limit`` then bounds each job's run from its own start; a run already queued or running as a
    SLURM job (``<logs>/jobs.jsonl``) is followed, not submitted again. ``logs``: default ``<out>/logs``."""
    from tqdm import tqdm

    if launcher not in LAUNCHERS:
        raise ValueError(f"launcher must be one of {LAUNCHERS}, got {launcher!r}")
    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    if not wait and launcher != "slurm":
        raise ValueError("not waiting is for --launcher slurm only: local runs stop with this command")
    slurm = slurm or Slurm()
    out = Path(out)
    logs = Path(logs) if logs is not None else out / "logs"
    poll_s = (0.5 if launcher == "local" else 30.0) if poll_s is None else poll_s
    status = {r.name: "done before" for r in runs if (out / f"{r.name}.json").is_file()}
    todo = [r for r in runs if r.name not in status]
    jobs: dict[str, object] = {}
    if launcher == "slurm":  # follow the jobs of an earlier call that are not over
        for name, entry in submissions(logs).items():
            if entry["launcher"] == "slurm" and any(r.name == name for r in todo):
                job = submitit.SlurmJob(folder=entry["folder"], job_id=entry["job_id"])
                if (job.state.split() or ["UNKNOWN"])[0] in SLURM_LIVE:
                    jobs[name] = job
        todo = [r for r in todo if r.name not in jobs]
    if todo:  # decode the data set once, so that every run reads the cache (and a missing one fails here)
        cifar.load(ct.parser().parse_args(todo[0].argv).data)
    t0 = time.time()
    deadline = None if time_limit is None else t0 + time_limit
    gpus = local_gpus() if launcher == "local" and todo else []
    # CPU runs share the cores; the count depends on --parallel only, so a resumed run computes the same numbers
    threads = None if gpus or launcher != "local" else max(1, (os.cpu_count() or 1) // parallel)
    timeout_min = NO_LIMIT_MIN if time_limit is None else (time_limit + grace_s + 120) / 60
    bar = tqdm(total=len(runs), initial=len(status), desc="CIFAR-10 runs", unit="run",
               disable=None if progress is None else not progress)
    started = 0

    def submit(run: Run):
        nonlocal started
        folder = logs / run.name
        if launcher == "local":
            ex = local_executor(folder, run.name, gpus[started % len(gpus)] if gpus else None, timeout_min)
            job = ex.submit(TrainRun(run.argv, deadline=deadline, threads=threads))
        else:
            job = slurm_executor(folder, run.name, slurm).submit(TrainRun(run.argv, time_limit=time_limit))
        started += 1
        _register(logs, run.name, launcher, job)
        return job

    try:
        while todo or jobs:
            for name, job in list(jobs.items()):
                if job.done():
                    status[name] = _outcome(job, str(job.paths.stdout), on_disk(out, name))
                    del jobs[name]
                    bar.update()
                    bar.set_postfix_str(f"{name}: {status[name]}")
            free = len(todo) if launcher == "slurm" else parallel - len(jobs)
            while todo and free > 0:
                run = todo.pop(0)
                if deadline is not None and launcher == "local" and deadline - time.time() < min_start_s:
                    status[run.name] = NOT_STARTED
                    bar.update()
                    continue
                jobs[run.name] = submit(run)
                free -= 1
            if not wait:
                break
            if deadline is not None and launcher == "local" and time.time() > deadline + grace_s:
                for name, job in jobs.items():  # the run should have stopped itself (its start took long)
                    _cancel(job)
                for name, job in jobs.items():  # after the cancel, the disk says what each run left
                    status[name] = on_disk(out, name) or (f"{CANCELLED} ({grace_s:g} s after it, with no record; "
                                                          f"resumes from its checkpoint if any; see {job.paths.stdout})")
                    bar.update()
                jobs.clear()
                break
            if jobs:
                time.sleep(poll_s)
    finally:
        if launcher == "local":  # interrupted: stop the local runs (their checkpoints stay)
            for job in jobs.values():
                _cancel(job)
        bar.close()
    for name, job in jobs.items():  # SLURM jobs left to the cluster
        status[name] = f"queued or running (slurm job {job.job_id})"
    for run in todo:  # the sweep stopped before their turn
        status[run.name] = NOT_STARTED
    return {r.name: status[r.name] for r in runs}


def exit_code(status: dict[str, str]) -> int:
    values = status.values()
    if any(v.startswith("failed") for v in values):
        return 1
    return 0 if all(v in ("complete", "done before") for v in values) else ct.EXIT_INCOMPLETE


def parser() -> ct.Parser:
    p = ct.Parser(prog=PROG, description=__doc__.split("\n\n")[0],
                  epilog="Arguments after -- go to every python -m flatbias.cifar_train run.")
    p.add_argument("--protocol", choices=("full", "reduced"), default="full")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS),
                   help="default 42, the authors' seed; the paper's table: --seeds 42 43 44")
    p.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: this machine, --parallel runs at once; slurm: one SLURM job per run")
    p.add_argument("--parallel", type=int, default=4, help="local: runs at once (they share the GPU)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="local: stop every run (checkpointed) before this many seconds from now; slurm: bound each "
                        "job's run; the same command resumes")
    p.add_argument("--out", default=str(records.repo_root() / "results" / "cifar10"), help="the records' folder")
    p.add_argument("--logs", default=None, help="logs and job ids (default OUT/logs)")
    g = p.add_argument_group("SLURM (with --launcher slurm)")
    d = Slurm()
    g.add_argument("--slurm-partition", default=None)
    g.add_argument("--slurm-gpus-per-node", type=int, default=d.gpus_per_node)
    g.add_argument("--slurm-time", type=int, default=d.time_min, metavar="MINUTES",
                   help="time limit of each job; a longer run is checkpointed and requeued")
    g.add_argument("--slurm-cpus-per-task", type=int, default=d.cpus_per_task)
    g.add_argument("--slurm-mem-gb", type=float, default=None)
    g.add_argument("--slurm-account", default=None)
    g.add_argument("--slurm-qos", default=None)
    g.add_argument("--slurm-constraint", default=None)
    g.add_argument("--slurm-setup", action="append", default=[], metavar="SHELL_LINE",
                   help="a line run before each job, e.g. 'source .venv/bin/activate' (repeatable)")
    g.add_argument("--slurm-signal-delay", type=int, default=d.signal_delay_s, metavar="SECONDS",
                   help="SLURM signals the job this long before its time limit, to checkpoint and requeue")
    g.add_argument("--slurm-max-requeue", type=int, default=d.max_requeue,
                   help="time-outs after which a run is given up")
    g.add_argument("--no-wait", action="store_true", help="submit and return (exit 3); run again to follow up")
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    try:
        a = parser().parse_args(own)
        if a.parallel < 1 or (a.time_limit is not None and a.time_limit < 0):
            raise ValueError("--parallel must be >= 1 and --time-limit >= 0")
        if a.launcher == "local" and (a.no_wait or a.slurm_partition or a.slurm_setup):
            raise ValueError("--no-wait and --slurm-* options need --launcher slurm")
        if a.slurm_time < 1 or a.slurm_cpus_per_task < 1 or a.slurm_gpus_per_node < 0 or a.slurm_max_requeue < 0:
            raise ValueError("--slurm-time and --slurm-cpus-per-task must be >= 1, --slurm-gpus-per-node and "
                             "--slurm-max-requeue >= 0")
        runs = plan(a.protocol, a.seeds, extra, a.out)
        slurm = Slurm(partition=a.slurm_partition, gpus_per_node=a.slurm_gpus_per_node, time_min=a.slurm_time,
                      cpus_per_task=a.slurm_cpus_per_task, mem_gb=a.slurm_mem_gb, account=a.slurm_account,
                      qos=a.slurm_qos, constraint=a.slurm_constraint, setup=tuple(a.slurm_setup),
                      signal_delay_s=a.slurm_signal_delay, max_requeue=a.slurm_max_requeue)
        status = sweep(runs, a.out, a.parallel, a.time_limit, launcher=a.launcher, slurm=slurm, logs=a.logs,
                       wait=not a.no_wait)
    except (ValueError, LauncherUnavailable, cifar.DataNotFoundError) as exc:
        return ct.fail(exc, PROG)
    width = max(len(n) for n in status)
    for name, s in status.items():
        print(f"{name:<{width}}  {s}")
    return exit_code(status)


if __name__ == "__main__":
    raise SystemExit(main())
