"""Regression checks of the heavy-ball operator 𝒯_β (:mod:`flatbias.momentum`) against independent computations
(chapter 18's guards). Each returns a discrepancy that is round-off (or, for Monte Carlo, a z-score of order one)
when the operator is right, and large when it is not.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import momentum as mo
from . import stability


def brute_force(H: torch.Tensor, eta: float, B: int, betas) -> float:
    """max |𝒯_β − the average of A_S ⊗ A_S over every minibatch S|, over ``betas`` and both samplings."""
    return max(float((mo.momentum_operator(H, eta, B, b, sampling=s).dense()
                      - mo.enumerated_operator(H, eta, B, b, s)).abs().max())
               for b in betas for s in stability.SAMPLINGS)


def beta_zero(H: torch.Tensor, eta: float, B: int, Z: torch.Tensor) -> float:
    """At β = 0: the top-left block of 𝒯_β(Z) against 𝒯(Z₁₁) (relative), and η*_0 against the β = 0 threshold
    of :mod:`flatbias.stability` (relative); the larger. ``Z``: a PSD 2d × 2d matrix."""
    d = H.shape[1]
    T0 = stability.mean_square_operator(H, eta, B)
    Zb = mo.momentum_operator(H, eta, B, 0.0)(Z)
    blk = float((Zb[:d, :d] - T0(Z[:d, :d])).abs().max()) / float(T0(Z[:d, :d]).abs().max())
    return max(blk, abs(mo.critical_eta(H, B, 0.0) / stability.critical_eta(H, B) - 1))


def diagonal(D: torch.Tensor, eta: float, B: int, betas, rho_over_alpha: float) -> float:
    """Diagonal families D (n, d): the closed-form η*_β and the per-axis 3 × 3 radius against the dense operator
    (max relative difference), for SGD and SAM at ``rho_over_alpha``."""
    H = torch.diag_embed(D)
    return max(max(abs(float(mo.critical_eta_diagonal(D, B, b, m, rho_over_alpha=r))
                       / mo.critical_eta(H, B, b, m, rho_over_alpha=r) - 1),
                   abs(float(mo.spectral_radius_diagonal(D, eta, B, b, m, rho_over_alpha=r))
                       / mo.spectral_radius(H, eta, B, b, m, rho_over_alpha=r, algorithm="dense") - 1))
               for b in betas for m, r in (("sgd", 0.0), ("sam", rho_over_alpha)))


def monte_carlo(H: torch.Tensor, eta: float, B: int, beta: float, steps: int, runs: int,
                generator: torch.Generator) -> float:
    """Simulated heavy ball from w₀ = 1 against tr(𝒯_β^t Z₀)₁₁: the largest |z-score| of the mean of ‖w_t‖² over
    t = 1..steps."""
    d = H.shape[1]
    w0 = torch.ones(d, dtype=torch.float64)
    sim = mo.simulate(H, eta, B, beta, w0, steps, runs, generator=generator)
    z0 = torch.cat([w0, w0])
    exact = mo.top_left_traces(mo.momentum_operator(H, eta, B, beta), torch.outer(z0, z0), steps)
    se = sim.std(1) / math.sqrt(sim.shape[1])
    return float(((sim.mean(1) - exact) / se)[1:].abs().max())


def margin_mismatches(H: torch.Tensor, B: int, betas, thresholds, factors=(0.5, 0.9, 1.1)) -> int:
    """How often the fast test μ(η) < 1 (:func:`flatbias.momentum.margin`) and the dense ρ(𝒯_β) < 1 disagree, at
    ``factors`` × each β's threshold."""
    fam = stability.family(H)
    return int(sum((mo.margin(fam, f * e, B, b) < 1)
                   != (mo.spectral_radius(H, f * e, B, b, algorithm="dense") < 1)
                   for b, e in zip(betas, thresholds) for f in factors))


def edge_full_batch(H: torch.Tensor, betas) -> float:
    """At B = n (the whole set every step) η*_β must be the deterministic edge 2(1 + β)/λ₁: max |ratio − 1|."""
    n = H.shape[0]
    lam = float(torch.linalg.eigvalsh(H.mean(0))[-1])
    return max(abs(mo.critical_eta(H, n, b) * lam / (2 * (1 + b)) - 1) for b in betas)


def never_falls(crit: np.ndarray, rtol: float = 1e-12) -> float:
    """Share of adjacent rows (crit: (σ, B) thresholds, σ increasing) where the threshold falls by more than
    ``rtol`` relative."""
    crit = np.asarray(crit, dtype=float)
    return float(np.mean(np.diff(crit, axis=0) < -rtol * np.abs(crit[1:])))


__all__ = ["brute_force", "beta_zero", "diagonal", "monte_carlo", "margin_mismatches", "edge_full_batch",
           "never_falls"]
