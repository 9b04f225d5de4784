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
# the effective rank of the hidden features: SAM should end at flatter, lower-rank solutions. Its Theorem 3.6 says
# more: SAM prefers **coherent** minima (memorizing minima have $\sigma=1$), so it should also end more coherent.
# Here every per-sample Hessian quantity is computed **exactly** every epoch, from the closed form of
# `flatbias.relu_hessian` (residual terms included), for five optimizers and five seeds.

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    url = "git+https://github.com/flatbias/flatbias-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)

# %% tags=["parameters"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else full on a GPU, smoke on a CPU

# %% [markdown]
# ## Protocol
#
# Declared before anything runs. The thresholds of the paper's claims come from the paper's own numbers
# (its effective ranks 29 vs 94, its table), not from our runs.

# %% tags=["protocol"]
from flatbias.claims import Check, Claim, Criterion, Protocol, Setting, same

PROTOCOL = Protocol(
    chapter="15_training_dynamics",
    settings={
        "seeds": Setting([0], [0, 1, 2, 3, 4], "ours", "the authors' code: seed 0"),
        "methods": Setting(["sgd", "sam_0.2"],
                           ["sgd", "sam_0.01", "sam_0.05", "sam_0.1", "sam_0.2"],
                           "paper"),
        "epochs": Setting(8, 50, "paper", "the authors' code"),
        "d_h_n_lr_batch": same([30, 120, 100, 0.1, 10], "paper", "the authors' code"),
        "guard_samples": same([0, 1], "ours", "Hessians checked by autograd"),
    },
    claims=[
        Claim("flatter",
              "SAM (ρ=0.2) ends at a flatter solution than SGD: smaller "
              "max_i λ1(H_i) and λ_max(∇²L)",
              "Paper 2, synthetic experiment (SPEC §B.8(b))"),
        Claim("lower_rank",
              "SAM (ρ=0.2) learns lower-rank hidden features than SGD "
              "(effective rank 29 vs 94)",
              "Paper 2, rebuttal (SPEC §B.8(b))"),
        Claim("more_coherent",
              "SAM prefers coherent minima, so SAM (ρ=0.2) ends with a larger "
              "coherence σ than SGD",
              "Paper 2, Theorem 3.6 (applied to training: our reading)",
              reading="ours"),
        Claim("note_table",
              "The note's table, rows swapped (λ1(S) = 12740…, "
              "max_i λ1(H_i) = 133.9…), describes these runs",
              "Paper 2 note's table (SPEC §B.8(b)); the swap is our reading",
              reading="ours"),
    ],
    checks=[
        Check("flatter_seeds",
              "share of seeds where SAM ρ=0.2 ends with smaller max_i λ1(H_i)",
              Criterion(">=", 1.0, "ours", "every seed"), claim="flatter"),
        Check("lmax_seeds",
              "share of seeds where SAM ρ=0.2 ends with smaller λ_max(∇²L)",
              Criterion(">=", 1.0, "ours", "every seed"), role="secondary",
              claim="flatter"),
        Check("rank_ratio", "mean effective rank, SAM ρ=0.2 / SGD, at the last epoch",
              Criterion("<=", 0.5, "ours", "the paper's 29/94 = 0.31, with a margin"),
              claim="lower_rank"),
        Check("rank_seeds",
              "share of seeds where SAM ρ=0.2 ends with a lower effective rank",
              Criterion(">=", 1.0, "ours"), role="secondary", claim="lower_rank"),
        Check("sigma_gap", "mean σ, SAM ρ=0.2 minus SGD, at the last epoch",
              Criterion(">", 0.0, "ours"), claim="more_coherent"),
        Check("row1_factor",
              "worst factor between our max_i λ1(H_i) and the note's row 1",
              Criterion("<=", 2.0, "ours"), claim="note_table"),
        Check("sigma_factor", "factor between our σ (SGD) and the swapped table's "
                              "95.1",
              Criterion("<=", 2.0, "ours"), role="secondary", claim="note_table"),
        Check("trHiHj_vs_autograd",
              "closed-form tr(H_i H_j) vs autograd Hessians (rel.)",
              Criterion("<=", 1e-8, "ours"), role="guard", fmt=".1e"),
        Check("lambda_Hi_vs_autograd",
              "closed-form λ1(H_i) vs autograd Hessians (rel.)",
              Criterion("<=", 1e-8, "ours"), role="guard", fmt=".1e"),
        Check("sam_step_vs_autograd",
              "SAM step vs a plain two-pass autograd step (max abs.)",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("rank_vs_svd", "effective rank vs an SVD of the same features (max abs.)",
              Criterion("==", 0, "ours"), role="guard"),
        Check("loss_falls", "smallest factor by which the training loss falls",
              Criterion(">=", 5.0, "ours"), role="guard"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import chapter_record, relu_hessian, relu_net, repro, train_relu, verdict
from flatbias.scale import get_scale
from flatbias.style import set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
repro.seed_everything(0)
t_start = time.perf_counter()
print(f"scale = {scale}: {len(P['methods'])} optimizers x {len(P['seeds'])} seeds "
      f"x {P['epochs']} epochs")

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
# ## The run
#
# Every optimizer and seed of the protocol, with exact per-sample Hessian metrics every epoch.

# %%
runs = train_relu.run(P["seeds"], P["methods"], progress=False, epochs=P["epochs"])
for m, by_seed in runs.items():
    h = by_seed[str(P["seeds"][0])]
    print(f"{train_relu.method_label(m):>10}: train loss {h['train_loss'][0]:.3f} → "
          f"{h['train_loss'][-1]:.4f}, σ {h['sigma'][0]:.1f} → {h['sigma'][-1]:.1f}")

# %% [markdown]
# **Guards.** The closed-form per-sample Hessian quantities are compared with dense autograd
# Hessians at the final SGD point, one SAM step with a plain two-pass autograd step, and the
# effective rank with an SVD of the same features.

# %%
cfg = train_relu.Config(seed=P["seeds"][0])
X, y, Xv, yv, gen = train_relu.data(cfg)
theta = train_relu.initial_theta(cfg, gen)
for _ in range(3):  # a few SGD epochs, to leave the initialization
    for i in range(0, cfg.n, cfg.batch_size):
        theta = train_relu.step(theta, X[i:i + 10], y[i:i + 10], cfg.lr, 0.0)
ref = relu_hessian.reference_errors(theta, X, y, P["guard_samples"], h=cfg.h)
sam = train_relu.step(theta, X[:10], y[:10], cfg.lr, 0.2)
sam_ref = train_relu.step_autograd(theta, X[:10], y[:10], cfg.lr, 0.2)
feats = relu_net.features(theta, X, h=cfg.h).numpy()
sv = np.linalg.svd(feats - feats.mean(0), compute_uv=False) ** 2
rank_svd = int(np.searchsorted(np.cumsum(sv / sv.sum()), 0.90) + 1)
rank_lib = relu_hessian.effective_rank(relu_net.features(theta, X, h=cfg.h), 0.90)
print(f"tr(H_i H_j) rel. error {ref['trHiHj']:.1e}, "
      f"λ1(H_i) rel. error {ref['lambda_Hi']:.1e}, "
      f"SAM step difference {float((sam - sam_ref).abs().max()):.1e}, "
      f"effective rank {rank_lib} (SVD: {rank_svd})")

# %% [markdown]
# ## Checks, and the paper-scale record

# %%
NOTE = {"sgd": (133.9, 12740), "sam_0.05": (121.5, 10103), "sam_0.1": (90.3, 6422),
        "sam_0.2": (65.7, 3446)}  # the note's rows (λ1(S), max_i λ1(H_i)) as printed
SWAPPED_SIGMA_SGD = 12740 / 133.9


def last(key, m):
    return np.array([h[key][-1] for h in runs[m].values()], dtype=float)


factors = [max(last("max_lambda_Hi", m).mean() / NOTE[m][0],
               NOTE[m][0] / last("max_lambda_Hi", m).mean()) for m in NOTE if m in runs]
sig_sgd = last("sigma", "sgd").mean()
measured = {
    "flatter_seeds": float(np.mean(last("max_lambda_Hi", "sam_0.2")
                                   < last("max_lambda_Hi", "sgd"))),
    "lmax_seeds": float(np.mean(last("hess_lambda_max", "sam_0.2")
                                < last("hess_lambda_max", "sgd"))),
    "rank_ratio": float(last("eff_rank", "sam_0.2").mean()
                        / last("eff_rank", "sgd").mean()),
    "rank_seeds": float(np.mean(last("eff_rank", "sam_0.2") < last("eff_rank", "sgd"))),
    "sigma_gap": float(last("sigma", "sam_0.2").mean() - sig_sgd),
    "row1_factor": float(max(factors)),
    "sigma_factor": float(max(sig_sgd / SWAPPED_SIGMA_SGD,
                              SWAPPED_SIGMA_SGD / sig_sgd)),
    "trHiHj_vs_autograd": ref["trHiHj"],
    "lambda_Hi_vs_autograd": ref["lambda_Hi"],
    "sam_step_vs_autograd": float((sam - sam_ref).abs().max()),
    "rank_vs_svd": abs(rank_lib - rank_svd),
    "loss_falls": min(h["train_loss"][0] / h["train_loss"][-1]
                      for by_seed in runs.values() for h in by_seed.values()),
}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, {"runs": runs},
                                       t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = (paper.data or {"runs": runs})["runs"]  # the paper-scale record if there is one
KEYS = [("sigma", r"coherence $\sigma$"), ("max_lambda_Hi", r"$\max_i\lambda_1(H_i)$"),
        ("hess_lambda_max", r"$\lambda_{\max}(\nabla^2L)$"),
        ("eff_rank", "effective rank (PCA 90%)"), ("val_acc", "validation accuracy"),
        ("lambda_S", r"$\lambda_1(S)$")]
fig, axes = plt.subplots(2, 3, figsize=(7.6, 4.8))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
for ax, (key, label) in zip(axes.flat, KEYS):
    for c, (m, by_seed) in zip(colors, shown.items()):
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
# Paper scale: fifty epochs of SGD and SAM on $y=x_1x_2$ (mean over five seeds, band = min to max).
# Larger $\rho$ ends at a flatter solution: every per-sample sharpness and the full-batch
# $\lambda_{\max}$ fall with $\rho$, and the validation accuracy rises. The coherence **falls** with
# $\rho$, and the effective rank of the hidden features barely moves from its starting value.
# ```
#
# ## Epoch 0 and epoch 50, against the paper's table
#
# The paper note's table (SPEC §B.8(b)) prints $\lambda_1(S)$ = 133.9 / 121.5 / 90.3 / 65.7 and
# $\max_i\lambda_1(H_i)$ = 12740 / 10103 / 6422 / 3446 for SGD and SAM $\rho$ = 0.05, 0.1, 0.2. As printed,
# $\sigma<0.011$, which is impossible ($\sigma\ge1$ always, since
# $\lambda_1(S)\ge S_{ii}=\lVert H_i\rVert_F\ge\lambda_1(H_i)$); the rows look swapped. Each row below
# shows the value at epoch 0 beside the value at the last epoch (means over seeds), so the final
# effective ranks can be read against their common starting point.

# %% tags=["hide-input"]
# NBVAL_CHECK_OUTPUT
print(f"{'':>11} {'σ (0 → end)':>14} {'eff. rank (0 → end)':>20} "
      f"{'max λ1(H_i)':>11} "
      f"{'val acc':>7} | note row 1")
for m, by_seed in shown.items():
    def mean(key, e):
        return np.mean([h[key][e] for h in by_seed.values()])
    print(f"{train_relu.method_label(m):>11} "
          f"{mean('sigma', 0):6.2f} → {mean('sigma', -1):5.2f} "
          f"{mean('eff_rank', 0):9.1f} → {mean('eff_rank', -1):6.1f} "
          f"{mean('max_lambda_Hi', -1):11.1f} {mean('val_acc', -1):7.2f} "
          f"| {NOTE.get(m, ('',))[0]:>6}")

# %% tags=["remove-cell"]
def final_mean(key, m):
    return float(np.mean([h[key][-1] for h in shown[m].values()]))


GLUED = [("sigma", "sgd", "sigma_sgd"), ("sigma", "sam_0.2", "sigma_sam2"),
         ("eff_rank", "sgd", "rank_sgd"), ("eff_rank", "sam_0.2", "rank_sam2"),
         ("max_lambda_Hi", "sgd", "lh_sgd"), ("max_lambda_Hi", "sam_0.2", "lh_sam2")]
for key, m, name in GLUED:
    glue(name, final_mean(key, m), display=False)
glue("rank_start", float(np.mean([h["eff_rank"][0] for by in shown.values()
                                  for h in by.values()])), display=False)

# %% [markdown]
# (verdict-15)=
# ## Verdict
#
# The statuses below are derived from the checks by the book's one rule; the numbers come from the
# paper-scale record named on the first line.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% [markdown]
# **Flatter, yes.** After 50 epochs SAM with larger $\rho$ ends at flatter solutions in every seed: the
# largest per-sample sharpness falls from {glue:text}`lh_sgd:.0f` (SGD) to {glue:text}`lh_sam2:.0f`
# (SAM $\rho=0.2$). Our $\max_i\lambda_1(H_i)$ has the magnitude of the note's *first* row, which
# supports reading its rows as swapped.
#
# **More coherent, no.** The paper's Theorem 3.6 says SAM prefers coherent minima, and memorizing
# minima have $\sigma=1$, so SAM should end *more* coherent than SGD. In our runs the coherence falls
# with $\rho$, from {glue:text}`sigma_sgd:.1f` (SGD) to {glue:text}`sigma_sam2:.1f` (SAM $\rho=0.2$),
# in the direction of a memorizing minimum. Two caveats: the theorem is about linear stability at
# interpolating minima, while SAM does not drive this loss to zero ($\rho$ keeps it near $10^{-2}$),
# so its per-sample Hessians carry residual terms and some $\operatorname{tr}(H_iH_j)$ are negative; and
# the note's own table, read with swapped rows, has $\sigma$ falling with $\rho$ too (95 → 52). Our
# $\sigma$ is about ten times smaller than that table's.
#
# **Lower rank, barely.** The effective rank starts near {glue:text}`rank_start:.0f` for every optimizer
# and ends at {glue:text}`rank_sgd:.1f` (SGD) and {glue:text}`rank_sam2:.1f` (SAM $\rho=0.2$): lower in
# most seeds, but by one or two components, far from the paper's 94 vs 29.
