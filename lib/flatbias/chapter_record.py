"""A chapter's paper-scale result record: written by a full-scale run, read back by every other build.

At ``full`` scale a chapter runs its experiment, judges the checks of its :class:`~flatbias.claims.Protocol`
and writes its record: settings, every measured check, the data behind its figures, provenance, and a
**fingerprint** of what produced it (the protocol's hash, the hash of each ``flatbias`` module the run imported,
and the hash of the chapter's own code cells). A full-scale *build* writes into its own output folder
(:func:`output_dir`, ``_build/full/records`` unless ``$FLATBIAS_RECORD_DIR`` says otherwise) and prints every check
that differs from the committed record beyond the check's declared tolerance; it never writes ``results/``. The
one command that updates ``results/chapters/`` is ``make records`` (``python -m flatbias.chapter_record``): it
refuses a dirty tree, so every committed record names a clean commit that holds the code that made it.

At ``smoke`` scale the chapter re-runs its pipeline small and renders the paper-scale figures and verdict from
the committed record. A record whose fingerprint no longer matches the code, the protocol or the chapter's code
cells, or that was written from a dirty tree, is *stale*: ``tests/test_chapter_records.py`` fails and names the
command that regenerates it (``make records``).
"""

from __future__ import annotations

import ast
import hashlib
import math
import os
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import records
from .claims import Evaluation, Protocol, ProtocolError

FOLDER = ("results", "chapters")
OUTPUT_ENV = "FLATBIAS_RECORD_DIR"  # where a full-scale run writes its record (default: _build/full/records)
ALLOW_DIRTY_ENV = "FLATBIAS_ALLOW_DIRTY"  # set by ``--allow-dirty``: the record says so, and is stale
#: how far a check's value may differ between two runs on different CPUs (a check declares its own: see
#: :func:`tolerance_of`): 'exact', 'round-off' (relative 1e-9, absolute 1e-12), 'error' (a factor of 10, both
#: values under 1e-12 agree), or a relative tolerance
ROUND_OFF = (1e-9, 1e-12)
ERROR_FACTOR, ERROR_FLOOR = 10.0, 1e-12
# modules that only present results (their edits cannot change a measured number)
PRESENTATION = frozenset({"flatbias", "flatbias.claims", "flatbias.chapter_record", "flatbias.protocol_changes",
                          "flatbias.records", "flatbias.scale", "flatbias.style", "flatbias.verdict",
                          "flatbias.sphinxext"})


def record_path(chapter: str, root: str | Path | None = None, folder: str | Path | None = None) -> Path:
    """``results/chapters/<chapter>.json`` in the repository (the committed record), or ``<folder>/<chapter>.json``."""
    if folder is not None:
        return Path(folder) / f"{chapter}.json"
    return Path(root or records.repo_root()).joinpath(*FOLDER, f"{chapter}.json")


def output_dir(root: str | Path | None = None) -> Path:
    """Where a full-scale run writes its record: ``$FLATBIAS_RECORD_DIR``, else ``<repo>/_build/full/records``.
    Never ``results/``: only ``make records`` updates the committed records."""
    env = os.environ.get(OUTPUT_ENV, "").strip()
    return Path(env) if env else Path(root or records.repo_root()) / "_build" / "full" / "records"


def notebook_source(chapter: str, root: str | Path | None = None) -> Path:
    """The chapter's ``notebooks/<chapter>.py`` (jupytext percent format: the reviewed source of its code)."""
    return Path(root or records.repo_root()) / "notebooks" / f"{chapter}.py"


def code_hash(source: str) -> str:
    """Hash of Python code: its syntax tree without docstrings, so comments, prose and layout do not count."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


def module_hash(path: str | Path) -> str:
    """Hash of a module's code (:func:`code_hash` of its file)."""
    return code_hash(Path(path).read_text(encoding="utf-8"))


def chapter_code_hash(chapter: str, root: str | Path | None = None, text: str | None = None) -> str | None:
    """Hash of the chapter's own code: the normalized syntax tree of every code cell of ``notebooks/<chapter>.py``
    in order (IPython magics as the kernel runs them; comments, docstrings, markdown and layout do not count).
    ``text``: the file's text (e.g. at another commit). None when the chapter has no ``.py``."""
    import jupytext
    from IPython.core.inputtransformer2 import TransformerManager

    if text is None:
        path = notebook_source(chapter, root)
        if not path.is_file():
            return None
        text = path.read_text(encoding="utf-8")
    transform = TransformerManager().transform_cell
    cells = [c.source for c in jupytext.reads(text, fmt="py:percent").cells if c.cell_type == "code"]
    return hashlib.sha256("\n".join(code_hash(transform(src)) for src in cells).encode()).hexdigest()[:16]


