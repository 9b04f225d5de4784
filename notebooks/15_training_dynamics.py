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
# {cite}`foret2021sharpness`. Our sources hold no text of that experiment, only summaries of it. A reviewer
# summarizes it as "an empirical study on a two-layer ReLU network showing that SAM consistently reduces
# coherence and effective feature rank relative to SGD"; a secondary summary adds a table (SAM flatter, feature
# rank 94 for SGD against 29 for SAM). We had also drawn an inference of our own from Theorem 3.6, which says
# that SAM prefers **coherent** minima: SAM should then end *more* coherent, the opposite of what the reviewer
# reports. Here every per-sample Hessian quantity is computed **exactly** every epoch, from the closed form of
# `flatbias.relu_hessian` (residual terms included), for five optimizers and five seeds.

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    url = "git+https://github.com/flatbias/flatbias-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)

# %% tags=["parameters", "hide-input"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else full on a GPU, smoke on a CPU

# %% [markdown]
# ## Protocol
#
# Declared before anything runs. The thresholds of the paper's claims come from the paper's numbers as the
# summaries give them (its effective ranks 29 vs 94, its table), not from our runs. SGD and SAM get the same
# seeds, epochs, learning rate and batch size: one budget for every method.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)

REVIEW2 = ("an empirical study on a two-layer ReLU network showing that SAM "
           "consistently reduces coherence and effective feature rank relative to SGD")
