"""Paper 2's two-layer ReLU network, its parity data and its two kinds of minima (SPEC §B.7).

    f_θ(x) = W2 · ReLU(W1 x + b1),   W1 ∈ R^{h×d}, b1 ∈ R^h, W2 ∈ R^{1×h}   (no output bias)

θ is flattened as [W1 (row-major), b1, W2], the order of ``TwoLayerReLU.parameters()``, so
P = h·d + 2h (3,840 for the paper's d = 30, h = 120). Data: x uniform on {−1, +1}^d, y = x_1·x_2.

Two constructions interpolate the data with the same per-sample sharpness when r = (d+1)^{1/4}:

- the (C, r)-generalizing solution: 2^C units, one per sign pattern s ∈ {±1}^C of the first C
  coordinates, W1[k, :C] = r s, b1[k] = −r(C−1), W2[k] = s_1 s_2 / r. On every cube point exactly
  one unit fires (pre-activation r), so f = x_1 x_2 on the whole cube;
- the memorizing solution (our construction, SPEC §B.7 [P]): one unit per training point,
  W1[i] = r x_i, b1[i] = −r(d−1), W2[i] = y_i / r. It fits the training set and outputs 0 elsewhere.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def r_equal_flatness(d: int) -> float:
    """r = (d+1)^{1/4}: minimizes ‖∇_θ f(x)‖² = r² + (d+1)/r² for one active unit (SPEC §B.7)."""
    return (d + 1) ** 0.25


def n_params(d: int, h: int) -> int:
    """P = h·d + h + h."""
    return h * d + 2 * h


def hidden_size(theta: torch.Tensor, d: int) -> int:
    """h from a flat θ of length h(d+2); a length that fits no h is a clear error."""
    if theta.ndim != 1:
        raise ValueError(f"θ must be a flat vector, got shape {tuple(theta.shape)}")
    h, rest = divmod(theta.numel(), d + 2)
    if rest or h == 0:
        raise ValueError(f"a flat θ of length {theta.numel()} is not h·(d+2) for d = {d}; "
                         f"expected a multiple of {d + 2} (layout [W1, b1, W2])")
    return h


def unflatten(theta: torch.Tensor, d: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(W1 (h×d), b1 (h), W2 (h)) as views of θ."""
    h = hidden_size(theta, d)
    return theta[: h * d].reshape(h, d), theta[h * d: h * d + h], theta[h * d + h:]


def flatten(W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor) -> torch.Tensor:
    """θ = [W1, b1, W2] (W2 may be (h,) or (1, h))."""
    return torch.cat([W1.reshape(-1), b1.reshape(-1), W2.reshape(-1)])


def _check_X(X: torch.Tensor, d: int | None = None) -> None:
    if X.ndim != 2:
        raise ValueError(f"X must be (n, d), got shape {tuple(X.shape)}")
    if d is not None and X.shape[1] != d:
        raise ValueError(f"X has {X.shape[1]} columns but the network expects d = {d}")


