"""The fused trainer: N runs in lockstep compute what N separate cifar_train runs compute (one step, two epochs of
the tiny protocol, float32 and float64), a diverging run stops alone, checkpoints resume exactly, the records are
cifar_train's, and the CLI."""

import json
import warnings

import pytest
import torch

from conftest import tiny_cifar
from flatbias import cifar_results as cr
from flatbias import cifar_train as ct
from flatbias import fused_train as ft
from flatbias import records, resnet

CPU = torch.device("cpu")
# the tiny protocol of flatbias.gpu_session (its 'reduced' stand-in): width 4, 100 images, batch 25, 2 epochs
TINY = dict(width=4, batch_size=25, epochs=2, milestones=(1,), coherence_per_class=(1,), eval_batch=50,
            checkpoint_every=1, channels_last=False)
RUNS = (dict(optimizer="sam", rho=0.1, seed=0), dict(optimizer="sgd", seed=0), dict(optimizer="sam", rho=0.2, seed=1))


def _cfgs(runs=RUNS, **kw):
    return [ct.TrainConfig(**{**TINY, **kw, **r}) for r in runs]


def _in_dtype(monkeypatch, dtype):
    """cifar_train's own model and inputs in ``dtype`` (the fused trainer builds them with the same functions)."""
    orig, to_input = resnet.resnet18, ct.to_input
    monkeypatch.setattr(resnet, "resnet18", lambda *a, **k: orig(*a, **k).to(dtype))
    monkeypatch.setattr(ct, "to_input", lambda *a, **k: to_input(*a, **k).to(dtype))


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    """max |a - b| / max |b| (0 for two zero tensors)."""
    a, b = a.double(), b.double()
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-300))


def _momenta(opt) -> list[torch.Tensor]:
    sd = opt.state_dict()
    sd = sd.get("base", sd)
    return [sd["state"][j]["momentum_buffer"] for j in sorted(sd["state"])]


# --- one step ------------------------------------------------------------------------------------

def _one_step(dtype, runs, monkeypatch):
    """(fused, separate) after one step on the same batches: models, optimizers and SAM's ascent."""
    _in_dtype(monkeypatch, dtype)
    cfgs = _cfgs(runs, batch_size=10)
    g = torch.Generator().manual_seed(0)
    seeds = sorted({c.seed for c in cfgs})
    x = {s: ct.to_input(torch.randint(0, 256, (10, 32, 32, 3), dtype=torch.uint8, generator=g), False)
         for s in seeds}
    y = {s: torch.randint(0, 10, (10,), generator=g) for s in seeds}
    fr = ft.FusedRuns(cfgs, CPU)
    fr.keep_ascent = True
    order = [cfgs[i].seed for i in fr.active]
    if len(seeds) == 1:
        fr.step(x[seeds[0]], y[seeds[0]], shared=True)
    else:
        fr.step(torch.stack([x[s] for s in order]), torch.stack([y[s] for s in order]), shared=False)
    fr.unstack()
    sep = []
    for c in cfgs:
        model, opt, _ = ct.build(c, CPU)
        seen = {}
        if c.optimizer == "sam":  # SAM's norm and the ascended weights w + e, as the separate run computes them
            grad_norm, second = opt.grad_norm, opt.second_step
            opt.grad_norm = lambda: seen.setdefault("norm", grad_norm())
            opt.second_step = lambda **kw: (seen.setdefault("params", {
                n: p.detach().clone() for n, p in model.named_parameters()}), second(**kw))
        ct.train_step(model, model, opt, x[c.seed], y[c.seed], c)
        sep.append((model, opt, seen))
    return cfgs, fr, sep


MIXED = (*RUNS[:2], dict(optimizer="sam", rho=0.2, seed=1, lr=0.05, momentum=0.8, weight_decay=1e-3))


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
@pytest.mark.parametrize("runs", [RUNS, RUNS[:2], MIXED],
                         ids=["two seeds", "one seed (shared batch)", "per-run lr, momentum, weight decay"])
