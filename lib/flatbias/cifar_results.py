"""Reading the CIFAR-10 training records back: grouped by optimizer, summarised next to the paper's table, plotted.

A record is what :func:`flatbias.cifar_train.train` writes (``results/cifar10/<run>.json``): settings (with the
protocol name), per-epoch history, the final metrics and provenance.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from . import records, style

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


def provenance_line(rec: dict) -> str:
    """'hardware, date, commit, wall time' of a record."""
    prov = rec["provenance"]
    hw = prov["hardware"].get("gpu") or prov["hardware"].get("cpu")
    return f"{hw}, {prov['date_utc'][:10]}, {prov['commit'][:10]}, {prov['wall_time_s'] / 60:.0f} min"


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
        table.loc[lab, "hardware, date, commit, wall time"] = "; ".join(provenance_line(r) for r in recs)
    return table


def smallest_proxy(row: dict) -> float:
    """The coherence proxy of a history row on its smallest image set (``coherence_<n>`` with the least n)."""
    sizes = [int(k.split("_")[1]) for k in row if k.startswith("coherence_") and k.split("_")[1].isdigit()]
    return row[f"coherence_{min(sizes)}"]


def plot_curves(axes, runs: dict[str, list[dict]]) -> None:
    """Feature rank at 99.9 %, the smallest-set coherence proxy and test accuracy over epochs, one line per seed."""
    panels = [("rank @99.9%", lambda r: r["rank"]["0.999"]), ("coherence proxy", smallest_proxy),
              ("test accuracy", lambda r: r["test_acc"])]
    for ax, (title, get) in zip(axes, panels):
        for lab, recs in runs.items():
            for k, rec in enumerate(recs):
                rows = [r for r in rec["metrics"]["history"] if "rank" in r]
                ax.plot([r["epoch"] for r in rows], [get(r) for r in rows], marker="o" if len(rows) < 40 else None,
                        ms=3, color=COLORS.get(lab), label=lab if k == 0 else None, alpha=0.9)
        ax.set(title=title, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].legend(fontsize=8)
