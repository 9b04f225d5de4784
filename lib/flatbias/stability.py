"""Linear stability of SGD, random-perturbation SGD and SAM at an interpolating minimum (SPEC §B.1–B.6).

Linearized dynamics (w = deviation from the minimum, H_i ⪰ 0 the per-sample Hessians, H = mean H_i):

    SGD / random perturbation:  w_{t+1} = (I − η Ĥ_t) w_t            (+ noise, §B.5)
    SAM (linearized, §B.6):     w_{t+1} = (I − η Ĥ_t (I + (ρ/α) H)) w_t,   K_i = H_i (I + (ρ/α) H)

with Ĥ_t = (1/B) Σ_{i∈S_t} H_i and S_t either B indices without replacement (the authors' code) or
each i with probability B/n (Bernoulli, Dexter et al.). The second moment W_t = E[w_t w_tᵀ] obeys
W_{t+1} = 𝒯(W_t) with the exact mean-square operator (SPEC §B.4)

    𝒯(X) = X − η(K̄X + XK̄ᵀ) + η² [ a K̄ X K̄ᵀ + c Σ_i K_i X K_iᵀ ],
    Bernoulli: a = 1, c = (n − B)/(n² B);   without replacement: a = (B−1)n/(B(n−1)), c = (n−B)/(Bn(n−1)).

𝒯 is a positive map (X ⪰ 0 ⇒ 𝒯(X) ⪰ 0), so its spectral radius is an eigenvalue with a PSD
eigenvector, and E‖w_t‖² diverges for generic w_0 iff ρ(𝒯) > 1. Directions in the null space of H
are neutral (every H_i vanishes there: w stays put, multiplier exactly 1), so the radius is computed
on range(H); ``restrict=False`` gives the radius on all of R^d (then ρ ≥ 1 whenever H is singular).
Random perturbation adds a forcing term but leaves 𝒯 unchanged (Theorem 3.1): ``method="random"``
is the SGD operator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import validate as vd
from .coherence import check_gradients, check_psd_family, coherence, coherence_from_gradients

METHODS = ("sgd", "random", "sam")
SAMPLINGS = ("without_replacement", "bernoulli")
ALGORITHMS = ("auto", "dense", "lanczos", "power", "arnoldi")
#: dense Kronecker operator up to this (range) dimension r (matrix r² × r²); matrix-free above
DENSE_MAX_DIM = 30


# ---------------------------------------------------------------------------------------------- checks
def _check_eta(eta: float) -> float:
    return vd.positive("eta (the learning rate η)", eta)


def _check_batch(B: int, n: int) -> int:
    return vd.batch_size(B, n)


def _check_method(method: str, sampling: str, rho_over_alpha: float) -> float:
    vd.choice("method", method, METHODS)
    vd.choice("sampling", sampling, SAMPLINGS)
    r = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    if method != "sam" and r != 0:
        raise vd.InvalidArgumentError(f"ρ/α = {r} only makes sense with method='sam' (got method={method!r})")
    return r


def _check_op(op) -> None:
    if not isinstance(op, MeanSquareOperator):
        raise vd.ArgumentTypeError(f"op must be a MeanSquareOperator (from mean_square_operator); "
                                   f"got {type(op).__name__}")


def _check_W0(W0, d: int, name: str = "W0") -> torch.Tensor:
    vd.tensor(name, W0, 2, "(d, d)")
    return vd.shape(name, W0, (d, d), f"to match H's d = {d}")


def sampling_coefficients(n: int, B: int, sampling: str = "without_replacement") -> tuple[float, float]:
    """(a, c) of 𝒯 (SPEC §B.4): E[K̂XK̂ᵀ] = a K̄XK̄ᵀ + c Σ_i K_iXK_iᵀ."""
    n = vd.integer("n", n, 1)
    B = _check_batch(B, n)
    vd.choice("sampling", sampling, SAMPLINGS)
    if sampling == "bernoulli":
        return 1.0, (n - B) / (n * n * B)
    if sampling == "without_replacement":
        if n == 1:
            return 1.0, 0.0
        return (B - 1) * n / (B * (n - 1)), (n - B) / (B * n * (n - 1))
    raise vd.InvalidArgumentError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")


# ---------------------------------------------------------------------------------------------- the family
@dataclass
class Family:
    """Per-sample Hessians in the coordinates the operator acts on (all of R^d or an orthonormal basis of
    range(H)). Rank-one families keep U (rows u_i) and c: H_i = c u_i u_iᵀ, never forming H (n, r, r)."""

    Hbar: torch.Tensor  # (r, r) = mean H_i
    H: torch.Tensor | None = None  # (n, r, r)
    U: torch.Tensor | None = None  # (n, r)
    c: float = 1.0

    @property
    def n(self) -> int:
        return int((self.H if self.H is not None else self.U).shape[0])

    @property
    def r(self) -> int:
        return int(self.Hbar.shape[0])

    def dense(self) -> torch.Tensor:
        if self.H is not None:
            return self.H
        return self.c * self.U[:, :, None] * self.U[:, None, :]

    def sum_sandwich(self, Y: torch.Tensor) -> torch.Tensor:
        """Σ_i H_i Y H_i for Y of shape (..., r, r): O(n r³) dense, O(n r²) rank-one (SPEC §B.4)."""
        if self.U is not None:
            q = torch.einsum("ni,...ij,nj->...n", self.U, Y, self.U)  # u_iᵀ Y u_i
            return self.c ** 2 * torch.einsum("...n,ni,nj->...ij", q, self.U, self.U)
        return torch.einsum("nij,...jk,nkl->...il", self.H, Y, self.H)


def _range_basis(Hbar: torch.Tensor, tol: float = 1e-10) -> torch.Tensor:
    lam, V = torch.linalg.eigh(Hbar)
    keep = lam > tol * max(float(lam[-1]), 1e-300)
    return V[:, keep]


def family(H: torch.Tensor, restrict: bool = True) -> Family:
    """A checked dense family, in an orthonormal basis of range(H) when ``restrict``."""
    H = check_psd_family(H)
    Hbar = H.mean(0)
    if restrict:
        Q = _range_basis(Hbar)
        if Q.shape[1] == 0:
            raise vd.InvalidArgumentError("every H_i is zero: there is nothing to be stable or unstable")
        H = Q.T @ H @ Q
        Hbar = H.mean(0)
    return Family(Hbar=0.5 * (Hbar + Hbar.T), H=H)


def family_rank_one(G: torch.Tensor, c: float = 2.0) -> Family:
    """H_i = c g_i g_iᵀ from per-sample gradients G (n, p), restricted to span{g_i} (dimension r ≤ n):
    U = G Q with Q an orthonormal basis of the span (from the SVD of G)."""
    G = check_gradients(G, c)
    # coordinates of g_i in an orthonormal basis of span{g_i}: left singular vectors times singular values
    Us, s, _ = torch.linalg.svd(G, full_matrices=False)
    keep = s > 1e-10 * max(float(s[0]), 1e-300)
    if not bool(keep.any()):
        raise vd.InvalidArgumentError("every gradient g_i is zero: there is nothing to be stable or unstable")
    U = Us[:, keep] * s[keep]  # (n, r): U Uᵀ = G Gᵀ
    Hbar = c * U.T @ U / U.shape[0]
    return Family(Hbar=Hbar, U=U, c=float(c))


# ---------------------------------------------------------------------------------------------- the operator
@dataclass
class MeanSquareOperator:
    """X ↦ 𝒯(X) for one family, method, sampling, η and B (SPEC §B.4, §B.6)."""

    fam: Family
    eta: float
    a: float
    c: float
    rho_over_alpha: float = 0.0

    @property
    def M(self) -> torch.Tensor:  # I + (ρ/α) H
        return torch.eye(self.fam.r, dtype=torch.float64) + self.rho_over_alpha * self.fam.Hbar

    @property
    def Kbar(self) -> torch.Tensor:
        return self.fam.Hbar @ self.M

    def __call__(self, X: torch.Tensor) -> torch.Tensor:
        Hb, M, eta = self.fam.Hbar, self.M, self.eta
        Y = M @ X @ M if self.rho_over_alpha else X  # K_i X K_iᵀ = H_i (M X M) H_i
        Kb = Hb @ M
        return X - eta * (Kb @ X + X @ Kb.T) + eta ** 2 * (self.a * Hb @ Y @ Hb + self.c * self.fam.sum_sandwich(Y))

    def forcing_identity(self) -> torch.Tensor:
        """E[(I − ηK̂)(I − ηK̂)ᵀ] = 𝒯(I): the forcing of unit-variance noise added before the step (code form, §B.5)."""
        return self(torch.eye(self.fam.r, dtype=torch.float64))

    def dense(self) -> torch.Tensor:
        """The r² × r² matrix of 𝒯 on row-major vec(X): vec(A X Bᵀ) = (A ⊗ B) vec(X)."""
        L, Q = self.dense_parts()
        r = self.fam.r
        return torch.eye(r * r, dtype=torch.float64) - self.eta * L + self.eta ** 2 * Q

    def dense_parts(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(L, Q) with 𝒯 = I − ηL + η²Q: L = K̄⊗I + I⊗K̄, Q = a K̄⊗K̄ + c Σ K_i⊗K_i."""
        r, I = self.fam.r, torch.eye(self.fam.r, dtype=torch.float64)
        Kb = self.Kbar
        K = self.fam.dense() @ self.M  # (n, r, r)
        V = K.reshape(K.shape[0], r * r)
        sum_kron = (V.T @ V).reshape(r, r, r, r).permute(0, 2, 1, 3).reshape(r * r, r * r)
        L = torch.kron(Kb, I) + torch.kron(I, Kb)
        return L, self.a * torch.kron(Kb, Kb) + self.c * sum_kron