#: the hash of each ``flatbias`` module's file when this process imported it (see :class:`_HashAtImport`)
AT_IMPORT: dict[str, str] = {}


class _HashAtImport(importlib.abc.MetaPathFinder):
    """Hashes a ``flatbias`` module's file as it is found for import, then lets the normal machinery load it:
    a record is fingerprinted with the code that ran, not with what is on disk when the record is written."""

    def find_spec(self, name, path, target=None):
        if name.startswith("flatbias.") and name not in PRESENTATION and name not in AT_IMPORT:
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                AT_IMPORT[name] = module_hash(spec.origin)
        return None  # found by the normal finders


if not any(isinstance(f, _HashAtImport) for f in sys.meta_path):
    sys.meta_path.insert(0, _HashAtImport())
for _name, _mod in list(sys.modules.items()):  # imported before this module: hashed now, before any run
    if _name.startswith("flatbias.") and _name not in PRESENTATION and getattr(_mod, "__file__", None):
        AT_IMPORT.setdefault(_name, module_hash(_mod.__file__))


def imported_modules() -> dict[str, str]:
    """Hash of every ``flatbias`` module imported in this process (as imported), presentation modules excepted.

    Raises ``RuntimeError`` when a module's file changed since it was imported: the record would otherwise
    carry the fingerprint of code that did not run."""
    out, changed = {}, []
    for name, mod in sorted(sys.modules.items()):
        if name.startswith("flatbias.") and name not in PRESENTATION and getattr(mod, "__file__", None):
            now = module_hash(mod.__file__)
            out[name] = AT_IMPORT.get(name, now)
            if out[name] != now:
                changed.append(name)
    if changed:
        raise RuntimeError(f"{', '.join(changed)} changed on disk after this run imported "
                           f"{'it' if len(changed) == 1 else 'them'}: the record would not describe the code "
                           "that ran. Run the chapter again (make records).")
    return out


