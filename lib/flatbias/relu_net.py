"""Paper 2's two-layer ReLU network, its parity data and its two kinds of minima (SPEC §B.7).

    f_θ(x) = W2 · ReLU(W1 x + b1),   W1 ∈ R^{h×d}, b1 ∈ R^h, W2 ∈ R^{1×h}   (no output bias)

θ is flattened as [W1 (row-major), b1, W2], the order of ``TwoLayerReLU.parameters()``, so
P = h·d + 2h (3,840 for the paper's d = 30, h = 120). Data: x uniform on {−1, +1}^d, y = x_1·x_2.

A flat θ has no width of its own: its length L = h(d+2) also equals h'(d'+2) for every other divisor d'+2 ≥ 3
of L (for h ≥ 2 at least d' = L − 2, h' = 1; the 36 entries of (d, h) = (4, 6) are also (10, 3), (16, 2), ...).
So data X of width d never tells whether θ was built for it, and every public function that reads a flat θ
with data (or with d) requires the width ``h`` as a keyword; a θ of another shape is then a clear error.

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

from . import validate as vd


def r_equal_flatness(d: int) -> float:
    """r = (d+1)^{1/4}: minimizes ‖∇_θ f(x)‖² = r² + (d+1)/r² for one active unit (SPEC §B.7)."""
    return (vd.integer("d", d, 1) + 1) ** 0.25


def n_params(d: int, h: int) -> int:
    """P = h·d + h + h."""
    d, h = vd.integer("d", d, 1), vd.integer("h", h, 1)
    return h * d + 2 * h


def hidden_size(theta: torch.Tensor, d: int, h: int | None = None) -> int:
    """h from a flat θ of length h(d+2); a length that fits no h, or not the given ``h``, is a clear error.

    Without ``h`` this infers the width from the length, which is ambiguous (module docstring): only a given
    ``h`` catches a θ built for another input width d' whose length is also a multiple of d+2."""
    vd.tensor("θ", theta, 1, "(flat, layout [W1, b1, W2])", finite=False)
    d = vd.integer("d", d, 1)
    if h is not None:
        h = vd.integer("h", h, 1)
        if theta.numel() != h * (d + 2):
            raise vd.InvalidArgumentError(
                f"θ must have h·(d+2) = {h * (d + 2)} entries for h = {h} hidden units and "
                f"d = {d} inputs (layout [W1, b1, W2]); got {theta.numel()}")
        return h
    h, rest = divmod(theta.numel(), d + 2)
    if rest or h == 0:
        raise vd.InvalidArgumentError(f"a flat θ of length {theta.numel()} is not h·(d+2) for d = {d}; "
                                      f"expected a multiple of {d + 2} (layout [W1, b1, W2])")
    return h


def unflatten(theta: torch.Tensor, d: int, h: int) -> tuple[torch.Tensor, ...]:
    """(W1 (h×d), b1 (h), W2 (h)) as views of θ; ``h`` is required (a flat θ's length fits several (d, h))."""
    hidden_size(theta, d, _width(h))
    return _unflatten(theta, int(d))


def _unflatten(theta, d: int):
    h = theta.numel() // (d + 2)
    return theta[: h * d].reshape(h, d), theta[h * d: h * d + h], theta[h * d + h:]


def flatten(W1: torch.Tensor, b1: torch.Tensor, W2: torch.Tensor) -> torch.Tensor:
    """θ = [W1, b1, W2] (W2 may be (h,) or (1, h))."""
    vd.tensor("W1", W1, 2, "(h, d)", finite=False)
    h = W1.shape[0]
    vd.tensor("b1", b1, finite=False)
    vd.shape("b1", b1, (h,), f"to match W1's {h} rows")
    vd.tensor("W2", W2, finite=False)
    if tuple(W2.shape) not in ((h,), (1, h)):
        raise vd.InvalidArgumentError(f"W2 must have shape ({h},) or (1, {h}) to match W1's {h} rows; got "
                                      f"{vd.fmt_shape(W2.shape)}")
    vd.same_kind(W1=W1, b1=b1, W2=W2)
    return torch.cat([W1.reshape(-1), b1.reshape(-1), W2.reshape(-1)])