def _operator(fam: Family, eta: float, B: int, method: str, sampling: str, rho_over_alpha: float) -> MeanSquareOperator:
    r = _check_method(method, sampling, rho_over_alpha)
    eta = _check_eta(eta)
    a, c = sampling_coefficients(fam.n, B, sampling)
    return MeanSquareOperator(fam, eta, a, c, r)


def mean_square_operator(H: torch.Tensor, eta: float, B: int, method: str = "sgd",
                         sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                         restrict: bool = False) -> MeanSquareOperator:
    """𝒯 for a dense PSD family H (n, d, d); on all of R^d unless ``restrict`` (then on range(H))."""
    return _operator(family(H, restrict), eta, B, method, sampling, rho_over_alpha)


# ---------------------------------------------------------------------------------------------- spectral radius
def symmetrized(op: MeanSquareOperator) -> MeanSquareOperator:
    """The same spectrum as a Frobenius-self-adjoint operator (our derivation).

    With M = I + (ρ/α)H (which commutes with H), X = M^{-1/2} Z M^{-1/2} turns 𝒯_SAM into the SGD operator of
    the PSD family H̃_i = M^{1/2} H_i M^{1/2} (H̃ = HM = K̄). The SGD operator of a PSD family is self-adjoint
    for ⟨X, Y⟩ = tr(XY), so its eigenvalues are real and ρ(𝒯) = λ_max (𝒯 is positive: its Perron root is
    its largest eigenvalue). For SGD (ρ/α = 0) this returns ``op`` unchanged.
    """
    _check_op(op)
    if not op.rho_over_alpha:
        return op
    fam = op.fam
    lam, V = torch.linalg.eigh(fam.Hbar)
    Ms = V @ torch.diag((1 + op.rho_over_alpha * lam.clamp_min(0)).sqrt()) @ V.T  # M^{1/2}
    if fam.U is not None:
        new = Family(Hbar=Ms @ fam.Hbar @ Ms, U=fam.U @ Ms, c=fam.c)
    else:
        new = Family(Hbar=Ms @ fam.Hbar @ Ms, H=Ms @ fam.H @ Ms)
    new.Hbar = 0.5 * (new.Hbar + new.Hbar.T)
    return MeanSquareOperator(new, op.eta, op.a, op.c, 0.0)


