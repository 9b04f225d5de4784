"""The whole regeneration of the paper-scale records, timed at several commits, with one and two jobs.

Each run is one ``python -m flatbias.chapter_record --all --jobs N`` in its own clean worktree of the commit under
test (numba caches cleared first), its output saved to a log; this script reads the logs (the "NN_name: T s" lines
and the "elapsed" line chapter_record prints) and writes one record, a run per ``--run NAME COMMIT LOG``:

    git worktree add /tmp/before BEFORE && git worktree add /tmp/after AFTER
    find /tmp/before/lib /tmp/after/lib -name __pycache__ -exec rm -rf {} +      # before every run
    (cd /tmp/after && PYTHONPATH=lib python -m flatbias.chapter_record --all --jobs 2 > after_2.log 2>&1)
    ... the same for after_1, before_1 (with OMP/MKL/OPENBLAS/NUMBA_NUM_THREADS=1) and before_2 ...
    python benchmarks/regeneration_timing.py --run before_1_job BEFORE before_1.log \
        --run after_1_job AFTER after_1.log ... --conditions "..." \
        --record results/regeneration/chapter_records_timing.json

A run stopped before its end (no "elapsed" line) records ``elapsed_s: null`` and ``stopped_at_s`` if given.
``--keep RECORD NAME AS`` carries a run of an earlier record (made by this script; its log may be gone) into the
new one under the name AS, with its commit, its machine and the earlier record's conditions and date.
``settings.hardware`` names the machine of each run (runs on different machines can sit in one record).
"""

from __future__ import annotations

import argparse
import re

from flatbias.records import read_record, write_record


def parse(text: str) -> tuple[dict[str, int], int | None]:
    """Per-chapter wall times and the elapsed time of one chapter_record log."""
    per = {m.group(1): int(m.group(2)) for m in re.finditer(r"(\d\d_[a-z_0-9]+): (\d+) s", text)}
    m = re.search(r"elapsed \(--jobs \d+\)\s+(\d+) s", text)
    return per, int(m.group(1)) if m else None


def kept_run(path: str, name: str) -> dict:
    """Run ``name`` of an earlier timing record: its per-chapter times, totals, commit, and the name, conditions and
    date it was measured under (its own ``kept_runs`` entry where it was itself carried over)."""
    rec = read_record(path)
    per, st = rec["metrics"]["per_chapter_s"], rec["settings"]
    if name not in per or name not in st.get("commits", {}):
        raise SystemExit(f"error: --keep: {path} has no run {name!r} with its commit; it has {sorted(per)}")
    origin = st.get("kept_runs", {}).get(name, {"from": name, "conditions": st.get("conditions", ""),
                                                "date_utc": rec["provenance"]["date_utc"]})
    hardware = st.get("hardware", "")  # one string for every run in records made before runs named their machine
    return {"per_chapter_s": per[name], "totals": rec["metrics"]["totals"][name], "commit": st["commits"][name],
            "hardware": hardware.get(name, "") if isinstance(hardware, dict) else hardware,
            "from": origin["from"], "conditions": origin["conditions"], "date_utc": origin["date_utc"]}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", nargs=3, action="append", required=True, metavar=("NAME", "COMMIT", "LOG"),
                   help="one timed regeneration: its name (e.g. after_2_jobs), the commit it ran, its log")
    p.add_argument("--conditions", default="", help="how the runs were made (load, threads, caps)")
    p.add_argument("--hardware", default="", help="the machine of the --run runs (a kept run keeps its own)")
    p.add_argument("--stopped-at", type=int, default=None, help="cap (s) of a run that did not finish")
    p.add_argument("--keep", nargs=3, action="append", default=[], metavar=("RECORD", "NAME", "AS"),
                   help="carry run NAME of an earlier timing record into this one, named AS")
    p.add_argument("--record", required=True)
    a = p.parse_args(argv)
    per, totals, commits, hardware, kept = {}, {}, {}, {}, {}
    for path, name, new in a.keep:
        run = kept_run(path, name)
        per[new], totals[new], commits[new] = run["per_chapter_s"], run["totals"], run["commit"]
        hardware[new] = run["hardware"]
        kept[new] = {"from": run["from"], "conditions": run["conditions"], "date_utc": run["date_utc"]}
    for name, commit, path in a.run:
        with open(path, errors="replace") as f:
            per[name], elapsed = parse(f.read())
        commits[name], hardware[name] = commit, a.hardware
        totals[name] = {"sum_of_chapters_s": sum(per[name].values()), "elapsed_s": elapsed}
        if elapsed is None and a.stopped_at is not None:
            totals[name]["stopped_at_s"] = a.stopped_at
    write_record(a.record, "chapter_records_regeneration", "full",
                 {"command": "python -m flatbias.chapter_record --all --jobs N, each run in its own clean "
                             "worktree, numba caches cleared first",
                  "commits": commits, "hardware": hardware, "conditions": a.conditions,
                  **({"kept_runs": kept} if kept else {}),
                  "times": "wall time of each chapter as chapter_record prints it, s"},
                 {"per_chapter_s": per, "totals": totals})
    for name in per:
        print(f"{name:24s} sum {totals[name]['sum_of_chapters_s']:6d} s   elapsed {totals[name]['elapsed_s']} s")


if __name__ == "__main__":
    main()
