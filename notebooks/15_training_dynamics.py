# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     notebook_metadata_filter: mystnb
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
#   mystnb:
#     execution_timeout: 900
# ---

# %% [markdown]
# # SGD vs SAM on the parity task: coherence and feature rank during training
#
# Paper 2 {cite}`chang2025unified` trains its two-layer ReLU network on $y=x_1x_2$ with SGD and with SAM
# {cite}`foret2021sharpness` and reports, after 50 epochs, the coherence of the per-sample Hessians, the sharpness and
# the effective rank of the hidden features: SAM should end at flatter, less "memorizing", lower-rank solutions.
# Here every per-sample Hessian quantity is computed **exactly** every epoch, from the closed form of
# `flatbias.relu_hessian` (residual terms included), for five optimizers and five seeds.

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/flatbias/flatbias-book"],
                   check=True)

# %% tags=["parameters"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else "full" on a GPU and "smoke" on a CPU

# %% tags=["hide-input"]
import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import records, repro, train_relu
from flatbias.scale import get_scale, pick
from flatbias.style import set_style
from flatbias.verdict import glue_verdict

scale = get_scale(scale)
set_style()
repro.seed_everything(0)
RECORD = records.repo_root() / "results" / "relu" / "training_full.json"
SMOKE = dict(seeds=[0], methods=("sgd", "sam_0.2"), epochs=8)
print(f"scale = {scale}; record: {RECORD.relative_to(records.repo_root())} ({'present' if RECORD.exists() else 'missing'})")

# %% [markdown]
# ## Setting
#
# | part of the setting | source |
# |---|---|
# | $d=30$, $h=120$, $n=100$ training and 100 validation points of $y=x_1x_2$, PyTorch default init | the authors' code |
# | plain SGD, lr $0.1$, batch 10, reshuffled each epoch, 50 epochs; loss = batch mean of $(f-y)^2$ | the authors' code |
# | SAM: $e=\rho g/(\lVert g\rVert+10^{-12})$ from the minibatch gradient, gradient at $\theta+e$, SGD step from $\theta$ | the authors' code |
# | $\rho\in\{0.01,0.05,0.1,0.2\}$ | the paper note (the code's default is $0.1$) |
# | the note's $h=100$, lr $0.01$ | **not followed**: they conflict with the code; we follow the code |
# | metrics once per epoch; exact coherence every epoch (the code: from epoch 5 on, dense Hessians) | **our choice** |
# | float64; seeds 0–4 (the code: seed 0); data drawn with torch on the CPU | **our choice** |
#
# Per epoch we record the coherence $\sigma=\lambda_1(S)/\max_i\lambda_1(H_i)$ with $S_{ij}=\sqrt{\operatorname{tr}(H_iH_j)}$
# ($H_i$ the Hessian of $(f(x_i)-y_i)^2$; where $\operatorname{tr}(H_iH_j)<0$, which happens off the zero-loss set,
# the entry is $0$ as in the authors' code), $\lambda_1(S)$, $\max_i\lambda_1(H_i)$, $\lambda_{\max}$ (Lanczos) and the
# trace of the full-batch Hessian, the effective rank of the hidden features (smallest $k$ whose principal
# components explain 90% of their variance on the training points) and the accuracies.
#
# ## A short run, executed here
#
# At smoke scale the chapter trains SGD and SAM $\rho=0.2$ for a few epochs, to show the pipeline runs; the 50-epoch,
# five-optimizer, five-seed experiment is the committed record below, rerun by this chapter at full scale.

# %%
with records.stopwatch() as sw:
    live = train_relu.run(SMOKE["seeds"], SMOKE["methods"], progress=False, epochs=SMOKE["epochs"])
for m, by_seed in live.items():
    hist = by_seed["0"]
    print(f"{train_relu.method_label(m):>10}: train loss {hist['train_loss'][0]:.3f} → {hist['train_loss'][-1]:.4f}, "
          f"σ {hist['sigma'][0]:.1f} → {hist['sigma'][-1]:.1f}, train acc {hist['train_acc'][-1]:.2f}")

# %%
# NBVAL_CHECK_OUTPUT
hists = [h for by_seed in live.values() for h in by_seed.values()]
learns = all(h["train_loss"][-1] < 0.2 * h["train_loss"][0] for h in hists)
sigma_ok = all(1 - 1e-9 <= s <= 100 for h in hists for s in h["sigma"])
print(f"the loss falls at least 5x in {SMOKE['epochs']} epochs for both optimizers: {learns}")
print(f"1 <= σ <= n at every epoch: {sigma_ok}")
assert learns and sigma_ok

# %% [markdown]
# ## The full experiment (committed record)