def _width(h) -> int:
    """The required hidden width: an integer ≥ 1."""
    return vd.integer("h", h, 1, why="(the hidden width θ was built with: a flat θ's length fits several (d, h))")


def check_inputs(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor | None = None, h: int | None = None,
                 X_name: str = "X", y_name: str = "y") -> int:
    """Check a flat θ against data X (n ≥ 1, d) and labels y (n,) (finite, float, one dtype); return its width.

    ``h=None`` infers the width from θ's length, which is ambiguous (module docstring); the public functions
    of this module and :mod:`flatbias.relu_hessian` pass the ``h`` their callers must give."""
    vd.tensor("θ", theta, 1, "(flat, layout [W1, b1, W2])")
    vd.tensor(X_name, X, 2, "(n, d)")
    if X.shape[0] == 0:
        raise vd.InvalidArgumentError(f"{X_name} must hold at least one data point (row), shape (n, d) with n ≥ 1; "
                                      f"got {vd.fmt_shape(X.shape)}")
    vd.same_kind(θ=theta, **{X_name: X})
    h = hidden_size(theta, X.shape[1], h)
    if y is not None:
        vd.tensor(y_name, y, dtype="real")
        vd.shape(y_name, y, (X.shape[0],), f"to match {X_name}'s {X.shape[0]} rows")
    return h


def preactivations(theta: torch.Tensor, X: torch.Tensor, *, h: int) -> torch.Tensor:
    """Z = X W1ᵀ + b1 (n × h)."""
    check_inputs(theta, X, h=_width(h))
    return _z(theta, X)


def _z(theta, X):
    W1, b1, _ = _unflatten(theta, X.shape[1])
    return X @ W1.T + b1


def features(theta: torch.Tensor, X: torch.Tensor, *, h: int) -> torch.Tensor:
    """Hidden features Φ = ReLU(Z) (n × h)."""
    check_inputs(theta, X, h=_width(h))
    return torch.relu(_z(theta, X))


def forward(theta: torch.Tensor, X: torch.Tensor, *, h: int) -> torch.Tensor:
    """f_θ(x_i) for every row of X (shape n)."""
    check_inputs(theta, X, h=_width(h))
    return _forward(theta, X)


def _forward(theta, X):
    _, _, W2 = _unflatten(theta, X.shape[1])
    return torch.relu(_z(theta, X)) @ W2