def radius_lanczos(op: MeanSquareOperator, tol: float = 1e-12) -> float:
    """ρ(𝒯) = λ_max of the self-adjoint form (see :func:`symmetrized`) by Lanczos (scipy ``eigsh``), matrix-free:
    each step is one application X ↦ 𝒯(X), O(n r²) for rank-one families."""
    from scipy.sparse.linalg import LinearOperator, eigsh

    tol = vd.positive("tol", tol)
    op = symmetrized(op)
    r = op.fam.r
    if r <= 2:
        return radius_dense(op)

    def mv(x):
        X = torch.from_numpy(np.array(x, dtype=np.float64).reshape(r, r))
        return op(X).reshape(-1).numpy().copy()

    lin = LinearOperator((r * r, r * r), matvec=mv, dtype=np.float64)
    val = eigsh(lin, k=1, which="LA", tol=tol, return_eigenvectors=False, v0=np.eye(r).reshape(-1),
                maxiter=100_000)
    return float(val.max())


def radius_dense(op: MeanSquareOperator) -> float:
    """ρ(𝒯) from the eigenvalues of the r² × r² matrix (small r)."""
    _check_op(op)
    return float(torch.linalg.eigvals(op.dense()).abs().max())


def radius_power(op: MeanSquareOperator, tol: float = 1e-10, max_iter: int = 50_000, patience: int = 20) -> float:
    """ρ(𝒯) by power iteration on X ↦ 𝒯(X) from X_0 = I, keeping X PSD (𝒯 is a positive map), matrix-free.

    Runs on the self-adjoint form (:func:`symmetrized`), so the Rayleigh quotient ⟨X, 𝒯X⟩/⟨X, X⟩ converges to
    the Perron root at twice the rate of the iterate. Stops when the estimate changes by less than ``tol``
    (relative) for ``patience`` consecutive steps. Slow when eigenvalues cluster near ρ: prefer 'lanczos'.
    """
    tol, max_iter = vd.positive("tol", tol), vd.integer("max_iter", max_iter, 1)
    patience = vd.integer("patience", patience, 1)
    op = symmetrized(op)
    X = torch.eye(op.fam.r, dtype=torch.float64) / math.sqrt(op.fam.r)
    est, calm = float("nan"), 0
    for _ in range(max_iter):
        Y = op(X)
        Y = 0.5 * (Y + Y.T)
        new = float((X * Y).sum())  # ‖X‖_F = 1
        norm = float(Y.norm())
        if not (math.isfinite(new) and norm > 0):
            raise FloatingPointError(f"power iteration broke down (⟨X, 𝒯X⟩ = {new}); use algorithm='dense'")
        calm = calm + 1 if abs(new - est) <= tol * abs(new) else 0
        est, X = new, Y / norm
        if calm >= patience:
            break
    return est


def radius_arnoldi(op: MeanSquareOperator, tol: float = 1e-12) -> float:
    """ρ(𝒯) by ARPACK (implicitly restarted Arnoldi) on the matrix-free map vec(X) ↦ vec(𝒯(X))."""
    from scipy.sparse.linalg import LinearOperator, eigs

    _check_op(op)
    tol = vd.positive("tol", tol)
    r = op.fam.r
    if r * r <= 4:
        return radius_dense(op)

    def mv(x):
        X = torch.from_numpy(np.array(np.real(x), dtype=np.float64).reshape(r, r))
        return op(X).reshape(-1).numpy().copy()

    lin = LinearOperator((r * r, r * r), matvec=mv, dtype=np.float64)
    vals = eigs(lin, k=1, which="LM", tol=tol, return_eigenvectors=False, v0=np.eye(r).reshape(-1), maxiter=20_000)
    return float(np.abs(vals).max())


def _radius(op: MeanSquareOperator, algorithm: str) -> float:
    if algorithm == "auto":
        algorithm = "dense" if op.fam.r <= DENSE_MAX_DIM else "lanczos"
    if algorithm == "dense":
        return radius_dense(op)
    if algorithm == "lanczos":
        return radius_lanczos(op)
    if algorithm == "power":
        return radius_power(op)
    if algorithm == "arnoldi":
        return radius_arnoldi(op)
    raise vd.InvalidArgumentError(
        f"unknown algorithm {algorithm!r}; use one of {', '.join(map(repr, ALGORITHMS))}")


