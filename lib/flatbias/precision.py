"""Number formats of the training step, and what they do to SAM's ascent.

Three settings of the CIFAR-10 step (:mod:`flatbias.cifar_train`):

* ``fp32``: IEEE float32 everywhere, TF32 off for convolutions and matrix products (our default);
* ``tf32``: float32 storage, convolutions and matrix products on TF32 tensor cores (10 mantissa bits), which is
  PyTorch's default for cuDNN convolutions on NVIDIA GPUs since Ampere, so likely what the authors' GPU ran;
* ``bf16``: autocast to bfloat16 (7 mantissa bits) for the forward and backward, float32 master weights.

SAM evaluates the gradient at w + e with e = ρ g/‖g‖. A reduced format rounds the weights before it multiplies;
where |e_k| is below half a unit in the last place of w_k, the perturbation of that weight is rounded away (or
doubled). :func:`ascent_gradient_fidelity` measures the effect by rounding only the weights to a given number of
mantissa bits (activations in float32), and compares SAM's second gradient with the exact one.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

PRECISIONS = ("fp32", "tf32", "bf16")
MANTISSA_BITS = {"fp32": 23, "tf32": 10, "bf16": 7}  # explicit mantissa bits of each format


def round_mantissa(t: torch.Tensor, bits: int) -> torch.Tensor:
    """``t`` rounded to nearest (ties to even) with ``bits`` explicit mantissa bits, exponent range unchanged.

    ``bits=7`` equals a cast to bfloat16 and back for normal numbers; ``bits=10`` is TF32's rounding."""
    if not 0 <= bits <= 52:
        raise ValueError(f"bits must be in [0, 52], got {bits}")
    m, e = torch.frexp(t)  # t = m 2^e, 0.5 <= |m| < 1: m carries bits + 1 significant bits
    scale = 2.0 ** (bits + 1)
    return torch.ldexp(torch.round(m * scale) / scale, e)  # torch.round: half to even


@contextlib.contextmanager
def matmul_precision(precision: str):
    """Set cuDNN's and cuBLAS's TF32 switches for ``precision`` ('fp32': off, 'tf32': on, 'bf16': unchanged, as
    autocast decides) and restore them afterwards (they are process-wide flags)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    if precision != "bf16":
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = precision == "tf32"
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def autocast(device_type: str, precision: str):
    """The autocast context of ``precision`` (bfloat16 for 'bf16', disabled otherwise)."""
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _grad(model: nn.Module, params: dict, x, y, bits: int | None) -> dict:
    p = {k: (v if bits is None else round_mantissa(v, bits)).requires_grad_() for k, v in params.items()}
    loss = F.cross_entropy(functional_call(model, p, (x,)), y)
    return dict(zip(p, torch.autograd.grad(loss, list(p.values()))))


def _flat(d: dict) -> torch.Tensor:
    return parameters_to_vector(d.values())


def ascent_gradient_fidelity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rho: float,
                             bits: int) -> dict[str, float]:
    """How well SAM's gradient at w + ρg/‖g‖ survives weights rounded to ``bits`` mantissa bits.

    Returns the cosine with the exact (float32) quantity of: the plain gradient g, SAM's second gradient, and
    SAM's correction (second gradient − g), the part of the step that SAM adds to SGD. The model is used as it is
    (train mode: batch statistics, as in the training step); its parameters are not changed.
    """
    w = {k: v.detach() for k, v in model.named_parameters()}

    def sam(b):
        g = _grad(model, w, x, y, b)
        norm = _flat(g).norm()
        g2 = _grad(model, {k: w[k] + rho * g[k] / (norm + 1e-12) for k in w}, x, y, b)
        return _flat(g), _flat(g2)

    with matmul_precision("fp32"):  # the reference must be exact float32 on a GPU too (no TF32 convolutions)
        (g, g2), (gq, g2q) = sam(None), sam(bits)
    cos = lambda a, b: float(F.cosine_similarity(a.double(), b.double(), dim=0))
    return {"gradient": cos(gq, g), "sam_gradient": cos(g2q, g2), "sam_correction": cos(g2q - gq, g2 - g)}


def perturbation_below_resolution(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rho: float,
                                  bits: int) -> float:
    """Share of the weights with a non-zero SAM perturbation e_k smaller than half a unit in the last place of
    w_k at ``bits`` mantissa bits (those that rounding to that format moves by 0 or by a whole unit instead)."""
    w = {k: v.detach() for k, v in model.named_parameters()}
    with matmul_precision("fp32"):
        g = _flat(_grad(model, w, x, y, None))
    e, wf = (rho * g / (g.norm() + 1e-12)).abs(), _flat(w).abs()
    half_ulp = torch.ldexp(torch.ones_like(wf), torch.frexp(wf)[1] - bits - 2)  # 2^(exponent - bits - 1) / 2
    moved = e > 0
    return float(((e < half_ulp) & moved).sum() / moved.sum())
