"""Paper 2's synthetic training loop (SPEC §B.8(b)(c))."""

import json

import pytest
import torch

from flatbias import records, relu_net, train_relu


def test_batch_gradient_matches_autograd(gen):
    X, y = relu_net.parity_data(10, 6, gen)
    theta = relu_net.init_flat(6, 9, gen)
    auto = torch.func.grad(lambda t: relu_net.mse_loss(t, X, y, h=9))(theta)
    assert torch.allclose(train_relu.batch_gradient(theta, X, y), auto, atol=1e-14)


def test_sgd_and_sam_steps_match_the_authors_module_updates(gen):
    d, h, rho, lr = 6, 9, 0.1, 0.1
    X, y = relu_net.parity_data(10, d, gen)
    model = relu_net.TwoLayerReLU(d, h)
    theta = model.flat()
    # the authors' SGD step with torch.optim.SGD on their module
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    torch.nn.functional.mse_loss(model(X), y).backward()
    opt.step()
    assert torch.allclose(train_relu.step(theta, X, y, lr, 0.0), model.flat(), atol=1e-14)
    # the authors' SAM step: perturb by rho g/(|g| + 1e-12), gradient there, step from the original weights
    model.load_flat(theta)
    grads = torch.autograd.grad(torch.nn.functional.mse_loss(model(X), y), list(model.parameters()))
    gnorm = torch.cat([g.reshape(-1) for g in grads]).norm()
    with torch.no_grad():
        for p, g in zip(model.parameters(), grads):
            p.add_(rho / (gnorm + 1e-12) * g)
    grads2 = torch.autograd.grad(torch.nn.functional.mse_loss(model(X), y), list(model.parameters()))
    expected = theta - lr * torch.cat([g.reshape(-1) for g in grads2])
    assert torch.allclose(train_relu.step(theta, X, y, lr, rho), expected, atol=1e-14)


def test_generalizing_init_is_loaded_into_the_real_module():
    cfg = train_relu.Config(d=8, h=20, n=20, n_val=10, batch_size=10, init="generalizing", C=3, noise=0.0)
    X, y, Xv, yv, gen = train_relu.data(cfg)
    theta = train_relu.initial_theta(cfg, gen)
    model = relu_net.TwoLayerReLU(8, 20).load_flat(theta)
    assert torch.allclose(model(X), y, atol=1e-12) and torch.allclose(model(Xv), yv, atol=1e-12)
    lin = model.feature_extractor[0]
    assert float(lin.weight.detach()[:8, :3].abs().min()) > 0 and float(lin.weight.detach()[:, 3:].abs().max()) == 0
    noisy = train_relu.initial_theta(train_relu.Config(d=8, h=20, init="generalizing", noise=0.01), gen)
    assert 0.005 < float((noisy - theta).std()) < 0.02


def test_train_is_deterministic_and_learns():
    cfg = train_relu.Config(d=10, h=30, n=40, n_val=40, epochs=8, seed=3, method="sam_0.05")
    h1, h2 = train_relu.train(cfg), train_relu.train(cfg)
    assert h1["sigma"] == h2["sigma"] and len(h1["sigma"]) == 9
    assert h1["train_loss"][-1] < 0.3 * h1["train_loss"][0]
    assert all(s >= 1 - 1e-9 for s in h1["sigma"])


def test_bad_config_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown method"):
        train_relu.train(train_relu.Config(method="adam"))
    with pytest.raises(ValueError, match="multiple of the batch size"):
        train_relu.train(train_relu.Config(n=95))
    with pytest.raises(ValueError, match="init"):
        train_relu.train(train_relu.Config(init="zeros"))


def test_record_roundtrip(tmp_path):
    path = train_relu.run_and_record("perturb", [0], "smoke", out=tmp_path / "p.json", progress=False,
                                     d=8, h=20, n=20, n_val=20, epochs=2, methods=("sgd",))
    rec = records.read_record(path)
    assert rec["settings"]["init"] == "generalizing" and rec["settings"]["seeds"] == [0]
    run = rec["metrics"]["runs"]["sgd"]["0"]
    assert len(run["train_acc"]) == 3 and len(run["used_inputs"][0]) == 8
    json.dumps(rec)