def spectral_radius(H: torch.Tensor, eta: float, B: int, method: str = "sgd", sampling: str = "without_replacement",
                    rho_over_alpha: float = 0.0, algorithm: str = "auto", restrict: bool = True) -> float:
    """ρ(𝒯) for a PSD family H (n, d, d): > 1 ⇔ the linearized method diverges in mean square (SPEC §B.4).

    On range(H) by default (null directions of H are neutral). ``algorithm``: 'dense' (Kronecker, r² × r²),
    'lanczos' (matrix-free, on the self-adjoint form), 'power' (matrix-free power iteration, X kept PSD),
    'arnoldi' (matrix-free ARPACK on the non-symmetric form) or 'auto' (dense for r ≤ 30, else lanczos).
    """
    vd.choice("algorithm", algorithm, ALGORITHMS)
    B = _check_batch(B, check_psd_family(H).shape[0])
    return _radius(_operator(family(H, restrict), eta, B, method, sampling, rho_over_alpha), algorithm)


def spectral_radius_rank_one(G: torch.Tensor, eta: float, B: int, c: float = 2.0, method: str = "sgd",
                             sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                             algorithm: str = "auto") -> float:
    """ρ(𝒯) for rank-one H_i = c g_i g_iᵀ given per-sample gradients G (n, p), on span{g_i} (dimension ≤ n):
    each application costs O(n r²), independent of the parameter count p (SPEC §B.4, last paragraph)."""
    vd.choice("algorithm", algorithm, ALGORITHMS)
    fam = family_rank_one(G, c)
    B = _check_batch(B, fam.n)
    return _radius(_operator(fam, eta, B, method, sampling, rho_over_alpha), algorithm)


def diagonal_multipliers(D: torch.Tensor, eta, B, method: str = "sgd", sampling: str = "without_replacement",
                         rho_over_alpha: float = 0.0) -> torch.Tensor:
    """Per-axis mean-square multipliers m_k (..., d) for diagonal H_i = diag(D_i), batched: D (..., n, d), η and B
    broadcast to (...). All K_i are diagonal, so 𝒯(E_kk) = m_k E_kk with m_k = E[(1 − η k̂_k)²] =
    1 − 2ηk̄_k + η²(a k̄_k² + c Σ_i k_ik²), k_i = D_i ⊙ (1 + (ρ/α)h̄) (our derivation). Axes with h̄_k = 0 have m_k = 1."""
    r = _check_method(method, sampling, rho_over_alpha)
    D = vd.as_tensor("D", D)
    vd.kind("D", D, "real")
    D = D.to(torch.float64)
    vd.check_finite("D", D)
    if D.ndim < 2 or bool((D < 0).any()):
        raise vd.InvalidArgumentError(
            f"D must be a tensor (..., n, d) of nonnegative diagonals (PSD diagonal H_i); "
            f"got shape {vd.fmt_shape(D.shape)}, min {float(D.min()) if D.numel() else 0:g}")
    n = D.shape[-2]
    eta = vd.as_tensor("eta", eta).to(torch.float64)
    B = vd.as_tensor("B", B).to(torch.float64)
    try:
        torch.broadcast_shapes(eta.shape, B.shape, D.shape[:-2])
    except RuntimeError:
        raise vd.InvalidArgumentError(
            f"eta {vd.fmt_shape(eta.shape)}, B {vd.fmt_shape(B.shape)} and D's batch "
            f"dimensions {vd.fmt_shape(D.shape[:-2])} must broadcast together") from None
    if bool((eta <= 0).any()) or not bool(torch.isfinite(eta).all()):
        raise vd.InvalidArgumentError(f"eta (the learning rate η) must be finite and > 0; got values such as "
                                      f"{eta[~((eta > 0) & torch.isfinite(eta))].flatten()[:3].tolist()}")
    if bool((B < 1).any()) or bool((B > n).any()) or bool((B != B.round()).any()):
        raise vd.InvalidArgumentError(
            f"the batch size B must be an integer with 1 ≤ B ≤ n = {n}; got values such as "
            f"{B[(B < 1) | (B > n) | (B != B.round())].flatten()[:3].tolist()}")
    if sampling == "bernoulli":
        a, c = torch.ones_like(B), (n - B) / (n * n * B)
    else:
        a = (B - 1) * n / (B * (n - 1)) if n > 1 else torch.ones_like(B)
        c = (n - B) / (B * n * (n - 1)) if n > 1 else torch.zeros_like(B)
    hbar = D.mean(-2)
    K = D * (1 + r * hbar).unsqueeze(-2)
    kbar = K.mean(-2)
    e, a, c = eta[..., None], a[..., None], c[..., None]
    return 1 - 2 * e * kbar + e ** 2 * (a * kbar ** 2 + c * (K ** 2).sum(-2))


def spectral_radius_diagonal(D: torch.Tensor, eta, B, method: str = "sgd", sampling: str = "without_replacement",
                             rho_over_alpha: float = 0.0) -> torch.Tensor:
    """ρ(𝒯) for diagonal per-sample Hessians H_i = diag(D_i), batched: D (..., n, d), η and B broadcast to (...).

    𝒯 maps E_kk to m_k E_kk (:func:`diagonal_multipliers`) and off-diagonal multipliers are
    E[(1−ηk̂_k)(1−ηk̂_l)] ≤ √(m_k m_l). Hence ρ(𝒯) on range(H) = max over directions k with h̄_k > 0 of m_k
    (our derivation; exact, used for the heat-maps).
    """
    m = diagonal_multipliers(D, eta, B, method, sampling, rho_over_alpha)
    hbar = torch.as_tensor(D, dtype=torch.float64).mean(-2)
    return torch.where(hbar > 0, m, torch.full_like(m, -math.inf)).amax(-1)


