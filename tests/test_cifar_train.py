"""The CIFAR-10 training loop: augmentation, a short run with metrics and a record, exact resume, NaN stop, CLI."""

import json

import numpy as np
import pytest
import torch

from flatbias import cifar, cifar_train as ct, records


def _data(n_per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class).astype(np.int64)
    x = rng.integers(0, 256, (len(y), 32, 32, 3), dtype=np.uint8)
    x[..., 0] = np.clip(x[..., 0].astype(int) // 2 + 12 * y[:, None, None], 0, 255)  # a little class signal
    return cifar.Cifar10(x, y, x[::2].copy(), y[::2].copy(), layout="synthetic", source="test")


def _cfg(**kw):
    base = dict(epochs=2, width=4, batch_size=10, coherence_per_class=(1,), eval_batch=20, checkpoint_every=1,
                milestones=(1,), lr=0.05)
    return ct.TrainConfig(**{**base, **kw})


def test_augment_is_a_padded_crop_and_flip():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(1, 256, (64, 32, 32, 3), dtype=torch.uint8)  # no zeros: padding is recognisable
    out = ct.augment(x, g)
    assert out.shape == x.shape and out.dtype == torch.uint8
    xp = torch.nn.functional.pad(x, (0, 0, 4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):  # every output is one of the 81 x 2 windows of the zero-padded image
        hits = [(dy, dx, f) for dy in range(9) for dx in range(9) for f in (False, True)
                if torch.equal(out[i], (lambda w: w.flip(1) if f else w)(xp[i, dy:dy + 32, dx:dx + 32]))]
        assert hits, i
        flips += hits[0][2]
    assert 15 < flips < 49  # about half flipped
    assert torch.equal(ct.augment(x, torch.Generator().manual_seed(0)), out)  # deterministic given the generator


def test_to_input_normalizes():
    x = torch.full((2, 32, 32, 3), 255, dtype=torch.uint8)
    out = ct.to_input(x, channels_last=False)
    assert out.shape == (2, 3, 32, 32) and out.dtype == torch.float32
    expected = (1 - torch.tensor(ct.MEAN)) / torch.tensor(ct.STD)
    torch.testing.assert_close(out[0, :, 5, 7], expected.float())
    assert ct.to_input(x, channels_last=True).is_contiguous(memory_format=torch.channels_last)


def test_config_validation():
    with pytest.raises(ValueError, match="optimizer"):
        ct.TrainConfig(optimizer="adam")
    with pytest.raises(ValueError, match="rho > 0"):
        ct.TrainConfig(optimizer="sam", rho=0.0)
    with pytest.raises(ValueError, match="multiple of 10"):
        ct.TrainConfig(subset=25)
    assert ct.TrainConfig().scale == "full" and ct.TrainConfig(subset=100).scale == "smoke"
    assert ct.TrainConfig(optimizer="sam", rho=0.1).name == "sam_rho0.1_imagenet_seed0_200ep"


def test_two_step_run_writes_a_record(tmp_path):
    cfg = _cfg(optimizer="sam", rho=0.1, epochs=1, final_coherence_per_class=(2,))
    res = ct.train(cfg, _data(), out_dir=tmp_path, progress=False, max_steps=2)
    (row,) = res["history"]
    assert row["epoch"] == 1 and np.isfinite(row["train_loss"]) and 0 <= row["test_acc"] <= 1
    ranks = [row["rank"][k] for k in ("0.9", "0.95", "0.99", "0.999")]
    assert ranks == sorted(ranks) and 1 <= ranks[0] and ranks[-1] <= 32  # width 4: 32 features
    assert 1 - 1e-9 <= row["coherence_10"] <= 10 and 1 - 1e-9 <= row["coherence_20"] <= 20  # last epoch: both
    rec = records.read_record(res["record_path"])
    assert rec["settings"]["data"]["layout"] == "synthetic" and rec["settings"]["optimizer"] == "sam"
    assert rec["metrics"]["final"]["coherence_100"] is None and rec["metrics"]["history"][0]["epoch"] == 1
    assert rec["provenance"]["wall_time_s"] > 0 and rec["scale"] == "reduced"


def test_resume_is_exact(tmp_path):
    data = _data()
    full = ct.train(_cfg(), data, out_dir=None, checkpoint_dir=tmp_path / "a", progress=False)
    ct.train(_cfg(epochs=1), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)
    resumed = ct.train(_cfg(), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)
    for (k, u), v in zip(full["model"].state_dict().items(), resumed["model"].state_dict().values()):
        assert torch.equal(u, v), k
    strip = lambda h: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in h]
    assert strip(full["history"]) == strip(resumed["history"])
    assert [r["lr"] for r in full["history"]] == [0.05, pytest.approx(0.005)]  # MultiStepLR at milestone 1
    with pytest.raises(ValueError, match="different settings"):
        ct.train(_cfg(lr=0.01), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)


def test_divergence_stops_with_a_clear_message(tmp_path):
    with pytest.raises(ct.TrainingDiverged, match="the run stopped"):
        ct.train(_cfg(lr=1e8, epochs=1, milestones=(5,)), _data(), out_dir=None, progress=False)


def test_cli_small_run(tmp_path):
    root = tmp_path / "imgs"
    from PIL import Image

    data = _data()
    for split, xs, ys in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        for i, (x, y) in enumerate(zip(xs, ys)):
            f = root / split / cifar.CLASSES[y] / f"{i:04d}.png"
            f.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(x).save(f)
    rc = ct.main(["--optimizer", "sgd", "--epochs", "1", "--width", "2", "--batch-size", "10", "--coherence-per-class", "1", "--data", str(root),
                  "--out", str(tmp_path / "out")])
    assert rc == 0
    rec = json.loads((tmp_path / "out" / "sgd_imagenet_w2_seed0_1ep.json").read_text())
    assert rec["settings"]["data"]["layout"] == "image-folder" and rec["settings"]["data"]["source"] == str(root)