def test_one_fused_step_equals_separate_steps(dtype, tol, runs, monkeypatch):
    """Weights, BatchNorm buffers (num_batches_tracked: 2 for SAM, whose frozen second pass still counts),
    momentum buffers and SAM's ascent (its norm and w + e). float64: to 1e-12; float32: round-off (measured
    ~2e-5 of the largest entry, as large as in float64 in units of the format's epsilon: ~50-100 eps)."""
    cfgs, fr, sep = _one_step(dtype, runs, monkeypatch)
    k = 0
    for i, (c, (model, opt, seen)) in enumerate(zip(cfgs, sep)):
        mine, ref = fr.models[i].state_dict(), model.state_dict()
        assert mine["conv1.weight"].dtype == dtype
        for name in ref:
            if name.endswith("num_batches_tracked"):
                assert int(mine[name]) == int(ref[name]) == (2 if c.optimizer == "sam" else 1), name
            else:
                assert _rel(mine[name], ref[name]) < tol, (c.run_id, name, _rel(mine[name], ref[name]))
        assert not torch.equal(mine["conv1.weight"], ct.build(c, CPU)[0].state_dict()["conv1.weight"].to(dtype))
        mom, mom_ref = _momenta(fr.opts[i]), _momenta(opt)
        assert len(mom) == len(mom_ref) == len(list(model.parameters()))
        assert max(_rel(a, b) for a, b in zip(mom, mom_ref)) < tol, c.run_id
        if c.optimizer == "sam":
            j = fr.active.index(i)
            assert abs(float(fr.last_ascent["norm"][j]) / float(seen["norm"]) - 1) < tol
            for name, w in seen["params"].items():
                assert _rel(fr.last_ascent["params"][name][j], w) < tol, (c.run_id, name)
            k += 1
    assert k == sum(c.optimizer == "sam" for c in cfgs) == fr.k


def test_channels_last_runs_step_in_the_contiguous_layout():
    """channels_last (cifar_train's CUDA default) changes no number: the stack and the batch are made contiguous
    (on the CPU, torch 2.13 corrupts the heap in channels_last convolutions of this tiny model, vmap or not)."""
    g = torch.Generator().manual_seed(0)
    x = ct.to_input(torch.randint(0, 256, (10, 32, 32, 3), dtype=torch.uint8, generator=g), True)
    y = torch.randint(0, 10, (10,), generator=g)
    out = []
    for cl in (True, False):
        fr = ft.FusedRuns(_cfgs(RUNS[:2], batch_size=10, channels_last=cl), CPU)
        fr.step(x, y, shared=True)
        fr.unstack()
        out.append([m.state_dict() for m in fr.models])
        assert fr.models[0].conv1.weight.is_contiguous(memory_format=torch.channels_last) == cl
    for a, b in zip(*out):
        for k in a:
            assert torch.equal(a[k], b[k]), k


# --- two epochs of the tiny protocol -------------------------------------------------------------

@pytest.fixture(scope="module")
def two_epochs():
    """Two tiny epochs of RUNS: fused and separate (cifar_train.train) in float32, and both in float64."""
    data, cfgs, out = tiny_cifar(10), _cfgs(), {}
    for name, dtype in (("32", torch.float32), ("64", torch.float64)):
        with pytest.MonkeyPatch.context() as mp:
            _in_dtype(mp, dtype)
            out["fused" + name] = ft.train(cfgs, data, out_dir=None, progress=False)["runs"]
            out["sep" + name] = [ct.train(c, data, out_dir=None, progress=False) for c in cfgs]
    return cfgs, out


def _max_rel(a, b) -> float:
    sa, sb = a["model"].state_dict(), b["model"].state_dict()
    return max(_rel(sa[k], sb[k]) for k in sb if sb[k].is_floating_point())