def mse_loss(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> torch.Tensor:
    """The authors' loss: nn.MSELoss, the mean over the batch of (f − y)²."""
    check_inputs(theta, X, y, _width(h))
    return ((_forward(theta, X) - y) ** 2).mean()


def accuracy(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, *, h: int) -> float:
    """Fraction of points with sign f(x) = y (the authors' metric; f = 0 counts as wrong)."""
    check_inputs(theta, X, y, _width(h))
    return float((torch.sign(_forward(theta, X)) == y).to(torch.float64).mean())


def parity_data(n: int, d: int, generator: torch.Generator | None = None,
                dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """x uniform on {−1, +1}^d, y = x_1 x_2 (the authors' ``generate_data``)."""
    n, d = vd.integer("n", n), vd.integer("d", d)
    vd.generator("generator", generator)
    vd.dtype("dtype", dtype)
    if d < 2 or n < 1:
        raise vd.InvalidArgumentError(
            f"parity data needs d ≥ 2 (y = x_1 x_2) and n ≥ 1, got n = {n}, d = {d}")
    X = (torch.randint(0, 2, (n, d), generator=generator) * 2 - 1).to(dtype)
    return X, X[:, 0] * X[:, 1]


def generalizing_solution(C: int, d: int, h: int, r: float | None = None,
                          dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (C, r)-generalizing solution as a flat θ (units 2^C … h−1 are zero).

    Unit k has bits a = binary(k) (most significant first, as ``np.binary_repr``), signs
    s = (−1)^a: W1[k, :C] = r s, b1[k] = −r(C−1), W2[k] = (−1)^{a_0 + a_1} / r = s_1 s_2 / r.
    """
    if isinstance(C, bool) or not isinstance(C, int) or C < 2:
        raise vd.InvalidArgumentError(f"C must be an integer ≥ 2 (the label x_1 x_2 uses two coordinates), "
                                      f"got C = {C!r}")
    d, h = vd.integer("d", d, 1), vd.integer("h", h, 1)
    vd.dtype("dtype", dtype)
    if C > d:
        raise vd.InvalidArgumentError(
            f"C = {C} > d = {d}: the construction reads the first C input coordinates; "
            "use C ≤ d")
    if h < 2**C:
        raise vd.InvalidArgumentError(
            f"h = {h} hidden units are too few for the C = {C} construction: it needs "
            f"2^C = {2**C}; use h ≥ {2**C} or a smaller C")
    r = r_equal_flatness(d) if r is None else vd.positive("r", r)
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
    """One unit per training point (our construction, SPEC §B.7 [P]):
    W1[i] = r x_i, b1[i] = −r(d−1), W2[i] = y_i/r.

    Unit i fires only at x_i (pre-activation r there, ≤ −r at every other cube point), so f(x_i) = y_i
    and f = 0 off the training set. Needs distinct x_i in {±1}^d and h ≥ n.
    """
    vd.tensor("X", X, 2, "(n, d)")
    n, d = X.shape
    vd.tensor("y", y, dtype="real")
    vd.shape("y", y, (n,), f"to match X's {n} rows")
    h = vd.integer("h", h, 1)
    if h < n:
        raise vd.InvalidArgumentError(
            f"h = {h} hidden units are too few for the memorizing solution on n = {n} "
            "points; use h ≥ n")
    if not bool(((X == 1) | (X == -1)).all()):
        raise vd.InvalidArgumentError("the memorizing construction needs cube points x ∈ {−1, +1}^d")
    if torch.unique(X, dim=0).shape[0] != n:
        raise vd.InvalidArgumentError(
            "the training set has repeated points: one unit per point would fire twice; "
            "drop the duplicates first")
    r = r_equal_flatness(d) if r is None else vd.positive("r", r)
    W1 = torch.zeros(h, d, dtype=X.dtype)
    b1 = torch.zeros(h, dtype=X.dtype)
    W2 = torch.zeros(h, dtype=X.dtype)
    W1[:n] = r * X
    b1[:n] = -r * (d - 1)
    W2[:n] = y / r
    return flatten(W1, b1, W2)


def used_inputs(theta: torch.Tensor, d: int, *, h: int) -> torch.Tensor:
    """How much the network uses each input coordinate: Σ_k |W2_k| ‖W1[k, j]‖ per j (shape d)."""
    vd.tensor("θ", theta, 1, "(flat, layout [W1, b1, W2])")
    W1, _, W2 = unflatten(theta, d, h)
    return (W2.abs()[:, None] * W1.abs()).sum(0)


class TwoLayerReLU(nn.Module):
    """The authors' module (same attribute names): ``feature_extractor = [Linear(d, h), ReLU]``,
    ``output_layer = Linear(h, 1, bias=False)``; PyTorch's default initialization."""

    def __init__(self, d: int, h: int, dtype: torch.dtype = torch.float64):
        d, h = vd.integer("d", d, 1), vd.integer("h", h, 1)
        vd.dtype("dtype", dtype)
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
        vd.tensor("θ", theta, 1, "(flat, layout [W1, b1, W2])")
        if theta.numel() != n_params(self.d, self.h):
            raise vd.InvalidArgumentError(
                f"θ has {theta.numel()} entries; this network (d = {self.d}, h = {self.h}) "
                f"has {n_params(self.d, self.h)}")
        W1, b1, W2 = unflatten(theta, self.d, self.h)
        lin = self.feature_extractor[0]
        lin.weight.copy_(W1)
        lin.bias.copy_(b1)
        self.output_layer.weight.copy_(W2[None, :])
        return self


def init_flat(d: int, h: int, generator: torch.Generator | None = None,
              dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """PyTorch's default nn.Linear initialization as a flat θ: W1, b1 ~ U(±1/√d), W2 ~ U(±1/√h)."""
    d, h = vd.integer("d", d, 1), vd.integer("h", h, 1)
    vd.generator("generator", generator)
    vd.dtype("dtype", dtype)
    u = lambda shape, bound: (torch.rand(shape, generator=generator, dtype=dtype) * 2 - 1) * bound  # noqa: E731
    return flatten(u((h, d), 1 / math.sqrt(d)), u((h,), 1 / math.sqrt(d)), u((h,), 1 / math.sqrt(h)))