def critical_eta_diagonal(D: torch.Tensor, B, method: str = "sgd", sampling: str = "without_replacement",
                          rho_over_alpha: float = 0.0) -> torch.Tensor:
    """The exact threshold η* for diagonal H_i = diag(D_i), batched (D (..., n, d), B broadcast to (...)): m_k(η) =
    1 − 2ηk̄_k + η²q_k crosses 1 at η = 2k̄_k/q_k, so η* = min over axes with h̄_k > 0 (our derivation)."""
    one = diagonal_multipliers(D, 1.0, B, method, sampling, rho_over_alpha)  # 1 − 2k̄ + q
    two = diagonal_multipliers(D, 2.0, B, method, sampling, rho_over_alpha)  # 1 − 4k̄ + 4q
    q = (two - 2 * one + 1) / 2
    kbar = (1 + q - one) / 2
    hbar = torch.as_tensor(D, dtype=torch.float64).mean(-2)
    eta_k = torch.where(hbar > 0, 2 * kbar / q.clamp_min(1e-300), torch.full_like(q, math.inf))
    return eta_k.amin(-1)


def diagonal_noise_floor(D: torch.Tensor, eta, B, noise_std: float = 1.0, sampling: str = "without_replacement",
                         ) -> torch.Tensor:
    """tr W_∞ of random-perturbation SGD w_{t+1} = (I − ηĤ_t)(w_t + sξ_t) for diagonal H_i (SPEC §B.5, code form):
    per axis v = m_k(v + s²), so tr W_∞ = Σ_k s² m_k/(1 − m_k); inf where some m_k ≥ 1 (no stationary moment)."""
    noise_std = vd.nonnegative("noise_std", noise_std)
    m = diagonal_multipliers(D, eta, B, "sgd", sampling)
    per_axis = torch.where(m < 1, noise_std ** 2 * m / (1 - m), torch.full_like(m, math.inf))
    return per_axis.sum(-1)


def critical_eta(H: torch.Tensor, B: int, method: str = "sgd", sampling: str = "without_replacement",
                 rho_over_alpha: float = 0.0) -> float:
    """The exact stability threshold η* on range(H): ρ(𝒯_η) < 1 for η < η*, ≥ 1 at η* (our derivation).

    𝒯_η = I − ηL + η²Q with L = K̄⊗I + I⊗K̄ (invertible on range(H)) and Q positive; 𝒯_η X = X ⇔ L X = η Q X,
    so η* = 1/ρ(L⁻¹Q) (L⁻¹ is a positive map, so ρ(L⁻¹Q) is its Perron root). Dense; small d only.
    The chapters check ρ(𝒯) just below and above η* instead of trusting this.
    """
    fam = family(H, restrict=True)
    op = _operator(fam, 1.0, B, method, sampling, rho_over_alpha)
    L, Q = op.dense_parts()
    mu = perron_root(L, Q)
    return math.inf if mu <= 0 else 1.0 / mu


#: r² from which :func:`perron_root` uses Arnoldi (ARPACK) instead of every eigenvalue of L⁻¹Q
ARNOLDI_MIN_DIM = 144


def perron_root(L: torch.Tensor, Q: torch.Tensor) -> float:
    """ρ(L⁻¹Q) of :func:`critical_eta`: every eigenvalue of the dense r² × r² matrix below ARNOLDI_MIN_DIM; from
    there ARPACK's eigenvalue of largest modulus, applying L⁻¹Q as an LU solve after a product (a few dozen
    O(r⁴) products instead of an O(r⁶) eigenvalue problem; equal to the dense value to about 1e-13, tested).
    Falls back to the dense eigenvalues if ARPACK does not converge."""
    N = L.shape[0]
    if N >= ARNOLDI_MIN_DIM:
        from scipy.linalg import lu_factor, lu_solve
        from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

        lu, Qn = lu_factor(L.numpy(), check_finite=False), Q.numpy()
        M = LinearOperator((N, N), matvec=lambda x: lu_solve(lu, Qn @ x, check_finite=False), dtype=np.float64)
        try:
            vals = eigs(M, k=1, which="LM", v0=np.ones(N), tol=0, maxiter=20 * N, return_eigenvectors=False)
            return float(np.abs(vals).max())
        except ArpackNoConvergence:
            pass
    return float(torch.linalg.eigvals(torch.linalg.solve(L, Q)).abs().max())


#: a computed ρ(𝒯) within this of 1 counts as 1, i.e. not stable (:func:`stable`)
RHO_TIE = 1e-9


def stable(rho):
    """Theorem 3.1's map, cell by cell: stable iff ρ(𝒯) < 1, where a computed ρ within :data:`RHO_TIE` of 1 counts
    as ρ = 1 (not stable). Some cells of the authors' grid sit at ρ = 1 exactly (their η is the threshold); there
    the computed ρ lands a few ulps above or below 1 depending on the CPU's order of operations, and ``ρ < 1``
    would classify them by round-off. :func:`flatbias.divergence_conditions.violations` counts by it too.
    ``rho``: an array or tensor of radii; returns booleans of its shape."""
    if isinstance(rho, torch.Tensor):
        return rho < 1 - RHO_TIE
    return np.asarray(rho, dtype=float) < 1 - RHO_TIE


# ---------------------------------------------------------------------------------------------- closed forms and bounds
def identical_threshold(n: int, B: int, sampling: str = "bernoulli") -> float:
    """All H_i equal (σ = n): diverges iff ηλ_1(H) > this (SPEC §B.4): 2nB/(nB + n − B) (Bernoulli), 2 (w/o repl.)."""
    n = vd.integer("n", n, 1)
    B = _check_batch(B, n)
    if sampling == "bernoulli":
        return 2 * n * B / (n * B + n - B)
    if sampling == "without_replacement":
        return 2.0
    raise vd.InvalidArgumentError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")


