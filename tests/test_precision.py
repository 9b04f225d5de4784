"""Number formats: mantissa rounding against torch's own casts, the TF32 switches, and the SAM-ascent measurements."""

import pytest
import torch
from torch import nn

from flatbias import precision


def _values(n=20000, seed=0):
    g = torch.Generator().manual_seed(seed)
    mags = 10.0 ** torch.empty(n).uniform_(-6, 6, generator=g)  # normal float32 numbers over 12 decades
    return (torch.randn(n, generator=g).sign() * mags).float()


def test_rounding_to_7_bits_is_a_bfloat16_cast():
    t = _values()
    assert torch.equal(precision.round_mantissa(t, 7), t.bfloat16().float())
    assert torch.equal(precision.round_mantissa(t.double(), 10).float(), precision.round_mantissa(t, 10))


def test_rounding_keeps_the_bits_asked_for():
    t = _values(seed=1).double()
    assert torch.equal(precision.round_mantissa(t.float(), 23), t.float())  # float32 has 23: nothing changes
    for bits in (7, 10, 16):
        r = precision.round_mantissa(t, bits)
        m, _ = torch.frexp(r)
        assert torch.equal(m * 2.0 ** (bits + 1), torch.round(m * 2.0 ** (bits + 1)))  # bits + 1 significant bits
        assert ((r - t).abs() <= t.abs() * 2.0 ** -(bits + 1)).all()  # within half a unit in the last place
    assert torch.equal(precision.round_mantissa(torch.tensor([1 + 2 ** -8, 1 + 3 * 2 ** -8]).double(), 7),
                       torch.tensor([1.0, 1 + 4 * 2 ** -8]).double())  # ties to even
    with pytest.raises(ValueError, match="bits"):
        precision.round_mantissa(t, 60)


def test_matmul_precision_sets_and_restores_the_tf32_switches():
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    try:
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = True
        with precision.matmul_precision("fp32"):
            assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        assert torch.backends.cudnn.allow_tf32 and torch.backends.cuda.matmul.allow_tf32
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        with precision.matmul_precision("tf32"):  # PyTorch's defaults: TF32 convolutions, fp32 matrix products
            assert torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
            num = precision.numerics("tf32", "cpu")
            assert num == {"precision": "tf32", "autocast": None, "cudnn_allow_tf32": True,
                           "cuda_matmul_allow_tf32": False, "tf32_hardware": False}  # a CPU has no TF32
        with precision.matmul_precision("bf16"):  # autocast decides; the switches stay as they were
            assert not torch.backends.cudnn.allow_tf32
        with pytest.raises(ValueError, match="precision must be one of"):
            with precision.matmul_precision("fp16"):
                pass
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def test_the_default_is_pytorchs_own():
    """A fresh process's switches are the default precision's: what code that never touches them (the authors')
    runs with."""
    import subprocess
    import sys

    code = ("import torch; from flatbias import precision as p; d = (torch.backends.cudnn.allow_tf32, "
            "torch.backends.cuda.matmul.allow_tf32)\nwith p.matmul_precision(p.DEFAULT): "
            "assert (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32) == d, d")
    assert precision.DEFAULT == "tf32"
    subprocess.run([sys.executable, "-c", code], check=True)


def _mlp(seed=0):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 3)).float()
    g = torch.Generator().manual_seed(seed)
    return net, torch.randn(64, 8, generator=g).float(), torch.randint(0, 3, (64,), generator=g)


def test_ascent_fidelity_is_exact_without_rounding_and_falls_with_fewer_bits():
    net, x, y = _mlp()
    exact = precision.ascent_gradient_fidelity(net, x, y, rho=1e-3, bits=23)
    assert all(v == pytest.approx(1.0, abs=1e-6) for v in exact.values())
    fine = precision.ascent_gradient_fidelity(net, x, y, rho=1e-3, bits=16)
    coarse = precision.ascent_gradient_fidelity(net, x, y, rho=1e-3, bits=7)
    assert coarse["sam_correction"] < fine["sam_correction"] and coarse["sam_correction"] < 0.9
    assert coarse["gradient"] > 0.99  # the plain gradient barely notices bf16 weights; SAM's correction does


def test_share_of_perturbations_below_resolution():
    net, x, y = _mlp(1)
    assert precision.perturbation_below_resolution(net, x, y, rho=1e-9, bits=7) == 1.0
    assert precision.perturbation_below_resolution(net, x, y, rho=1e3, bits=7) == 0.0
    mid = [precision.perturbation_below_resolution(net, x, y, rho=1e-2, bits=b) for b in (7, 10, 23)]
    assert mid == sorted(mid, reverse=True) and mid[-1] == 0.0
