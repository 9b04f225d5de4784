"""Paper 2's CIFAR-10 table in one command: every optimizer × seed of a protocol, several runs at once, resumable.

    python -m flatbias.cifar_sweep --protocol reduced                     # 4 optimizers, seed 0, 30 epochs
    python -m flatbias.cifar_sweep --seeds 0 1 2 --parallel 4 --time-limit 540 -- --coherence-1000

Each run is its own ``python -m flatbias.cifar_train`` process (log in ``<out>/logs/<name>.log``): the runs
share one GPU as separate CUDA contexts, which hides the per-step launch overhead of this small model, and a
failed run stops nothing else. A run whose record exists is skipped; an interrupted one resumes from its
checkpoint. Arguments after ``--`` go to every run unchanged.

Exit code: 0 when every run has its record, 3 (as ``cifar_train``) when some stopped at the time limit (run the
same command again to go on), 1 when a run failed (its log says why).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from . import cifar, records
from . import cifar_train as ct

TABLE = (("sam", 0.2), ("sam", 0.1), ("sam", 0.05), ("sgd", None))  # the paper's rows, SAM (twice the cost) first


@dataclass
class Run:
    cfg: ct.TrainConfig
    argv: list[str]  # arguments of python -m flatbias.cifar_train, without --time-limit

    @property
    def name(self) -> str:
        return self.cfg.name


def plan(protocol: str = "full", seeds=(0,), extra: list[str] | tuple[str, ...] = (),
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
            except SystemExit:  # argparse has printed why
                raise ValueError(f"bad arguments for python -m flatbias.cifar_train: {argv}") from None
            runs.append(Run(ct.config_from_args(args), argv))
    names = [r.name for r in runs]
    if len(set(names)) != len(names):
        raise ValueError(f"the sweep names a run twice: {names}")
    return runs


def sweep(runs: list[Run], out: str | os.PathLike, parallel: int = 4, time_limit: float | None = None,
          min_start_s: float = 30.0, progress: bool | None = None, poll_s: float = 0.5) -> dict[str, str]:
    """Run ``runs`` with at most ``parallel`` processes at a time; return ``{name: status}`` with status
    'done before' (its record existed), 'complete', 'stopped at the time limit', 'not started (time limit)' or
    'failed (exit N)'. With ``time_limit`` each process gets the time left as its own ``--time-limit``, and no
    process starts with less than ``min_start_s`` left."""
    from tqdm import tqdm

    if parallel < 1:
        raise ValueError(f"parallel must be >= 1, got {parallel}")
    out = Path(out)
    logs = out / "logs"
    status = {r.name: "done before" for r in runs if (out / f"{r.name}.json").is_file()}
    todo = [r for r in runs if r.name not in status]
    if todo:  # decode the data set once, so that the processes all read the cache
        cifar.load(ct.parser().parse_args(todo[0].argv).data)
    t0, running = time.monotonic(), {}
    bar = tqdm(total=len(runs), initial=len(status), desc="CIFAR-10 runs", unit="run",
               disable=None if progress is None else not progress)
    try:
        while todo or running:
            for name, (proc, log) in list(running.items()):
                if (rc := proc.poll()) is not None:
                    log.close()
                    del running[name]
                    status[name] = {0: "complete", ct.EXIT_INCOMPLETE: "stopped at the time limit"}.get(
                        rc, f"failed (exit {rc}; see {logs / (name + '.log')})")
                    bar.update()
                    bar.set_postfix_str(f"{name}: {status[name]}")
            while todo and len(running) < parallel:
                run = todo.pop(0)
                left = None if time_limit is None else time_limit - (time.monotonic() - t0)
                if left is not None and left < min_start_s:
                    status[run.name] = "not started (time limit)"
                    bar.update()
                    continue
                logs.mkdir(parents=True, exist_ok=True)
                log = open(logs / f"{run.name}.log", "a")
                cmd = [sys.executable, "-m", "flatbias.cifar_train", *run.argv,
                       *([] if left is None else ["--time-limit", f"{left:.0f}"])]
                log.write(f"$ {' '.join(cmd)}\n")
                log.flush()
                running[run.name] = (subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log)
            time.sleep(poll_s if running else 0)
    finally:
        for proc, log in running.values():  # interrupted: stop the children (their checkpoints stay)
            proc.terminate()
            proc.wait()
            log.close()
        bar.close()
    return {r.name: status[r.name] for r in runs}


def exit_code(status: dict[str, str]) -> int:
    values = status.values()
    if any(v.startswith("failed") for v in values):
        return 1
    return 0 if all(v in ("complete", "done before") for v in values) else ct.EXIT_INCOMPLETE


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    own = argv[:argv.index("--")] if "--" in argv else argv
    p = argparse.ArgumentParser(prog="python -m flatbias.cifar_sweep", description=__doc__.split("\n\n")[0],
                                epilog="Arguments after -- go to every python -m flatbias.cifar_train run.")
    p.add_argument("--protocol", choices=("full", "reduced"), default="full")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--parallel", type=int, default=4, help="runs at once (they share the device)")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="stop every run (checkpointed) before this many seconds; the same command resumes")
    p.add_argument("--out", default=str(records.repo_root() / "results" / "cifar10"))
    a = p.parse_args(own)
    try:
        runs = plan(a.protocol, a.seeds, extra, a.out)
    except ValueError as exc:
        print(f"error: bad run settings: {exc}", file=sys.stderr)
        return 2
    status = sweep(runs, a.out, a.parallel, a.time_limit)
    width = max(len(n) for n in status)
    for name, s in status.items():
        print(f"{name:<{width}}  {s}")
    return exit_code(status)


if __name__ == "__main__":
    raise SystemExit(main())
