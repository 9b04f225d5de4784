"""Reading the CIFAR-10 training records back: grouped by optimizer, summarised next to the paper's table, plotted.

A record is what :func:`flatbias.cifar_train.train` writes (``results/cifar10/<run>.json``): settings (with the
protocol name, the data source and the number formats), per-epoch history, the final metrics and provenance. The
table names the data source of every row, so that a run on the JPEG mirror can never pass as one on the official
archive, and the precision.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from . import cifar, records, style

ORDER = ("SGD", "SAM ρ=0.05", "SAM ρ=0.1", "SAM ρ=0.2")  # the paper's table
PAPER = pd.DataFrame({"rank @99.9% (paper)": ["148.3 ± 3.2", "157.7", "144.3", "128.7"],
                      "coherence proxy (paper)": [1.0045, 1.0052, 1.0771, 1.0907]}, index=list(ORDER))
# the book's SGD and SAM colours, lighter for the smaller radii
COLORS = {"SGD": style.COLORS["sgd"], "SAM ρ=0.05": "#f4a6a6", "SAM ρ=0.1": "#e8605f", "SAM ρ=0.2": style.COLORS["sam"]}


def label(settings: dict) -> str:
    """'SGD' or 'SAM ρ=0.1' for a record's settings."""
    return "SGD" if settings["optimizer"] == "sgd" else f"SAM ρ={settings['rho']:g}"


def load_runs(folder: str | os.PathLike, protocol: str = "full") -> dict[str, list[dict]]:
    """Training records under ``folder`` of ``protocol`` ('full', 'reduced' or 'custom'; see
    :attr:`flatbias.cifar_train.TrainConfig.protocol`), grouped by optimizer label in the paper's order, one
    record per seed."""
    runs: dict[str, list[dict]] = {}
    for path in records.find_records(folder):
        rec = records.read_record(path)
        if rec["name"].startswith("cifar10/") and rec["settings"].get("protocol") == protocol:
            rec["path"] = str(path)
            runs.setdefault(label(rec["settings"]), []).append(rec)
    for recs in runs.values():
        recs.sort(key=lambda r: r["settings"]["seed"])
    return dict(sorted(runs.items(), key=lambda kv: (ORDER.index(kv[0]) if kv[0] in ORDER else len(ORDER), kv[0])))


def final(recs: list[dict], key: str) -> tuple[float, float, int]:
    """(mean, standard deviation, count) over seeds of a final metric: 'rank' (at 99.9 %), 'test_acc',
    'coherence_100' or 'coherence_1000'; metrics a record lacks are left out (nan, nan, 0 if none has it)."""
    vals = []
    for r in recs:
        last = r["metrics"]["final"]
        vals.append(last["rank"]["0.999"] if key == "rank" else last.get(key))
    vals = [v for v in vals if v is not None]
    return (float(np.mean(vals)), float(np.std(vals)), len(vals)) if vals else (np.nan, np.nan, 0)


def data_source(rec: dict) -> str:
    """'official archive', 'JPEG mirror', ... of a record (:func:`flatbias.cifar.source_kind`)."""
    data = rec["settings"].get("data", {})
    return data.get("source_kind") or cifar.source_kind(data)


def precision_label(rec: dict) -> str:
    """The number format a record's run trained in: 'tf32' (PyTorch's defaults), 'fp32' or 'bf16'; older records
    without ``numerics`` say what their settings asked for."""
    num = rec["settings"].get("numerics")
    if num is None:
        return rec["settings"].get("precision", "?")
    if num["precision"] == "tf32" and not num.get("tf32_hardware", True):
        return "tf32 (no TF32 hardware: fp32)"
    return num["precision"]


def _joined(values) -> str:
    return ", ".join(dict.fromkeys(values))


def commit_label(commit: str) -> str:
    """A record's commit, short: its first 10 hex digits, and where the tree held uncommitted changes
    (``records.git_commit`` ends it with ``+dirty``) a plain "with uncommitted changes": the code that made it is
    not that commit alone."""
    sha, dirty = commit.removesuffix(records.DIRTY), records.is_dirty(commit)
    return sha[:10] + (" with uncommitted changes" if dirty else "")


def provenance_line(rec: dict) -> str:
    """'hardware, date, commit, wall time' of a record."""
    prov = rec["provenance"]
    hw = prov["hardware"].get("gpu") or prov["hardware"].get("cpu")
    return f"{hw}, {prov['date_utc'][:10]}, {commit_label(prov['commit'])}, {prov['wall_time_s'] / 60:.0f} min"