def current_module_hash(name: str) -> str | None:
    """The hash of module ``name`` as it is on disk now (None if it no longer exists)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        return None
    return module_hash(spec.origin)


def fingerprint(protocol: Protocol, root: str | Path | None = None) -> dict:
    return {"protocol": protocol.fingerprint(), "modules": imported_modules(),
            "chapter_code": chapter_code_hash(protocol.chapter, root)}


def stale_reasons(record: Mapping, protocol: Protocol, root: str | Path | None = None) -> list[str]:
    """Why ``record`` no longer matches the protocol, the code and the chapter's code cells, or cannot be traced to
    a clean commit (empty when it is current)."""
    fp = record.get("fingerprint")
    if not fp:
        return ["the record has no fingerprint"]
    reasons = []
    if fp.get("protocol") != protocol.fingerprint():
        reasons.append(f"the PROTOCOL of {protocol.chapter} changed")
    for name, h in sorted(fp.get("modules", {}).items()):
        now = current_module_hash(name)
        if now != h:
            reasons.append(f"module {name} {'was removed' if now is None else 'changed'}")
    code = chapter_code_hash(protocol.chapter, root)
    if "chapter_code" not in fp:
        reasons.append("the fingerprint has no hash of the chapter's code cells")
    elif fp["chapter_code"] != code:
        reasons.append(f"the code cells of notebooks/{protocol.chapter}.py changed")
    gone = sorted(set(record.get("metrics", {}).get("checks", {})) - set(protocol.measured_keys()))
    if gone:
        reasons.append(f"it measures checks the PROTOCOL no longer declares: {', '.join(gone)}")
    prov = record.get("provenance", {})
    commit = str(prov.get("commit", "unknown"))
    if prov.get("allow_dirty"):
        reasons.append("it was written with --allow-dirty (a trial, not a record)")
    if records.is_dirty(commit) or " " in commit or commit == "unknown":
        reasons.append(f"it names no clean commit ({commit}): the code that made it cannot be checked out")
    return reasons


def tolerance_of(check) -> tuple[float, float] | str | None:
    """``(relative, absolute)`` tolerance of a check's value between two runs, from its declared ``tolerance``:
    'exact' (None), 'round-off' (:data:`ROUND_OFF`, the default), 'error' (the string: :func:`agree_as_errors`)
    or a number (a relative tolerance, stated for chaotic runs, with an absolute floor of 1e-12)."""
    tol = getattr(check, "tolerance", "round-off")
    if tol == "exact":
        return None
    if tol == "round-off":
        return ROUND_OFF
    if tol == "error":
        return "error"
    if isinstance(tol, (int, float)) and not isinstance(tol, bool) and tol > 0:
        return float(tol), 1e-12
    raise ValueError(f"check {check.key!r}: tolerance must be 'exact', 'round-off', 'error' or a positive "
                     f"number; got {tol!r}")


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, str) and v in ("inf", "-inf"):
        return float(v)
    return float(v) if isinstance(v, (int, float)) else None


def agree_as_errors(x: float, y: float) -> bool:
    """Two values of an error (tolerance 'error'): both at most :data:`ERROR_FLOOR` in magnitude (round-off
    level), or of one sign and within a factor :data:`ERROR_FACTOR` of each other."""
    if abs(x) <= ERROR_FLOOR and abs(y) <= ERROR_FLOOR:
        return True
    return x * y > 0 and max(abs(x), abs(y)) <= ERROR_FACTOR * min(abs(x), abs(y))


def _passes(criterion, value: Any) -> bool | None:
    if criterion is None:
        return None
    try:
        return criterion.passes(value)
    except (TypeError, ValueError, ProtocolError):  # not a value the criterion judges (None, a string)
        return None


def differences(protocol: Protocol, new: Mapping[str, Any], old: Mapping[str, Any]) -> list[str]:
    """The checks and validity conditions whose measured values differ between two records (``metrics.checks``)
    beyond their declared tolerance (:func:`tolerance_of`), or whose criterion one value passes and the other
    fails (whatever the tolerance), one line each; empty when the two agree."""
    out = []
    for c in (*protocol.checks, *getattr(protocol, "validity", ())):  # validity values are measured too
        a, b = new.get(c.key), old.get(c.key)
        tol = tolerance_of(c)
        x, y = _number(a), _number(b)
        if x is None or y is None or tol is None or math.isinf(x) or math.isinf(y):
            same = a == b or (x is not None and x == y)
        elif tol == "error":
            same = agree_as_errors(x, y)
        else:
            same = math.isclose(x, y, rel_tol=tol[0], abs_tol=tol[1])
        flips = _passes(getattr(c, "criterion", None), a), _passes(getattr(c, "criterion", None), b)
        if not same:
            what = getattr(c, "tolerance", "round-off")
            out.append(f"{c.key}: {a!r} now, {b!r} in the committed record (tolerance {what})")
        elif None not in flips and flips[0] != flips[1]:
            out.append(f"{c.key}: {a!r} now {'passes' if flips[0] else 'fails'} its criterion, {b!r} in the "
                       f"committed record {'passes' if flips[1] else 'fails'} it")
    return out


def write(protocol: Protocol, measured: Mapping[str, Any], data: Mapping[str, Any], wall_time_s: float,
          root: str | Path | None = None, folder: str | Path | None = None) -> Path:
    """Write the chapter's paper-scale record (atomically) into ``folder`` (default :func:`output_dir`)."""
    protocol.evaluate(measured, "full")  # undeclared check keys are an error before anything is written
    record = records.make_record(protocol.chapter, "full", dict(protocol.at("full")),
                                 {"checks": dict(measured), "data": dict(data)}, wall_time_s)
    if os.environ.get(ALLOW_DIRTY_ENV):
        record["provenance"]["allow_dirty"] = True
    record["fingerprint"] = fingerprint(protocol, root)
    text = json.dumps(record, indent=None, separators=(",", ":"), allow_nan=False)
    folder = output_dir(root) if folder is None else folder
    return records.atomic_write_text(record_path(protocol.chapter, folder=folder), text + "\n")