REVIEW2_AT = "OpenReview, second review, Summary"
NOTE = "Paper 2's synthetic experiment as summarized in SPEC.md §B.8(b)"
CHAOTIC = 0.05  # 500 SGD/SAM steps in float64: round-off grows along the run
PROTOCOL = Protocol(
    chapter="15_training_dynamics",
    settings={
        "seeds": Setting([0], [0, 1, 2, 3, 4], "ours", "the authors' code: seed 0"),
        "methods": Setting(["sgd", "sam_0.2"],
                           ["sgd", "sam_0.01", "sam_0.05", "sam_0.1", "sam_0.2"],
                           "paper"),
        "epochs": Setting(8, 50, "paper",
                          "the authors' code; the same for every method"),
        "d_h_n_lr_batch": same([30, 120, 100, 0.1, 10], "paper", "the authors' code"),
        "rank_shares": same([0.9, 0.999], "ours",
                            "variance shares of the effective rank (code: 0.9)"),
        "guard_samples": same([0, 1], "ours", "Hessians checked by autograd"),
    },
    claims=[
        Claim("flatter", "SAM (ρ=0.2) ends at a flatter solution than SGD: smaller "
              "max_i λ1(H_i) and λ_max(∇²L)",
              NOTE + " (λ_max 6.776 for SGD, 3.834 for SAM ρ = 0.1)", kind="reading",
              ours_part="'flatter' read as smaller max_i λ1(H_i) (primary) and "
              "λ_max(∇²L) in every seed, at ρ = 0.2"),
        Claim("lower_rank", "SAM (ρ=0.2) learns lower-rank hidden features than SGD "
              "(effective rank 29 vs 94 in the summary)",
              "a reviewer's summary of Paper 2; the numbers: " + NOTE, kind="reading",
              quote=REVIEW2, locator=REVIEW2_AT,
              ours_part="the rank at 99.9 % of the variance (where our SGD rank "
              "meets the summary's 94); the bound 0.5 on the ratio (29/94 = 0.31)"),
        Claim("lower_coherence", "SAM reduces coherence relative to SGD: SAM "
              "(ρ=0.2) ends with a smaller σ than SGD",
              "a reviewer's summary of Paper 2's two-layer experiment; the note's "
              "table: " + NOTE, kind="reading", quote=REVIEW2, locator=REVIEW2_AT,
              ours_part="read as a smaller mean exact σ at the last epoch; "
              "'consistently' as in every seed; the note's σ read with its rows "
              "swapped"),
        Claim("more_coherent", "Our inference from Theorem 3.6 (SAM prefers coherent "
              "minima): SAM (ρ=0.2) ends with a larger σ than SGD",
              "ours, inferred from Paper 2's Theorem 3.6 as summarized in SPEC.md "
              "§B.7", kind="ours"),
        Claim("note_table", "The note's table, rows swapped (λ1(S) = 12740…, "
              "max_i λ1(H_i) = 133.9…), describes these runs",
              "ours, on the note's table (" + NOTE + ")", kind="ours"),
    ],
    checks=[
        Check("flatter_seeds",
              "share of seeds where SAM ρ=0.2 ends with smaller max_i λ1(H_i)",
              Criterion(">=", 1.0, "ours", "every seed"), claim="flatter",
              tolerance=0.25),
        Check("lmax_seeds",
              "share of seeds where SAM ρ=0.2 ends with smaller λ_max(∇²L)",
              Criterion(">=", 1.0, "ours", "every seed"), role="secondary",
              claim="flatter", tolerance=0.25),
        Check("rank_ratio", "mean effective rank at 99.9 %, SAM ρ=0.2 / SGD, at the "
              "last epoch", Criterion("<=", 0.5, "ours", "the summary's 29/94 = 0.31, "
                                      "with a margin"), claim="lower_rank",
              tolerance=CHAOTIC),
        Check("rank_seeds", "share of seeds where SAM ρ=0.2 ends with a lower "
              "effective rank at 99.9 %", Criterion(">=", 1.0, "ours"),
              role="secondary", claim="lower_rank", tolerance=0.25),
        Check("sigma_drop", "mean σ, SGD minus SAM ρ=0.2, at the last epoch",
              Criterion(">", 0.0, "ours"), claim="lower_coherence",
              tolerance=CHAOTIC),
        Check("sigma_drop_seeds", "share of seeds where SAM ρ=0.2 ends with a "
              "smaller σ than SGD", Criterion(">=", 1.0, "ours", "'consistently'"),
              role="secondary", claim="lower_coherence", tolerance=0.25),
        Check("sigma_falls_as_note", "share of the steps SGD → ρ = 0.05 → 0.1 → "
              "0.2 where the mean σ falls, as the note's "
              "95.1 → 83.2 → 71.1 → 52.4",
              Criterion(">=", 1.0, "ours"), role="secondary",
              claim="lower_coherence", tolerance=0.34),
        Check("sigma_gap", "mean σ, SAM ρ=0.2 minus SGD, at the last epoch",
              Criterion(">", 0.0, "ours"), claim="more_coherent", tolerance=CHAOTIC),
        Check("row1_factor",
              "worst factor between our max_i λ1(H_i) and the note's row 1",
              Criterion("<=", 2.0, "ours"), claim="note_table", tolerance=CHAOTIC),
        Check("sigma_factor", "factor between our σ (SGD) and the swapped table's "
                              "95.1",
              Criterion("<=", 2.0, "ours"), role="secondary", claim="note_table",
              tolerance=CHAOTIC),
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
              Criterion("==", 0, "ours"), role="guard", tolerance="exact"),
        Check("rank_replay", "90 % ranks of the replayed runs vs the ones training "
              "recorded (max abs.)", Criterion("==", 0, "ours"), role="guard",
              tolerance="exact"),
        Check("loss_falls", "smallest factor by which the training loss falls",
              Criterion(">=", 5.0, "ours"), role="guard", tolerance=CHAOTIC),
    ],
    validity=[
        Validity("rank_scale", "our SGD effective rank at 99.9 % over the summary's "
                 "SGD value 94 (the rank is read at the share the paper used)",
                 Criterion("in", [2 / 3, 1.5], "ours"), "regime", "lower_rank",
                 tolerance=CHAOTIC),
    ],
    changes=[
        Change("lower_rank: the effective rank compared",
               "90 % of the variance (the code's share)",
               "99.9 %, with the regime condition rank_scale",
               "readers: the summary's SGD value 94 cannot be a 90 % rank of this "
               "network (about 54 at initialization even for input dimension 500; "
               "34 here), but it matches the 99.9 % rank; the factor 1.5 of the "
               "condition is ours, set after that was seen"),
        Change("lower_coherence", "absent",
               "a reading of the second review's summary, with the note's falling σ "
               "(95.1 → 52.4) as a secondary check",
               "readers: our inference more_coherent is the opposite of the paper's "
               "experiment as a reviewer summarizes it, and our data agree with that "
               "experiment (σ 9.5 → 6.1), which no verdict credited; added after "
               "the record was seen ('consistently' read at ρ = 0.2, like every other "
               "claim of the chapter)"),
        Change("kinds of the claims",
               "flatter and lower_rank paper (no quote; lower_rank's source named "
               "the rebuttal); more_coherent and note_table reading='ours'",
               "flatter and lower_rank readings (a secondary summary; a review); "
               "more_coherent and note_table ours",
               "our sources hold no text of the paper's experiment; the 94 vs 29 "
               "come from a secondary summary, not from the rebuttal"),
        Change("tolerances", "none declared",
               "0.05 relative for values from the runs; 0.25 for a share of 5 seeds "
               "(one seed, with a margin); 0.34 for a share of 3 steps",
               "500 steps of SGD or SAM amplify round-off"),
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
from flatbias import relu_feature_ranks as rf
from flatbias import run_endpoints as ends
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
# components explain 90% of their variance on the training points, as in the authors' code, and 99.9%, replayed
# by `flatbias.relu_feature_ranks`) and the accuracies.
#
# ## The run
#
# Every optimizer and seed of the protocol, with exact per-sample Hessian metrics every epoch.

# %% tags=["hide-input"]
runs = train_relu.run(P["seeds"], P["methods"], progress=False, epochs=P["epochs"])
ranks = rf.ranks(P["seeds"], P["methods"], P["rank_shares"], epochs=P["epochs"])
s0 = str(P["seeds"][0])
for m, by_seed in runs.items():
    h, r = by_seed[s0], ranks[m][s0]["0.999"]
    print(f"{train_relu.method_label(m):>10}: train loss {h['train_loss'][0]:.3f} → "
          f"{h['train_loss'][-1]:.4f}, σ {h['sigma'][0]:.1f} → "
          f"{h['sigma'][-1]:.1f}, "
          f"rank at 99.9 % {r[0]} → {r[-1]}")

# %% [markdown]
# **Guards.** The closed-form per-sample Hessian quantities are compared with dense autograd
# Hessians at the final SGD point, one SAM step with a plain two-pass autograd step, and the
# effective rank with an SVD of the same features.

# %% tags=["hide-input"]
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

# %% tags=["hide-input"]
# the note's rows (λ1(S), max_i λ1(H_i)) as printed
NOTE_ROWS = {"sgd": (133.9, 12740), "sam_0.05": (121.5, 10103), "sam_0.1": (90.3, 6422),
             "sam_0.2": (65.7, 3446)}
SWAPPED_SIGMA_SGD = 12740 / 133.9
rank_runs = {m: {s: {"rank": r["0.999"]} for s, r in b.items()}
             for m, b in ranks.items()}
along = [m for m in ("sgd", "sam_0.05", "sam_0.1", "sam_0.2") if m in runs]
factors = [max(ends.last(runs, "max_lambda_Hi", m).mean() / NOTE_ROWS[m][0],
               NOTE_ROWS[m][0] / ends.last(runs, "max_lambda_Hi", m).mean())
           for m in NOTE_ROWS if m in runs]
sig_sgd = ends.last(runs, "sigma", "sgd").mean()
replay = max(abs(a - b) for m in runs for s in runs[m]
             for a, b in zip(ranks[m][s]["0.9"], runs[m][s]["eff_rank"]))

# %% tags=["hide-input"]
measured = {
    "flatter_seeds": ends.share_lower(runs, "max_lambda_Hi"),
    "lmax_seeds": ends.share_lower(runs, "hess_lambda_max"),
    "rank_ratio": ends.ratio_of_means(rank_runs, "rank"),
    "rank_seeds": ends.share_lower(rank_runs, "rank"),
    "sigma_drop": ends.mean_drop(runs, "sigma"),
    "sigma_drop_seeds": ends.share_lower(runs, "sigma"),
    "sigma_falls_as_note": ends.share_falling(runs, "sigma", along),
    "sigma_gap": -ends.mean_drop(runs, "sigma"),
    "row1_factor": float(max(factors)),
    "sigma_factor": float(max(sig_sgd / SWAPPED_SIGMA_SGD,
                              SWAPPED_SIGMA_SGD / sig_sgd)),
    "rank_scale": float(ends.last(rank_runs, "rank", "sgd").mean() / 94),
}

# %% tags=["hide-input"]
measured.update({
    "trHiHj_vs_autograd": ref["trHiHj"],
    "lambda_Hi_vs_autograd": ref["lambda_Hi"],
    "sam_step_vs_autograd": float((sam - sam_ref).abs().max()),
    "rank_vs_svd": abs(rank_lib - rank_svd),
    "rank_replay": int(replay),
    "loss_falls": min(h["train_loss"][0] / h["train_loss"][-1]
                      for by_seed in runs.values() for h in by_seed.values()),
})

# %% tags=["hide-input"]
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured,
                                       {"runs": runs, "ranks": ranks}, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
# the paper-scale record if it holds the ranks, else this build's run
rec = paper.data if paper.data and "ranks" in paper.data else {"runs": runs,
                                                               "ranks": ranks}
shown = {m: {s: dict(h, rank_999=rec["ranks"][m][s]["0.999"]) for s, h in b.items()}
         for m, b in rec["runs"].items()}
KEYS = [("sigma", r"coherence $\sigma$"), ("max_lambda_Hi", r"$\max_i\lambda_1(H_i)$"),
        ("hess_lambda_max", r"$\lambda_{\max}(\nabla^2L)$"),
        ("rank_999", "effective rank (PCA 99.9%)"), ("val_acc", "validation accuracy"),
        ("lambda_S", r"$\lambda_1(S)$")]
fig, axes = plt.subplots(2, 3, figsize=(7.6, 4.8))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
for ax, (key, label) in zip(axes.flat, KEYS):
    for c, (m, by_seed) in zip(colors, shown.items()):
        v = np.array([h[key] for h in by_seed.values()], dtype=float)
        ax.plot(v.mean(0), color=c, lw=1.2, label=train_relu.method_label(m))
        ax.fill_between(np.arange(v.shape[1]), v.min(0), v.max(0), color=c, alpha=0.15)
    ax.set(title=label, xlabel="epoch", yscale="log" if "lambda" in key else "linear")
axes[0, 0].legend(fontsize=6.5)
glue("fig_relu_training", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_relu_training
# :name: fig-relu-training
#
# Paper scale: fifty epochs of SGD and SAM on $y=x_1x_2$ (mean over five seeds, band = min to max).
# Look at the first three panels: larger $\rho$ ends at a flatter solution (every per-sample sharpness and the
# full-batch $\lambda_{\max}$ fall with $\rho$) and at a **lower** coherence $\sigma$. The effective rank at
# 99.9 % (the share at which SGD's rank meets the paper's 94) barely moves from its start for any optimizer;
# the validation accuracy rises with $\rho$.
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
print(f"{'':>11} {'σ (0 → end)':>14} {'rank 90% (0 → end)':>19} "
      f"{'rank 99.9%':>13} {'max λ1(H_i)':>11} {'val acc':>7} | note row 1")
for m, by_seed in shown.items():
    def mean(key, e):
        return np.mean([h[key][e] for h in by_seed.values()])
    print(f"{train_relu.method_label(m):>11} "
          f"{mean('sigma', 0):6.2f} → {mean('sigma', -1):5.2f} "
          f"{mean('eff_rank', 0):8.1f} → {mean('eff_rank', -1):6.1f} "
          f"{mean('rank_999', 0):6.1f} → {mean('rank_999', -1):4.1f} "
          f"{mean('max_lambda_Hi', -1):11.1f} {mean('val_acc', -1):7.2f} "
          f"| {NOTE_ROWS.get(m, ('',))[0]:>6}")

# %% tags=["remove-cell"]
def final_mean(key, m, e=-1):
    return float(np.mean([h[key][e] for h in shown[m].values()]))


GLUED = [("sigma", "sgd", "sigma_sgd"), ("sigma", "sam_0.2", "sigma_sam2"),
         ("eff_rank", "sgd", "rank_sgd"), ("eff_rank", "sam_0.2", "rank_sam2"),
         ("rank_999", "sgd", "rank999_sgd"), ("rank_999", "sam_0.2", "rank999_sam2"),
         ("max_lambda_Hi", "sgd", "lh_sgd"), ("max_lambda_Hi", "sam_0.2", "lh_sam2")]
for key, m, name in GLUED:
    glue(name, final_mean(key, m), display=False)
glue("rank_start", final_mean("eff_rank", "sgd", 0), display=False)
glue("rank999_start", final_mean("rank_999", "sgd", 0), display=False)


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
verdict.glue_verdict(paper, smoke)
for k, st in paper.evaluation.statuses().items():
    glue(f"status_{k}", verdict.PlainText(st), display=False)

# %% [markdown]
# **Flatter** ({glue:text}`status_flatter`). After 50 epochs SAM with larger $\rho$ ends at flatter solutions
# in every seed: the largest per-sample sharpness falls from {glue:text}`lh_sgd:.0f` (SGD) to
# {glue:text}`lh_sam2:.0f` (SAM $\rho=0.2$). Our $\max_i\lambda_1(H_i)$ has the magnitude of the note's
# *first* row, which supports reading its rows as swapped.
#
# **Lower coherence** ({glue:text}`status_lower_coherence`). The reviewer's summary of the paper's experiment, "SAM
# consistently reduces coherence [...] relative to SGD", holds in our runs: the coherence falls with $\rho$,
# from {glue:text}`sigma_sgd:.1f` (SGD) to {glue:text}`sigma_sam2:.1f` (SAM $\rho=0.2$), in every seed, and
# at every step of $\rho$ from SGD through 0.05 and 0.1 to 0.2, as in the note's own table read with swapped
# rows ($\sigma$ = 95.1 → 83.2 → 71.1 → 52.4). At $\rho=0.01$ the difference is small and not in every seed
# (the protocol compares at $\rho=0.2$, as for every other claim of this chapter). Our $\sigma$
# is about ten times smaller than that table's, so the table describes these runs only in part (our claim
# `note_table`).
#
# **Our inference from Theorem 3.6** ({glue:text}`status_more_coherent`). Theorem 3.6 says SAM prefers coherent minima, and
# memorizing minima have $\sigma=1$; we had inferred that SAM should end *more* coherent than SGD. It ends less
# coherent, as the reviewer reports. The inference assumed more than the theorem gives: the theorem is about
# linear stability at interpolating minima, while SAM does not drive this loss to zero ($\rho$ keeps it near
# $10^{-2}$), so its per-sample Hessians carry residual terms and some $\operatorname{tr}(H_iH_j)$ are negative.
#
# **Lower rank** ({glue:text}`status_lower_rank`). The summary's ranks, 94 (SGD) against 29 (SAM), cannot be
# the 90 % ranks of this network: the 90 % rank starts near {glue:text}`rank_start:.0f` for every optimizer
# (about 54 at initialization even for input dimension 500, by our count) and ends at {glue:text}`rank_sgd:.1f`
# (SGD) and {glue:text}`rank_sam2:.1f` (SAM $\rho=0.2$). The 99.9 % rank is the one that matches the paper's
# SGD value: it starts near {glue:text}`rank999_start:.0f` and ends at {glue:text}`rank999_sgd:.1f` for SGD, and
# the protocol compares at that share. There SAM ends at {glue:text}`rank999_sam2:.1f`: lower by about one
# component, far from the paper's 29.
