"""The compiled heat-map kernel against an independent simulator: escape fractions on one cell of Figure 1.

:func:`flatbias.simulate.simulate_axes` (numba, the heat-maps' kernel) and :func:`flatbias.simulate.axes_log_norms`
(plain torch, log-norms per axis, its own minibatch draw) simulate the same linearized SGD or SAM on the authors'
construction (SPEC §B.8a). On one (σ, B) cell both give the fraction of runs that cross the authors' 1000× blow-up
within ``steps``; :func:`escape_z` is the two-sample z of the difference (chapters 11 and 13 guard on its maximum).
"""

from __future__ import annotations

import math

import torch

from . import coherence as co
from . import simulate


def escape_z(n: int, sigma: int, B: int, eta: float, runs: int, steps: int, rho_over_alpha: float = 0.0,
             generator: torch.Generator | None = None) -> float:
    """|p_paths − p_kernel| / s.e. for one cell (σ, B) of the authors' family with n samples; ρ/α > 0: SAM.

    The standard error uses max(p(1−p) summed, 1/runs), so two fractions of 0 (or of 1) give z = 0."""
    k, a, d = co.authors_axes(n, int(sigma))
    r = float(rho_over_alpha)
    lp = simulate.axes_log_norms(k, a, d, int(B), eta, runs, steps, rho_over_alpha=r, generator=generator)
    p1 = float(((lp - lp[:, :1]).max(1).values >= math.log(simulate.BLOWUP)).double().mean())
    kw = dict(method="sam", rho_over_alpha=r) if r else {}
    dv = simulate.simulate_axes(k[None], a[None], torch.tensor([d]), torch.tensor([int(B)]), eta, reps=runs,
                                steps=steps, generator=generator, **kw)
    p2 = float(dv.double().mean())
    se = math.sqrt(max(p1 * (1 - p1) + p2 * (1 - p2), 1 / runs) / runs)
    return abs(p1 - p2) / se