def test_two_tiny_epochs_float64_equal_separate_runs(two_epochs):
    cfgs, out = two_epochs
    for c, f, s in zip(cfgs, out["fused64"], out["sep64"]):
        assert f["complete"] and f["status"] == "complete" and len(f["history"]) == 2
        assert _max_rel(f, s) < 1e-12, c.run_id
        for name, v in s["model"].state_dict().items():
            if name.endswith("num_batches_tracked"):  # 4 steps an epoch; SAM counts both passes
                assert int(f["model"].state_dict()[name]) == int(v) == 8 * (1 + (c.optimizer == "sam"))
        for rf, rs in zip(f["history"], s["history"]):
            assert rf["epoch"] == rs["epoch"] and rf["lr"] == rs["lr"] and rf["test_acc"] == rs["test_acc"]
            assert rf["train_acc"] == rs["train_acc"] and rf["rank"] == rs["rank"]
            # the loss is cross-entropy in float32 (cifar_train's logits.float()), summed in another order
            assert rf["train_loss"] == pytest.approx(rs["train_loss"], rel=1e-6)
            assert rf["coherence_10"] == pytest.approx(rs["coherence_10"], rel=1e-9)
        assert [r["lr"] for r in f["history"]] == [0.1, pytest.approx(0.01)]  # its own MultiStepLR


def test_two_tiny_epochs_float32_within_round_off(two_epochs):
    """In float32 the tiny model is chaotic (BatchNorm over 25 values at layer 4's 1x1 maps): round-off of a step
    grows to ~4 % of a weight in two epochs. The fused run must be as close to the separate float32 run as the
    separate float32 run is to the same run in float64 (the round-off of the format itself)."""
    cfgs, out = two_epochs
    for c, f, s, exact in zip(cfgs, out["fused32"], out["sep32"], out["sep64"]):
        envelope = _max_rel(s, exact)
        assert 0 < envelope < 0.2, c.run_id  # float32 does differ from float64, by round-off
        assert _max_rel(f, s) < 3 * envelope, (c.run_id, _max_rel(f, s), envelope)
        assert f["history"][0]["train_loss"] == pytest.approx(s["history"][0]["train_loss"], rel=1e-4)


# --- divergence, checkpoints, records, time limit ------------------------------------------------

def test_a_diverging_run_stops_alone(tmp_path, monkeypatch):
    """In float64, where the others can be compared with the same runs trained without it to 1e-12."""
    _in_dtype(monkeypatch, torch.float64)
    data = tiny_cifar(10)
    good = _cfgs(RUNS[:2], epochs=2)
    bad = ct.TrainConfig(**{**TINY, "optimizer": "sam", "rho": 0.05, "seed": 0, "lr": 1e8, "milestones": (5,)})
    res = ft.train([good[0], bad, good[1]], data, out_dir=tmp_path, progress=False)["runs"]
    assert res[1]["status"].startswith("diverged: ") and "the run stopped" in res[1]["status"]
    assert not res[1]["complete"] and res[1]["record_path"] is None and len(res[1]["history"]) == 0
    assert not (tmp_path / f"{bad.name}.json").exists() and not ct.partial_record_path(tmp_path, bad).exists()
    alone = ft.train(good, data, out_dir=None, progress=False)["runs"]
    for r, a in zip((res[0], res[2]), alone):
        assert r["complete"] and r["record_path"] is not None and len(r["history"]) == 2
        for (k, u), v in zip(r["model"].state_dict().items(), a["model"].state_dict().values()):
            assert torch.isfinite(u).all() and _rel(u, v) < 1e-12, k  # the NaN run never touched them


