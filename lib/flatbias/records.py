"""Result records: small JSON files under ``results/`` that say what ran, where, when and how long.

A record holds the settings and metrics of one run plus its provenance (git commit, UTC date,
hardware, torch version, scale, wall time). Records are written atomically: the JSON goes to a
temporary file in the same folder and is renamed over the target, so a crash never leaves a
half-written record.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

SCHEMA = 1
REQUIRED = ("name", "scale", "settings", "metrics", "provenance")


def repo_root(start: str | os.PathLike | None = None) -> Path:
    """The repository root: the first parent of ``start`` (default: this file) holding ``_config.yml``."""
    here = Path(start or __file__).resolve()
    for parent in [here, *here.parents]:
        if (parent / "_config.yml").is_file():
            return parent
    raise FileNotFoundError(f"no _config.yml above {here}: is flatbias installed from a clone of the book?")


#: folders whose changes never make a tree dirty: the records a run writes are its outputs, not its code
OUTPUTS = ("results/",)


def _git(cwd: str | os.PathLike, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def dirty_paths(cwd: str | os.PathLike | None = None, outputs: tuple[str, ...] = OUTPUTS) -> list[str]:
    """The paths that make the working tree differ from its commit: changed tracked files anywhere, and files git
    does not track in the code folders (``lib/``, ``notebooks/``), except under ``outputs`` (``results/``: what a
    records run writes). Raises ``subprocess.CalledProcessError`` or ``OSError`` outside git."""
    cwd = cwd or Path(__file__).resolve().parent
    top = Path(_git(cwd, "rev-parse", "--show-toplevel"))
    changed = _git(top, "diff", "--name-only", "HEAD").splitlines()  # staged or not, against the commit
    untracked = _git(top, "ls-files", "--others", "--exclude-standard", "--", "lib", "notebooks").splitlines()
    return sorted({p for p in changed + untracked if p and not p.startswith(tuple(outputs))})


#: the mark :func:`git_commit` appends when the tree differs from the commit
DIRTY = "+dirty"


def git_commit(cwd: str | os.PathLike | None = None) -> str:
    """The current commit hash, with ``+dirty`` when the tree differs from it (:func:`dirty_paths`: tracked files
    changed, or the code folders hold files git does not track; the records under ``results/`` do not count):
    then the commit alone does not contain the code that ran. Outside git (a copy of the working tree on a lent
    machine) ``$FLATBIAS_COMMIT`` as the copy's sender set it, marked ``(declared)``, else 'unknown'."""
    cwd = cwd or Path(__file__).resolve().parent
    try:
        sha = _git(cwd, "rev-parse", "HEAD")
        dirty = dirty_paths(cwd)
    except (OSError, subprocess.CalledProcessError):
        declared = os.environ.get("FLATBIAS_COMMIT", "").strip()
        return f"{declared} (declared)" if declared else "unknown"
    return sha + (DIRTY if dirty else "")


def is_dirty(commit: str) -> bool:
    """Whether a record's commit (:func:`git_commit`) came from a tree with uncommitted changes."""
    return str(commit).endswith(DIRTY)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def hardware() -> dict[str, Any]:
    """CPU model and core count, and the GPU name when CUDA is available."""
    hw: dict[str, Any] = {"cpu": _cpu_model(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads()}
    if torch.cuda.is_available():
        hw["gpu"] = torch.cuda.get_device_name(0)
        hw["cuda"] = torch.version.cuda
    return hw


def provenance(scale: str, wall_time_s: float | None = None) -> dict[str, Any]:
    """Everything a reader needs to judge a number: commit, UTC date, hardware, versions, scale, wall time."""
    return {
        "commit": git_commit(),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "hardware": hardware(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "platform": platform.platform(),
        "scale": scale,
        "wall_time_s": None if wall_time_s is None else round(float(wall_time_s), 3),
    }


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _jsonable(obj.detach().cpu().tolist())
    if hasattr(obj, "tolist") and not isinstance(obj, (str, bytes)):  # numpy arrays and scalars
        return _jsonable(obj.tolist())
    if isinstance(obj, float) and not math.isfinite(obj):
        return None if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, Path):
        return str(obj)
    return obj


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)  # mkstemp creates 0600; a record is an ordinary, readable file
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def make_record(name: str, scale: str, settings: dict, metrics: dict, wall_time_s: float | None = None) -> dict:
    """A record as a dict (see :func:`write_record`)."""
    return _jsonable({"schema": SCHEMA, "name": name, "scale": scale, "settings": settings, "metrics": metrics,
                      "provenance": provenance(scale, wall_time_s)})


def write_record(path: str | os.PathLike, name: str, scale: str, settings: dict, metrics: dict,
                 wall_time_s: float | None = None) -> Path:
    """Write a result record atomically and return its path."""
    record = make_record(name, scale, settings, metrics, wall_time_s)
    return atomic_write_text(path, json.dumps(record, indent=1, sort_keys=False, allow_nan=False) + "\n")


def read_record(path: str | os.PathLike) -> dict:
    """Read and validate a record; a file that is not one is a clear error."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"no result record at {path}: run the experiment at full scale to create it") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete it and rerun the experiment") from None
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"{path} is not a result record: missing {', '.join(missing)}")
    return record


def find_records(root: str | os.PathLike) -> list[Path]:
    """All record files below ``root`` (``*.json``), sorted by path."""
    return sorted(p for p in Path(root).rglob("*.json") if not p.name.startswith("."))


@contextmanager
def stopwatch() -> Iterator[dict]:
    """``with stopwatch() as t: ...`` then ``t['s']`` holds the elapsed wall time in seconds."""
    box = {"s": float("nan")}
    t0 = time.perf_counter()
    try:
        yield box
    finally:
        box["s"] = time.perf_counter() - t0