def provenance_note(runs: dict[str, list[dict]]) -> str:
    """One line under a table: how many of its records were made from a tree with uncommitted changes."""
    recs = [r for rs in runs.values() for r in rs]
    dirty = sum(records.is_dirty(r["provenance"]["commit"]) for r in recs)
    if not recs:
        return "no records yet"
    if not dirty:
        return f"all {len(recs)} records were made from a clean commit"
    return (f"{dirty} of {len(recs)} records were made from a tree with uncommitted changes: the commit they name "
            "is not all of the code that made them")


def summary_table(runs: dict[str, list[dict]], paper: pd.DataFrame | None = PAPER) -> pd.DataFrame:
    """The paper's table (if given) with our final numbers beside it (mean ± sd over seeds, n = seeds)."""
    table = (paper.copy() if paper is not None else pd.DataFrame(index=list(runs))).astype(object)
    for lab, recs in runs.items():
        m, s, k = final(recs, "rank")
        table.loc[lab, "rank @99.9% (ours)"] = f"{m:.1f} ± {s:.1f} (n={k})" if k > 1 else f"{m:.0f}"
        for key, col in (("coherence_100", "proxy, 100 imgs (ours)"), ("coherence_1000", "proxy, 1000 imgs (ours)"),
                         ("test_acc", "test acc. (ours)")):
            v = final(recs, key)[0]
            table.loc[lab, col] = round(v, 4) if np.isfinite(v) else "not measured"
        table.loc[lab, "data source"] = _joined(data_source(r) for r in recs)
        table.loc[lab, "precision"] = _joined(precision_label(r) for r in recs)
        table.loc[lab, "hardware, date, commit, wall time"] = "; ".join(provenance_line(r) for r in recs)
    return table


def proxy_sizes(row: dict) -> list[int]:
    """The image counts n of the ``coherence_<n>`` proxies in a history row, smallest first."""
    return sorted(int(k.split("_")[1]) for k in row if k.startswith("coherence_") and k.split("_")[1].isdigit())


def smallest_proxy(row: dict) -> float:
    """The coherence proxy of a history row on its smallest image set (``coherence_<n>`` with the least n)."""
    return row[f"coherence_{proxy_sizes(row)[0]}"]


def curve_sizes(runs: dict[str, list[dict]]) -> list[int]:
    """The proxy sizes to draw as curves: the smallest of every record, and a larger one (the authors' 1000 images)
    when some record measured it at two epochs or more (a last-epoch-only value is a point of the table, not a curve)."""
    sizes: dict[int, int] = {}  # size -> the most epochs at which one record has it
    for recs in runs.values():
        for rec in recs:
            counts: dict[int, int] = {}
            for row in rec["metrics"]["history"]:
                for n in proxy_sizes(row):
                    counts[n] = counts.get(n, 0) + 1
            for n, c in counts.items():
                sizes[n] = max(sizes.get(n, 0), c)
    if not sizes:
        return []
    small = min(sizes)
    return [small] + [n for n in sorted(sizes) if n > small and sizes[n] >= 2][-1:]


def plot_curves(axes, runs: dict[str, list[dict]]) -> None:
    """Feature rank at 99.9 %, the coherence proxy and test accuracy over epochs, one line per seed. The proxy panel
    shows the smallest image set (solid) and, when the records have it at several epochs, the largest (dashed)."""
    sizes = curve_sizes(runs)
    panels = [("rank @99.9%", lambda r: r["rank"]["0.999"], None), ("test accuracy", lambda r: r["test_acc"], None)]
    panels.insert(1, ("coherence proxy", None, sizes))
    for ax, (title, get, proxies) in zip(axes, panels):
        for lab, recs in runs.items():
            for k, rec in enumerate(recs):
                rows = [r for r in rec["metrics"]["history"] if "rank" in r]
                for j, (n, style_) in enumerate(zip(proxies or [None], ("-", "--"))):
                    pts = [(r["epoch"], r[f"coherence_{n}"] if n else get(r)) for r in rows
                           if n is None or f"coherence_{n}" in r]
                    if not pts:
                        continue
                    ax.plot(*zip(*pts), style_, marker="o" if len(pts) < 40 else None, ms=3, color=COLORS.get(lab),
                            label=lab if k == 0 and j == 0 else None, alpha=0.9)
        if proxies and len(proxies) > 1:
            title += f"\n({proxies[0]} images solid, {proxies[1]} dashed)"
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
