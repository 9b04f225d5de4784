"""Coherence of a family of per-sample Hessians (Dexter et al. 2024, reused by paper 2; SPEC §B.2).

For PSD H_1..H_n (shape (n, d, d)):

    S_ij = ‖H_i^{1/2} H_j^{1/2}‖_F = sqrt(tr(H_i H_j)),      σ = λ_1(S) / max_i λ_1(H_i).

The square-root form is the authors' code (``compute_coherence``, ``top_eig_S_exact``); it makes σ
dimensionless and σ ≥ 1 always (λ_1(S) ≥ S_ii = ‖H_i‖_F ≥ λ_1(H_i)). For rank-one H_i = c g_i g_iᵀ
(squared loss at interpolation), S = c|G Gᵀ| and σ = λ_1(|G Gᵀ|)/max_i ‖g_i‖² ∈ [1, n].

Also here: the authors' Figure-1 construction (SPEC §B.8a), a family whose coherence is exactly σ.
"""

from __future__ import annotations

import torch

from . import validate as vd

#: relative tolerance of the PSD check for float64 input (eigenvalues ≥ −tol·max(1, max|H|) pass; 100·eps for
#: lower precision)
PSD_TOL = 1e-10


def check_psd_family(H: torch.Tensor, name: str = "H") -> torch.Tensor:
    """Validate a family of per-sample Hessians: a finite (n, d, d) tensor of symmetric PSD matrices.

    Returns it as float64. Anything else is a :class:`~flatbias.validate.InvalidArgumentError` (a
    ``ValueError``) that says what is wrong.
    """
    H = vd.as_tensor(name, H, promote_floats=False)  # as torch.as_tensor: lists get the default dtype
    if H.ndim != 3 or H.shape[1] != H.shape[2] or H.shape[0] < 1 or H.shape[1] < 1:
        raise vd.InvalidArgumentError(
            f"{name} must be a stack of square matrices of shape (n, d, d) with n, d ≥ 1, "
            f"got shape {tuple(H.shape)}")
    vd.kind(name, H, "real")
    tol = max(PSD_TOL, 100 * torch.finfo(H.dtype).eps) if H.is_floating_point() else PSD_TOL
    H = H.to(torch.float64)
    vd.check_finite(name, H)
    scale = max(1.0, float(H.abs().max()))
    asym = float((H - H.transpose(1, 2)).abs().max())
    if asym > max(1e-8, tol) * scale:
        raise vd.InvalidArgumentError(
            f"{name} is not symmetric (max |H_i − H_iᵀ| = {asym:.3g}); per-sample Hessians are "
            f"symmetric: pass (H + Hᵀ)/2 if the asymmetry is round-off")
    lam = torch.linalg.eigvalsh(0.5 * (H + H.transpose(1, 2)))
    lam_min, i = lam[:, 0].min(0)
    if float(lam_min) < -tol * scale:
        raise vd.InvalidArgumentError(
            f"{name}[{int(i)}] is not positive semidefinite (smallest eigenvalue {float(lam_min):.3g}); "
            f"the linear-stability theory needs PSD per-sample Hessians (a minimum with zero "
            f"per-sample gradients). Check the Hessian, or project it onto the PSD cone first")
    return H


def coherence_matrix(H: torch.Tensor) -> torch.Tensor:
    """S_ij = sqrt(tr(H_i H_j)) (SPEC §B.2), all pairs at once: tr(H_i H_j) = ⟨vec H_i, vec H_j⟩ for symmetric H."""
    H = check_psd_family(H)
    vec = H.reshape(H.shape[0], -1)
    return (vec @ vec.T).clamp_min(0.0).sqrt()  # tr(H_i H_j) ≥ 0 for PSD pairs; clamp only removes round-off


def coherence(H: torch.Tensor) -> tuple[float, torch.Tensor]:
    """(σ, S): σ = λ_1(S)/max_i λ_1(H_i) for a PSD family H of shape (n, d, d)."""
    H = check_psd_family(H)
    S = coherence_matrix(H)
    lam_i = torch.linalg.eigvalsh(H)[:, -1]  # λ_1(H_i), batched
    top = float(lam_i.max())
    if top <= 0:
        raise vd.InvalidArgumentError("coherence is undefined when every H_i is zero (max_i λ_1(H_i) = 0)")
    return float(torch.linalg.eigvalsh(S)[-1]) / top, S


def check_gradients(G: torch.Tensor, c: float = 2.0) -> torch.Tensor:
    """Validate per-sample gradients G (n, p) of a rank-one family H_i = c g_i g_iᵀ; return G as float64."""
    G = vd.as_tensor("G", G, promote_floats=False)
    if G.ndim != 2 or G.shape[0] < 1 or G.shape[1] < 1:
        raise vd.InvalidArgumentError(
            f"G must hold one per-sample gradient per row, shape (n, p), got {tuple(G.shape)}")
    vd.kind("G", G, "real")
    vd.positive("c", c, why="(H_i = c g_i g_iᵀ; c = 2 for the loss (f − y)²)")
    return vd.check_finite("G", G.to(torch.float64))


def coherence_from_gradients(G: torch.Tensor, c: float = 2.0) -> tuple[float, torch.Tensor]:
    """(σ, S) for rank-one H_i = c g_i g_iᵀ from per-sample gradients G (n, p): S = c|G Gᵀ|,
    σ = λ_1(|G Gᵀ|)/max_i ‖g_i‖² (SPEC §B.2). Never forms a p × p matrix."""
    G = check_gradients(G, c)
    gram = (G @ G.T).abs()
    top = float(gram.diagonal().max())
    if top <= 0:
        raise vd.InvalidArgumentError("coherence is undefined when every gradient g_i is zero")
    return float(torch.linalg.eigvalsh(gram)[-1]) / top, c * gram


def authors_axes(n: int, sigma: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The authors' Figure-1 family (SPEC §B.8a) as (k, a, d): H_i = a_i e_{k_i} e_{k_i}ᵀ in R^{d×d}.

    d = n − σ + 1, a_i = 2n/σ, k_i = 0 for i < σ (σ samples share e_0) and i − σ + 1 otherwise
    (mutually orthogonal). Coherence σ, λ_1(H) = 2 for every σ, max_i λ_1(H_i) = 2n/σ.
    """
    n = vd.integer("n", n, 1, why="(the number of samples)")
    sigma = vd.integer("σ", sigma, 1, why=f"(the coherence, 1 ≤ σ ≤ n = {n})")
    if sigma > n:
        raise vd.InvalidArgumentError(
            f"need integers 1 ≤ σ ≤ n for the authors' construction, got n={n!r}, σ={sigma!r}")
    i = torch.arange(n)
    k = torch.where(i < sigma, torch.zeros_like(i), i - sigma + 1)
    a = torch.full((n,), 2.0 * n / sigma, dtype=torch.float64)
    return k, a, n - sigma + 1


def authors_family(n: int, sigma: int) -> torch.Tensor:
    """The authors' construction (SPEC §B.8a) as dense matrices H of shape (n, d, d), d = n − σ + 1."""
    k, a, d = authors_axes(n, sigma)
    H = torch.zeros(n, d, d, dtype=torch.float64)
    H[torch.arange(n), k, k] = a
    return H
