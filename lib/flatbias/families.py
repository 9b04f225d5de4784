"""Random per-sample Hessian families for the stability chapters (10-13): clustered PSD families and integer draws.

A *clustered* family has ``H_i = A_i A_iᵀ`` with ``A_i = A + τ E_i`` (``A``, ``E_i`` standard normal ``d × k``): one
shared factor plus independent noise of relative size ``τ``. ``τ → 0`` makes the samples agree (coherent, rank
``k`` each and all alike); ``τ`` large makes them independent. The draws consume the generator in a fixed order (the
shared factor, then the noise), so a chapter's families depend only on its seed.
"""

from __future__ import annotations

import torch

from . import validate as vd


def clustered_family(n: int, d: int, k: int, tau: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(n, d, d)`` PSD family ``H_i = (A + τE_i)(A + τE_i)ᵀ`` with ``A``, ``E_i`` standard normal ``(d, k)``
    (float64)."""
    n, d, k = vd.integer("n", n, 1), vd.integer("d", d, 1), vd.integer("k", k, 1)
    generator = vd.generator("generator", generator)
    tau = vd.nonnegative("tau", tau)
    A = (torch.randn(1, d, k, generator=generator, dtype=torch.float64)
         + tau * torch.randn(n, d, k, generator=generator, dtype=torch.float64))
    return A @ A.transpose(1, 2)


def draw_int(lo_hi, generator: torch.Generator | None = None) -> int:
    """One integer uniform on ``lo_hi = (lo, hi)``, both ends included."""
    if not (isinstance(lo_hi, (tuple, list)) and len(lo_hi) == 2):
        raise vd.InvalidArgumentError(f"lo_hi must be a pair (lo, hi); got {lo_hi!r}")
    lo, hi = vd.integer("lo_hi[0]", lo_hi[0]), vd.integer("lo_hi[1]", lo_hi[1])
    if hi < lo:
        raise vd.InvalidArgumentError(f"lo_hi must have lo <= hi; got {lo_hi!r}")
    return int(torch.randint(lo, hi + 1, (1,), generator=generator))
