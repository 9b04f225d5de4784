"""SAM: rho = 0 is SGD step for step; one step matches the formula; BatchNorm statistics move once per step."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from flatbias import resnet
from flatbias.sam import SAM, disable_running_stats, enable_running_stats

KW = dict(lr=0.1, momentum=0.9, weight_decay=5e-4)


def _sam_step(model, opt, x, y):
    enable_running_stats(model)
    F.cross_entropy(model(x), y).backward()
    opt.first_step(zero_grad=True)
    disable_running_stats(model)
    F.cross_entropy(model(x), y).backward()
    opt.second_step(zero_grad=True)
    enable_running_stats(model)


def _data(n=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 16, 16, generator=g, dtype=torch.float32), torch.randint(0, 10, (n,), generator=g)


def test_rho_zero_equals_sgd_step_for_step():
    torch.manual_seed(0)
    a = resnet.resnet18(width=4, stem="imagenet").train()
    b = copy.deepcopy(a)
    sgd = torch.optim.SGD(a.parameters(), **KW)
    sam = SAM(b.parameters(), torch.optim.SGD, rho=0.0, **KW)
    for step in range(3):
        x, y = _data(seed=step)
        sgd.zero_grad()
        F.cross_entropy(a(x), y).backward()
        sgd.step()
        _sam_step(b, sam, x, y)
        for (k, u), v in zip(a.state_dict().items(), b.state_dict().values()):
            if not k.endswith("num_batches_tracked"):
                assert torch.equal(u, v), (step, k)


def test_one_step_matches_the_formula():
    # no BatchNorm: w1 = SGD-momentum-wd step from w with the gradient at w + rho g/(|g| + 1e-12), g without wd
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3))
    x, y = torch.randn(16, 5), torch.randint(0, 3, (16,))
    w = [p.detach().clone() for p in net.parameters()]
    rho, lr, wd = 0.3, 0.05, 1e-2

    def loss_at(params):
        return F.cross_entropy(torch.func.functional_call(net, dict(zip([n for n, _ in net.named_parameters()], params)),
                                                          (x,)), y)

    g = torch.autograd.grad(loss_at([t.requires_grad_() for t in w]), w)
    norm = torch.sqrt(sum((t ** 2).sum() for t in g))
    w_adv = [(t + rho * gt / (norm + 1e-12)).detach().requires_grad_() for t, gt in zip(w, g)]
    g_adv = torch.autograd.grad(loss_at(w_adv), w_adv)
    expected = [t.detach() - lr * (ga + wd * t.detach()) for t, ga in zip(w, g_adv)]  # first momentum step = grad

    opt = SAM(net.parameters(), torch.optim.SGD, rho=rho, lr=lr, momentum=0.9, weight_decay=wd)
    _sam_step(net, opt, x, y)
    for p, e in zip(net.parameters(), expected):
        torch.testing.assert_close(p.detach(), e, rtol=1e-6, atol=1e-7)


def test_batchnorm_statistics_move_only_in_the_first_pass():
    torch.manual_seed(2)
    model = resnet.resnet18(width=4, stem="imagenet").train()
    ref = copy.deepcopy(model)
    x, y = _data()
    with torch.no_grad():
        ref(x)  # one train-mode forward at w: the statistics SAM must end up with
    opt = SAM(model.parameters(), torch.optim.SGD, rho=0.5, **KW)
    _sam_step(model, opt, x, y)
    for name, buf in model.named_buffers():
        if "running" in name:
            assert torch.equal(buf, dict(ref.named_buffers())[name]), name
    assert all(m.momentum == 0.1 for m in model.modules() if isinstance(m, nn.BatchNorm2d))


def test_state_dict_roundtrip_and_errors():
    net = nn.Linear(3, 2)
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.1, **KW)
    F.mse_loss(net(torch.ones(4, 3)), torch.zeros(4, 2)).backward()
    opt.first_step(zero_grad=True)
    F.mse_loss(net(torch.ones(4, 3)), torch.zeros(4, 2)).backward()
    opt.second_step(zero_grad=True)
    opt2 = SAM(nn.Linear(3, 2).parameters(), torch.optim.SGD, rho=0.7, **KW)
    opt2.load_state_dict(opt.state_dict())
    assert opt2.param_groups[0]["rho"] == 0.1 and opt2.base_optimizer.param_groups is opt2.param_groups
    with pytest.raises(ValueError, match="rho must be >= 0"):
        SAM(net.parameters(), torch.optim.SGD, rho=-1.0, lr=0.1)
    with pytest.raises(RuntimeError, match="no gradients"):
        SAM(nn.Linear(2, 2).parameters(), torch.optim.SGD, rho=0.1, lr=0.1).first_step()


def test_second_step_restores_the_saved_weights_bit_for_bit():
    # lr = 0: the base step changes nothing, so after the ascent and the restore w must be exactly what it was
    # ((w + e) - e would be off by an ulp in many weights)
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 64), nn.Tanh(), nn.Linear(64, 3)).float()
    x, y = torch.randn(32, 5).float(), torch.randint(0, 3, (32,))
    w0 = [p.detach().clone() for p in net.parameters()]
    opt = SAM(net.parameters(), torch.optim.SGD, rho=0.37, lr=0.0, momentum=0.9)
    for _ in range(3):
        _sam_step(net, opt, x, y)
        assert all(torch.equal(p, w) for p, w in zip(net.parameters(), w0))
    naive = [(w + e) - e for w, e in zip(w0, (0.37 * torch.randn_like(w) for w in w0))]
    assert any(not torch.equal(a, w) for a, w in zip(naive, w0))  # what exact restoring avoids


def test_sam_matches_the_plain_reference_step():
    """Two SAM steps (momentum, weight decay, BatchNorm) against the loop-by-loop reference in flatbias.sam, in
    float64 (in float32 the tiny BatchNorms of a width-2 net amplify ulp-level differences of the two orders of
    summation)."""
    from flatbias.sam import reference_step

    torch.manual_seed(4)
    a = resnet.resnet18(width=2, stem="imagenet").double().train()
    b = copy.deepcopy(a)
    opt = SAM(a.parameters(), torch.optim.SGD, rho=0.2, **KW)
    bufs = None
    for step in range(2):
        x, y = _data(seed=10 + step)
        _sam_step(a, opt, x.double(), y)
        bufs = reference_step(b, x.double(), y, rho=0.2, buffers=bufs, **KW)
    for (k, u), v in zip(a.state_dict().items(), b.state_dict().values()):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-11, msg=k)