def orthogonal_threshold(B: int) -> float:
    """H_i = a e_i e_iᵀ (σ = 1): diverges iff η a > 2B, both samplings (SPEC §B.4)."""
    return 2.0 * vd.integer("B (the batch size)", B, 1)


def dexter_eta(H: torch.Tensor, B: int, sigma: float | None = None) -> float:
    """Dexter et al. Thm 1 (SPEC §B.3, from a secondary summary): η ≥ σ / (λ_1(H) √(n/B − 1)) ⇒ SGD diverges.
    Returns that threshold on η (inf when B = n)."""
    H = check_psd_family(H)
    n = H.shape[0]
    B = _check_batch(B, n)
    sigma = None if sigma is None else vd.positive("sigma (the coherence σ)", sigma)
    if B == n:
        return math.inf
    sigma = coherence(H)[0] if sigma is None else sigma
    return sigma / (float(torch.linalg.eigvalsh(H.mean(0))[-1]) * math.sqrt(n / B - 1))


def sam_eta(H: torch.Tensor, B: int, rho_over_alpha: float, sigma: float | None = None,
            lambda_min: str = "full") -> float:
    """Paper 2 Thm 3.2 (SPEC §B.6, from a secondary summary): η ≥ σ/(λ_1(H)√(n/B−1)) · (1 + (ρ/α)λ_min(H))⁻¹
    ⇒ linearized SAM diverges. ``lambda_min``: 'full' (λ_min of H on R^d) or 'range' (smallest nonzero)."""
    H = check_psd_family(H)
    rho_over_alpha = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    vd.choice("lambda_min", lambda_min, ("full", "range"))
    B = _check_batch(B, H.shape[0])
    lam = torch.linalg.eigvalsh(H.mean(0))
    if not float(lam[-1]) > 0:
        raise vd.InvalidArgumentError("every H_i is zero (λ_1(H) = 0): the bound is undefined")
    if lambda_min == "full":
        lmin = max(float(lam[0]), 0.0)
    else:
        lmin = float(lam[lam > 1e-10 * float(lam[-1])][0])
    return dexter_eta(H, B, sigma) / (1.0 + rho_over_alpha * lmin)


def dexter_condition(H: torch.Tensor, eta: float, B: int, sigma: float | None = None) -> bool:
    """True when Dexter et al.'s sufficient condition for SGD divergence holds at η."""
    return _check_eta(eta) >= dexter_eta(H, B, sigma)


def sam_condition(H: torch.Tensor, eta: float, B: int, rho_over_alpha: float, sigma: float | None = None) -> bool:
    """True when paper 2's Thm 3.2 sufficient condition for SAM divergence holds at η."""
    return _check_eta(eta) >= sam_eta(H, B, rho_over_alpha, sigma)


# ---------------------------------------------------------------------------------------------- second moments
def second_moments(H: torch.Tensor, eta: float, B: int, W0: torch.Tensor, steps: int, method: str = "sgd",
                   sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                   noise_std: float = 0.0) -> torch.Tensor:
    """tr W_t for t = 0..steps with W_{t+1} = 𝒯(W_t) + s²𝒯(I) (code-form noise, §B.5) on all of R^d: E‖w_t‖²."""
    steps, noise_std = vd.integer("steps", steps, 0), vd.nonnegative("noise_std", noise_std)
    op = mean_square_operator(H, eta, B, method, sampling, rho_over_alpha, restrict=False)
    _check_W0(W0, op.fam.r)
    F = noise_std ** 2 * op.forcing_identity() if noise_std else None
    W, out = W0.to(torch.float64), [float(torch.trace(W0))]
    for _ in range(steps):
        W = op(W) + (F if F is not None else 0)
        out.append(float(torch.trace(W)))
    return torch.tensor(out, dtype=torch.float64)


def second_moment_growth(H: torch.Tensor, eta: float, B: int, W0: torch.Tensor, steps: int, method: str = "sgd",
                         sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                         noise_std: float = 0.0) -> float:
    """tr W_T / tr W_{T−1} (T = steps) for W_{t+1} = 𝒯(W_t) + s²𝒯(I), without overflow: W_t is carried as c_t V_t
    with tr V_t = 1 (the forcing is divided by c_t). → ρ(𝒯) when ρ(𝒯) > 1; → 1 (s > 0) or → ρ(𝒯) (s = 0) when stable."""
    steps, noise_std = vd.integer("steps", steps, 1), vd.nonnegative("noise_std", noise_std)
    op = mean_square_operator(H, eta, B, method, sampling, rho_over_alpha, restrict=False)
    _check_W0(W0, op.fam.r)
    if not float(torch.trace(W0)) > 0:
        raise vd.InvalidArgumentError(
            f"W0 must have a positive trace (the growth factor tr W_T / tr W_(T−1) is "
            f"carried relative to tr W0); got tr W0 = {float(torch.trace(W0)):g}")
    F = noise_std ** 2 * op.forcing_identity() if noise_std else None
    tr0 = float(torch.trace(W0))
    Vt, log_c, factor = W0.to(torch.float64) / tr0, math.log(tr0), float("nan")
    for _ in range(steps):
        Vt = op(Vt) if F is None else op(Vt) + F * math.exp(-log_c)
        factor = float(torch.trace(Vt))
        if not (math.isfinite(factor) and factor > 0):
            raise FloatingPointError(f"tr W_t is not a positive finite number ({factor})")
        Vt, log_c = Vt / factor, log_c + math.log(factor)
    return factor


