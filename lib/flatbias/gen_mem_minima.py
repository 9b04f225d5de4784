"""The six equally flat minima of Paper 2's parity task, and what decides which SGD and SAM can stay at.

For one training set of ``y = x1 x2`` on ``{-1, +1}^d``: the (C, r)-generalizing minima for each C (Paper 2,
Definition 2 as read from the authors' code) and our memorizing one (one unit per training point), all at
``r = (d+1)^{1/4}`` (equal trace and per-sample sharpness). :func:`describe` gives each minimum's fit, fresh-point
accuracy, exact coherence and flatness; :func:`thresholds` the exact step size ``η*`` up to which linearized SGD
(every batch size) and SAM (each ρ/α) stay; :func:`sam_sigma` SAM's effective coherence (our reconstruction of
Theorem 3.6: the coherence of the family ``2 h_i h_iᵀ``, ``h_i = M^{1/2} g_i``, ``M = I + (ρ/α) H``).
"""

from __future__ import annotations

import numpy as np
import torch

from . import coherence, relu_hessian, relu_net, stability


def names(Cs) -> list[str]:
    """``["C=2", …, "memorizing"]``."""
    return [f"C={C}" for C in Cs] + ["memorizing"]


def build(seed: int, d: int, h: int, n: int, Cs, fresh: int):
    """``(X, y, X_fresh, y_fresh, {name: θ})`` for the training set drawn with torch seed ``seed``."""
    g = torch.Generator().manual_seed(int(seed))
    X, y = relu_net.parity_data(n, d, g)
    X_fresh, y_fresh = relu_net.parity_data(fresh, d, g)
    sols = {f"C={C}": relu_net.generalizing_solution(C, d, h) for C in Cs}
    sols["memorizing"] = relu_net.memorizing_solution(X, y, h)
    return X, y, X_fresh, y_fresh, sols


def describe(theta, X, y, X_fresh, y_fresh, *, h: int) -> dict:
    """Fit, fresh-point accuracy, coherence (two ways), largest off-diagonal |S_ij|, λ1(H) (Lanczos and Gram),
    tr H and the largest ‖g_i‖² of one minimum."""
    coh = relu_hessian.coherence(theta, X, y, h=h)
    G = relu_hessian.per_sample_gradients(theta, X, h=h)
    off = coh.S - torch.diag(torch.diag(coh.S))
    n = X.shape[0]
    return dict(fit_err=float((relu_net.forward(theta, X, h=h) - y).abs().max()),
                fresh_acc=relu_net.accuracy(theta, X_fresh, y_fresh, h=h),
                sigma=coh.sigma, lam_S=coh.lambda_S, max_lam_Hi=coh.max_lambda_Hi,
                offdiag=float(off.abs().max()),
                sigma_G=coherence.coherence_from_gradients(G)[0],
                lam_H=relu_hessian.full_hessian_lambda_max(theta, X, y, h=h),
                lam_gram=float(torch.linalg.eigvalsh(2 * G @ G.T / n)[-1]),
                tr_H=relu_hessian.full_hessian_trace(theta, X, y, h=h),
                g2=float((G ** 2).sum(1).max()))


def thresholds(G: dict, keys, batches, B_sam: int, ratios) -> tuple[np.ndarray, np.ndarray]:
    """Exact thresholds: SGD ``(len(batches), len(keys))`` at every B; SAM ``(len(ratios), len(keys))`` at
    ``B_sam`` for each ρ/α in ``ratios`` (all > 0)."""
    eta = [[stability.critical_eta_rank_one(G[k], B) for k in keys] for B in batches]
    sam = [[stability.critical_eta_rank_one(G[k], B_sam, method="sam", rho_over_alpha=ra) for k in keys]
           for ra in ratios]
    return np.array(eta), np.array(sam)


def sam_sigma(G: torch.Tensor, rho_over_alpha: float) -> float:
    """SAM's effective coherence: σ of the Gram matrix ``GGᵀ + (ρ/α)(2/n)(GGᵀ)²`` (ρ/α = 0: SGD's σ)."""
    K = relu_hessian.sam_effective_gram(G, rho_over_alpha)
    return coherence.coherence_from_gradients(relu_hessian.gram_factor(K))[0]


def sam_gaps(sig_sam: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """The gap σ_SAM(lo)/σ_SAM(hi) per seed and ρ/α, from ``sig_sam`` of shape (seeds, nets, ρ/α)."""
    sig_sam = np.asarray(sig_sam, dtype=float)
    return sig_sam[:, lo, :] / sig_sam[:, hi, :]


def gap_over_sgd(gap: np.ndarray) -> float:
    """Smallest factor, over seeds and ρ/α > 0, by which SAM's gap exceeds the gap at ρ/α = 0 (column 0)."""
    gap = np.asarray(gap, dtype=float)
    return float((gap[:, 1:] / gap[:, :1]).min())


def gap_step_growth(gap: np.ndarray) -> float:
    """Smallest factor by which the gap grows from one ρ/α of the grid to the next (all seeds)."""
    gap = np.asarray(gap, dtype=float)
    return float((gap[:, 1:] / gap[:, :-1]).min())
