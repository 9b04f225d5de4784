"""Linear stability of heavy-ball SGD and SAM at an interpolating minimum (our extension of SPEC §B.4).

PyTorch's SGD with momentum β (dampening 0), v_{t+1} = β v_t + K̂_t w_t and w_{t+1} = w_t − η v_{t+1}, is the
heavy ball w_{t+1} = w_t − η K̂_t w_t + β (w_t − w_{t−1}). With the state z_t = (w_t, w_{t−1}) ∈ R^{2r}

    z_{t+1} = A_t z_t,   A_t = [[(1+β)I − ηK̂_t, −βI], [I, 0]],

K̂_t = (1/B) Σ_{i∈S_t} K_i as in :mod:`flatbias.stability` (K_i = H_i for SGD, H_i (I + (ρ/α)H) for linearized
SAM). The second moment Z_t = E[z_t z_tᵀ] (2r × 2r) obeys Z_{t+1} = 𝒯_β(Z_t) with (our derivation)

    𝒯_β(Z) = Ā Z Āᵀ + η² E₁ [(a − 1) K̄ Z₁₁ K̄ᵀ + c Σ_i K_i Z₁₁ K_iᵀ] E₁ᵀ,

Ā = E[A_t], E₁ = [I; 0], Z₁₁ the top-left r × r block and (a, c) the sampling coefficients of 𝒯
(:func:`flatbias.stability.sampling_coefficients`): A_t − Ā = −η E₁(K̂_t − K̄)E₁ᵀ and
E[K̂XK̂ᵀ] = a K̄XK̄ᵀ + c Σ K_iXK_iᵀ. 𝒯_β is a positive map (Z ⪰ 0 ⇒ 𝒯_β(Z) ⪰ 0), so ρ(𝒯_β) is an eigenvalue
with a PSD eigenvector and E‖w_t‖² diverges for generic starts iff ρ(𝒯_β) > 1. At β = 0 the block Z₁₁ evolves
by 𝒯 exactly. Null directions of H are neutral (eigenvalues 1 and β of Ā), so radii are taken on range(H).

Diagonal families (K_i all diagonal) decouple into one 3 × 3 map per axis on (E w², E w w⁻, E w⁻²); its
eigenvalue 1 is crossed at (our derivation, :func:`critical_eta_diagonal`)

    η*_β = 2(1 − β²) k̄ / ((1 + β) q − 2β k̄²),   k̄ = mean k_i,  q = E[k̂²] = a k̄² + c Σ_i k_i²,

which is 2k̄/q at β = 0 (:func:`flatbias.stability.critical_eta_diagonal`) and the deterministic edge
2(1 + β)/k̄ when the batch is the whole set (q = k̄²).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from . import stability
from . import validate as vd
from .coherence import check_psd_family

ALGORITHMS = ("auto", "dense", "arnoldi", "power")
#: dense (2r)² × (2r)² matrix up to this range dimension r; matrix-free above
DENSE_MAX_DIM = 14


def _check_beta(beta) -> float:
    return vd.probability("beta (the momentum β)", beta, hi_open=True)


# ---------------------------------------------------------------------------------------------- the operator
@dataclass
class MomentumOperator:
    """Z ↦ 𝒯_β(Z) on 2r × 2r matrices, for one family, method, sampling, η, B and β (module docstring)."""

    op: stability.MeanSquareOperator  # the β = 0 operator: family, η, (a, c), ρ/α
    beta: float

    @property
    def r(self) -> int:
        return self.op.fam.r

    @property
    def Abar(self) -> torch.Tensor:
        """E[A_t] = [[(1+β)I − ηK̄, −βI], [I, 0]]."""
        return _abar(self.op.Kbar, self.op.eta, self.beta)

    def noise(self, Z11: torch.Tensor) -> torch.Tensor:
        """E[(K̂ − K̄) Z₁₁ (K̂ − K̄)ᵀ] = (a − 1) K̄Z₁₁K̄ᵀ + c Σ K_i Z₁₁ K_iᵀ."""
        op = self.op
        Hb, M = op.fam.Hbar, op.M
        Y = M @ Z11 @ M if op.rho_over_alpha else Z11  # K_i Z K_iᵀ = H_i (M Z M) H_i
        return (op.a - 1) * Hb @ Y @ Hb + op.c * op.fam.sum_sandwich(Y)

    def __call__(self, Z: torch.Tensor) -> torch.Tensor:
        r = self.r
        A = self.Abar
        out = A @ Z @ A.T
        out[:r, :r] += self.op.eta ** 2 * self.noise(Z[:r, :r])
        return out

    def dense(self) -> torch.Tensor:
        """The (2r)² × (2r)² matrix on row-major vec(Z): Ā⊗Ā + η² (E₁⊗E₁)[Q − K̄⊗K̄](E₁⊗E₁)ᵀ, with
        Q = a K̄⊗K̄ + c Σ K_i⊗K_i from :meth:`flatbias.stability.MeanSquareOperator.dense_parts`."""
        return _dense(self.op.Kbar, _noise_part(self.op), self.op.eta, self.beta)


def _abar(Kb: torch.Tensor, eta: float, beta: float) -> torch.Tensor:
    r = Kb.shape[0]
    I = torch.eye(r, dtype=torch.float64)
    top = torch.cat([(1 + beta) * I - eta * Kb, -beta * I], 1)
    return torch.cat([top, torch.cat([I, torch.zeros_like(I)], 1)], 0)


def _noise_part(op: stability.MeanSquareOperator) -> torch.Tensor:
    """Q − K̄⊗K̄ as (r, r, r, r): the part of :meth:`MomentumOperator.dense` that does not depend on η or β."""
    r = op.fam.r
    _, Q = op.dense_parts()
    Kb = op.Kbar
    return (Q - torch.kron(Kb, Kb)).reshape(r, r, r, r)


def _dense(Kb: torch.Tensor, inner: torch.Tensor, eta: float, beta: float) -> torch.Tensor:
    """:meth:`MomentumOperator.dense` from K̄ and :func:`_noise_part` (so a scan over η builds them once)."""
    r = Kb.shape[0]
    A = _abar(Kb, eta, beta)
    out = torch.kron(A, A).reshape(2 * r, 2 * r, 2 * r, 2 * r)
    out[:r, :r, :r, :r] += eta ** 2 * inner
    return out.reshape(4 * r * r, 4 * r * r)


def _check_op(op) -> None:
    if not isinstance(op, MomentumOperator):
        raise vd.ArgumentTypeError(f"op must be a MomentumOperator (from momentum_operator); got {type(op).__name__}")


def _momentum(fam: stability.Family, eta, B, beta, method: str, sampling: str,
              rho_over_alpha: float) -> MomentumOperator:
    r = stability._check_method(method, sampling, rho_over_alpha)
    eta = vd.positive("eta (the learning rate η)", eta)
    B = vd.batch_size(B, fam.n)
    a, c = stability.sampling_coefficients(fam.n, B, sampling)
    return MomentumOperator(stability.MeanSquareOperator(fam, eta, a, c, r), _check_beta(beta))


def momentum_operator(H: torch.Tensor, eta: float, B: int, beta: float, method: str = "sgd",
                      sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                      restrict: bool = False) -> MomentumOperator:
    """𝒯_β for a dense PSD family H (n, d, d); on all of R^d unless ``restrict`` (then on range(H))."""
    return _momentum(stability.family(H, restrict), eta, B, beta, method, sampling, rho_over_alpha)


def momentum_operator_rank_one(G: torch.Tensor, eta: float, B: int, beta: float, c: float = 2.0,
                               method: str = "sgd", sampling: str = "without_replacement",
                               rho_over_alpha: float = 0.0) -> MomentumOperator:
    """𝒯_β for rank-one H_i = c g_i g_iᵀ (G: (n, p)), on span{g_i}: each application costs O(n r² + r³)."""
    return _momentum(stability.family_rank_one(G, c), eta, B, beta, method, sampling, rho_over_alpha)


# ---------------------------------------------------------------------------------------------- spectral radius
def radius_dense(op: MomentumOperator) -> float:
    """ρ(𝒯_β) from the eigenvalues of the (2r)² × (2r)² matrix (small r)."""
    from scipy.linalg import eigvals

    _check_op(op)
    # LAPACK's geev through scipy: many times faster here than torch.linalg.eigvals on these matrices
    return float(np.abs(eigvals(op.dense().numpy(), check_finite=False)).max())


def unstable_dense(op: MomentumOperator) -> bool:
    """Whether ρ(𝒯_β) ≥ 1, decided by one linear solve instead of the eigenvalues of :func:`radius_dense`.

    𝒯_β is a positive map (Z ↦ E[A_t Z A_tᵀ] takes PSD matrices to PSD matrices), so ρ(𝒯_β) < 1 exactly when
    X = (I − 𝒯_β)⁻¹(I) = Σ_k 𝒯_βᵏ(I) exists and is positive definite: the series converges to a PD matrix when
    ρ < 1; conversely X ≻ 0 with 𝒯_β(X) = X − I ≺ X gives ρ < 1 (Krein-Rutman). An LU solve of the (2r)²
    system costs a fraction of the nonsymmetric eigenvalue problem, and decides the same side of 1 up to
    round-off at ρ = 1 (tested against :func:`radius_dense`)."""
    _check_op(op)
    return _unstable(op.dense().numpy())


def _unstable(T: np.ndarray) -> bool:
    from scipy.linalg import LinAlgError, cholesky, lu_factor, lu_solve

    k = math.isqrt(T.shape[0])
    try:
        x = lu_solve(lu_factor(np.eye(k * k) - T, check_finite=False), np.eye(k).ravel(), check_finite=False)
    except (LinAlgError, ValueError):
        return True
    X = x.reshape(k, k)
    if not np.isfinite(X).all():
        return True
    try:
        cholesky(0.5 * (X + X.T), check_finite=False)
    except LinAlgError:
        return True
    return False


def radius_arnoldi(op: MomentumOperator, tol: float = 1e-11) -> float:
    """ρ(𝒯_β) by ARPACK (implicitly restarted Arnoldi) on vec(Z) ↦ vec(𝒯_β(Z)), matrix-free. 𝒯_β is not
    self-adjoint (its eigenvalues can be complex), so two eigenvalues of largest modulus are asked for; when
    ARPACK does not converge, the dense matrix (up to 4096 entries of vec Z) or power iteration answers."""
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigs

    _check_op(op)
    tol = vd.positive("tol", tol)
    m = 2 * op.r
    if m * m <= 16:
        return radius_dense(op)

    def mv(x):
        Z = torch.from_numpy(np.array(np.real(x), dtype=np.float64).reshape(m, m))
        return op(Z).reshape(-1).numpy().copy()

    lin = LinearOperator((m * m, m * m), matvec=mv, dtype=np.float64)
    try:  # two eigenvalues (a complex pair can top the spectrum) in a 40-vector Krylov space
        vals = eigs(lin, k=2, ncv=min(40, m * m - 1), which="LM", tol=tol, return_eigenvectors=False,
                    v0=np.eye(m).reshape(-1), maxiter=5_000)
    except ArpackNoConvergence:
        return radius_dense(op) if m * m <= 4096 else radius_power(op)
    return float(np.abs(vals).max())


def radius_power(op: MomentumOperator, steps: int = 4000) -> float:
    """ρ(𝒯_β) as the growth rate of tr 𝒯_β^t(I) over the second half of ``steps`` iterations (geometric mean
    of the per-step factors), matrix-free: the Perron root of a positive map, slow near complex eigenvalues."""
    _check_op(op)
    steps = vd.integer("steps", steps, 2)
    m = 2 * op.r
    Z = torch.eye(m, dtype=torch.float64) / m
    logs = []
    for _ in range(steps):
        Z = op(Z)
        f = float(torch.trace(Z))
        if not (math.isfinite(f) and f > 0):
            raise FloatingPointError(f"tr 𝒯_β^t(I) is not a positive finite number ({f})")
        logs.append(math.log(f))
        Z = Z / f
    return math.exp(sum(logs[steps // 2:]) / (steps - steps // 2))


def radius(op: MomentumOperator, algorithm: str = "auto") -> float:
    """ρ(𝒯_β): 'dense' for r ≤ :data:`DENSE_MAX_DIM` under 'auto', else 'arnoldi'; 'power' on request."""
    _check_op(op)
    vd.choice("algorithm", algorithm, ALGORITHMS)
    if algorithm == "auto":
        algorithm = "dense" if op.r <= DENSE_MAX_DIM else "arnoldi"
    return {"dense": radius_dense, "arnoldi": radius_arnoldi, "power": radius_power}[algorithm](op)


def spectral_radius(H: torch.Tensor, eta: float, B: int, beta: float, method: str = "sgd",
                    sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                    algorithm: str = "auto") -> float:
    """ρ(𝒯_β) on range(H) for a dense PSD family H (n, d, d): > 1 ⇔ linearized heavy-ball SGD (or SAM)
    diverges in mean square."""
    return radius(momentum_operator(H, eta, B, beta, method, sampling, rho_over_alpha, restrict=True), algorithm)


def spectral_radius_rank_one(G: torch.Tensor, eta: float, B: int, beta: float, c: float = 2.0,
                             method: str = "sgd", sampling: str = "without_replacement",
                             rho_over_alpha: float = 0.0, algorithm: str = "auto") -> float:
    """ρ(𝒯_β) for H_i = c g_i g_iᵀ on span{g_i}."""
    op = momentum_operator_rank_one(G, eta, B, beta, c, method, sampling, rho_over_alpha)
    return radius(op, algorithm)


def critical_eta(H: torch.Tensor, B: int, beta: float, method: str = "sgd",
                 sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                 rtol: float = 1e-9, grid: int = 16) -> float:
    """The smallest η with ρ(𝒯_β) ≥ 1 on range(H) (dense; small d): scanned on a log grid from 10⁻³ to 2 times
    the deterministic edge 2(1 + β)/λ₁(K̄) (a necessary condition: E[z_t] = Āᵗ z₀ must not grow), then
    bisected to relative ``rtol``. The chapters compare it with closed forms instead of trusting it."""
    fam = stability.family(H, restrict=True)
    beta = _check_beta(beta)
    rtol = vd.positive("rtol", rtol)
    grid = vd.integer("grid", grid, 4)

    op0 = _momentum(fam, 1.0, B, beta, method, sampling, rho_over_alpha).op
    Kb, inner = op0.Kbar, _noise_part(op0)  # the same for every η: built once

    def unstable(eta):  # ρ(𝒯_β) ≥ 1 (unstable_dense of the operator at η)
        return _unstable(_dense(Kb, inner, eta, beta).numpy())

    lam = float(torch.linalg.eigvals(op0.Kbar).real.max())
    edge = 2 * (1 + beta) / lam
    etas = np.geomspace(1e-3 * edge, 2 * edge, grid)
    lo = 0.0
    for e in etas:
        if unstable(e):
            hi = float(e)
            break
        lo = float(e)
    else:
        raise RuntimeError(f"ρ(𝒯_β) < 1 up to twice the deterministic edge ({2 * edge:.4g}): impossible for a "
                           "PSD family; report it")
    while hi - lo > rtol * hi:
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if unstable(mid) else (mid, hi)
    return hi


# ---------------------------------------------------------------------------------------------- diagonal families
def _diagonal_moments(D, B, method, sampling, rho_over_alpha):
    """(k̄, q) per axis for H_i = diag(D_i), batched, from the β = 0 multipliers m(η) = 1 − 2ηk̄ + η²q."""
    one = stability.diagonal_multipliers(D, 1.0, B, method, sampling, rho_over_alpha)
    two = stability.diagonal_multipliers(D, 2.0, B, method, sampling, rho_over_alpha)
    q = (two - 2 * one + 1) / 2
    return (1 + q - one) / 2, q


def axis_matrices(D: torch.Tensor, eta, B, beta, method: str = "sgd", sampling: str = "without_replacement",
                  rho_over_alpha: float = 0.0) -> torch.Tensor:
    """The 3 × 3 map of each axis on (E w², E w w⁻, E w⁻²) for diagonal H_i = diag(D_i), batched: D (..., n, d),
    η, B and β broadcast to (...); returns (..., d, 3, 3). With u = ηk̂ and p = 1 + β:
    w′² = (p − u)² w² − 2β(p − u) w w⁻ + β² w⁻², w′w = (p − u) w² − β w w⁻, w⁻′ = w."""
    kbar, q = _diagonal_moments(D, B, method, sampling, rho_over_alpha)
    eta = vd.as_tensor("eta", eta).to(torch.float64)[..., None]
    beta = vd.as_tensor("beta", beta).to(torch.float64)
    if bool((beta < 0).any()) or bool((beta >= 1).any()):
        raise vd.InvalidArgumentError(f"beta (the momentum β) must lie in [0, 1); got values such as "
                                      f"{beta[(beta < 0) | (beta >= 1)].flatten()[:3].tolist()}")
    beta = beta[..., None]
    p = 1 + beta
    u, u2 = eta * kbar, eta ** 2 * q  # E[ηk̂], E[(ηk̂)²]
    shape = torch.broadcast_shapes(u.shape, beta.shape)
    M = torch.zeros(*shape, 3, 3, dtype=torch.float64)
    M[..., 0, 0] = p ** 2 - 2 * p * u + u2
    M[..., 0, 1] = -2 * beta * (p - u)
    M[..., 0, 2] = beta ** 2
    M[..., 1, 0] = p - u
    M[..., 1, 1] = -beta
    M[..., 2, 0] = 1
    return M


def spectral_radius_diagonal(D: torch.Tensor, eta, B, beta, method: str = "sgd",
                             sampling: str = "without_replacement", rho_over_alpha: float = 0.0) -> torch.Tensor:
    """ρ(𝒯_β) on range(H) for diagonal H_i = diag(D_i), batched (D (..., n, d); η, B, β broadcast to (...)).

    Axes evolve independently in distribution; a cross-axis block E[z_k z_lᵀ] is bounded by
    (E‖z_k‖² E‖z_l‖²)^{1/2} (Cauchy–Schwarz), so ρ(𝒯_β) is the largest radius of the per-axis 3 × 3 maps
    (:func:`axis_matrices`; the antisymmetric part of an axis block has eigenvalue β) over axes with h̄_k > 0
    (our derivation)."""
    M = axis_matrices(D, eta, B, beta, method, sampling, rho_over_alpha)
    rad = torch.linalg.eigvals(M).abs().amax(-1)
    hbar = torch.as_tensor(D, dtype=torch.float64).mean(-2)
    hbar = hbar.expand(rad.shape)
    return torch.where(hbar > 0, rad, torch.full_like(rad, -math.inf)).amax(-1)


def critical_eta_diagonal(D: torch.Tensor, B, beta, method: str = "sgd", sampling: str = "without_replacement",
                          rho_over_alpha: float = 0.0) -> torch.Tensor:
    """η*_β = min over axes with h̄_k > 0 of 2(1 − β²)k̄_k / ((1 + β)q_k − 2βk̄_k²), batched (module docstring):
    det(M_k − I) = η[(1 + β)ηq_k − 2βηk̄_k² − 2(1 − β²)k̄_k] for the 3 × 3 map M_k of :func:`axis_matrices`,
    whose only positive root is η*_β (our derivation)."""
    kbar, q = _diagonal_moments(D, B, method, sampling, rho_over_alpha)
    beta = vd.as_tensor("beta", beta).to(torch.float64)
    if bool((beta < 0).any()) or bool((beta >= 1).any()):
        raise vd.InvalidArgumentError(f"beta (the momentum β) must lie in [0, 1); got values such as "
                                      f"{beta[(beta < 0) | (beta >= 1)].flatten()[:3].tolist()}")
    beta = beta[..., None]
    den = (1 + beta) * q - 2 * beta * kbar ** 2  # ≥ (1 − β) k̄² > 0 since q ≥ k̄²
    eta_k = 2 * (1 - beta ** 2) * kbar / den.clamp_min(1e-300)
    hbar = torch.as_tensor(D, dtype=torch.float64).mean(-2).expand(eta_k.shape)
    return torch.where(hbar > 0, eta_k, torch.full_like(eta_k, math.inf)).amin(-1)


# ---------------------------------------------------------------------------------------------- references
def enumerated_operator(H: torch.Tensor, eta: float, B: int, beta: float, sampling: str = "without_replacement",
                        max_batches: int = 20_000) -> torch.Tensor:
    """E[A_S ⊗ A_S] over **every** minibatch S, A_S = [[(1+β)I − ηĤ_S, −βI], [I, 0]] built directly (row-major
    vec): 𝒯_β of heavy-ball SGD on all of R^d by brute force, without the sampling coefficients (a, c) and
    without the decomposition Ā + noise. Small n only."""
    H = check_psd_family(H)
    n, d = H.shape[0], H.shape[1]
    B = vd.batch_size(B, n)
    eta, beta = vd.positive("eta (the learning rate η)", eta), _check_beta(beta)
    count = math.comb(n, B) if sampling == "without_replacement" else 2 ** n
    if count > max_batches:
        raise vd.InvalidArgumentError(f"{count} minibatches to enumerate (n = {n}, B = {B}); at most {max_batches}")
    subsets, probs = stability._minibatches(n, B, sampling)
    I, O = torch.eye(d, dtype=torch.float64), torch.zeros(d, d, dtype=torch.float64)
    out = torch.zeros(4 * d * d, 4 * d * d, dtype=torch.float64)
    for S, p in zip(subsets, probs):
        Hs = H[list(S)].sum(0) / B if S else O
        A = torch.cat([torch.cat([(1 + beta) * I - eta * Hs, -beta * I], 1), torch.cat([I, O], 1)], 0)
        out += p * torch.kron(A, A)
    return out


def simulate(H: torch.Tensor, eta: float, B: int, beta: float, w0: torch.Tensor, steps: int, runs: int,
             method: str = "sgd", rho_over_alpha: float = 0.0, generator: torch.Generator | None = None,
             ) -> torch.Tensor:
    """Monte Carlo of linearized heavy-ball SGD / SAM, minibatches of B distinct indices (without replacement),
    all ``runs`` at once: returns ‖w_t‖² of shape (steps + 1, runs), w_{−1} = w_0 = ``w0``. Each run draws its
    own minibatches; SAM uses K_i = H_i (I + (ρ/α)H)."""
    H = check_psd_family(H)
    n, d = H.shape[0], H.shape[1]
    B = vd.batch_size(B, n)
    eta, beta = vd.positive("eta (the learning rate η)", eta), _check_beta(beta)
    steps, runs = vd.integer("steps", steps, 0), vd.integer("runs", runs, 1)
    r = stability._check_method(method, "without_replacement", rho_over_alpha)
    vd.tensor("w0", w0, 1, "(d,)")
    w0 = vd.shape("w0", w0, (d,), f"to match H's d = {d}").to(torch.float64)
    K = H @ (torch.eye(d, dtype=torch.float64) + r * H.mean(0))  # (n, d, d)
    w = w0.expand(runs, d).clone()
    prev = w.clone()
    out = [w.pow(2).sum(1)]
    for _ in range(steps):
        idx = torch.rand(runs, n, generator=generator).argsort(1)[:, :B]  # B distinct indices per run
        Kb = K[idx].mean(1)  # (runs, d, d)
        new = (1 + beta) * w - eta * torch.einsum("rij,rj->ri", Kb, w) - beta * prev
        prev, w = w, new
        out.append(w.pow(2).sum(1))
    return torch.stack(out)


def top_left_traces(op: MomentumOperator, Z0: torch.Tensor, steps: int) -> torch.Tensor:
    """tr (𝒯_β^t Z₀)₁₁ = E‖w_t‖², t = 0..steps."""
    _check_op(op)
    steps = vd.integer("steps", steps, 0)
    m = 2 * op.r
    vd.tensor("Z0", Z0, 2, "(2r, 2r)")
    Z = vd.shape("Z0", Z0, (m, m), f"(2r with r = {op.r})").to(torch.float64)
    out = [float(torch.trace(Z[:op.r, :op.r]))]
    for _ in range(steps):
        Z = op(Z)
        out.append(float(torch.trace(Z[:op.r, :op.r])))
    return torch.tensor(out, dtype=torch.float64)


# ---------------------------------------------------------------------------------------------- closed forms
def deterministic_edge(lambda_max: float, beta: float) -> float:
    """η at which full-batch heavy ball on a quadratic of curvature λ₁ loses stability: 2(1 + β)/λ₁."""
    return 2 * (1 + _check_beta(beta)) / vd.positive("lambda_max (λ₁)", lambda_max)


def effective_dexter_eta(H: torch.Tensor, B: int, beta: float, sigma: float | None = None) -> float:
    """Dexter et al.'s threshold (:func:`flatbias.stability.dexter_eta`) read with the effective learning rate
    η/(1 − β): η ≥ (1 − β) σ / (λ₁(H) √(n/B − 1)) ⇒ divergence, a reading we test, not a theorem."""
    return (1 - _check_beta(beta)) * stability.dexter_eta(H, B, sigma)


# ---------------------------------------------------------------------------------------------- a study over families
def random_family(n: int, d: int, rank: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """H_i = A_i A_iᵀ / rank with A_i (d, rank) standard normal: a PSD family (n, d, d) for the studies."""
    n, d, rank = vd.integer("n", n, 1), vd.integer("d", d, 1), vd.integer("rank", rank, 1)
    A = torch.randn(n, d, rank, dtype=torch.float64, generator=generator)
    return A @ A.transpose(1, 2) / rank


def family_thresholds(H: torch.Tensor, B: int, betas, rho_over_alpha: float = 0.0, rtol: float = 1e-7) -> dict:
    """For one family: λ₁(H), σ, Dexter's η_D and, per β, the exact thresholds η*_β of SGD and (when
    ``rho_over_alpha`` > 0) of SAM, each by :func:`critical_eta`."""
    from .coherence import coherence

    H = check_psd_family(H)
    B = vd.batch_size(B, H.shape[0])
    out = {"n": H.shape[0], "d": H.shape[1], "B": B, "lam": float(torch.linalg.eigvalsh(H.mean(0))[-1]),
           "sigma": float(coherence(H)[0]), "eta_dexter": stability.dexter_eta(H, B), "sgd": [], "sam": []}
    for beta in betas:
        out["sgd"].append(critical_eta(H, B, beta, rtol=rtol))
        if rho_over_alpha:
            out["sam"].append(critical_eta(H, B, beta, "sam", rho_over_alpha=rho_over_alpha, rtol=rtol))
    return out


# ---------------------------------------------------------------------------------------------- large families
def _sgd_form(fam: stability.Family, rho_over_alpha: float) -> stability.Family:
    """SAM's family as an SGD family with the same 𝒯_β spectrum, in the eigenbasis of its mean.

    Conjugating z by I₂ ⊗ M^{1/2} (M = I + (ρ/α)H̄ commutes with H̄) turns K_i = H_iM into
    H̃_i = M^{1/2}H_iM^{1/2} and leaves Ā's other blocks alone, as for β = 0
    (:func:`flatbias.stability.symmetrized`). Rotating by the eigenvectors V of H̃̄ makes H̃̄ diagonal."""
    op = stability.symmetrized(stability.MeanSquareOperator(fam, 1.0, 1.0, 0.0, rho_over_alpha))
    f = op.fam
    kappa, V = torch.linalg.eigh(0.5 * (f.Hbar + f.Hbar.T))
    if f.U is not None:
        return stability.Family(Hbar=torch.diag(kappa), U=f.U @ V, c=f.c)
    return stability.Family(Hbar=torch.diag(kappa), H=V.T @ f.H @ V)


def margin(fam: stability.Family, eta: float, B: int, beta: float, sampling: str = "without_replacement",
           rho_over_alpha: float = 0.0, tol: float = 1e-10) -> float:
    """μ(η) with ρ(𝒯_β) < 1 ⇔ μ(η) < 1, matrix-free on r × r matrices (our derivation).

    𝒯_β = 𝒜 + 𝒩 with 𝒜(Z) = ĀZĀᵀ (ρ(𝒜) < 1 below the edge ηκ_max < 2(1+β)) and 𝒩 positive, so
    ρ(𝒯_β) < 1 ⇔ ρ((I − 𝒜)⁻¹𝒩) < 1. 𝒩 acts through Z₁₁ only, and solving W = ĀWĀᵀ + E₁FE₁ᵀ in the
    eigenbasis of K̄ (eigenvalues κ_j, p_j = 1 + β − ηκ_j) gives ℓ_jl W₁₁,jl = F_jl with
    ℓ_jl = (1 − β²) + [β(p_j² + p_l²) − (1 + β²)p_jp_l]/(1 − β²) > 0. Hence μ(η) is the largest
    eigenvalue of X ↦ η² ℓ^{−1/2} ∘ N(ℓ^{−1/2} ∘ X), N(X) = (a − 1)K̄XK̄ + c Σ_i K_iXK_iᵀ, a self-adjoint
    map (Lanczos). Returns inf at or beyond the edge (there E[z_t] already grows)."""
    beta, eta = _check_beta(beta), vd.positive("eta (the learning rate η)", eta)
    B = vd.batch_size(B, fam.n)
    f = _sgd_form(fam, stability._check_method("sam" if rho_over_alpha else "sgd", sampling, rho_over_alpha))
    return _margin(f, eta, B, beta, sampling, tol)


def _margin(f: stability.Family, eta: float, B: int, beta: float, sampling: str, tol: float = 1e-10) -> float:
    from scipy.sparse.linalg import LinearOperator, eigsh

    kappa = f.Hbar.diagonal().clamp_min(0)
    if eta * float(kappa.max()) >= 2 * (1 + beta):
        return math.inf
    a, c = stability.sampling_coefficients(f.n, B, sampling)
    p = 1 + beta - eta * kappa
    s2 = 1 - beta ** 2
    ell = s2 + (beta * (p[:, None] ** 2 + p[None, :] ** 2) - (1 + beta ** 2) * p[:, None] * p[None, :]) / s2
    scale = eta * ell.clamp_min(1e-300).rsqrt()  # η ℓ^{-1/2}, so that the map is η² ℓ^{-1/2} N ℓ^{-1/2}
    kk = kappa[:, None] * kappa[None, :]
    r = f.r

    def apply(X):
        Y = scale * X
        return scale * ((a - 1) * kk * Y + c * f.sum_sandwich(Y))

    if r * r <= 4:
        E = torch.eye(r * r, dtype=torch.float64)
        M = torch.stack([apply(E[k].reshape(r, r)).reshape(-1) for k in range(r * r)], 1)
        return float(torch.linalg.eigvalsh(0.5 * (M + M.T)).abs().max())

    if f.U is not None:  # rank one (H_i = c' u_i u_iᵀ): the same map in numpy, without torch's per-call cost
        U, S, A1 = f.U.numpy(), scale.numpy(), ((a - 1) * kk).numpy()
        cc = c * f.c ** 2

        def mv(x):
            Y = S * x.reshape(r, r)
            q = np.einsum("ij,ij->i", U @ Y, U)  # u_iᵀ Y u_i
            return (S * (A1 * Y + cc * ((U * q[:, None]).T @ U))).reshape(-1)
    else:
        def mv(x):
            X = torch.from_numpy(np.array(x, dtype=np.float64).reshape(r, r))
            return apply(X).reshape(-1).numpy().copy()

    if a == 1 and c == 0:  # the whole set every step: no minibatch noise, 𝒩 = 0
        return 0.0
    lin = LinearOperator((r * r, r * r), matvec=mv, dtype=np.float64)
    v0 = np.eye(r).reshape(-1) + np.random.default_rng(0).random(r * r) * 1e-3
    vals = eigsh(lin, k=1, which="LM", tol=tol, return_eigenvectors=False, v0=v0, maxiter=100_000)
    return float(np.abs(vals).max())


def bracket_root(g, lo: float, g_lo: float, hi: float, g_hi: float, rtol: float) -> float:
    """The upper end of a bracket [lo, hi] of a sign change of g, g(lo) < 0 ≤ g(hi), shrunk until
    hi − lo ≤ rtol·hi: the same contract as bisection, by Illinois steps (regula falsi that halves the value
    kept at an end twice in a row, so both ends close in; superlinear), each kept at least rtol·hi/4 inside
    the bracket, and a bisection step wherever an end's value is not finite."""
    rtol = vd.positive("rtol", rtol)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise vd.InvalidArgumentError(f"the bracket needs finite lo < hi; got lo = {lo!r}, hi = {hi!r}")
    if not (g_lo < 0 <= g_hi):
        raise vd.InvalidArgumentError(f"the bracket needs g(lo) < 0 <= g(hi) (a sign change); got g(lo) = {g_lo!r}, "
                                      f"g(hi) = {g_hi!r}")
    side = 0
    while hi - lo > rtol * hi:
        if math.isfinite(g_lo) and math.isfinite(g_hi) and g_hi > g_lo:
            gap = 0.25 * rtol * hi
            x = min(max(hi - g_hi * (hi - lo) / (g_hi - g_lo), lo + gap), hi - gap)
        else:
            x = 0.5 * (lo + hi)
        gx = g(x)
        if gx < 0:
            lo, g_lo = x, gx
            if side == -1:
                g_hi *= 0.5
            side = -1
        else:
            hi, g_hi = x, gx
            if side == 1:
                g_lo *= 0.5
            side = 1
    return hi


