"""SAM against SGD at the end of training: per-seed last-epoch values of Paper 2's two-layer ReLU runs, compared.

``runs`` is ``{method: {seed: history}}`` as :func:`flatbias.train_relu.run` returns it (a history maps a metric
to its per-epoch list). Every comparison pairs the runs of two methods by seed, so both methods get the same
seeds, epochs and learning rate: one declared budget for both.
"""

from __future__ import annotations

import numpy as np

from . import validate as vd


def last(runs: dict, key: str, method: str) -> np.ndarray:
    """The last-epoch value of ``key`` for each seed of ``method``, in the order of the seeds."""
    if method not in runs:
        raise vd.InvalidArgumentError(f"no runs of method {method!r}; the runs hold {sorted(runs)}")
    by_seed = runs[method]
    if not by_seed:
        raise vd.InvalidArgumentError(f"method {method!r} has no runs")
    missing = sorted(s for s, h in by_seed.items() if key not in h)
    if missing:
        raise vd.InvalidArgumentError(f"metric {key!r} missing from {method} seeds {missing}")
    return np.array([by_seed[s][key][-1] for s in sorted(by_seed, key=str)], dtype=float)


def _paired(runs: dict, key: str, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    if sorted(runs.get(a, {}), key=str) != sorted(runs.get(b, {}), key=str):
        raise vd.InvalidArgumentError(f"methods {a!r} and {b!r} must have run on the same seeds")
    return last(runs, key, a), last(runs, key, b)


def mean_drop(runs: dict, key: str, a: str = "sgd", b: str = "sam_0.2") -> float:
    """mean over seeds of ``key`` at the end of ``a`` minus that of ``b`` (> 0: ``b`` ends lower)."""
    va, vb = _paired(runs, key, a, b)
    return float(va.mean() - vb.mean())


def share_lower(runs: dict, key: str, a: str = "sgd", b: str = "sam_0.2") -> float:
    """Share of seeds in which ``b`` ends with a strictly lower ``key`` than ``a`` on the same seed."""
    va, vb = _paired(runs, key, a, b)
    return float(np.mean(vb < va))


def ratio_of_means(runs: dict, key: str, a: str = "sgd", b: str = "sam_0.2") -> float:
    """mean of ``key`` at the end of ``b`` over that of ``a``."""
    va, vb = _paired(runs, key, a, b)
    return float(vb.mean() / va.mean())


def share_falling(runs: dict, key: str, methods) -> float:
    """Share of the steps along ``methods`` (in order) at which the last-epoch mean of ``key`` falls."""
    means = [last(runs, key, m).mean() for m in methods]
    if len(means) < 2:
        raise vd.InvalidArgumentError(f"need at least two methods to compare; got {list(methods)}")
    return float(np.mean(np.diff(means) < 0))
