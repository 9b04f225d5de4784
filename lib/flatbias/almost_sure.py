"""The almost-sure growth rate of linearized SGD on the authors' Figure-1 construction (chapter 11).

A typical run of w_{t+1} = (I − ηĤ_t)w_t grows like exp(tγ) per axis, γ = max_k E log|1 − ηĥ_k| (Lyapunov
exponent of each axis: the axes of the construction are independent products), which is smaller than the
mean-square rate log ρ(𝒯)/2 when the multipliers are heavy-tailed. On the construction (SPEC §B.8a: σ samples share
axis e_0 with weight a = 2n/σ, the others are orthogonal) with B indices drawn without replacement, the count of
shared samples in a minibatch is hypergeometric(n, σ, B) and an orthogonal axis is hit with probability B/n, so γ is
exact.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import hypergeom


def authors_growth_rate(sigma: int, B: int, n: int, eta: float) -> float:
    """γ = max over axes of E log|1 − η ĥ_k| for the cell (σ, B) of the construction with n samples
    (−inf when an axis is annihilated with probability one)."""
    a = 2 * n / sigma
    x = np.arange(0, min(sigma, B) + 1)
    p = hypergeom(n, sigma, B).pmf(x)
    with np.errstate(divide="ignore"):
        shared = float((p * np.log(np.abs(1 - eta * a * x / B))).sum())
        orth = (B / n) * np.log(abs(1 - eta * a / B)) if sigma < n else -np.inf
    return max(shared, float(orth))