@dataclass
class PaperScale:
    """What a chapter shows at the paper's scale: the record (or None) and its evaluation. ``changed``: for a
    record this run just wrote, the checks that differ from the committed record beyond their tolerance (None
    when there is no committed record to compare with, or this is the committed record)."""

    protocol: Protocol
    record: dict | None
    path: Path
    stale: list[str]
    changed: list[str] | None = None

    @property
    def evaluation(self) -> Evaluation:
        """The record's values judged by the protocol. A stale record may measure checks the protocol no longer
        declares: those are left out (its staleness is shown, and fails the tests), so the page still renders."""
        if self.record is None:
            return self.protocol.evaluate(None, "full")
        declared = set(self.protocol.measured_keys())
        measured = {k: v for k, v in self.record["metrics"]["checks"].items() if k in declared}
        return self.protocol.evaluate(measured, "full")

    @property
    def data(self) -> dict | None:
        return None if self.record is None else self.record["metrics"]["data"]

    def provenance(self) -> str:
        """One line: where the paper-scale numbers come from."""
        rel = self.path.relative_to(records.repo_root()) if self.path.is_relative_to(records.repo_root()) \
            else self.path
        if self.record is None:
            return f"not yet run at paper scale: no record at {rel} (make records)"
        p = self.record["provenance"]
        hw = p["hardware"].get("gpu") or f"{p['hardware']['cpu']} ({p['hardware']['torch_threads']} threads)"
        state = "current" if not self.stale else "STALE: " + "; ".join(self.stale)
        line = (f"record {rel}: {hw}, {p['date_utc']}, commit {p['commit'][:12]}, "
                f"wall time {p['wall_time_s']:.0f} s, fingerprint {state}")
        if self.changed:
            line += "; differs from the committed record: " + "; ".join(self.changed)
        elif self.changed == []:
            line += "; agrees with the committed record within every check's tolerance"
        return line


def load(protocol: Protocol, root: str | Path | None = None, folder: str | Path | None = None) -> PaperScale:
    """The committed paper-scale record of ``protocol.chapter`` (record None when there is none), or the one in
    ``folder``, compared with the committed one."""
    path = record_path(protocol.chapter, root, folder)
    if not path.exists():
        return PaperScale(protocol, None, path, [])
    rec = records.read_record(path)
    changed = None
    committed = record_path(protocol.chapter, root)
    if folder is not None and committed.exists() and committed.resolve() != path.resolve():
        changed = differences(protocol, rec["metrics"]["checks"],
                              records.read_record(committed)["metrics"]["checks"])
    stale = [r for r in stale_reasons(rec, protocol, root) if folder is None or "clean commit" not in r]
    return PaperScale(protocol, rec, path, stale, changed)


def paper_scale(protocol: Protocol, scale: str, measured: Mapping[str, Any], data: Mapping[str, Any],
                wall_time_s: float, root: str | Path | None = None) -> PaperScale:
    """At ``full``: write this run's record into :func:`output_dir` (never ``results/``), read it back and print
    how it compares with the committed record. At ``smoke``: read the committed one."""
    if scale == "full":
        path = write(protocol, measured, data, wall_time_s, root)
        paper = load(protocol, root, folder=path.parent)
        print(f"{protocol.chapter}: {paper.provenance()}")
        return paper
    return load(protocol, root)


def conclude(protocol: Protocol, scale: str, measured: Mapping[str, Any], data: Mapping[str, Any],
             t_start: float, root: str | Path | None = None) -> tuple[Evaluation, PaperScale]:
    """A chapter's last step: evaluate this build's checks, stop on a failing guard, then write (``full``) or
    read (``smoke``) the paper-scale record. Returns ``(smoke, paper)``; ``t_start`` is the chapter's
    ``time.perf_counter()`` at its start (the record's wall time)."""
    import time

    smoke = protocol.evaluate(measured, scale)
    smoke.assert_guards()
    return smoke, paper_scale(protocol, scale, measured, data, time.perf_counter() - t_start, root)


def read_protocol(notebook: str | Path) -> Protocol | None:
    """Execute the cell tagged ``protocol`` of a chapter (``.ipynb``) alone and return its ``PROTOCOL``.

    The cell must be self-contained (it imports what it uses), so the claims table, ``claims.json`` and
    the stale-record test can read every chapter's protocol without running the chapter.
    """
    notebook = Path(notebook)
    return read_protocol_text(notebook.read_text(encoding="utf-8"), notebook.name)


