"""A chapter's paper-scale result record: written by a full-scale run, read back by every other build.

At ``full`` scale a chapter runs its experiment, judges the checks of its :class:`~flatbias.claims.Protocol`
and writes ``results/chapters/<chapter>.json``: settings, every measured check, the data behind its
figures, provenance, and a **fingerprint** of what produced it (the protocol's hash and the hash of each
``flatbias`` module the run imported). At ``smoke`` scale the chapter re-runs its pipeline small and
renders the paper-scale figures and verdict from this record. A record whose fingerprint no longer
matches the code or the protocol is *stale*: ``tests/test_chapter_records.py`` fails and names the
command that regenerates it (``make records``).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from . import records
from .claims import Evaluation, Protocol

FOLDER = ("results", "chapters")
# modules that only present results (their edits cannot change a measured number)
PRESENTATION = frozenset({"flatbias", "flatbias.claims", "flatbias.chapter_record", "flatbias.records",
                          "flatbias.scale", "flatbias.style", "flatbias.verdict", "flatbias.sphinxext"})


def record_path(chapter: str, root: str | Path | None = None) -> Path:
    """``results/chapters/<chapter>.json`` in the repository."""
    return Path(root or records.repo_root()).joinpath(*FOLDER, f"{chapter}.json")


def module_hash(path: str | Path) -> str:
    """Hash of a module's code: its syntax tree without docstrings, so comments and prose do not count."""
    tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()[:16]


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


def fingerprint(protocol: Protocol) -> dict:
    return {"protocol": protocol.fingerprint(), "modules": imported_modules()}


def stale_reasons(record: Mapping, protocol: Protocol) -> list[str]:
    """Why ``record`` no longer matches the protocol and the code (empty when it is current)."""
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
    return reasons


def write(protocol: Protocol, measured: Mapping[str, Any], data: Mapping[str, Any],
          wall_time_s: float, root: str | Path | None = None) -> Path:
    """Write the chapter's paper-scale record (atomically)."""
    protocol.evaluate(measured, "full")  # undeclared check keys are an error before anything is written
    record = records.make_record(protocol.chapter, "full", dict(protocol.at("full")),
                                 {"checks": dict(measured), "data": dict(data)}, wall_time_s)
    record["fingerprint"] = fingerprint(protocol)
    text = json.dumps(record, indent=None, separators=(",", ":"), allow_nan=False)
    return records.atomic_write_text(record_path(protocol.chapter, root), text + "\n")


@dataclass
class PaperScale:
    """What a chapter shows at the paper's scale: the record (or None) and its evaluation."""

    protocol: Protocol
    record: dict | None
    path: Path
    stale: list[str]

    @property
    def evaluation(self) -> Evaluation:
        measured = None if self.record is None else self.record["metrics"]["checks"]
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
        return (f"record {rel}: {hw}, {p['date_utc']}, commit {p['commit'][:12]}, "
                f"wall time {p['wall_time_s']:.0f} s, fingerprint {state}")


def load(protocol: Protocol, root: str | Path | None = None) -> PaperScale:
    """The committed paper-scale record of ``protocol.chapter`` (record None when there is none)."""
    path = record_path(protocol.chapter, root)
    if not path.exists():
        return PaperScale(protocol, None, path, [])
    rec = records.read_record(path)
    return PaperScale(protocol, rec, path, stale_reasons(rec, protocol))


def paper_scale(protocol: Protocol, scale: str, measured: Mapping[str, Any], data: Mapping[str, Any],
                wall_time_s: float, root: str | Path | None = None) -> PaperScale:
    """At ``full``: write this run's record, then read it back. At ``smoke``: read the committed one."""
    if scale == "full":
        write(protocol, measured, data, wall_time_s, root)
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
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    tagged = [c for c in cells if c["cell_type"] == "code" and "protocol" in c.get("metadata", {}).get("tags", [])]
    if not tagged:
        return None
    if len(tagged) > 1:
        raise ValueError(f"{notebook.name}: more than one cell is tagged 'protocol'")
    namespace: dict[str, Any] = {"__name__": f"protocol_of_{notebook.stem}"}
    exec(compile("".join(tagged[0]["source"]), f"{notebook.name}:protocol", "exec"), namespace)
    protocol = namespace.get("PROTOCOL")
    if not isinstance(protocol, Protocol):
        raise ValueError(f"{notebook.name}: the 'protocol' cell must define PROTOCOL = claims.Protocol(...)")
    if protocol.chapter != notebook.stem:
        raise ValueError(f"{notebook.name}: PROTOCOL.chapter is {protocol.chapter!r}; expected {notebook.stem!r}")
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


def execute_at_full(notebook: Path, timeout_s: int = 3600) -> float:
    """Execute a chapter at ``full`` scale (it writes its record); the executed copy is discarded."""
    import os
    import time

    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    old = os.environ.get("BOOK_SCALE")
    os.environ["BOOK_SCALE"] = "full"  # the kernel inherits it
    t0 = time.perf_counter()
    try:
        NotebookClient(nb, timeout=timeout_s, kernel_name="python3",
                       resources={"metadata": {"path": str(notebook.parent)}}).execute()
    finally:
        if old is None:
            os.environ.pop("BOOK_SCALE", None)
        else:
            os.environ["BOOK_SCALE"] = old
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    """``python -m flatbias.chapter_record [--all] [--list] [CHAPTER ...]``: regenerate paper-scale records."""
    import argparse

    from tqdm import tqdm

    parser = argparse.ArgumentParser(prog="python -m flatbias.chapter_record",
                                     description="Regenerate the chapters' paper-scale records that are "
                                                 "missing or stale (or all with --all).")
    parser.add_argument("chapters", nargs="*", help="chapter numbers or notebook stems (default: every chapter)")
    parser.add_argument("--all", action="store_true", help="rerun current records too")
    parser.add_argument("--list", action="store_true", help="only list each record's state")
    parser.add_argument("--jobs", type=int, default=1, help="chapters run at once (default 1; each uses one core)")
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
        paper = load(protocol)
        state = "missing" if paper.record is None else ("stale: " + "; ".join(paper.stale) if paper.stale
                                                        else "current")
        print(f"{nb.stem}: {state}")
        if args.all or state != "current":
            todo.append(nb)
    if args.list or not todo:
        return 0
    import time
    from concurrent.futures import ProcessPoolExecutor, as_completed

    times = {}
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(execute_at_full, nb): nb for nb in todo}
        failed = []
        for fut in tqdm(as_completed(futures), total=len(futures), desc="paper-scale records", unit="chapter"):
            nb = futures[fut]
            try:
                times[nb.stem] = fut.result()
            except Exception as exc:  # one failing chapter stops no other
                failed.append(nb.stem)
                tqdm.write(f"{nb.stem}: FAILED ({type(exc).__name__}: {str(exc).strip().splitlines()[-1][:200]})")
            else:
                tqdm.write(f"{nb.stem}: {times[nb.stem]:.0f} s")
    print("\nchapter                             wall time")
    for stem, t in times.items():
        print(f"{stem:35s} {t:7.0f} s")
    print(f"{'sum':35s} {sum(times.values()):7.0f} s")
    print(f"{'elapsed (--jobs ' + str(args.jobs) + ')':35s} {time.perf_counter() - t0:7.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)} (execute the notebook at BOOK_SCALE=full to see the error)")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