# %%
if scale == "full":
    train_relu.run_and_record("training", [0, 1, 2, 3, 4], "full", out=RECORD)
rec = records.read_record(RECORD)
runs, prov = rec["metrics"]["runs"], rec["provenance"]
hw = prov["hardware"]
print(f"record {RECORD.name}: scale {rec['scale']}, {len(rec['settings']['seeds'])} seeds x {len(runs)} optimizers x "
      f"{rec['settings']['epochs']} epochs; {hw.get('gpu') or hw['cpu']}; {prov['date_utc']}; commit {prov['commit'][:12]}; "
      f"wall time {prov['wall_time_s']:.0f} s")

# %%
KEYS = [("sigma", r"coherence $\sigma$"), ("max_lambda_Hi", r"$\max_i\lambda_1(H_i)$"),
        ("hess_lambda_max", r"$\lambda_{\max}(\nabla^2L)$"), ("eff_rank", "effective rank (PCA 90%)"),
        ("val_acc", "validation accuracy"), ("lambda_S", r"$\lambda_1(S)$")]
fig, axes = plt.subplots(2, 3, figsize=(7.6, 4.8))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(runs)))
for ax, (key, label) in zip(axes.flat, KEYS):
    for c, (m, by_seed) in zip(colors, runs.items()):
        v = np.array([h[key] for h in by_seed.values()], dtype=float)
        ep = np.arange(v.shape[1])
        ax.plot(ep, v.mean(0), color=c, lw=1.2, label=train_relu.method_label(m))
        ax.fill_between(ep, v.min(0), v.max(0), color=c, alpha=0.15, lw=0)
    ax.set(title=label, xlabel="epoch")
    if key in ("max_lambda_Hi", "hess_lambda_max", "lambda_S"):
        ax.set_yscale("log")