def stationary_second_moment(H: torch.Tensor, eta: float, B: int, noise_std: float = 1.0, method: str = "random",
                             sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                             form: str = "code") -> torch.Tensor:
    """W_∞ = (I − 𝒯)⁻¹(F) for random-perturbation SGD (SPEC §B.5 [D]), on all of R^d.

    ``form="code"``: w_{t+1} = (I − ηĤ)(w_t + ξ_t), F = s² 𝒯(I). ``form="gradient"``: w_{t+1} = w_t − ηĤ(w_t + ξ_t),
    F = η² s² E[K̂K̂ᵀ]. Needs ρ(𝒯) < 1 and, for the code form, H nonsingular (noise in a null direction of H
    is a random walk).
    """
    noise_std = vd.nonnegative("noise_std", noise_std)
    vd.choice("method", method, METHODS)
    vd.choice("form", form, ("code", "gradient"))
    op = mean_square_operator(H, eta, B, "sam" if method == "sam" else "sgd", sampling, rho_over_alpha, restrict=False)
    d = op.fam.r
    I = torch.eye(d, dtype=torch.float64)
    if form == "code":
        if float(torch.linalg.eigvalsh(op.fam.Hbar)[0]) <= 1e-12 * float(torch.linalg.eigvalsh(op.fam.Hbar)[-1]):
            raise vd.InvalidArgumentError(
                "H is singular: noise added in its null space is a random walk, there is no stationary "
                "second moment; restrict the problem to range(H) first")
        F = noise_std ** 2 * op.forcing_identity()
    elif form == "gradient":
        Kb, M = op.Kbar, op.M
        F = noise_std ** 2 * op.eta ** 2 * (op.a * Kb @ Kb.T + op.c * op.fam.sum_sandwich(M @ M))
    else:
        raise vd.InvalidArgumentError(f"form must be 'code' or 'gradient', got {form!r}")
    rho = radius_dense(op) if d <= DENSE_MAX_DIM else radius_lanczos(op)
    if rho >= 1:
        raise vd.InvalidArgumentError(
            f"ρ(𝒯) = {rho:.4g} ≥ 1: the second moment grows without bound, there is no stationary value")
    if d <= DENSE_MAX_DIM:
        return torch.linalg.solve(torch.eye(d * d, dtype=torch.float64) - op.dense(), F.reshape(-1)).reshape(d, d)
    W = F.clone()  # Neumann series W = Σ_k 𝒯^k(F)
    for _ in range(200_000):
        new = op(W) + F
        if float((new - W).abs().max()) <= 1e-13 * float(new.abs().max()):
            return new
        W = new
    raise RuntimeError("the Neumann series for (I − 𝒯)⁻¹F did not converge (ρ(𝒯) too close to 1)")


__all__ = [
    "METHODS", "SAMPLINGS", "Family", "MeanSquareOperator", "coherence", "coherence_from_gradients", "critical_eta",
    "dexter_condition", "dexter_eta", "family", "family_rank_one", "identical_threshold", "mean_square_operator",
    "orthogonal_threshold", "radius_arnoldi", "radius_dense", "radius_power", "sam_condition", "sam_eta",
    "radius_lanczos", "sampling_coefficients", "second_moments", "spectral_radius", "spectral_radius_diagonal",
    "spectral_radius_rank_one", "symmetrized", "diagonal_multipliers", "diagonal_noise_floor", "critical_eta_diagonal", "second_moment_growth",
    "stationary_second_moment", "perron_root", "ARNOLDI_MIN_DIM",
]


# ---------------------------------------------------------------------------------------------- by enumeration
def _minibatches(n: int, B: int, sampling: str):
    """Every minibatch S with its probability: all B-subsets (without replacement) or all subsets with weight
    (B/n)^|S| (1 − B/n)^(n−|S|) (Bernoulli). A plain reference, independent of the closed-form (a, c)."""
    from itertools import combinations

    if sampling == "without_replacement":
        subsets = list(combinations(range(n), B))
        return subsets, [1.0 / len(subsets)] * len(subsets)
    if sampling == "bernoulli":
        p = B / n
        subsets = [S for k in range(n + 1) for S in combinations(range(n), k)]
        return subsets, [p ** len(S) * (1 - p) ** (n - len(S)) for S in subsets]
    raise ValueError(f"unknown sampling {sampling!r}; use one of {', '.join(SAMPLINGS)}")


def enumerated_operator(H: torch.Tensor, eta: float, B: int, sampling: str = "without_replacement",
                        max_batches: int = 20_000) -> torch.Tensor:
    """E[A_S ⊗ A_S] with A_S = I − η Ĥ_S, Ĥ_S = (1/B) Σ_{i∈S} H_i, averaged over **every** minibatch S
    (row-major vec: vec(A X Aᵀ) = (A ⊗ A) vec X). The SGD mean-square operator on all of R^d computed by
    brute force, without the closed-form sampling coefficients of :func:`sampling_coefficients`: an
    independent reference for 𝒯 (small n only; at most ``max_batches`` minibatches)."""
    H = check_psd_family(H)
    n, d = H.shape[0], H.shape[1]
    B = _check_batch(B, n)
    eta = _check_eta(eta)
    count = math.comb(n, B) if sampling == "without_replacement" else 2 ** n
    if count > max_batches:
        raise ValueError(f"{count} minibatches to enumerate (n = {n}, B = {B}); at most {max_batches}")
    subsets, probs = _minibatches(n, B, sampling)
    I = torch.eye(d, dtype=torch.float64)
    out = torch.zeros(d * d, d * d, dtype=torch.float64)
    for S, p in zip(subsets, probs):
        A = I - eta * (H[list(S)].sum(0) / B if S else 0 * I)
        out += p * torch.kron(A, A)
    return out


