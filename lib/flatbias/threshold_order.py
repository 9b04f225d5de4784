"""Whether one list of stability thresholds orders its items as another does, with ties declared (chapter 18).

Thresholds bracketed to a relative width ``rtol`` (by bisection, or :func:`flatbias.momentum.bracket_root`) are
known only to ``rtol``: two of them that differ by at most ``rtol`` times the larger are *tied* (the root finder
cannot tell them apart). A pair of items (i, j) is
*reversed* when both lists resolve it (neither tied) and they order it oppositely; a tie is never a reversal.
"""

from __future__ import annotations

import numpy as np

from . import validate as vd


def tied(a: float, b: float, rtol: float) -> bool:
    """|a − b| ≤ rtol · max(|a|, |b|): the two thresholds cannot be told apart."""
    return bool(abs(float(a) - float(b)) <= rtol * max(abs(float(a)), abs(float(b))))


def compare(ref, new, rtol: float) -> dict:
    """Pairs (i < j) of items by the order of ``ref`` and of ``new`` (1-D, equal length): ``pairs``, ``reversed``
    (both resolved, opposite order), ``tied_ref`` and ``tied_new`` (pairs tied in each), ``kept`` = 1 −
    reversed / pairs."""
    ref = vd.array("ref", ref, 1)
    new = vd.array("new", new, 1)
    rtol = vd.nonnegative("rtol", rtol)
    if ref.shape != new.shape or ref.size < 2:
        raise vd.InvalidArgumentError(f"ref and new must hold the same ≥ 2 items; got {ref.size} and {new.size}")
    pairs = rev = t_ref = t_new = 0
    for i in range(ref.size):
        for j in range(i + 1, ref.size):
            pairs += 1
            a, b = tied(ref[i], ref[j], rtol), tied(new[i], new[j], rtol)
            t_ref, t_new = t_ref + a, t_new + b
            rev += (not a and not b and np.sign(ref[i] - ref[j]) != np.sign(new[i] - new[j]))
    return {"pairs": pairs, "reversed": int(rev), "tied_ref": int(t_ref), "tied_new": int(t_new),
            "kept": 1.0 - rev / pairs}


def by_column(thresholds: dict, labels, rtol: float) -> dict:
    """For thresholds ``{key: array (items, columns)}`` (column 0 the reference, e.g. β = 0), and ``labels`` of
    columns 1.. (e.g. the momenta): per ``(label, key)`` the :func:`compare` of column 0 with that column."""
    out = {}
    for key, T in thresholds.items():
        T = vd.array("thresholds", T, 2)
        if T.shape[1] != len(labels) + 1:
            raise vd.InvalidArgumentError(f"thresholds {key!r} need {len(labels) + 1} columns; got {T.shape[1]}")
        for j, lab in enumerate(labels, start=1):
            out[lab, key] = compare(T[:, 0], T[:, j], rtol)
    return out


def worst(records: dict) -> dict:
    """Records ``{"<label>_<set>_<B>": compare-dict}`` (as a chapter stores :func:`by_column`) reduced to the worst
    over the middle field (training sets): ``{(label, B): (reversed, pairs, tied at label)}`` of the set with the
    most reversed pairs (the first such set)."""
    out: dict = {}
    for key, c in records.items():
        lab, _, B = str(key).split("_")
        k = (float(lab), int(B))
        if k not in out or int(c["reversed"]) > out[k][0]:
            out[k] = (int(c["reversed"]), int(c["pairs"]), int(c["tied_new"]))
    return dict(sorted(out.items()))


def describe(records: dict) -> str:
    """:func:`worst` in words: ``"β = 0.5, B = 10: 0 of 15 reversed; β = 0.9, B = 10: 12 of 15 reversed (3
    tied); …"``."""
    parts = []
    for (lab, B), (rev, pairs, tie) in worst(records).items():
        extra = f" ({tie} tied)" if tie else ""
        parts.append(f"β = {lab:g}, B = {B}: {rev} of {pairs} reversed{extra}")
    return "; ".join(parts)


__all__ = ["tied", "compare", "by_column", "worst", "describe"]
