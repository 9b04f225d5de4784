"""The values of chapter 17's claims from CIFAR-10 training records: SGD against SAM at ρ = 0.2.

Given the records of one protocol grouped by optimizer (:func:`flatbias.cifar_results.load_runs`), the final feature
rank (99.9 % explained variance) of SGD minus that of SAM ρ = 0.2 and the final coherence proxy (100 images) of SAM
minus that of SGD, each a mean over seeds, and the number of seeds both optimizers have for each (the power of the
comparison). A value is None where the records do not hold it (not yet run), never a number made up.
"""

from __future__ import annotations

from . import cifar_results

SGD, SAM = "SGD", "SAM ρ=0.2"


def _final(runs: dict, label: str, key: str) -> tuple[float | None, int]:
    if label not in runs:
        return None, 0
    mean, _, count = cifar_results.final(runs[label], key)
    return (float(mean) if count else None), int(count)


def gaps(runs: dict) -> dict:
    """``rank_gap`` (SGD − SAM), ``proxy_gap`` (SAM − SGD), ``seeds_rank`` and ``seeds_proxy`` (the smaller of the
    two optimizers' seed counts with that metric); None where a metric is missing for either optimizer."""
    out = {}
    for key, metric, sign in (("rank", "rank", 1), ("proxy", "coherence_100", -1)):
        (a, na), (b, nb) = _final(runs, SGD, metric), _final(runs, SAM, metric)
        out[f"{key}_gap"] = None if a is None or b is None else sign * (a - b)
        out[f"seeds_{key}"] = min(na, nb) if out[f"{key}_gap"] is not None else None
    return out