def read_protocol_text(text: str, name: str) -> Protocol | None:
    """:func:`read_protocol` of a notebook's JSON text (e.g. at another commit); ``name``: its file name."""
    stem = name.rsplit(".", 1)[0]
    cells = json.loads(text)["cells"]
    tagged = [c for c in cells if c["cell_type"] == "code" and "protocol" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        return None
    if len(tagged) > 1:
        raise ValueError(f"{name}: more than one cell is tagged 'protocol'")
    namespace: dict[str, Any] = {"__name__": f"protocol_of_{stem}"}
    exec(compile("".join(tagged[0]["source"]), f"{name}:protocol", "exec"), namespace)
    protocol = namespace.get("PROTOCOL")
    if not isinstance(protocol, Protocol):
        raise ValueError(f"{name}: the 'protocol' cell must define PROTOCOL = claims.Protocol(...)")
    if protocol.chapter != stem:
        raise ValueError(f"{name}: PROTOCOL.chapter is {protocol.chapter!r}; expected {stem!r}")
    return protocol


def protocol_of(chapter: str, root: str | Path | None = None) -> Protocol:
    """The PROTOCOL of one chapter, by notebook stem (``"05_convergence_rate"``), read from its ``.ipynb``."""
    protocol = read_protocol(Path(root or records.repo_root()) / "notebooks" / f"{chapter}.ipynb")
    if protocol is None:
        raise ValueError(f"notebooks/{chapter}.ipynb has no cell tagged 'protocol'")
    return protocol


def chapters(root: str | Path | None = None) -> list[tuple[Path, Protocol]]:
    """Every chapter notebook with a protocol cell, in order."""
    folder = Path(root or records.repo_root()) / "notebooks"
    out = []
    for nb in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        protocol = read_protocol(nb)
        if protocol is not None:
            out.append((nb, protocol))
    return out


#: chapters whose paper-scale runs need a GPU and write their records elsewhere: ``make records`` skips them
#: unless they are named
ELSEWHERE = {"17_sam_vs_sgd_cifar10": "paper scale needs CIFAR-10 and a GPU; its runs write results/cifar10/ "
                                      "(python -m flatbias.gpu_session or flatbias.cifar_sweep, see the Reproducing "
                                      "page)"}


#: the thread-count variables a chapter's kernel inherits from :func:`execute_at_full` (one thread each)
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


def execute_at_full(notebook: Path, folder: str | Path, timeout_s: int = 3600, allow_dirty: bool = False) -> float:
    """Execute a chapter at ``full`` scale, its record written into ``folder``; the executed copy is discarded.

    The kernel runs on one thread (:data:`THREAD_ENV`): how every record is made, so that a record does not depend
    on the core count, and so that chapters run side by side (``--jobs``) do not spin their threads against each
    other (two torch processes with default threads on two cores ran 10-50x slower)."""
    import time

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    env = {"BOOK_SCALE": "full", OUTPUT_ENV: str(folder), ALLOW_DIRTY_ENV: "1" if allow_dirty else ""}
    env |= {name: "1" for name in THREAD_ENV}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits them
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return time.perf_counter() - t0


def longest_first(todo: list[tuple[Path, Protocol]], root: str | Path | None = None) -> list[tuple[Path, Protocol]]:
    """The chapters ordered by the wall time of their committed records, longest first (a chapter without a record
    first of all): with ``--jobs`` k the long chapters start at once and the short ones fill the gaps, so the
    elapsed time is close to max(longest chapter, sum / k)."""
    def wall(item):
        record = load(item[1], root).record
        return float("inf") if record is None else float(record["provenance"].get("wall_time_s") or 0.0)
    return sorted(todo, key=wall, reverse=True)


class DirtyTree(RuntimeError):
    """``make records`` on a tree that differs from its commit: the records would name code nobody can check out."""


def require_clean(allow_dirty: bool = False) -> str:
    """The commit the records will name; a :class:`DirtyTree` error naming the dirty paths unless ``allow_dirty``."""
    dirty = records.dirty_paths(records.repo_root())
    if dirty and not allow_dirty:
        shown = ", ".join(dirty[:12]) + (f" and {len(dirty) - 12} more" if len(dirty) > 12 else "")
        raise DirtyTree(f"the working tree differs from its commit in {shown}: commit first (records name a clean "
                        "commit), or pass --allow-dirty for a trial (such a record says so and counts as stale)")
    return records.git_commit(records.repo_root())


def main(argv: list[str] | None = None) -> int:
    """``python -m flatbias.chapter_record [--all] [--list] [--allow-dirty] [CHAPTER ...]``: regenerate paper-scale
    records. The one command that writes ``results/chapters/``: from a clean commit only, each chapter run into a
    scratch folder, compared with its committed record (printed), then copied over it."""
    import argparse
    import shutil
    import tempfile
    import time
    from concurrent.futures import ProcessPoolExecutor, as_completed

    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m flatbias.chapter_record",
                                     description="Regenerate the chapters' paper-scale records that are "
                                                 "missing or stale (or all with --all), from a clean commit.")
    parser.add_argument("chapters", nargs="*", help="chapter numbers or notebook stems (default: every chapter)")
    parser.add_argument("--all", action="store_true", help="rerun current records too")
    parser.add_argument("--list", action="store_true", help="only list each record's state")
    parser.add_argument("--jobs", type=int, default=1, help="chapters run at once (default 1; each runs on one thread)")
    parser.add_argument("--allow-dirty", action="store_true",
                        help="run on a tree with uncommitted changes (a trial: the records say so and are stale)")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.exit(2, f"error: --jobs must be at least 1; got {args.jobs}\n")
    found = chapters()
    known = {nb.stem[:2]: nb.stem for nb, _ in found} | {nb.stem: nb.stem for nb, _ in found}
    unknown = [c for c in args.chapters if c not in known]
    if unknown:
        parser.exit(2, f"error: unknown chapter(s) {unknown}; chapters with a protocol: "
                       f"{sorted(nb.stem for nb, _ in found)}\n")
    wanted = {known[c] for c in args.chapters} or {nb.stem for nb, _ in found}
    todo = []
    for nb, protocol in found:
        if nb.stem not in wanted:
            continue
        if nb.stem in ELSEWHERE and not args.chapters:
            print(f"{nb.stem}: {ELSEWHERE[nb.stem]}; not run here (name it to try)")
            continue
        paper = load(protocol)
        state = "missing" if paper.record is None else ("stale: " + "; ".join(paper.stale) if paper.stale
                                                        else "current")
        print(f"{nb.stem}: {state}")
        if args.all or state != "current":
            todo.append((nb, protocol))
    if args.list or not todo:
        return 0
    try:
        commit = require_clean(args.allow_dirty)
    except (DirtyTree, OSError, RuntimeError) as exc:
        parser.exit(2, f"error: {exc}\n")
    todo = longest_first(todo)
    print(f"records from commit {commit}; one thread per chapter, {args.jobs} at once, longest first")
    times, failed = {}, []
    t0 = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="chapter-records-"))
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(execute_at_full, nb, scratch, 3600, args.allow_dirty): nb for nb, _ in todo}
        for fut in tqdm(as_completed(futures), total=len(futures), desc="paper-scale records", unit="chapter"):
            nb = futures[fut]
            try:
                times[nb.stem] = fut.result()
            except Exception as exc:  # one failing chapter stops no other
                failed.append(nb.stem)
                tqdm.write(f"{nb.stem}: FAILED ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]})")
            else:
                tqdm.write(f"{nb.stem}: {times[nb.stem]:.0f} s")
    after = records.git_commit(records.repo_root())
    if after != commit:
        print(f"error: the tree changed while the chapters ran ({commit} -> {after}); nothing was copied to "
              f"results/ (the new records are in {scratch})")
        return 1
    print("\nchapter                             wall time   against the committed record")
    for nb, protocol in todo:
        if nb.stem not in times:
            continue
        new = load(protocol, folder=scratch)
        diff = "no committed record" if new.changed is None else (
            "; ".join(new.changed) if new.changed else "agrees within every check's tolerance")
        print(f"{nb.stem:35s} {times[nb.stem]:7.0f} s   {diff}")
        records.atomic_write_text(record_path(nb.stem), record_path(nb.stem, folder=scratch).read_text())
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"{'sum':35s} {sum(times.values()):7.0f} s")
    print(f"{'elapsed (--jobs ' + str(args.jobs) + ')':35s} {time.perf_counter() - t0:7.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)} (execute the notebook at BOOK_SCALE=full to see the error)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
