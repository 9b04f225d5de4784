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
#     execution_timeout: 300
# ---

# %% [markdown]
# # The trace of the Hessian on the zero-loss manifold
#
# Paper 1 {cite}`gatmiry2024simplicity` studies what label-noise SGD and 1-SAM do *after* a two-layer network
# fits its data. Near the set of global minima they follow a slow drift that decreases the **sharpness**, the
# trace of the Hessian of the loss {cite}`blanc2020implicit,li2022happens,damian2021label,wen2023sharpness`.
# Everything in the paper's analysis starts from one closed form for that sharpness, on the manifold of
# zero-loss parameters. This chapter checks it, and shows what goes wrong off the manifold.

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
# ## The claim and its setting
#
# Data $x_1,\dots,x_n \in \mathbb{R}^d$, linearly independent (so $n \le d$), labels $y_i\in\mathbb{R}$.
# The network has $m$ neurons and a fixed second layer, $f_\theta(x)=\sum_{j=1}^m \phi(\theta_j^\top x)$, and is
# trained on the squared loss. The zero-loss manifold is
# $\mathcal{M}=\{\theta\in\mathbb{R}^{md}: f_\theta(x_i)=y_i,\ i=1,\dots,n\}$; it is smooth of dimension $md-n$
# when $\phi'>0$, because the constraint Jacobian $J$ (row $i$, block $j$: $\phi'(\theta_j^\top x_i)\,x_i$) then has
# rank $n$.
#
# | part of the setting | source |
# |---|---|
# | two-layer net with second layer fixed to 1, squared loss, zero-loss manifold | the paper |
# | data uniform on $[0,1]^d$ | the paper (its experiments) |
# | loss normalization $L(\theta)=\sum_i (f_\theta(x_i)-y_i)^2$ | **our choice** (constants only rescale time) |
# | labels $y_i\sim U[0,1]$, activations $\sinh$, $z+z^3/3$, $z^3$ | **our choice** (the paper's were not recovered) |
# | points of $\mathcal{M}$: $\theta_j\sim\mathcal{N}(0,I/d)$, then a Newton / min-norm retraction | **our choice** |
#
# ```{prf:lemma} Trace of the Hessian on $\mathcal{M}$ (paper 1, Lemma 4.2/4.3)
# :label: lem-trace-hessian
#
# For every $\theta \in \mathcal{M}$,
# $$
# \operatorname{tr}\nabla^2 L(\theta) \;=\; 2\sum_{i=1}^n \lVert x_i\rVert^2 \sum_{j=1}^m \phi'(\theta_j^\top x_i)^2 \;=:\; 2F(\theta).
# $$
# ```
#
# Why: $\nabla^2 L = 2\sum_i \nabla f_i\nabla f_i^\top + 2\sum_i r_i\nabla^2 f_i$ with residuals
# $r_i=f_\theta(x_i)-y_i$. On $\mathcal{M}$ every $r_i=0$, so only the Gauss–Newton part remains, and
# $\lVert\nabla f_i\rVert^2=\lVert x_i\rVert^2\sum_j\phi'(\theta_j^\top x_i)^2$. Off $\mathcal{M}$ the **residual term**
# $2\sum_i r_i \operatorname{tr}\nabla^2 f_i = 2\sum_i r_i\lVert x_i\rVert^2\sum_j\phi''(\theta_j^\top x_i)$ is added.

# %% [markdown]
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims, and the criterion of every
# check, each tagged as the paper's or ours. The checks below read their thresholds from here.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             same)
from flatbias.protocol_changes import error_tolerance

