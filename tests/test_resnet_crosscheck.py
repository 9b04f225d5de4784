"""flatbias.resnet_crosscheck: chapter 17's independent recomputations, on a narrow ResNet-18 (fast on a CPU)."""

import pytest
import torch

from flatbias import cifar_train as ct
from flatbias import resnet_crosscheck as rc


@pytest.fixture(autouse=True)
def _float32():  # the pipeline runs in float32 (tests/conftest.py sets float64)
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(old)


def _cfg():
    return ct.resolve(ct.TrainConfig(optimizer="sam", rho=0.2, width=8, epochs=1), torch.device("cpu"))


def _batch(n=16):
    gen = torch.Generator().manual_seed(0)
    return torch.randn(n, 3, 32, 32, generator=gen), torch.arange(n) % 10


def test_one_sam_step_matches_the_reference_and_a_wrong_radius_does_not(monkeypatch):
    x, y = _batch()
    assert rc.sam_step_difference(_cfg(), x, y) < 1e-5
    original = rc.reference_step
    monkeypatch.setattr(rc, "reference_step", lambda *a, **k: original(*a, **{**k, "rho": 2 * k["rho"]}))
    assert rc.sam_step_difference(_cfg(), x, y) > 1e-5


def test_float32_sensitivity_is_a_small_positive_number():
    x, y = _batch()
    s = rc.sam_float32_sensitivity(_cfg(), x, y)
    assert 0 < s < 1
