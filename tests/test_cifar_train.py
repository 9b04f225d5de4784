"""The CIFAR-10 training loop: augmentation, a short run with metrics and a record, exact resume, NaN stop, CLI."""

import json

import numpy as np
import pytest
import torch

from conftest import tiny_cifar
from flatbias import cifar_results as cr
from flatbias import cifar_train as ct, records


def _data(n_per_class=2, seed=0):
    return tiny_cifar(n_per_class, seed)


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
    assert ct.TrainConfig(optimizer="sam", rho=0.1).name == "sam_rho0.1_imagenet_seed42_200ep"  # the authors' seed
    assert ct.TrainConfig().precision == "tf32"  # PyTorch's defaults, as the authors' code most likely ran


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


def test_cli_small_run(tmp_path, tiny_cifar_folder):
    root = tiny_cifar_folder
    rc = ct.main(["--optimizer", "sgd", "--epochs", "1", "--width", "2", "--batch-size", "10", "--coherence-per-class",
                  "1", "--data", str(root), "--out", str(tmp_path / "out")])
    assert rc == 0
    rec = json.loads((tmp_path / "out" / "sgd_imagenet_w2_seed42_1ep.json").read_text())
    assert rec["settings"]["data"]["layout"] == "image-folder" and rec["settings"]["data"]["source"] == str(root)
    assert rec["settings"]["data"]["source_kind"] == "PNG image folder"
    assert rec["settings"]["protocol"] == "custom" and rec["settings"]["seed"] == 42
    assert rec["settings"]["numerics"]["precision"] == "tf32" and rec["settings"]["numerics"]["cudnn_allow_tf32"]
    assert not rec["settings"]["numerics"]["cuda_matmul_allow_tf32"]  # PyTorch's default: fp32 matrix products


def test_protocols_and_scales():
    assert ct.TrainConfig().protocol == "full" and ct.TrainConfig(optimizer="sam", rho=0.2, seed=3).scale == "full"
    reduced = ct.TrainConfig(epochs=30, milestones=(15, 23))
    assert reduced.protocol == "reduced" and reduced.scale == "reduced"
    for changed in (dict(lr=0.05), dict(width=32), dict(stem="cifar"), dict(epochs=30), dict(batch_size=256)):
        cfg = ct.TrainConfig(**changed)  # anything else than the authors' settings is not "full"
        assert cfg.protocol == "custom" and cfg.scale == "reduced", changed
    assert ct.TrainConfig(subset=100).scale == "smoke" and ct.TrainConfig(test_subset=100).scale == "smoke"
    args = ct.parser().parse_args(["--protocol", "reduced", "--optimizer", "sam", "--rho", "0.1"])
    assert ct.config_from_args(args).protocol == "reduced"
    assert ct.config_from_args(ct.parser().parse_args(["--epochs", "7"])).milestones == (100, 150)
    with pytest.raises(ValueError, match="compile"):
        ct.TrainConfig(compile="fastest")


def _update(cfg, data, **kw):
    """(first-batch loss, flat parameter change) of one training step from the seeded initial model."""
    w0 = ct.build(ct.resolve(cfg, torch.device("cpu")), torch.device("cpu"))[0].state_dict()
    res = ct.train(cfg, data, out_dir=None, progress=False, max_steps=1, **kw)
    w1 = res["model"].state_dict()
    keys = [k for k in w0 if w0[k].is_floating_point() and "running" not in k]
    return res, torch.cat([(w1[k] - w0[k]).flatten().double() for k in keys])


def test_fast_path_on_the_cpu_bf16_and_channels_last():
    """The CUDA path's bf16 autocast and channels_last, run on the CPU: the same SGD step up to precision.
    (SAM in bf16 is another matter: tests/test_precision.py.)"""
    data = _data(4)
    out = {}
    for name, kw in {"fp32": dict(precision="fp32", channels_last=False), "cl": dict(precision="fp32", channels_last=True),
                     "bf16": dict(precision="bf16", channels_last=True)}.items():
        res, delta = _update(_cfg(optimizer="sgd", epochs=1, width=16, batch_size=40, **kw), data)
        assert res["config"]["precision"] == kw["precision"] and res["config"]["channels_last"] == kw["channels_last"]
        out[name] = (res["history"][0]["train_loss"], delta)
    (l32, d32), (lcl, dcl), (l16, d16) = out["fp32"], out["cl"], out["bf16"]
    assert lcl == pytest.approx(l32, rel=1e-5)  # memory layout only
    torch.testing.assert_close(dcl, d32, rtol=1e-3, atol=1e-6)
    # bf16 keeps ~3 significant digits through 18 layers: the loss to 2 %, the step's direction clearly the same
    assert l16 == pytest.approx(l32, rel=2e-2) and l16 != l32
    assert torch.nn.functional.cosine_similarity(d16, d32, dim=0) > 0.8
    assert ct.resolve(ct.TrainConfig(), torch.device("cpu")).channels_last is False
    assert ct.resolve(ct.TrainConfig(), torch.device("cuda")).channels_last is True


