"""Number formats of the training step, and what they do to SAM's ascent.

Three settings of the CIFAR-10 step (:mod:`flatbias.cifar_train`):

* ``tf32`` (the default, :data:`DEFAULT`): **PyTorch's own defaults**: float32 storage, cuDNN convolutions on TF32
  tensor cores (10 mantissa bits, ``torch.backends.cudnn.allow_tf32 = True``), matrix products in float32
  (``torch.backends.cuda.matmul.allow_tf32 = False``). Code that does not touch these switches, such as the
  authors' ``large_scale.py``, runs this way on an Ampere or later NVIDIA GPU, so it is our best guess of the
  numerics behind the paper's table. On the CPU all three switches do nothing (no TF32 there);
* ``fp32``: IEEE float32 everywhere, TF32 off for convolutions and matrix products (exact SAM, slower);
* ``bf16``: autocast to bfloat16 (7 mantissa bits) for the forward and backward, float32 master weights.

SAM evaluates the gradient at w + e with e = ρ g/‖g‖. A reduced format rounds the weights before it multiplies;
where |e_k| is below half a unit in the last place of w_k, the perturbation of that weight is rounded away (or
doubled). :func:`ascent_gradient_fidelity` measures the effect by rounding only the weights to a given number of
mantissa bits (activations in float32), and compares SAM's second gradient with the exact one. :func:`numerics`
says which switches were in force; every CIFAR-10 record stores it.
"""

from __future__ import annotations

import contextlib

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call
from torch.nn.utils import parameters_to_vector

from . import validate as vd

PRECISIONS = ("fp32", "tf32", "bf16")
DEFAULT = "tf32"  # PyTorch's defaults (TF32 convolutions): what the authors' code most likely ran; see the docstring
MANTISSA_BITS = {"fp32": 23, "tf32": 10, "bf16": 7}  # explicit mantissa bits of each format


def round_mantissa(t: torch.Tensor, bits: int) -> torch.Tensor:
    """``t`` rounded to nearest (ties to even) with ``bits`` explicit mantissa bits, exponent range unchanged.

    ``bits=7`` equals a cast to bfloat16 and back for normal numbers; ``bits=10`` is TF32's rounding."""
    vd.tensor("t", t, finite=False)
    bits = vd.integer("bits", bits, 0, 52, why="(explicit mantissa bits; bits must be in [0, 52])")
    m, e = torch.frexp(t)  # t = m 2^e, 0.5 <= |m| < 1: m carries bits + 1 significant bits
    scale = 2.0 ** (bits + 1)
    return torch.ldexp(torch.round(m * scale) / scale, e)  # torch.round: half to even


@contextlib.contextmanager
def matmul_precision(precision: str):
    """Set cuDNN's and cuBLAS's TF32 switches for ``precision`` and restore them afterwards (they are process-wide
    flags): 'fp32' turns both off; 'tf32' sets PyTorch's defaults (TF32 convolutions, float32 matrix products);
    'bf16' leaves them as they are (autocast decides)."""
    _check_precision(precision)
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    if precision != "bf16":
        torch.backends.cudnn.allow_tf32 = precision == "tf32"
        torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def numerics(precision: str, device: torch.device | str | None = None) -> dict:
    """The number formats in force for a step in ``precision`` on ``device`` (call inside
    :func:`matmul_precision`): what a record stores, so that a TF32 run can never pass as an exact float32 one.
    ``tf32_hardware``: the device has TF32 tensor cores (an NVIDIA GPU of compute capability 8 or later)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return {"precision": precision, "autocast": "bfloat16" if precision == "bf16" else None,
            "cudnn_allow_tf32": bool(torch.backends.cudnn.allow_tf32),
            "cuda_matmul_allow_tf32": bool(torch.backends.cuda.matmul.allow_tf32),
            "tf32_hardware": _has_tf32(device)}


def _has_tf32(device) -> bool:
    device = torch.device(device) if device is not None else None
    if device is None or device.type != "cuda" or not torch.cuda.is_available():
        return False
    return torch.cuda.get_device_capability(device)[0] >= 8


def autocast(device_type: str, precision: str):
    """The autocast context of ``precision`` (bfloat16 for 'bf16', disabled otherwise)."""
    _check_precision(precision)
    if not isinstance(device_type, str):
        raise vd.ArgumentTypeError(
            f"device_type must be a string such as 'cuda' or 'cpu'; got {device_type!r}")
    return torch.autocast(device_type=device_type, dtype=torch.bfloat16, enabled=precision == "bf16")


def _check_precision(precision) -> None:
    if not isinstance(precision, str) or precision not in PRECISIONS:
        raise vd.InvalidArgumentError(f"precision must be one of {PRECISIONS}, got {precision!r}")


def _check_sam(model, x, y, rho, bits) -> tuple[float, int]:
    if not isinstance(model, nn.Module):
        raise vd.ArgumentTypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    vd.tensor("x", x, layout="(batch, ...) inputs")
    vd.tensor("y", y, 1, "(batch,) class labels", dtype="int")
    vd.shape("y", y, (len(x),), f"to match x's {len(x)} inputs")
    return vd.positive("rho", rho), vd.integer("bits", bits, 0, 52)


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
    rho, bits = _check_sam(model, x, y, rho, bits)
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
    rho, bits = _check_sam(model, x, y, rho, bits)
    w = {k: v.detach() for k, v in model.named_parameters()}
    with matmul_precision("fp32"):
        g = _flat(_grad(model, w, x, y, None))
    e, wf = (rho * g / (g.norm() + 1e-12)).abs(), _flat(w).abs()
    half_ulp = torch.ldexp(torch.ones_like(wf), torch.frexp(wf)[1] - bits - 2)  # 2^(exponent - bits - 1) / 2
    moved = e > 0
    return float(((e < half_ulp) & moved).sum() / moved.sum())