def test_resume_is_exact_and_checkpoints_are_cifar_trains(tmp_path):
    data = tiny_cifar(10)
    cfgs = lambda **kw: _cfgs(RUNS[1:], **kw)  # noqa: E731 - SGD and SAM, two seeds
    full = ft.train(cfgs(), data, out_dir=None, checkpoint_dir=tmp_path / "a", progress=False)["runs"]
    ft.train(cfgs(epochs=1), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)
    sgd = cfgs()[0]
    (tmp_path / "c").mkdir()  # the SGD run's checkpoint after one fused epoch, for cifar_train below
    (tmp_path / "c" / f"{sgd.run_id}.pt").write_bytes((tmp_path / "b" / f"{sgd.run_id}.pt").read_bytes())
    resumed = ft.train(cfgs(), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)["runs"]
    strip = lambda h: [{k: v for k, v in r.items() if not k.endswith("time_s")} for r in h]  # noqa: E731
    for f, r in zip(full, resumed):
        for (k, u), v in zip(f["model"].state_dict().items(), r["model"].state_dict().values()):
            assert torch.equal(u, v), k
        assert strip(f["history"]) == strip(r["history"])
    # the checkpoint is cifar_train's: a separate run resumes it where the fused program left it
    state = torch.load(tmp_path / "c" / f"{sgd.run_id}.pt", weights_only=True)
    assert state["epoch"] == 1 and state["resume_key"] == ct.resolve(sgd, CPU).resume_key()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = ct.train(sgd, data, out_dir=None, checkpoint_dir=tmp_path / "c", progress=False)
    assert [r["epoch"] for r in again["history"]] == [1, 2]
    assert strip(again["history"])[0] == strip(full[0]["history"])[0]
    assert again["history"][1]["lr"] == full[0]["history"][1]["lr"]  # its scheduler went on from the checkpoint
    with pytest.raises(ValueError, match="different settings"):
        ft.train(cfgs(lr=0.01), data, out_dir=None, checkpoint_dir=tmp_path / "b", progress=False)


def test_time_limit_partial_records_and_cifar_results_reads_the_records(tmp_path):
    data, cfgs = tiny_cifar(10), _cfgs(checkpoint_every=5)
    part = ft.train(cfgs, data, out_dir=tmp_path, progress=False, stop_after_s=0.0)["runs"]
    for c, r in zip(cfgs, part):
        assert not r["complete"] and r["status"] == "stopped at the time limit (epoch 1/2)"
        rec = records.read_record(r["partial_record_path"])
        assert rec["name"] == f"cifar10-partial/{c.name}" and rec["metrics"]["epochs_done"] == 1
    assert cr.load_runs(tmp_path, "custom") == {}  # a partial record is never read as a result
    done = ft.train(cfgs, data, out_dir=tmp_path, progress=False)["runs"]
    assert all(r["complete"] for r in done) and not list(tmp_path.glob("*.partial.json"))
    runs = cr.load_runs(tmp_path, "custom")
    assert list(runs) == ["SGD", "SAM ρ=0.1", "SAM ρ=0.2"]
    assert [r["settings"]["seed"] for r in runs["SAM ρ=0.2"]] == [1]
    table = cr.summary_table(runs)
    rank = done[0]["history"][-1]["rank"]["0.999"]
    assert table.loc["SAM ρ=0.1", "rank @99.9% (ours)"] == f"{rank:.0f}"  # one seed: its value
    # the schema of a separate run's record, plus the trainer's name
    sep = records.read_record(ct.train(cfgs[1], data, out_dir=tmp_path / "sep", progress=False)["record_path"])
    fused = records.read_record(done[1]["record_path"])
    assert set(fused["settings"]) - set(sep["settings"]) == {"trainer", "trainer_note"}
    assert set(sep["settings"]) <= set(fused["settings"]) and fused["settings"]["trainer"] == "fused_train"
    assert set(fused["metrics"]) == set(sep["metrics"])
    assert set(fused["metrics"]["final"]) == set(sep["metrics"]["final"])
    assert [set(r) for r in fused["metrics"]["history"]] == [set(r) for r in sep["metrics"]["history"]]


# --- settings and command line -------------------------------------------------------------------

