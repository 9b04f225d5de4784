"""The two-layer network of paper 1 and its synthetic data (SPEC §A.2, §A.4).

    f_θ(x) = Σ_j a_j φ(θ_jᵀ x),   θ = (θ_1, …, θ_m) ∈ R^{m×d},  a_j fixed (a_j = 1 in the paper).

Everything is vectorized over neurons j and data points i: with X ∈ R^{n×d} (rows x_i) the
pre-activations are Z = X θᵀ ∈ R^{n×m}, z_ij = θ_jᵀ x_i. The loss of the geometry chapters is
L(θ) = Σ_i (f_θ(x_i) − y_i)² (our normalization, SPEC §A.2 [P]; constants only rescale time).
"""

from __future__ import annotations

import torch

from . import validate as vd
from .activations import Activation, get_activation


def _a(theta: torch.Tensor, a: torch.Tensor | None) -> torch.Tensor:
    return torch.ones(theta.shape[0], dtype=theta.dtype, device=theta.device) if a is None else a


def check_inputs(theta: torch.Tensor, X: torch.Tensor, act: str | Activation | None = None,
                 a: torch.Tensor | None = None, y: torch.Tensor | None = None,
                 theta_name: str = "θ") -> Activation | None:
    """Check θ (m, d), X (n, d), second-layer weights a (m,) and labels y (n,) against each other (finite,
    float, one dtype); return the activation (None if ``act`` is None)."""
    vd.tensor(theta_name, theta, 2, "(m, d)")
    vd.tensor("X", X, 2, "(n, d)")
    if theta.shape[1] != X.shape[1]:
        raise vd.InvalidArgumentError(
            f"{theta_name} must be (m, d) and X must be (n, d) with the same d; got "
            f"{theta_name} {vd.fmt_shape(theta.shape)}, X {vd.fmt_shape(X.shape)}")
    vd.same_kind(**{theta_name: theta, "X": X})
    if a is not None:
        vd.tensor("second-layer weights a", a)
        m = theta.shape[0]
        vd.shape("second-layer weights a", a, (m,), f"to match {theta_name}'s {m} neurons")
        vd.same_kind(**{theta_name: theta, "a": a})
    if y is not None:
        vd.tensor("y", y, dtype="real")
        vd.shape("y", y, (X.shape[0],), f"to match X's {X.shape[0]} rows")
    return None if act is None else get_activation(act)


def uniform_data(n: int, d: int, generator: torch.Generator, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """Paper 1's data: every entry of x_i uniform on [0, 1] (stated, SPEC §A.11); labels y_i ~ U[0, 1] (ours)."""
    n, d = vd.integer("n", n, 1), vd.integer("d", d, 1)
    vd.generator("generator", generator)
    vd.dtype("dtype", dtype)
    return _uniform(n, d, generator, dtype)


def _uniform(n, d, generator, dtype):
    X = torch.rand(n, d, generator=generator, dtype=dtype)
    y = torch.rand(n, generator=generator, dtype=dtype)
    return X, y


def gram_min_eig(X: torch.Tensor) -> float:
    """λ_min(XXᵀ): how far the data are from linear dependence; it sets the convergence rate on M (SPEC §A.8)."""
    vd.tensor("X", X, 2, "(n, d)")
    if X.shape[0] == 0:
        raise vd.InvalidArgumentError(
            "X must have at least one row (n ≥ 1); got shape " + vd.fmt_shape(X.shape))
    return _gram_min_eig(X)


def _gram_min_eig(X):
    return float(torch.linalg.eigvalsh(X @ X.T)[0])


def conditioned_uniform_data(n: int, d: int, generator: torch.Generator, min_eig: float, dtype=torch.float64,
                             max_tries: int = 10_000) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`uniform_data`, redrawn until λ_min(XXᵀ) ≥ ``min_eig`` (our choice, SPEC §A.8: near-singular draws make
    the flow and label-noise SGD very slow). Chapters that use it report λ_min(XXᵀ) of every draw."""
    n, d = vd.integer("n", n, 1), vd.integer("d", d, 1)
    min_eig, max_tries = vd.nonnegative("min_eig", min_eig), vd.integer("max_tries", max_tries, 1)
    vd.generator("generator", generator)
    vd.dtype("dtype", dtype)
    if n > d and min_eig > 0:
        raise vd.InvalidArgumentError(
            f"n = {n} > d = {d}: XXᵀ is singular, so no draw has λ_min(XXᵀ) ≥ {min_eig}; pass min_eig=0")
    for _ in range(max_tries):
        X, y = _uniform(n, d, generator, dtype)
        if _gram_min_eig(X) >= min_eig:
            return X, y
    raise RuntimeError(f"no data draw with λ_min(XXᵀ) ≥ {min_eig} in {max_tries} tries; lower min_eig")


def preactivations(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Z = X θᵀ, z_ij = θ_jᵀ x_i (shape n × m)."""
    check_inputs(theta, X)
    return _z(theta, X)


def _z(theta, X):
    return X @ theta.T


def feature_matrix(theta: torch.Tensor, X: torch.Tensor, act: str | Activation) -> torch.Tensor:
    """Φ_ij = φ(θ_jᵀ x_i) (n × m); rank one ⇔ all neurons agree on the data."""
    return check_inputs(theta, X, act).phi(_z(theta, X))


def forward(theta: torch.Tensor, X: torch.Tensor, act: str | Activation, a: torch.Tensor | None = None) -> torch.Tensor:
    """f_θ(x_i) = Σ_j a_j φ(θ_jᵀ x_i) for every row of X (shape n)."""
    return _forward(theta, X, check_inputs(theta, X, act, a), a)


def _forward(theta, X, act: Activation, a):
    return act.phi(_z(theta, X)) @ _a(theta, a)


def jacobian(theta: torch.Tensor, X: torch.Tensor, act: str | Activation, a: torch.Tensor | None = None) -> torch.Tensor:
    """J = ∂f(x_i)/∂θ (n × md, θ flattened row-major): block j of row i is a_j φ'(z_ij) x_i (SPEC §A.2)."""
    return _jacobian(theta, X, check_inputs(theta, X, act, a), a)


def _jacobian(theta, X, act: Activation, a):
    D = act.d1(_z(theta, X)) * _a(theta, a)  # (n, m)
    return (D[:, :, None] * X[:, None, :]).reshape(X.shape[0], -1)


def loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
         a: torch.Tensor | None = None) -> torch.Tensor:
    """L(θ) = Σ_i (f_θ(x_i) − y_i)² (the geometry chapters' normalization)."""
    return _loss(theta, X, y, check_inputs(theta, X, act, a, y), a)