@pytest.fixture
def float32_default():
    """Training's own default dtype (conftest makes it float64 for the analytic tests). Under a float64 default,
    inductor (torch 2.13, CPU) miscomputes the weight gradient of the strided 1x1 downsample convolution
    (layer2.0.downsample.0.weight off by a factor of ~4, every other weight right): a setting no run uses."""
    saved = torch.get_default_dtype()
    torch.set_default_dtype(torch.float32)
    yield
    torch.set_default_dtype(saved)


@pytest.mark.xfail(reason="torch 2.13 inductor on the CPU, in some compilations, computes the weight gradient of "
                          "layer2.0.downsample.0 (strided 1x1 convolution) 3.7 times too large; every other weight "
                          "agrees. flatbias.gpu_session checks a compiled step against eager before using it.",
                   strict=False)
def test_compiled_step_matches_eager(float32_default):
    """torch.compile (inductor, here on the CPU) computes the same SGD and SAM steps up to float reassociation."""
    pytest.importorskip("torch._inductor")
    data = _data()
    for opt in ("sgd", "sam"):
        (eager, d_eager), (comp, d_comp) = (_update(_cfg(optimizer=opt, rho=0.1, epochs=1, compile=c), data)
                                            for c in (None, "default"))
        assert comp["history"][0]["train_loss"] == pytest.approx(eager["history"][0]["train_loss"], rel=1e-5)
        assert (d_comp - d_eager).norm() < 1e-4 * d_eager.norm(), opt


def test_time_limit_checkpoints_stops_and_resumes_exactly(tmp_path):
    data = _data()
    full = ct.train(_cfg(epochs=3, milestones=(2,)), data, out_dir=None, checkpoint_dir=tmp_path / "a", progress=False)
    part = ct.train(_cfg(epochs=3, milestones=(2,), checkpoint_every=5), data, out_dir=tmp_path / "b", progress=False,
                    stop_after_s=0.0)  # out of time after the first epoch: checkpoint although not due, no record
    assert not part["complete"] and [r["epoch"] for r in part["history"]] == [1] and part["record_path"] is None
    partial = ct.partial_record_path(tmp_path / "b", _cfg(epochs=3, milestones=(2,), checkpoint_every=5))
    assert [p.name for p in (tmp_path / "b").glob("*.json")] == [partial.name]  # the history so far, marked
    rec = records.read_record(partial)
    assert rec["name"].startswith("cifar10-partial/") and rec["metrics"]["complete"] is False
    assert rec["metrics"]["epochs_done"] == 1 and len(rec["metrics"]["history"]) == 1
    assert not cr.load_runs(tmp_path / "b", rec["settings"]["protocol"])  # never read as a result
    assert (tmp_path / "b" / "checkpoints").is_dir()
    done = ct.train(_cfg(epochs=3, milestones=(2,), checkpoint_every=5), data, out_dir=tmp_path / "b", progress=False)
    assert done["complete"] and done["record_path"] is not None and not partial.exists()
    for (k, u), v in zip(full["model"].state_dict().items(), done["model"].state_dict().values()):
        assert torch.equal(u, v), k
    with pytest.raises(ValueError, match="checkpoint folder"):
        ct.train(_cfg(), data, out_dir=None, progress=False, stop_after_s=10.0)


def test_cli_time_limit_exit_code(tmp_path, tiny_cifar_folder, capsys):
    argv = ["--epochs", "2", "--width", "2", "--batch-size", "10", "--coherence-per-class", "1",
            "--data", str(tiny_cifar_folder), "--out", str(tmp_path / "out"), "--time-limit", "0"]
    assert ct.main(argv) == ct.EXIT_INCOMPLETE
    assert "run the same command again to resume" in capsys.readouterr().err
    assert ct.main(argv[:-2]) == 0 and (tmp_path / "out" / "sgd_imagenet_w2_seed42_2ep.json").is_file()
    assert ct.main(["--epochs", "0", "--data", str(tiny_cifar_folder)]) == 2  # bad settings: a clear error


@pytest.mark.parametrize("argv", [["--precision", "fp8"], ["--epochs", "x"], ["--no-such-option"], ["--epochs", "0"],
                                  ["--data", "/no/such/cifar"], ["--optimizer", "sam", "--rho", "0"]])
def test_cli_bad_arguments_print_one_line(argv, capsys):
    assert ct.main(argv) == ct.EXIT_BAD_ARGS
    err = capsys.readouterr().err
    assert err.startswith("python -m flatbias.cifar_train: error: ") and err.count("\n") == 1, err


def test_coherence_1000_every_epoch_or_at_the_last():
    parse = lambda *a: ct.config_from_args(ct.parser().parse_args(list(a)))
    assert parse("--coherence-1000").final_coherence_per_class == (100,)
    every = parse("--coherence-1000", "every")
    assert every.coherence_per_class == (10, 100) and every.final_coherence_per_class == ()
    assert parse().coherence_per_class == (10,) and parse().final_coherence_per_class == ()
