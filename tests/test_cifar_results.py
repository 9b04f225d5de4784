"""Reading training records back: grouping, the summary next to the paper's table, the curves (on real records of
tiny runs, so the chapter's full-scale branch runs on the format that train() writes)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from conftest import tiny_cifar  # noqa: E402
from flatbias import cifar_results as cr  # noqa: E402
from flatbias import cifar_train as ct  # noqa: E402
from flatbias import records  # noqa: E402


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("records")
    data = tiny_cifar()
    base = dict(epochs=2, width=2, batch_size=10, coherence_per_class=(1,), eval_batch=20, milestones=(1,),
                final_coherence_per_class=(2,))
    for kw in (dict(optimizer="sgd", seed=0), dict(optimizer="sgd", seed=1), dict(optimizer="sam", rho=0.2, seed=0)):
        ct.train(ct.TrainConfig(**base, **kw), data, out_dir=out, progress=False)
    records.write_record(out / "bench.json", "cifar10_step_benchmark", "smoke", {}, {})  # not a training record
    return out


def test_runs_are_grouped_by_optimizer_and_protocol(record_dir):
    runs = cr.load_runs(record_dir, "custom")
    assert list(runs) == ["SGD", "SAM ρ=0.2"] and [r["settings"]["seed"] for r in runs["SGD"]] == [0, 1]
    assert cr.load_runs(record_dir, "full") == {} and cr.load_runs(record_dir, "reduced") == {}


def test_summary_table_holds_the_records_numbers(record_dir):
    runs = cr.load_runs(record_dir, "custom")
    table = cr.summary_table(runs)
    assert list(table.index) == list(cr.ORDER)  # the paper's rows, ours filled in where we have them
    ranks = [r["metrics"]["final"]["rank"]["0.999"] for r in runs["SGD"]]
    assert table.loc["SGD", "rank @99.9% (ours)"] == f"{np.mean(ranks):.1f} ± {np.std(ranks):.1f} (n=2)"
    assert table.loc["SAM ρ=0.2", "test acc. (ours)"] == round(runs["SAM ρ=0.2"][0]["metrics"]["final"]["test_acc"], 4)
    assert table.loc["SGD", "proxy, 1000 imgs (ours)"] == "not measured"  # these tiny runs measured 10 and 20
    assert table.loc["SGD", "hardware, date, commit, wall time"].count(";") == 1
    assert table.loc["SAM ρ=0.1"].isna()["rank @99.9% (ours)"]
    m, s, k = cr.final(runs["SGD"], "coherence_100")
    assert k == 0 and np.isnan(m)


def test_provenance_shows_a_dirty_tree():
    sha = "f9ba25578082a2828fa3e1afc9c2f02366e3920a"
    rec = {"provenance": {"hardware": {"gpu": "NVIDIA H200"}, "date_utc": "2026-11-30T01:46:10+00:00",
                          "commit": sha + "+dirty", "wall_time_s": 300.0}}
    assert cr.provenance_line(rec) == "NVIDIA H200, 2026-11-30, f9ba255780 with uncommitted changes, 5 min"
    assert cr.provenance_note({"SGD": [rec]}).startswith("1 of 1 records were made from a tree with uncommitted")
    rec["provenance"]["commit"] = sha
    assert cr.provenance_line(rec) == "NVIDIA H200, 2026-11-30, f9ba255780, 5 min"
    assert cr.provenance_note({"SGD": [rec], "SAM": [rec]}) == "all 2 records were made from a clean commit"
    assert cr.provenance_note({}) == "no records yet"


def test_curves_draw_one_line_per_seed(record_dir):
    runs = cr.load_runs(record_dir, "custom")
    fig, axes = plt.subplots(1, 3)
    cr.plot_curves(axes, runs)
    assert [len(ax.lines) for ax in axes] == [3, 3, 3]
    row = runs["SGD"][0]["metrics"]["history"][-1]
    assert cr.smallest_proxy(row) == row["coherence_10"] and "coherence_20" in row
    plt.close(fig)


def test_table_names_the_data_source_and_precision(record_dir):
    table = cr.summary_table(cr.load_runs(record_dir, "custom"))
    assert table.loc["SGD", "data source"] == "synthetic (tests)" and table.loc["SGD", "precision"].startswith("tf32")
    old = {"settings": {"data": {"layout": "image-folder"}, "precision": "fp32"}}  # a record from before both
    assert cr.data_source(old) == "image folder" and cr.precision_label(old) == "fp32"
    mirror = {"settings": {"data": {"layout": "image-folder", "image_format": "jpeg", "source_kind": "JPEG mirror"}}}
    assert cr.data_source(mirror) == "JPEG mirror"


def test_both_proxy_curves_when_the_records_have_the_large_set_every_epoch(tmp_path):
    data = tiny_cifar()
    base = dict(epochs=2, width=2, batch_size=10, eval_batch=20, milestones=(1,))
    ct.train(ct.TrainConfig(**base, coherence_per_class=(1, 2)), data, out_dir=tmp_path, progress=False)
    runs = cr.load_runs(tmp_path, "custom")
    assert cr.curve_sizes(runs) == [10, 20]
    fig, axes = plt.subplots(1, 3)
    cr.plot_curves(axes, runs)
    assert [len(ax.lines) for ax in axes] == [1, 2, 1] and axes[1].lines[1].get_linestyle() == "--"
    assert "20 dashed" in axes[1].get_title()
    plt.close(fig)
