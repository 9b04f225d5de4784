"""When a recorded, decaying quantity first falls to a level: the first crossing, interpolated in log.

Chapter 08 compares how many steps label-noise SGD and 1-SAM need to bring the sharpness gap
(F − F*)/F* on M down to a level; the runs are recorded every few thousand steps, so the crossing is
placed between the two records around it by linear interpolation of log(gap) in the step count.
"""

from __future__ import annotations

import numpy as np

__all__ = ["first_crossing", "steps_to"]


def first_crossing(steps, values, level: float) -> float:
    """The first step at which ``values`` (> 0, recorded at ``steps``) falls to ``level``.

    Interpolated in log(values) between the last record above ``level`` and the first one at or below it;
    0.0 when the first record is already at or below; ``inf`` when no record is."""
    steps, values = np.asarray(steps, float), np.asarray(values, float)
    hit = np.flatnonzero(values <= level)
    if not len(hit):
        return float("inf")
    if hit[0] == 0:
        return 0.0
    a, b = hit[0] - 1, hit[0]
    la, lb = np.log(values[a]), np.log(max(values[b], 1e-300))
    frac = (la - np.log(level)) / (la - lb)
    return float(steps[a] + frac * (steps[b] - steps[a]))


def steps_to(res: dict, level: float) -> np.ndarray:
    """Per draw of a :func:`flatbias.label_noise.collapse` result: the first step with (F − F*)/F* ≤ ``level``
    (its first noise level), by :func:`first_crossing`."""
    gap = (res["F_M"][0] - res["F_star"][:, None]) / res["F_star"][:, None]
    return np.array([first_crossing(res["steps"], g, level) for g in gap])