def test_runs_must_share_the_program():
    with pytest.raises(ValueError, match="must share width"):
        ft.check_runs([ct.TrainConfig(width=4), ct.TrainConfig(width=8, optimizer="sam")])
    with pytest.raises(ValueError, match="same name"):
        ft.check_runs([ct.TrainConfig(width=4), ct.TrainConfig(width=4, lr=0.2)])
    with pytest.raises(ValueError, match="eager"):
        ft.check_runs([ct.TrainConfig(compile="default")])
    with pytest.raises(TypeError, match="list of TrainConfig"):
        ft.check_runs(ct.TrainConfig())
    with pytest.raises(ValueError, match="at least one run"):
        ft.check_runs([])
    table = ft.table_configs([42, 43], width=4)
    assert [c.run_id for c in table[:4]] == ["sam_rho0.05_imagenet_w4_seed42", "sam_rho0.1_imagenet_w4_seed42",
                                             "sam_rho0.2_imagenet_w4_seed42", "sgd_imagenet_w4_seed42"]
    assert len(table) == 8 and table[4].seed == 43


def test_cli_trains_a_seeds_table_and_stops_at_the_time_limit(tmp_path, tiny_cifar_folder, capsys):
    argv = ["--seeds", "42", "--rhos", "0.1", "--epochs", "2", "--milestones", "1", "--width", "2",
            "--batch-size", "10", "--coherence-per-class", "1", "--data", str(tiny_cifar_folder),
            "--out", str(tmp_path / "out")]
    assert ft.main([*argv, "--time-limit", "0"]) == ct.EXIT_INCOMPLETE
    assert "run the same command again to resume" in capsys.readouterr().err
    assert ft.main(argv) == 0
    for name in ("sam_rho0.1_imagenet_w2_seed42_2ep", "sgd_imagenet_w2_seed42_2ep"):
        rec = json.loads((tmp_path / "out" / f"{name}.json").read_text())
        assert rec["settings"]["data"]["layout"] == "image-folder" and rec["settings"]["trainer"] == "fused_train"
        assert [r["epoch"] for r in rec["metrics"]["history"]] == [1, 2]
    assert not list((tmp_path / "out").glob("*.partial.json"))
    args = ft.parser().parse_args(["--seeds", "1", "2", "--rhos", "--protocol", "reduced"])
    assert [(c.optimizer, c.seed, c.protocol) for c in ft.configs_from_args(args)] == [
        ("sgd", 1, "reduced"), ("sgd", 2, "reduced")]
    assert ft.configs_from_args(ft.parser().parse_args([]))[-1].rho == ct.TrainConfig().rho  # SGD: the default


@pytest.mark.parametrize("argv", [["--seed", "3"], ["--optimizer", "sam"], ["--rhos", "--no-sgd"],
                                  ["--compile"], ["--epochs", "0"], ["--data", "/no/such/cifar"], ["--rhos", "0"]])
def test_cli_bad_arguments_print_one_line(argv, capsys):
    assert ft.main(argv) == ct.EXIT_BAD_ARGS
    err = capsys.readouterr().err
    assert err.startswith("python -m flatbias.fused_train: error: ") and err.count("\n") == 1, err


def test_benchmark_script_writes_its_record(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_fused", records.repo_root() / "benchmarks" / "bench_fused.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    saved = torch.get_num_threads()
    try:
        out = bench.main(["--shapes", "2:10", "--steps", "1", "--warmup", "0", "--repeats", "1",
                          "--out", str(tmp_path / "b.json")])
    finally:
        torch.set_num_threads(saved)
    (row,) = out["shapes"]
    assert row["ratio"] == pytest.approx(row["separate_median_s"] / row["fused_median_s"]) and row["ratio"] > 0
    assert len(row["runs"]) == 4
    rec = records.read_record(tmp_path / "b.json")
    assert rec["name"] == "cifar10_fused_benchmark" and rec["settings"]["threads"] == 1