def critical_eta_family(fam: stability.Family, B: int, beta: float, sampling: str = "without_replacement",
                        rho_over_alpha: float = 0.0, rtol: float = 1e-6, grid: int = 8) -> float:
    """The smallest η with ρ(𝒯_β) ≥ 1, from μ(η) = 1 (:func:`margin`): scanned on a log grid below the edge
    2(1 + β)/κ_max, then the crossing bracketed to relative ``rtol`` by :func:`bracket_root` on log μ(η).
    Matrix-free: for families with r up to a few hundred."""
    beta, rtol = _check_beta(beta), vd.positive("rtol", rtol)
    grid = vd.integer("grid", grid, 2)
    B = vd.batch_size(B, fam.n)
    f = _sgd_form(fam, stability._check_method("sam" if rho_over_alpha else "sgd", sampling, rho_over_alpha))
    edge = 2 * (1 + beta) / float(f.Hbar.diagonal().max())

    def log_mu(eta: float) -> float:  # < 0 iff stable; −inf without noise, +inf at the edge
        mu = _margin(f, eta, B, beta, sampling)
        return math.log(mu) if mu > 0 else -math.inf

    lo, g_lo, hi, g_hi = 0.0, -math.inf, edge, math.inf
    for e in np.geomspace(1e-3 * edge, edge, grid, endpoint=False):
        g = log_mu(float(e))
        if g >= 0:
            hi, g_hi = float(e), g
            break
        lo, g_lo = float(e), g
    return bracket_root(log_mu, lo, g_lo, hi, g_hi, rtol)


def critical_eta_rank_one(G: torch.Tensor, B: int, beta: float, c: float = 2.0, method: str = "sgd",
                          sampling: str = "without_replacement", rho_over_alpha: float = 0.0,
                          rtol: float = 1e-6) -> float:
    """η*_β for H_i = c g_i g_iᵀ (G: (n, p)) by :func:`critical_eta_family` on span{g_i}."""
    ra = stability._check_method(method, sampling, rho_over_alpha)
    return critical_eta_family(stability.family_rank_one(G, c), B, beta, sampling, ra, rtol)


__all__ = [
    "ALGORITHMS", "MomentumOperator", "axis_matrices", "critical_eta", "critical_eta_diagonal",
    "unstable_dense",
    "bracket_root", "critical_eta_family", "critical_eta_rank_one", "margin",
    "deterministic_edge", "effective_dexter_eta", "enumerated_operator", "family_thresholds", "momentum_operator",
    "momentum_operator_rank_one", "radius", "random_family", "radius_arnoldi", "radius_dense", "radius_power", "simulate",
    "spectral_radius", "spectral_radius_diagonal", "spectral_radius_rank_one", "top_left_traces",
]