def preactivations(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Z = X W1ᵀ + b1 (n × h)."""
    _check_X(X)
    W1, b1, _ = unflatten(theta, X.shape[1])
    return X @ W1.T + b1


def features(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """Hidden features Φ = ReLU(Z) (n × h)."""
    return torch.relu(preactivations(theta, X))


def forward(theta: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """f_θ(x_i) for every row of X (shape n)."""
    _, _, W2 = unflatten(theta, X.shape[1])
    return features(theta, X) @ W2


def mse_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The authors' loss: nn.MSELoss, the mean over the batch of (f − y)²."""
    return ((forward(theta, X) - y) ** 2).mean()


def accuracy(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of points with sign f(x) = y (the authors' metric; f = 0 counts as wrong)."""
    return float((torch.sign(forward(theta, X)) == y).to(torch.float64).mean())


def parity_data(n: int, d: int, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """x uniform on {−1, +1}^d, y = x_1 x_2 (the authors' ``generate_data``)."""
    if d < 2 or n < 1:
        raise ValueError(f"parity data needs d ≥ 2 (y = x_1 x_2) and n ≥ 1, got n = {n}, d = {d}")
    X = (torch.randint(0, 2, (n, d), generator=generator) * 2 - 1).to(dtype)
    return X, X[:, 0] * X[:, 1]


def generalizing_solution(C: int, d: int, h: int, r: float | None = None,
                          dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (C, r)-generalizing solution as a flat θ (units 2^C … h−1 are zero).

    Unit k has bits a = binary(k) (most significant first, as ``np.binary_repr``), signs
    s = (−1)^a: W1[k, :C] = r s, b1[k] = −r(C−1), W2[k] = (−1)^{a_0 + a_1} / r = s_1 s_2 / r.
    """
    if not isinstance(C, int) or C < 2:
        raise ValueError(f"C must be an integer ≥ 2 (the label x_1 x_2 uses two coordinates), got C = {C!r}")
    if C > d:
        raise ValueError(f"C = {C} > d = {d}: the construction reads the first C input coordinates; use C ≤ d")
    if h < 2**C:
        raise ValueError(f"h = {h} hidden units are too few for the C = {C} construction: it needs 2^C = {2**C}; "
                         f"use h ≥ {2**C} or a smaller C")
    r = r_equal_flatness(d) if r is None else float(r)
    if not r > 0:
        raise ValueError(f"r must be positive, got {r}")
    k = torch.arange(2**C)
    bits = (k[:, None] >> torch.arange(C - 1, -1, -1)) & 1  # (2^C, C), MSB first
    s = (1 - 2 * bits).to(dtype)
    W1 = torch.zeros(h, d, dtype=dtype)
    b1 = torch.zeros(h, dtype=dtype)
    W2 = torch.zeros(h, dtype=dtype)
    W1[: 2**C, :C] = r * s
    b1[: 2**C] = -r * (C - 1)
    W2[: 2**C] = s[:, 0] * s[:, 1] / r
    return flatten(W1, b1, W2)


def memorizing_solution(X: torch.Tensor, y: torch.Tensor, h: int, r: float | None = None) -> torch.Tensor:
    """One unit per training point (our construction, SPEC §B.7 [P]): W1[i] = r x_i, b1[i] = −r(d−1), W2[i] = y_i/r.

    Unit i fires only at x_i (pre-activation r there, ≤ −r at every other cube point), so f(x_i) = y_i
    and f = 0 off the training set. Needs distinct x_i in {±1}^d and h ≥ n.
    """
    _check_X(X)
    n, d = X.shape
    if h < n:
        raise ValueError(f"h = {h} hidden units are too few for the memorizing solution on n = {n} points; use h ≥ n")
    if not bool(((X == 1) | (X == -1)).all()):
        raise ValueError("the memorizing construction needs cube points x ∈ {−1, +1}^d")
    if torch.unique(X, dim=0).shape[0] != n:
        raise ValueError("the training set has repeated points: one unit per point would fire twice; "
                         "drop the duplicates first")
    r = r_equal_flatness(d) if r is None else float(r)
    W1 = torch.zeros(h, d, dtype=X.dtype)
    b1 = torch.zeros(h, dtype=X.dtype)
    W2 = torch.zeros(h, dtype=X.dtype)
    W1[:n] = r * X
    b1[:n] = -r * (d - 1)
    W2[:n] = y / r
    return flatten(W1, b1, W2)


def used_inputs(theta: torch.Tensor, d: int) -> torch.Tensor:
    """How much the network uses each input coordinate: Σ_k |W2_k| ‖W1[k, j]‖ per j (shape d)."""
    W1, _, W2 = unflatten(theta, d)
    return (W2.abs()[:, None] * W1.abs()).sum(0)


class TwoLayerReLU(nn.Module):
    """The authors' module (same attribute names): ``feature_extractor = [Linear(d, h), ReLU]``,
    ``output_layer = Linear(h, 1, bias=False)``; PyTorch's default initialization."""

    def __init__(self, d: int, h: int, dtype: torch.dtype = torch.float64):
        super().__init__()
        self.feature_extractor = nn.Sequential(nn.Linear(d, h, dtype=dtype), nn.ReLU())
        self.output_layer = nn.Linear(h, 1, bias=False, dtype=dtype)
        self.d, self.h = d, h

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_extractor(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.output_layer(self.features(x)).squeeze(-1)

    def flat(self) -> torch.Tensor:
        """θ = [W1, b1, W2] (a detached copy)."""
        lin = self.feature_extractor[0]
        return flatten(lin.weight, lin.bias, self.output_layer.weight).detach().clone()

    @torch.no_grad()
    def load_flat(self, theta: torch.Tensor) -> "TwoLayerReLU":
        """Copy a flat θ into the module's parameters (the mapping the authors' init intended; SPEC §B.8(c))."""
        if theta.numel() != n_params(self.d, self.h):
            raise ValueError(f"θ has {theta.numel()} entries; this network (d = {self.d}, h = {self.h}) has "
                             f"{n_params(self.d, self.h)}")
        W1, b1, W2 = unflatten(theta, self.d)
        lin = self.feature_extractor[0]
        lin.weight.copy_(W1)
        lin.bias.copy_(b1)
        self.output_layer.weight.copy_(W2[None, :])
        return self


def init_flat(d: int, h: int, generator: torch.Generator | None = None, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """PyTorch's default nn.Linear initialization as a flat θ: W1, b1 ~ U(±1/√d), W2 ~ U(±1/√h)."""
    u = lambda shape, bound: (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound  # noqa: E731
    return flatten(u((h, d), 1 / math.sqrt(d)), u((h,), 1 / math.sqrt(d)), u((h,), 1 / math.sqrt(h)))
