"""Activations of paper 1 with their first three derivatives and their inverse.

Paper 1 (Assumption 3.1, recovered from the ICLR reviews, SPEC §A.3) needs φ' ≥ ρ₁ > 0 and
φ''' ≥ ρ₂ > 0: φ' > 0 makes φ invertible and the zero-loss manifold smooth; φ''' > 0 makes φ''
injective, which forces every stationary point to be rank one (Theorem 3.3). ``sinh`` and
``z + z³/3`` satisfy both. ``cube`` (z³) has φ'(0) = 0, so it satisfies φ''' > 0 but only
φ' ≥ 0. ``softplus`` and ``tanh`` violate φ''' > 0 (φ''' changes sign) and are here to probe
what happens outside the theorem.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from . import validate as vd

Fn = Callable[[torch.Tensor], torch.Tensor]


def _cbrt(x: torch.Tensor) -> torch.Tensor:
    """Real cube root (torch.pow of a negative base with exponent 1/3 is NaN)."""
    return torch.sign(x) * torch.abs(x) ** (1.0 / 3.0)


def _cubic_inverse(y: torch.Tensor) -> torch.Tensor:
    """Solve z + z³/3 = y (Cardano: z³ + 3z − 3y = 0 has one real root), then one Newton polish."""
    s = torch.sqrt(2.25 * y**2 + 1.0)
    z = _cbrt(1.5 * y + s) + _cbrt(1.5 * y - s)
    return z - (z + z**3 / 3 - y) / (1 + z**2)


@dataclass(frozen=True)
class Activation:
    """φ with φ', φ'', φ''' and φ⁻¹, all elementwise on tensors."""

    name: str
    phi: Fn
    d1: Fn
    d2: Fn
    d3: Fn
    inverse: Fn
    inverse_domain: tuple[float, float]  # open interval on which φ⁻¹ is defined
    satisfies_assumption_3_1: bool  # φ' ≥ ρ₁ > 0 and φ''' ≥ ρ₂ > 0 on the whole line
    note: str

    def __call__(self, z: torch.Tensor) -> torch.Tensor:
        return self.phi(z)

    def inv(self, y: torch.Tensor) -> torch.Tensor:
        """φ⁻¹(y); a value outside the range of φ is a clear error."""
        vd.tensor("y", y, dtype="real", finite=False)
        lo, hi = self.inverse_domain
        outside = ~((y > lo) & (y < hi))  # NaN is outside too
        if bool(torch.any(outside)):
            bad = y[outside].flatten()[:3].tolist()
            raise vd.InvalidArgumentError(
                f"y must lie in ({lo}, {hi}): {self.name}'s φ⁻¹ is defined on ({lo}, {hi}) only; got values "
                f"such as {bad}. Choose labels inside the range of the activation (Theorem 3.3 needs y_i/m "
                "there).")
        return self.inverse(y)


def _tanh_d2(z):
    t = torch.tanh(z)
    return -2 * t * (1 - t**2)


def _tanh_d3(z):
    t = torch.tanh(z)
    return (1 - t**2) * (6 * t**2 - 2)


def _sp_d2(z):
    s = torch.sigmoid(z)
    return s * (1 - s)


def _sp_d3(z):
    s = torch.sigmoid(z)
    return s * (1 - s) * (1 - 2 * s)


INF = float("inf")

ACTIVATIONS: dict[str, Activation] = {
    a.name: a
    for a in [
        Activation("sinh", torch.sinh, torch.cosh, torch.sinh, torch.cosh, torch.asinh, (-INF, INF), True,
                   "φ' = φ''' = cosh ≥ 1, so ρ₁ = ρ₂ = 1; φ⁻¹ = asinh"),
        Activation("cubic", lambda z: z + z**3 / 3, lambda z: 1 + z**2, lambda z: 2 * z,
                   lambda z: torch.full_like(z, 2.0), _cubic_inverse, (-INF, INF), True,
                   "φ(z) = z + z³/3: φ' = 1 + z² ≥ 1, φ''' = 2; φ⁻¹ by Cardano's formula"),
        Activation("cube", lambda z: z**3, lambda z: 3 * z**2, lambda z: 6 * z, lambda z: torch.full_like(z, 6.0),
                   _cbrt, (-INF, INF), False,
                   "φ(z) = z³: φ''' = 6 > 0 but φ'(0) = 0, so the manifold may be singular where some z = 0"),
        Activation("softplus", torch.nn.functional.softplus, torch.sigmoid, _sp_d2, _sp_d3,
                   lambda y: torch.log(torch.expm1(y)), (0.0, INF), False,
                   "outside Assumption 3.1: φ''' = σ(1−σ)(1−2σ) changes sign at 0"),
        Activation("tanh", torch.tanh, lambda z: 1 - torch.tanh(z) ** 2, _tanh_d2, _tanh_d3, torch.atanh, (-1.0, 1.0),
                   False, "outside Assumption 3.1: φ''' changes sign and φ' → 0 in the tails"),
    ]
}


def get_activation(name: str | Activation) -> Activation:
    """Look an activation up by name; an unknown name is a clear error listing the valid ones."""
    if isinstance(name, Activation):
        return name
    if not isinstance(name, str) or name not in ACTIVATIONS:
        raise vd.InvalidArgumentError(
            f"unknown activation {name!r}; valid names are {', '.join(ACTIVATIONS)} "
            "(or pass an Activation)")
    return ACTIVATIONS[name]
