"""The CIFAR-10 step benchmark runs end to end (tiny, on the CPU) and writes its record: a GPU session can trust it."""

import importlib.util

from flatbias import records
from flatbias.records import repo_root


def _load():
    spec = importlib.util.spec_from_file_location("cifar_step", repo_root() / "benchmarks" / "cifar_step.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_times_every_variant_and_writes_a_record(tmp_path):
    bench = _load()
    out = tmp_path / "bench.json"
    rows, met = bench.main(["--width", "4", "--batches", "1", "--warmup", "1", "--images", "256",
                            "--precision", "fp32", "bf16", "--out", str(out), "--device", "cpu"])
    assert [(r["optimizer"], r["precision"]) for r in rows] == [("sgd", "fp32"), ("sgd", "bf16"), ("sam", "fp32"),
                                                               ("sam", "bf16")]
    assert all(r["fast_step_ms"] > 0 and r["reference_step_ms"] > 0 and r["mfu_vs_bf16_peak"] is None for r in rows)
    sgd, sam = rows[0]["gflop_per_img"], rows[2]["gflop_per_img"]
    assert abs(sam / sgd - 2) < 1e-9  # SAM: two forward-backward passes per step
    assert met["metric_s"] >= met["rank_s"] > 0
    rec = records.read_record(out)
    assert rec["name"] == "cifar10_step_benchmark" and rec["scale"] == "smoke" and len(rec["metrics"]["steps"]) == 4
