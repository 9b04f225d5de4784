import pytest
import torch

from flatbias import relu_feature_ranks as rf, train_relu
from flatbias.validate import InvalidArgumentError


def test_replay_is_the_training_run():
    torch.set_default_dtype(torch.float64)
    hist = train_relu.train(train_relu.Config(method="sam_0.2", epochs=3))
    thetas = rf.thetas(train_relu.Config(method="sam_0.2", epochs=3))
    assert len(thetas) == 4 and float(thetas[-1].norm()) == hist["final_theta_norm"]
    r = rf.ranks([0], ["sam_0.2"], (0.9, 0.999), epochs=3)["sam_0.2"]["0"]
    assert r["0.9"] == hist["eff_rank"]  # the replay's 90 % ranks are the recorded ones
    assert all(a <= b for a, b in zip(r["0.9"], r["0.999"]))


def test_generalizing_start_replays_too():
    hist = train_relu.train(train_relu.Config(init="generalizing", epochs=2))
    thetas = rf.thetas(train_relu.Config(init="generalizing", epochs=2))
    assert float(thetas[-1].norm()) == hist["final_theta_norm"]


def test_shares_are_checked():
    with pytest.raises(InvalidArgumentError):
        rf.ranks([0], ["sgd"], (), epochs=1)
    with pytest.raises(InvalidArgumentError):
        rf.ranks([0], ["sgd"], (1.5,), epochs=1)
