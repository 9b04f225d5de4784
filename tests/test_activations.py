import pytest
import torch

from flatbias.activations import ACTIVATIONS, get_activation


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_derivatives_match_autograd(name):
    act = get_activation(name)
    z = torch.linspace(-2.5, 2.5, 41, requires_grad=True)
    d1, = torch.autograd.grad(act.phi(z).sum(), z, create_graph=True)
    d2, = torch.autograd.grad(d1.sum(), z, create_graph=True)
    d3, = torch.autograd.grad(d2.sum(), z)
    with torch.no_grad():
        torch.testing.assert_close(act.d1(z), d1, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(act.d2(z), d2, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(act.d3(z), d3, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(ACTIVATIONS))
def test_inverse(name):
    act = get_activation(name)
    z = torch.linspace(-3, 3, 61)
    if name == "softplus":
        z = z + 0.0
    y = act.phi(z)
    torch.testing.assert_close(act.inv(y), z, rtol=1e-9, atol=1e-9)


def test_assumption_flags():
    assert {n for n, a in ACTIVATIONS.items() if a.satisfies_assumption_3_1} == {"sinh", "cubic"}
    z = torch.linspace(-4, 4, 101)
    for name in ("sinh", "cubic"):
        act = get_activation(name)
        assert act.d1(z).min() >= 1 and act.d3(z).min() > 0
    for name in ("softplus", "tanh"):  # φ''' changes sign
        d3 = get_activation(name).d3(z)
        assert d3.min() < 0 < d3.max()


def test_unknown_activation_and_out_of_range():
    with pytest.raises(ValueError, match="valid names are sinh, cubic"):
        get_activation("relu")
    with pytest.raises(ValueError, match=r"defined on \(-1.0, 1.0\)"):
        get_activation("tanh").inv(torch.tensor([0.5, 1.5]))
    assert get_activation(get_activation("sinh")).name == "sinh"
