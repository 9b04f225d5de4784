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
# # Starting next to a generalizing minimum: does SGD or SAM leave it?
#
# Paper 2's code {cite}`chang2025unified` has a second synthetic experiment: start the ReLU network at the
# $(C=3, r)$-generalizing solution of {prf:ref}`def-gen-mem`, add a little noise, and train with SGD or SAM
# {cite}`foret2021sharpness`. Our sources hold no text of its outcome. A reviewer reports that the paper's
# experiments from such constructed minima "show that both SGD and SAM converge to low complexity solutions
# and that SAM achieves lower coherence and feature rank than SGD"; a secondary summary adds that "SAM
# converges faster to low-$C$ solutions". Where do the two optimizers actually go from here?

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
# Declared before anything runs. SGD and SAM get the same seeds, epochs, learning rate and batch size:
# one budget for every method.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)

REVIEW2 = ("They show that both SGD and SAM converge to low complexity solutions and "
           "that SAM achieves lower coherence and feature rank than SGD.")
REVIEW2_AT = "OpenReview, second review, Strengths ('Empirical Validation')"
CHAOTIC = 0.05  # 500 SGD/SAM steps in float64: round-off grows along the run
PROTOCOL = Protocol(
    chapter="16_escaping_from_c3",
    settings={
        "seeds": Setting([0], [0, 1, 2, 3, 4], "ours", "the authors' code: seed 0"),
        "methods": Setting(["sgd", "sam_0.2"],
                           ["sgd", "sam_0.01", "sam_0.05", "sam_0.1", "sam_0.2"],
                           "paper"),
        "epochs": Setting(5, 50, "paper",
                          "the authors' code; the same for every method"),
        "start": same({"C": 3, "noise": 0.01}, "paper", "the authors' code"),
        "eta_B": same([0.1, 10], "paper", "the authors' code"),
        "bisection_steps": same(12, "ours", "for the critical η of linearized SGD"),
    },
    claims=[
        Claim("start_stable",
              "The C=3 generalizing minimum is linearly stable for SGD at the "
              "code's η=0.1, B=10 (ρ(𝒯) < 1)",
              "ours: Paper 2's exact criterion (Theorem 3.1, SPEC.md §B.4) at the "
              "authors' settings", kind="ours"),
        Claim("stay",
              "Started at the C=3 solution plus N(0, 0.01²) noise, SGD and SAM keep "
              "it: 100% validation accuracy, weight on x1, x2, x3",
              "a reviewer's summary of Paper 2's experiment from constructed minima "
              "(the authors' code, SPEC.md §B.8(c))", kind="reading", quote=REVIEW2,
              locator=REVIEW2_AT,
              ours_part="'converge to low complexity solutions' read, from the C=3 "
              "start, as: every run ends with 100 % validation accuracy and at least "
              "90 % of its first-layer weight on x1, x2, x3"),
        Claim("lower_coherence",
              "SAM achieves lower coherence than SGD: from this start SAM (ρ=0.2) "
              "ends with a smaller σ than SGD",
              "a reviewer's summary of Paper 2's experiment from constructed minima",
              kind="reading", quote=REVIEW2, locator=REVIEW2_AT,
              ours_part="that the sentence covers this experiment (it speaks of "
              "constructed minima); read as a smaller mean exact σ at the last epoch, "
              "and in every seed"),
        Claim("sam_more_coherent",
              "Our inference from Theorem 3.6 (SAM prefers coherent minima): from "
              "this start SAM (ρ=0.2) ends more coherent than SGD",
              "ours, inferred from Paper 2's Theorem 3.6 as summarized in SPEC.md "
              "§B.7", kind="ours"),
        Claim("faster_low_c",
              "Fixed r, varying C: SAM converges faster to low-C solutions",
              "Paper 2's ablations as summarized in SPEC.md §B.8(c) (a secondary "
              "summary)", kind="reading",
              ours_part="the wording, a secondary summary's", testable=False,
              why="the authors' start already is a low-C (C=3) solution and no run "
                  "leaves it; a test needs starts at higher C (e.g. C=6 or "
                  "memorizing) where SGD is unstable"),
    ],
    checks=[
        Check("radius", "ρ(𝒯) of linearized SGD at the C=3 minimum",
              Criterion("<", 1.0, "paper", "Thm 3.1: stable iff ρ(𝒯) < 1"),
              claim="start_stable", fmt=".4f"),
        Check("stay_share", "share of runs that end with 100% validation accuracy",
              Criterion(">=", 1.0, "ours"), claim="stay", tolerance=0.25),
        Check("weight_share",
              "smallest share of first-layer weight on x1, x2, x3 at the end",
              Criterion(">=", 0.9, "ours"), role="secondary", claim="stay",
              tolerance=CHAOTIC),
        Check("sigma_drop", "mean σ at the end, SGD minus SAM ρ=0.2",
              Criterion(">", 0.0, "ours"), claim="lower_coherence",
              tolerance=CHAOTIC),
        Check("sigma_drop_seeds", "share of seeds where SAM ρ=0.2 ends with a "
              "smaller σ than SGD", Criterion(">=", 1.0, "ours"), role="secondary",
              claim="lower_coherence", tolerance=0.25),
        Check("sigma_gap", "mean σ at the end, SAM ρ=0.2 minus SGD",
              Criterion(">", 0.0, "ours"), claim="sam_more_coherent",
              tolerance=CHAOTIC),
        Check("start_fit",
              "our start (noise 0) in the module: max |f − y|, train and validation",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("rank_one_trHiHj",
              "at the C=3 minimum, closed-form tr(H_i H_j) vs 4 (g_i·g_j)² (rel.)",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("sam_step_vs_autograd",
              "SAM step vs a plain two-pass autograd step (max abs.)",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("used_inputs_direct",
              "used_inputs vs Σ_k |W2_k| |W1[k, j]| from the weights (max abs.)",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
    ],
    validity=[
        Validity("start_at_minimum", "max |f − y| of the C=3 solution on the "
                 "training points (Theorem 3.1 is about a minimum)",
                 Criterion("<=", 1e-12, "ours"), "regime", "start_stable",
                 fmt=".1e"),
    ],
    changes=[
        Change("lower_coherence", "absent",
               "a reading of the second review's Strengths, the primary check "
               "σ(SGD) − σ(SAM ρ=0.2) > 0", "readers: our inference "
               "sam_more_coherent is the opposite of the paper's experiment as a "
               "reviewer reports it, and our data agree with that report "
               "(σ 9.9 → 7.9), which no verdict credited; added after the record "
               "was seen"),
        Change("kinds of the claims",
               "start_stable, stay and sam_more_coherent reading='ours'; faster_low_c "
               "paper (no quote)",
               "start_stable and sam_more_coherent ours; stay a reading of the same "
               "review; faster_low_c a reading of a secondary summary",
               "our sources hold no text of the paper's experiment"),
        Change("validity condition start_at_minimum", "none",
               "regime: the C=3 solution fits the training points",
               "added with the kinds, after the record was seen; the bound is "
               "round-off"),
        Change("tolerances", "none declared",
               "0.05 relative for values from the runs; 0.25 for a share of runs or "
               "seeds", "500 steps of SGD or SAM amplify round-off"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import chapter_record, relu_hessian, relu_net, repro, stability
from flatbias import run_endpoints as ends
from flatbias import train_relu, verdict
from flatbias.scale import get_scale
from flatbias.style import set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
torch.set_num_threads(1)
repro.seed_everything(0)
t_start = time.perf_counter()
print(f"scale = {scale}: {len(P['methods'])} optimizers x {len(P['seeds'])} seeds "
      f"x {P['epochs']} epochs")

# %% [markdown]
# ## Setting
#
# | part of the setting | source |
# |---|---|
# | $d=30$, $h=120$, $n=100$ (+100 validation) points of $y=x_1x_2$; SGD lr $0.1$, batch 10, 50 epochs; SAM as in {doc}`15_training_dynamics` | the authors' code |
# | start: the $(C=3,\ r=31^{1/4})$ solution on units 0–7, all other units zero, then $\mathcal{N}(0,0.01^2)$ added to every parameter | the authors' code |
# | loading that start into the module's real layers (`feature_extractor[0]`, `output_layer`) | **our fix** (see below) |
# | $\rho\in\{0.01,0.05,0.1,0.2\}$, seeds 0–4, float64, metrics per epoch | **our choice** |
#
# **A defect read from the authors' code.** Their `initialize_generalizing_solution` writes the start into
# `model.net[0]` and `model.net[2]` (SPEC §B.8(c): "Code defect: `initialize_generalizing_solution`
# addresses `model.net[0]`/`model.net[2]`, which do not exist on `TwoLayerReLU` (`feature_extractor[0]`,
# `output_layer`)"). Their module has no attribute `net`, so as published the experiment stops with an
# `AttributeError` before training. We load the start into the layers the module has; the guard below
# checks that the loaded start fits every training and validation point.

# %% tags=["hide-input"]
cfg = train_relu.Config(init="generalizing", noise=0.0)
X, y, Xv, yv, gen = train_relu.data(cfg)
model = relu_net.TwoLayerReLU(30, 120)
theta0 = train_relu.initial_theta(cfg, gen)
model.load_flat(theta0)
with torch.no_grad():
    start_fit = max(float((model(X) - y).abs().max()),
                    float((model(Xv) - yv).abs().max()))
print(f"our start (noise 0) in the real module: max |f - y| = {start_fit:.1e}")

# %% [markdown]
# ## Is the start stable? The exact linear answer
#
# At the $C=3$ solution itself the per-sample Hessians are $2g_ig_i^\top$, and the exact mean-square
# radius of linearized SGD at the code's $\eta=0.1$, $B=10$ decides whether small perturbations grow
# (`flatbias.stability`). We also find the learning rate at which it stops being stable, by bisection on
# $\rho(\mathcal{T})=1$.

# %% tags=["hide-input"]
theta3 = relu_net.generalizing_solution(P["start"]["C"], 30, 120)
G3 = relu_hessian.per_sample_gradients(theta3, X, h=120)
eta, B = P["eta_B"]
rad = stability.spectral_radius_rank_one(G3, eta, B)
lo, hi = eta, 2.0
for _ in range(P["bisection_steps"]):
    mid = 0.5 * (lo + hi)
    stable = stability.spectral_radius_rank_one(G3, mid, B) < 1
    lo, hi = (mid, hi) if stable else (lo, mid)
eta_star = 0.5 * (lo + hi)
T = relu_hessian.trace_products(theta3, X, y, h=120)
rank_one = float(((T - 4 * (G3 @ G3.T) ** 2).abs() / T.abs().max()).max())
start_fit_train = float((relu_net.forward(theta3, X, h=120) - y).abs().max())
print(f"ρ(T) at η = {eta}, B = {B}: {rad:.4f}; "
      f"SGD stays stable up to η* ≈ {eta_star:.2f}")

# %% [markdown]
# ## The runs

# %% tags=["hide-input"]
runs = train_relu.run(P["seeds"], P["methods"], progress=False, epochs=P["epochs"],
                      init="generalizing", noise=P["start"]["noise"])
xb, yb = X[:10], y[:10]
sam = train_relu.step(theta0, xb, yb, eta, 0.2)
sam_ref = train_relu.step_autograd(theta0, xb, yb, eta, 0.2)
W1, _, W2 = relu_net.unflatten(sam, 30, 120)
direct = (W2.abs()[:, None] * W1.abs()).sum(0)
used_err = float((relu_net.used_inputs(sam, 30, h=120) - direct).abs().max())

# %% tags=["hide-input"]
last = {m: {k: ends.last(runs, k, m) for k in ("val_acc", "train_loss", "sigma")}
        for m in runs}
share = {m: np.array([np.sum(h["used_inputs"][-1][:3]) / np.sum(h["used_inputs"][-1])
                      for h in b.values()]) for m, b in runs.items()}
for m in runs:
    print(f"{train_relu.method_label(m):>11}: val acc {last[m]['val_acc'].mean():.2f}, "
          f"train loss {last[m]['train_loss'].mean():.1e}, "
          f"σ → {last[m]['sigma'].mean():.1f}, "
          f"share of weight on x1..x3 {share[m].min():.3f}")

# %% [markdown]
# ## Checks, and the paper-scale record

# %% tags=["hide-input"]
measured = {
    "radius": float(rad),
    "stay_share": float(np.mean(np.concatenate([v["val_acc"] == 1.0
                                                for v in last.values()]))),
    "weight_share": float(min(s.min() for s in share.values())),
    "sigma_drop": ends.mean_drop(runs, "sigma"),
    "sigma_drop_seeds": ends.share_lower(runs, "sigma"),
    "sigma_gap": -ends.mean_drop(runs, "sigma"),
    "start_at_minimum": start_fit_train,
    "start_fit": start_fit,
    "rank_one_trHiHj": rank_one,
    "sam_step_vs_autograd": float((sam - sam_ref).abs().max()),
    "used_inputs_direct": used_err,
}
KEPT = ("train_loss", "sigma", "val_acc", "used_inputs")
data = {"runs": {m: {s: {k: h[k] for k in KEPT} for s, h in b.items()}
                 for m, b in runs.items()},
        "eta_star": eta_star}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record when there is one
fig, axes = plt.subplots(1, 3, figsize=(7.6, 2.8))
colors = plt.cm.viridis(np.linspace(0, 0.9, len(shown["runs"])))
for c, (m, by_seed) in zip(colors, shown["runs"].items()):
    lab = train_relu.method_label(m)
    loss = np.array([h["train_loss"] for h in by_seed.values()])
    sig = np.array([h["sigma"] for h in by_seed.values()])
    ui = np.array([h["used_inputs"] for h in by_seed.values()])  # (seeds, epochs, d)
    axes[0].semilogy(loss.mean(0), color=c, label=lab)
    axes[1].plot(sig.mean(0), color=c, label=lab)
    axes[2].plot(ui[:, :, 3:].max(2).mean(0), color=c, label=lab)
axes[0].set(title="training loss", xlabel="epoch")
axes[1].set(title=r"coherence $\sigma$", xlabel="epoch")
axes[2].set(title=r"largest weight on $x_4..x_{30}$", xlabel="epoch")
axes[0].legend(fontsize=6.5)
glue("fig_escape_c3", fig, display=False)
plt.close(fig)

# %% tags=["remove-cell"]
sig0 = np.mean([h["sigma"][0] for b in shown["runs"].values() for h in b.values()])
glue("sig_start", float(sig0), display=False)
for m, name in (("sgd", "sig_end_sgd"), ("sam_0.2", "sig_end_sam")):
    glue(name, float(np.mean([h["sigma"][-1] for h in shown["runs"][m].values()])),
         display=False)
glue("eta_star", float(shown["eta_star"]), display=False)

# %% [markdown]
# ```{glue:figure} fig_escape_c3
# :name: fig-escape-c3
#
# Paper scale: fifty epochs from the $C=3$ solution plus $\mathcal{N}(0,0.01^2)$ noise (mean over five
# seeds). Left: SGD drives the loss down and stays; SAM with larger $\rho$ keeps a loss of
# $10^{-4}$–$10^{-2}$. Middle, the claim: the larger $\rho$, the **lower** the coherence SAM ends at,
# below SGD's. Right: SAM puts slightly more weight on the 27 irrelevant inputs
# ($\sum_k|W_{2,k}||W_1[k,j]|$, maximized over $j\ge4$), but far too little to leave the $C=3$ solution.
# ```
#
# (verdict-16)=
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
# Once its initializer loads into the real layers, the authors' experiment starts at an exact fit.
# From there neither optimizer goes anywhere: linearized SGD is stable at the $C=3$ minimum at the
# code's $\eta=0.1$, $B=10$ (it would need $\eta$ above about {glue:text}`eta_star:.2f` to be pushed
# away: {glue:text}`status_start_stable`), and every run keeps the $C=3$ structure, the "low complexity
# solution" of the reviewer's summary ({glue:text}`status_stay`). SAM moves *within* it: its coherence falls from {glue:text}`sig_start:.1f` at the start to
# {glue:text}`sig_end_sam:.1f` (SGD: {glue:text}`sig_end_sgd:.1f`), in every seed. That is the reviewer's
# report that "SAM achieves lower coherence [...] than SGD" ({glue:text}`status_lower_coherence`), and the
# opposite of our own inference from Theorem 3.6 (SAM prefers coherent minima, so it should end more
# coherent: {glue:text}`status_sam_more_coherent`), as in {doc}`15_training_dynamics`: SAM keeps a training loss of $10^{-3}$ to $10^{-2}$, so it
# does not end at a minimum, where the theorem speaks.
#
# The summary's "SAM converges faster to low-$C$ solutions" cannot be tested with this experiment: the
# start already is a low-$C$ solution and nothing leaves it. A test would start at a higher-$C$ or
# memorizing solution at a learning rate where linearized SGD is unstable there (chapter
# {doc}`14_generalizing_vs_memorizing` computes those radii) and measure how fast each optimizer
# reaches a solution that reads fewer inputs.
