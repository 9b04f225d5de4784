"""Sufficient divergence conditions tested on one Hessian family against the exact mean-square threshold.

A sufficient condition (Dexter et al.'s Theorem 1 for SGD, Paper 2's Theorem 3.2 for SAM, both as reconstructed in
SPEC §B.3/§B.6) names a learning rate η_c at and above which linearized SGD or SAM must diverge in mean square. On a
family we measure the exact radius ρ(𝒯) at f·η_c (a *violation* is f ≥ 1 with ρ(𝒯) < 1), the ratio η_c/η* to the
exact threshold η* (≥ 1 for a sufficient condition) and whether ρ(𝒯) does cross 1 at η* (a check of
:func:`flatbias.stability.critical_eta`, not of the theorem). Chapters 11 and 13 run one trial per random family
(:func:`random_sgd_trials`, :func:`random_sam_trials`: clustered families, :mod:`flatbias.families`).
"""

from __future__ import annotations

import torch

import numpy as np

from . import coherence as co
from . import stability
from .families import clustered_family, draw_int

#: relative step either side of η* at which ρ(𝒯) must be below and above 1
CROSS = 1e-6
SAMPLINGS = ("bernoulli", "without_replacement")


def crosses_at(H: torch.Tensor, eta_star: float, B: int, method: str = "sgd", sampling: str = "bernoulli",
               rho_over_alpha: float = 0.0, rel: float = CROSS) -> bool:
    """ρ(𝒯) < 1 just below ``eta_star`` and > 1 just above (relative step ``rel``)."""
    lo, hi = (stability.spectral_radius(H, eta_star * (1 + e), B, method, sampling=sampling,
                                        rho_over_alpha=rho_over_alpha) for e in (-rel, rel))
    return lo < 1 < hi


def sgd_trial(H: torch.Tensor, B: int, f: float, samplings=SAMPLINGS) -> tuple[list[float], bool]:
    """Dexter's condition on one family: ``([f, ρ(𝒯) at f·η_D, η_D/η*] + the same per further sampling, crossing)``.

    ``η_D`` is :func:`flatbias.stability.dexter_eta`; one (radius, ratio) pair per entry of ``samplings``;
    ``crossing``: ρ(𝒯) crosses 1 at η* under every sampling."""
    eta_d = stability.dexter_eta(H, B)
    row, crossing = [float(f)], True
    for smp in samplings:
        star = stability.critical_eta(H, B, sampling=smp)
        crossing = crossing and crosses_at(H, star, B, sampling=smp)
        row += [stability.spectral_radius(H, f * eta_d, B, sampling=smp), eta_d / star]
    return row, crossing


def sam_trial(H: torch.Tensor, B: int, rho_over_alpha: float, f: float,
              sampling: str = "bernoulli") -> tuple[tuple[float, ...], bool]:
    """Theorem 3.2 on one family: ``((f, ρ(𝒯_SAM) at f·η_SAM, η_SAM/η*, η*_SAM/η*_SGD, ρ/α, σ, κ(H)), crossing)``.

    ``η_SAM`` is :func:`flatbias.stability.sam_eta`; κ(H) = λ_1(H)/λ_min(H); ``crossing``: ρ(𝒯_SAM) crosses 1
    at η*_SAM."""
    r = float(rho_over_alpha)
    sig, lam = co.coherence(H)[0], torch.linalg.eigvalsh(H.mean(0))
    eta_sam = stability.sam_eta(H, B, r, sigma=sig)
    star = stability.critical_eta(H, B, "sam", sampling=sampling, rho_over_alpha=r)
    star_sgd = stability.critical_eta(H, B, sampling=sampling)
    crossing = crosses_at(H, star, B, "sam", sampling, r)
    rho_f = stability.spectral_radius(H, f * eta_sam, B, "sam", sampling=sampling, rho_over_alpha=r)
    return (float(f), rho_f, eta_sam / star, star / star_sgd, r, float(sig), float(lam[-1] / lam[0])), crossing


def _tau(generator) -> float:
    """τ log-uniform on [10^-1.5, 10^0.5]: from nearly identical samples to nearly independent ones."""
    return float(10 ** (2 * torch.rand(1, generator=generator) - 1.5))


def _factor(f_range, generator) -> float:
    lo, hi = f_range
    return lo + (hi - lo) * float(torch.rand(1, generator=generator))


def random_sgd_trials(count: int, n_range, d_range, rank_range, f_range,
                      generator: torch.Generator | None = None) -> tuple[np.ndarray, bool]:
    """:func:`sgd_trial` on ``count`` random clustered families: rows ``(f, ρ_Bern, ratio_Bern, ρ_wor, ratio_wor)``
    and whether ρ(𝒯) crossed 1 at η* on every family. Per family, in this order: n, d, rank (uniform integers in
    the ranges), τ, B uniform in [1, n − 1], the family, f uniform in ``f_range``."""
    rows, crossing = [], True
    for _ in range(int(count)):
        n, d, k = (draw_int(r, generator) for r in (n_range, d_range, rank_range))
        tau = _tau(generator)
        B = int(torch.randint(1, n, (1,), generator=generator))
        H = clustered_family(n, d, k, tau, generator)
        row, ok = sgd_trial(H, B, _factor(f_range, generator))
        rows.append(row)
        crossing = crossing and ok
    return np.array(rows), crossing


def random_sam_trials(count: int, n_range, d_range, ratios, f_range,
                      generator: torch.Generator | None = None) -> tuple[np.ndarray, bool]:
    """:func:`sam_trial` (Bernoulli sampling) on ``count`` random full-rank clustered families: rows
    ``(f, ρ(𝒯_SAM) at f·η_SAM, η_SAM/η*, η*_SAM/η*_SGD, ρ/α, σ, κ(H))`` and whether ρ(𝒯_SAM) crossed 1 at η* on
    every family. Per family, in this order: n, d, τ, the family (rank d), B, ρ/α (one of ``ratios``), f."""
    rows, crossing = [], True
    for _ in range(int(count)):
        n, d = draw_int(n_range, generator), draw_int(d_range, generator)
        H = clustered_family(n, d, d, _tau(generator), generator)
        B = int(torch.randint(1, n, (1,), generator=generator))
        r = ratios[int(torch.randint(0, len(ratios), (1,), generator=generator))]
        row, ok = sam_trial(H, B, r, _factor(f_range, generator))
        rows.append(row)
        crossing = crossing and ok
    return np.array(rows), crossing


def violations(rows: np.ndarray, rho_column: int) -> int:
    """Families that meet the condition (f = column 0 ≥ 1) yet stay stable (ρ(𝒯) in ``rho_column``, by
    :func:`flatbias.stability.stable`: a radius within round-off of 1 is not stable)."""
    rows = np.asarray(rows, dtype=float)
    return int(((rows[:, 0] >= 1) & stability.stable(rows[:, rho_column])).sum())
