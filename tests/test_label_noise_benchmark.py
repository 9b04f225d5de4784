"""The label-noise kernel benchmark (benchmarks/label_noise_kernel.py) at a tiny size: its record and its ceiling."""

import json
import os
import runpy
from pathlib import Path
from unittest import mock

import torch

# the script sets its process to one thread (environment and torch): keep that out of the test session
_threads = torch.get_num_threads()
with mock.patch.dict(os.environ):
    BENCH = runpy.run_path(str(Path(__file__).resolve().parents[1] / "benchmarks" / "label_noise_kernel.py"))
torch.set_num_threads(_threads)


def test_ceiling_splits_a_step_into_exp_and_the_rest():
    b = BENCH["ceiling"](4, 300, 1)
    assert b["chains"] == 4 and b["m"] == 10
    rates = [b[k] for k in b if k.endswith("(chain-steps/s)")]
    assert len(rates) == 4 and all(r > 0 and r < float("inf") for r in rates)
    assert b["rate if exp cost nothing, the cubic rate (chain-steps/s)"] == \
        b["lane kernel, cubic: no exp (chain-steps/s)"]
    # the two derived numbers are the parts' arithmetic, not new timings
    t = b["exp alone (ns per call, vectorized)"] * 1e-9
    assert abs(b["rate if all but exp cost nothing (chain-steps/s)"] * 10 * t - 1) < 1e-12
    assert abs(b["exp's share of a sinh step"] - 10 * t * b["lane kernel, sinh (chain-steps/s)"]) < 1e-12


def test_main_writes_the_rates_and_the_ceiling(tmp_path):
    out = tmp_path / "bench.json"
    BENCH["main"](["--chains", "4", "--steps", "200", "--naive-steps", "20", "--reps", "1", "--record", str(out)])
    rec = json.loads(out.read_text())
    rates = rec["metrics"]["chain_steps_per_s"]
    assert "lane kernel, label-noise SGD (4 chains, kernel only)" in rates
    assert "lane kernel, label-noise SGD (32 chains, kernel only)" in rates
    assert "general lane kernel (any d), label-noise SGD (4 chains, kernel only)" in rates
    assert [b["chains"] for b in rec["metrics"]["ceiling"]] == [4, 64]
    assert rec["provenance"]["commit"] and rec["provenance"]["wall_time_s"] > 0


def _sig(x: float, text: str) -> str:
    """x rounded to as many significant digits as the quoted ``text`` (like '3.16e7') has, in that form."""
    mant, exp = text.split("e")
    digits = len(mant.replace(".", ""))
    return f"{round(x / 10 ** int(exp), digits - 1):.{digits - 1}f}e{exp}"


def test_the_changelog_quotes_the_kernel_records():
    """The lane-kernel rates the CHANGELOG gives at 8, 16, 32 and 64 chains are the committed records', rounded."""
    import re

    root = Path(__file__).resolve().parents[1]
    text = " ".join((root / "CHANGELOG.md").read_text().split())
    for name, pattern in (("benchmark.json", r"test machine\): ([\d.e, and]+) chain-steps/s at 8, 16, 32 and 64"),
                          ("benchmark_intel_xeon.json", r"the same code\): ([\d.e, and]+) at 8, 16, 32 and 64")):
        rates = json.loads((root / "results" / "label_noise" / name).read_text())["metrics"]["chain_steps_per_s"]
        quoted = re.findall(r"\d\.\d+e\d", re.search(pattern, text).group(1))
        assert len(quoted) == 4, (name, quoted)
        for C, q in zip((8, 16, 32, 64), quoted):
            assert _sig(rates[f"lane kernel, label-noise SGD ({C} chains, kernel only)"], q) == q, (name, C, q)