def _loss(theta, X, y, act: Activation, a):
    return ((_forward(theta, X, act, a) - y) ** 2).sum()


def sharpness(theta: torch.Tensor, X: torch.Tensor, act: str | Activation, a: torch.Tensor | None = None) -> torch.Tensor:
    """F(θ) = Σ_i ‖∇_θ f(x_i)‖² = Σ_i ‖x_i‖² Σ_j a_j² φ'(θ_jᵀx_i)²; on M, tr ∇²L = 2F (Lemma 4.2/4.3)."""
    return _sharpness(theta, X, check_inputs(theta, X, act, a), a)


def _sharpness(theta, X, act: Activation, a):
    D = act.d1(_z(theta, X)) * _a(theta, a)
    return ((X**2).sum(1) * (D**2).sum(1)).sum()


def trace_hessian(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
                  a: torch.Tensor | None = None) -> torch.Tensor:
    """tr ∇²L(θ) in closed form at any θ (on or off M):

    tr ∇²L = 2 Σ_i ‖∇f_i‖² + 2 Σ_i r_i tr ∇²f_i,  r_i = f_θ(x_i) − y_i,  tr ∇²f_i = ‖x_i‖² Σ_j a_j φ''(z_ij).

    The first term is 2F (Lemma 4.2/4.3); the second, the *residual term*, vanishes on M.
    """
    act = check_inputs(theta, X, act, a, y)
    return 2 * _sharpness(theta, X, act, a) + _residual_term(theta, X, y, act, a)


def residual_term(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
                  a: torch.Tensor | None = None) -> torch.Tensor:
    """2 Σ_i r_i ‖x_i‖² Σ_j a_j φ''(z_ij): the part of tr ∇²L that vanishes on the zero-loss manifold."""
    return _residual_term(theta, X, y, check_inputs(theta, X, act, a, y), a)


def _residual_term(theta, X, y, act: Activation, a):
    r = _forward(theta, X, act, a) - y
    lap_f = (X**2).sum(1) * (act.d2(_z(theta, X)) @ _a(theta, a))
    return 2 * (r * lap_f).sum()


def trace_hessian_autograd(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, act: str | Activation,
                           a: torch.Tensor | None = None) -> torch.Tensor:
    """tr ∇²L(θ) from the dense Hessian given by ``torch.func.hessian`` (exact up to round-off; O((md)²) memory)."""
    act = check_inputs(theta, X, act, a, y)
    m, d = theta.shape
    H = torch.func.hessian(lambda t: _loss(t.reshape(m, d), X, y, act, a))(theta.reshape(-1))
    return torch.diagonal(H).sum()