PROTOCOL = Protocol(
    chapter="01_trace_of_hessian",
    settings={
        "activations": same(["sinh", "cubic", "cube"], "ours"),
        "sizes": Setting(smoke=[[3, 3, 10], [3, 5, 4]],
                         full=[[3, 3, 10], [3, 5, 4], [5, 8, 6], [10, 20, 10]],
                         source="ours", note="(n, d, m)"),
        "points": Setting(3, 20, "ours", "points of M per activation and size"),
        "distances": same([-5, 0, 11], "ours", "log10 range and count of t off M"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("trace_on_M", "On M, tr ∇²L(θ) = 2 Σ_i ‖x_i‖² Σ_j "
                            "φ'(θ_jᵀx_i)²",
              "Paper 1, Lemma 4.3 (formula (8) lost in extraction)",
              kind="reading",
              quote="For the neural network model (LABEL:eq:basicmodel) and the "
                    "mean squared loss in Equation (2), for any [θ] with [L(θ) = 0] "
                    "we have (8)",
              locator="Lemma 4.3 (Trace of Hessian in two-layer networks); "
                      "bracketed formulas were lost in extraction",
              ours_part="the formula, reconstructed from ∇²L = 2JᵀJ on M; the "
                        "normalization L = Σ_i (f − y)² (factor 2); the 1e-8 "
                        "tolerance"),
        Claim("residual_off_M",
              "Off M, tr ∇²L − 2F (the residual term) grows linearly in the "
              "distance to M",
              "ours (from ∇²L = 2JᵀJ + 2Σ r_i ∇²f_i)", kind="ours"),
    ],
    checks=[
        Check("rel_err_on_M", "max rel. error of 2F against the autograd trace on M",
              Criterion("<=", 1e-8, "ours", "float64 round-off is 1e-16"),
              claim="trace_on_M", fmt=".1e"),
        Check("slope_off_M", "worst |log-log slope of the gap at small t − 1|",
              Criterion("<=", 0.05, "ours"), claim="residual_off_M", tolerance="error"),
        Check("gap_at_1", "smallest relative gap at distance 1",
              Criterion(">", 1e-3, "ours"), role="secondary", claim="residual_off_M"),
        Check("mismatch_off_M", "max |tr − 2F − residual term| / tr off M",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
        Check("on_M", "max |f(x_i) − y_i| at the retracted points",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("closed_vs_autograd_off_M",
              "twolayer.trace_hessian vs autograd off M (rel.)",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
    ],
    changes=[
        Change("mismatch_off_M", "primary check of residual_off_M",
               "guard", "it restates the guard closed_vs_autograd_off_M "
               "(twolayer.trace_hessian is 2F + the residual term): an identity "
               "of the code, not a finding"),
        Change("slope_off_M", "secondary", "primary of residual_off_M",
               "the linear growth is what the claim says"),
        Change("claim kinds", "old form (paper / ours)",
               "trace_on_M: reading (formula lost); residual_off_M: ours",
               "the second rule of claims"),
        error_tolerance(["slope_off_M"],
                        "here it agreed (7e-10 relative, at the edge of round-off)"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
from myst_nb import glue

from flatbias import chapter_record, repro, trace_check, twolayer, verdict
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
print(f"scale = {scale}: {len(P['activations'])} activations x {len(P['sizes'])} sizes "
      f"x {P['points']} points of M")

# %% [markdown]
# ## On the manifold: closed form against the exact Hessian
#
# For every activation and size we draw data, retract random points onto $\mathcal{M}$, and compare $2F(\theta)$
# with the trace of the dense Hessian that `torch.func.hessian` computes from the loss (float64).

# %% tags=["hide-input"]
rows = trace_check.on_manifold(P["activations"], P["sizes"], P["points"], gen)
rel_err = [abs(r[5] - r[6]) / abs(r[6]) for r in rows]
print(f"{len(rows)} points of M; max |f(x_i) - y_i| = {max(r[4] for r in rows):.1e}; "
      f"max relative error = {max(rel_err):.1e}")

# %% [markdown]
# ## Off the manifold the residual term appears
#
# Take one point $\theta\in\mathcal{M}$ per activation and move away along a unit normal direction
# $u\in(T_\theta\mathcal{M})^\perp=\operatorname{range}J^\top$. At distance $t$ the exact trace and $2F$
# differ by exactly the residual term (an identity of the algebra above: the package's closed form of
# the whole trace, `twolayer.trace_hessian`, $2F$ plus the residual term, is compared with autograd at
# every point, a guard that fails the build if the code is wrong). What we test as a claim of ours is
# that the gap grows linearly in $t$, since $r_i = O(t)$ along a normal direction.

# %% tags=["hide-input"]
lo, hi, count = P["distances"]
ts = np.logspace(lo, hi, count)
n, d, m = P["sizes"][0]
X, y = twolayer.uniform_data(n, d, gen)
off, guard_off = trace_check.off_manifold(X, y, P["activations"], m, ts, gen)
print("log-log slope of the gap at small t:",
      {k: round(v, 3) for k, v in trace_check.slopes(off, ts).items()})

# %% [markdown]
# ## Checks, and the paper-scale record
#
# Every check of the protocol is measured here. At `full` scale this run's numbers and figure data
# become the chapter's record; at `smoke` scale they re-check the pipeline (the guards must pass) and
# the figure and verdict come from the committed paper-scale record.

# %% tags=["hide-input"]
measured = trace_check.measure(rows, off, guard_off, ts)
data = {"rows": rows, "ts": ts, "gap": {a: g for a, (g, _) in off.items()}}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; this build's run if there is none
act_of = [r[0] for r in shown["rows"]]
ex = np.array([r[6] for r in shown["rows"]])
cl = np.array([r[5] for r in shown["rows"]])
ts_shown = np.array(shown["ts"])
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7.2, 3.2))
for act, g in shown["gap"].items():
    sel = [a == act for a in act_of]
    ax0.scatter(ex[sel], cl[sel], s=14, label=act)
    ax1.loglog(ts_shown, g, marker="o", ms=3, label=act)

# %% tags=["hide-input"]
lim = [0.9 * ex.min(), 1.1 * ex.max()]
ax0.plot(lim, lim, color=COLORS["reference"], lw=0.8, ls="--", label="y = x")
ax0.set(xscale="log", yscale="log",
        xlabel=r"exact $\mathrm{tr}\,\nabla^2 L$ (autograd)",
        ylabel=r"closed form $2F(\theta)$", title=r"on $\mathcal{M}$")
for axis in (ax0.xaxis, ax0.yaxis):
    axis.set_minor_formatter(NullFormatter())
g0 = next(iter(shown["gap"].values()))
ax1.loglog(ts_shown, ts_shown * g0[0] / ts_shown[0], color=COLORS["reference"], lw=0.8,
           ls="--", label="slope 1")
ax1.set(xlabel=r"distance $t$ from $\mathcal{M}$",
        ylabel=r"$|\mathrm{tr}\,\nabla^2L - 2F|\,/\,\mathrm{tr}\,\nabla^2L$",
        title=r"off $\mathcal{M}$: the residual term")
ax0.legend(fontsize=8)
ax1.legend(fontsize=8)
glue("fig_trace", fig, display=False)
plt.close(fig)
glue("n_points", len(shown["rows"]), display=False)

# %% [markdown]
# ```{glue:figure} fig_trace
# :name: fig-trace
#
# Paper scale ({glue:text}`n_points` points of $\mathcal{M}$). Left: the closed form $2F(\theta)$ equals
# the exact trace of the Hessian (every point lies on the dashed diagonal). Right: moving a distance
# $t$ off $\mathcal{M}$ along a normal direction, the relative gap between the two grows linearly in
# $t$: it is the residual term.
# ```
#
# (verdict-01)=
# ## Verdict
#
# The statuses below are derived from the checks by the book's one rule ({doc}`../book/intro`); the
# numbers come from the paper-scale record named on the first line, and this build's smoke run follows.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% [markdown]
# On $\mathcal{M}$, our reconstruction of the closed form of Lemma 4.3 (its formula was lost in the
# extraction of the paper's text, so the claim is judged under our reading) matches the exact trace of
# the Hessian to round-off at every point, for three activations and several sizes. Off the manifold
# the two differ by the residual term, which grows linearly in the distance (a claim of ours). The rest of paper 1 therefore works with $F$
# restricted to $\mathcal{M}$, and the next chapters minimize it there.