def enumerated_second_moments(H: torch.Tensor, eta: float, B: int, W0: torch.Tensor, steps: int,
                              noise_std: float = 0.0, sampling: str = "without_replacement",
                              operator: torch.Tensor | None = None) -> torch.Tensor:
    """log tr W_t, t = 0..steps, of SGD (``noise_std = 0``) or random-perturbation SGD
    w_{t+1} = A_S (w_t + s ξ_t), by brute force: W_{t+1} = E_S[A_S (W_t + s² I) A_Sᵀ] with the expectation over
    every minibatch (:func:`enumerated_operator`; pass it as ``operator`` to reuse it). Uses neither 𝒯's closed
    form nor its forcing formula. Carried as c_t V_t with tr V_t = 1, so it does not overflow."""
    M = enumerated_operator(H, eta, B, sampling) if operator is None else operator
    d = int(round(math.sqrt(M.shape[0])))
    if not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an integer ≥ 1, got {steps!r}")
    tr0 = float(torch.trace(W0))
    if not (math.isfinite(tr0) and tr0 > 0):
        raise ValueError("W0 must have a positive finite trace")
    V = W0.to(torch.float64).reshape(-1) / tr0
    eye = float(noise_std) ** 2 * torch.eye(d, dtype=torch.float64).reshape(-1)
    log_c, out = math.log(tr0), [math.log(tr0)]
    diag = torch.arange(d) * (d + 1)
    for _ in range(steps):
        V = M @ (V + eye * math.exp(-log_c)) if noise_std else M @ V
        factor = float(V[diag].sum())
        if not (math.isfinite(factor) and factor > 0):
            raise FloatingPointError(f"tr W_t is not a positive finite number ({factor})")
        V, log_c = V / factor, log_c + math.log(factor)
        out.append(log_c)
    return torch.tensor(out, dtype=torch.float64)


__all__ += ["enumerated_operator", "enumerated_second_moments"]


# ---------------------------------------------------------------------------------------------- orthogonal blocks
#: largest block (span dimension) the blockwise functions handle with the dense r² × r² operator
BLOCK_MAX_DIM = 40


def orthogonal_blocks(G: torch.Tensor, tol: float = 1e-12) -> list[np.ndarray]:
    """Index sets of the connected components of the graph i ~ j ⇔ |g_iᵀg_j| > tol · max_i ‖g_i‖².

    Gradients in different blocks are orthogonal. For a rank-one family H_i = c g_ig_iᵀ the mean-square
    operator 𝒯 then maps each diagonal block X_bb of X into itself (H̄ and every H_i are block diagonal) and
    keeps off-diagonal blocks of a block-diagonal X at zero, so ρ(𝒯) = lim ‖𝒯^t(I)‖^{1/t} = max_b ρ(𝒯_b) (our
    derivation; 𝒯_b uses the sampling coefficients of the whole family, n and B)."""
    from scipy.sparse.csgraph import connected_components

    G = check_gradients(G)
    tol = vd.positive("tol", tol)
    K = G @ G.T
    adj = (K.abs() > tol * float(K.diagonal().max())).numpy()
    count, label = connected_components(adj, directed=False)
    return [np.flatnonzero(label == b) for b in range(count)]


def _block_families(G: torch.Tensor, c: float) -> list[torch.Tensor]:
    """One dense family (n, m_b, m_b) per orthogonal block: H_i = c u_iu_iᵀ with u_i the coordinates of g_i in
    an orthonormal basis of the block's span (QR), and H_i = 0 for i outside the block (n stays the same)."""
    G = check_gradients(G, c)
    out = []
    for idx in orthogonal_blocks(G):
        Q, _ = torch.linalg.qr(G[idx].T)  # (p, m_b)
        U = G[idx] @ Q
        if U.shape[1] > BLOCK_MAX_DIM:
            raise vd.InvalidArgumentError(
                f"a block of {U.shape[1]} mutually non-orthogonal gradients is too large for the dense "
                f"operator (at most {BLOCK_MAX_DIM}); use spectral_radius_rank_one")
        H = torch.zeros(G.shape[0], U.shape[1], U.shape[1], dtype=torch.float64)
        H[idx] = c * U[:, :, None] * U[:, None, :]
        out.append(H)
    return out


def spectral_radius_blocks(G: torch.Tensor, eta: float, B: int, c: float = 2.0, method: str = "sgd",
                           sampling: str = "without_replacement", rho_over_alpha: float = 0.0) -> float:
    """ρ(𝒯) for H_i = c g_ig_iᵀ as the largest radius over the orthogonal blocks of G
    (:func:`orthogonal_blocks`), each with the dense operator: exact and fast when every block is small."""
    B = _check_batch(B, check_gradients(G, c).shape[0])
    return max(spectral_radius(H, eta, B, method, sampling, rho_over_alpha, algorithm="dense")
               for H in _block_families(G, c))


def critical_eta_rank_one(G: torch.Tensor, B: int, c: float = 2.0, method: str = "sgd",
                          sampling: str = "without_replacement", rho_over_alpha: float = 0.0) -> float:
    """The exact threshold η* for H_i = c g_ig_iᵀ: the smallest :func:`critical_eta` over the orthogonal blocks
    of G (each block's 𝒯 is a positive map whose Perron root crosses 1 at its own threshold)."""
    B = _check_batch(B, check_gradients(G, c).shape[0])
    return min(critical_eta(H, B, method, sampling, rho_over_alpha) for H in _block_families(G, c))


__all__ += ["orthogonal_blocks", "spectral_radius_blocks", "critical_eta_rank_one"]