axes[0, 0].legend(fontsize=6.5)
glue("fig_relu_training", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_relu_training
# :name: fig-relu-training
#
# Fifty epochs of SGD and SAM on $y=x_1x_2$ (mean over five seeds, band = min to max). Larger $\rho$ ends at a less
# coherent, much flatter solution: every per-sample sharpness and the full-batch $\lambda_{\max}$ fall with $\rho$, and the
# validation accuracy rises. The effective rank of the hidden features barely moves.
# ```
#
# ## Epoch 50 against the paper's table
#
# The paper note's table (SPEC §B.8(b)) prints $\lambda_1(S)$ = 133.9 / 121.5 / 90.3 / 65.7 and
# $\max_i\lambda_1(H_i)$ = 12740 / 10103 / 6422 / 3446 for SGD and SAM $\rho$ = 0.05, 0.1, 0.2. As printed, $\sigma<0.011$,
# which is impossible ($\sigma\ge1$ always, since $\lambda_1(S)\ge S_{ii}=\lVert H_i\rVert_F\ge\lambda_1(H_i)$); the rows look swapped.

# %%
NOTE = {"sgd": (133.9, 12740), "sam_0.05": (121.5, 10103), "sam_0.1": (90.3, 6422), "sam_0.2": (65.7, 3446)}
final = {k: train_relu.summary(runs, k) for k in ("sigma", "lambda_S", "max_lambda_Hi", "hess_lambda_max", "hess_trace",
                                                    "eff_rank", "val_acc", "train_loss", "negative_trHiHj")}
print(f"{'':>11} {'σ':>6} {'λ1(S)':>7} {'max λ1(H_i)':>11} {'λmax(H)':>8} {'tr H':>6} {'eff.rank':>8} {'val acc':>7} "
      f"{'#tr<0':>6} | note: row1 row2")
for m in runs:
    f = {k: v[m][0] for k, v in final.items()}
    note = NOTE.get(m, ("", ""))
    print(f"{train_relu.method_label(m):>11} {f['sigma']:6.2f} {f['lambda_S']:7.0f} {f['max_lambda_Hi']:11.1f} "
          f"{f['hess_lambda_max']:8.2f} {f['hess_trace']:6.1f} {f['eff_rank']:8.1f} {f['val_acc']:7.2f} "
          f"{f['negative_trHiHj']:6.0f} | {note[0]:>5} {note[1]:>5}")
ratio_swapped = [final["max_lambda_Hi"][m][0] / NOTE[m][0] for m in NOTE]
ratio_printed = [final["max_lambda_Hi"][m][0] / NOTE[m][1] for m in NOTE]
print("our max λ1(H_i) / note row 1:", np.round(ratio_swapped, 2).tolist(), "  / note row 2:", np.round(ratio_printed, 4).tolist())

# %% [markdown]
# Our $\max_i\lambda_1(H_i)$ is within a factor 1.5 of the note's *first* row at every $\rho$, and about 100 times smaller
# than its second row: **our numbers support the swapped reading** ($\lambda_1(S)$ = 12740…, $\max_i\lambda_1(H_i)$ =
# 133.9…). Our $\lambda_1(S)$ is, however, about ten times smaller than 12740…, so our $\sigma$ (about 9 for SGD) is far from
# the swapped reading's $\sigma\approx95$; a coherence of 95 out of a possible 100 would mean nearly identical per-sample
# Hessians, which a network that fits $\pm1$ labels of a parity task does not have in our runs.

# %%
# NBVAL_CHECK_OUTPUT
def per_seed(key, m):
    return np.array(final[key][m][2])


rank_lower = bool(np.all(per_seed("eff_rank", "sam_0.2") < per_seed("eff_rank", "sgd")))
sharp_lower = bool(np.all(per_seed("max_lambda_Hi", "sam_0.2") < per_seed("max_lambda_Hi", "sgd")))
sig_means = [final["sigma"][m][0] for m in runs]
sigma_monotone = bool(np.all(np.diff(sig_means) < 0))
swapped = all(0.5 < x < 2 for x in ratio_swapped) and all(x < 0.05 for x in ratio_printed)
print(f"SAM ρ=0.2 ends with a lower effective rank than SGD in every seed: {rank_lower}")
print(f"SAM ρ=0.2 ends with a lower max_i λ1(H_i) than SGD in every seed: {sharp_lower}")
print(f"mean σ at epoch 50 decreases with ρ (SGD, 0.01, 0.05, 0.1, 0.2): {sigma_monotone}")
print(f"max_i λ1(H_i) matches the note's first row within 2x (swapped reading), not its second: {swapped}")
assert rank_lower and sharp_lower and sigma_monotone and swapped

# %% tags=["remove-cell"]
glue("sigma_sgd", final["sigma"]["sgd"][0], display=False)
glue("sigma_sam2", final["sigma"]["sam_0.2"][0], display=False)
glue("rank_sgd", final["eff_rank"]["sgd"][0], display=False)
glue("rank_sam2", final["eff_rank"]["sam_0.2"][0], display=False)
glue("val_sgd", final["val_acc"]["sgd"][0], display=False)
glue("val_sam2", final["val_acc"]["sam_0.2"][0], display=False)
glue("lh_sgd", final["max_lambda_Hi"]["sgd"][0], display=False)
glue("lh_sam2", final["max_lambda_Hi"]["sam_0.2"][0], display=False)
glue_verdict("verdict", "partly reproduced",
             f"SAM ρ=0.2 vs SGD: max λ1(H_i) {final['max_lambda_Hi']['sam_0.2'][0]:.0f} vs "
             f"{final['max_lambda_Hi']['sgd'][0]:.0f}, σ {final['sigma']['sam_0.2'][0]:.1f} vs {final['sigma']['sgd'][0]:.1f}, "
             f"effective rank {final['eff_rank']['sam_0.2'][0]:.1f} vs {final['eff_rank']['sgd'][0]:.1f} (paper: 29 vs 94); "
             "note's rows swapped")

# %% [markdown]
# ## Verdict
#
# **Partly reproduced.** After 50 epochs, SAM with larger $\rho$ ends at flatter solutions in every seed: the largest
# per-sample sharpness falls from {glue:text}`lh_sgd:.0f` (SGD) to {glue:text}`lh_sam2:.0f` (SAM $\rho=0.2$), the full-batch
# $\lambda_{\max}$ and trace fall likewise, and the validation accuracy rises from {glue:text}`val_sgd:.2f` to
# {glue:text}`val_sam2:.2f`. The coherence falls monotonically with $\rho$ (from {glue:text}`sigma_sgd:.1f` to
# {glue:text}`sigma_sam2:.1f`), the direction the paper's summary reports. The note's first two table rows are swapped:
# our per-sample sharpness matches its first row in magnitude. Two things do not reproduce: our $\lambda_1(S)$, hence
# $\sigma$, is about ten times smaller than the swapped table, and the effective rank barely depends on the optimizer
# ({glue:text}`rank_sgd:.1f` for SGD, {glue:text}`rank_sam2:.1f` for SAM $\rho=0.2$; lower in every seed, but by one or two
# components), far from the paper's 94 vs 29. SAM does not drive the loss to zero ($\rho$ keeps it near $10^{-2}$), so its
# per-sample Hessians carry residual terms, and some $\operatorname{tr}(H_iH_j)$ are negative (column `#tr<0`): the
# coherence of a SAM solution is not the coherence of an interpolating minimum.
