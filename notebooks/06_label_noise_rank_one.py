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
# # Label-noise SGD collapses the features to rank one
#
# The main theorem of paper 1 {cite}`gatmiry2024simplicity` is about an algorithm, not a function:
# run SGD with label noise on a two-layer network long enough, with a small step, and every neuron
# ends up computing **the same linear feature** of the data. This chapter runs that algorithm at the
# paper's own settings (its Figure 1) and watches the feature matrix become rank one. The paper's
# words for Figure 1 (Section 5): "As Figure 1 shows, the second and third eigenvalues converge to
# zero which is predicted by Theorem 3.3."

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/flatbias/flatbias-book"], check=True)

# %% tags=["parameters", "hide-input"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else full on a GPU, smoke on a CPU

# %% [markdown]
# ## The claim
#
# Data $x_1,\dots,x_n\in\mathbb{R}^d$ (linearly independent, so $n\le d$), labels $y_i$, the
# network $f_\theta(x)=\sum_{j=1}^m\phi(\theta_j^\top x)$ and its **feature matrix**
# $\Phi\in\mathbb{R}^{n\times m}$, $\Phi_{ij}=\phi(\theta_j^\top x_i)$. Label-noise SGD with batch
# size one and noise level $s$ does, at each step,
#
# $$
# i\sim\mathrm{U}\{1,\dots,n\},\quad \varepsilon\sim\mathcal{N}(0,1),\qquad
# \theta_j \leftarrow \theta_j-\eta\,\big(f_\theta(x_i)-y_i-s\,\varepsilon\big)\,
# \phi'(\theta_j^\top x_i)\,x_i .
# $$
#
# ```{prf:theorem} Label-noise SGD finds a rank-one feature matrix (paper 1, Theorem 1.1, informal)
# :label: thm-label-noise-rank-one
#
# Let $\phi'>0$ and $\phi'''>0$ and let the $x_i$ be linearly independent. For a small enough step
# size $\eta$, label-noise SGD converges to a network with $\theta_j^\top x_i=\phi^{-1}(y_i/m)$ for
# all $i,j$: all neurons agree on the data, and $\Phi=\tfrac1m\,y\,\mathbf{1}^\top$ has rank one.
# ```
#
# The proof composes two facts: label-noise SGD, on the time scale $\eta^{-2}$, follows the
# Riemannian gradient flow of the sharpness
# $F(\theta)=\sum_i\lVert x_i\rVert^2\sum_j\phi'(\theta_j^\top x_i)^2$ on the zero-loss manifold
# $\mathcal{M}$ {cite}`li2022happens,blanc2020implicit,damian2021label`
# ({doc}`07_sgd_tracks_the_flow`), at speed $c=\eta^2s^2/(4n)$ flow-time units per step; and that
# flow converges to the global minimizer, which is rank one.
#
# | part of the setting | source |
# |---|---|
# | $m=10$, $d=n=3$, $\eta=0.05$, data entries uniform on $[0,1]$, "noise variance $\sigma=0.03$" | the paper (Figure 1) |
# | batch size 1, Gaussian noise, loss $\tfrac12(f-y-s\varepsilon)^2$ | **our choice** (the literature's rule; not stated) |
# | "variance 0.03" read both as $s^2=0.03$ ($s=0.173$) and as $s=0.03$ | **our choice**: both are run |
# | $\phi=\sinh$, labels $y_i\sim U[0,1]$, $\theta_j(0)\sim\mathcal{N}(0,I/d)$ | **our choice** (not recovered) |
# | eigenvalues of $\Phi\Phi^\top\in\mathbb{R}^{3\times3}$; the horizons; "converge to zero" read as a drop by $10^{-3}$ | **our choice** (the protocol) |
# | 8 draws with $\lambda_{\min}(XX^\top)\ge10^{-2}$, plus 4 taken as they come | **our choice** (near-singular draws converge very slowly) |
#
# **The horizon rule** (shared with 1-SAM in {doc}`08_one_sam`, so that both methods get the same
# budget). Near the optimum the flow is linear with rate $\mu=\lambda_{\min}$ of the Riemannian
# Hessian at $\theta^*$ ({doc}`05_convergence_rate`), and the small eigenvalues of $\Phi\Phi^\top$,
# quadratic in the distance to $\theta^*$, fall like $e^{-2\mu\tau}$. Both algorithms move at
# $c=6.25\cdot10^{-6}$ flow-time units per step at the paper's noise (1-SAM with its matched
# radius). The horizon is the smallest multiple of $10^7$ steps $H$ with
# $e^{-2\mu_{\min}cH}\le10^{-3}$ over the well-conditioned draws, $\mu$ computed from the
# closed-form optimum before anything runs: $9\cdot10^7$ steps for these draws. The validity
# condition `horizon_reaches` checks that the declared horizon satisfies the rule.
#
# The raw iterates never sit exactly on $\mathcal{M}$: the label noise keeps them a distance
# $O(\sqrt{\eta}\,s)$ away, which puts a floor under the small eigenvalues of $\Phi\Phi^\top$. Every
# recorded iterate is therefore **projected** onto $\mathcal{M}$ (Newton's method on the constraints
# $f_\theta(x_i)=y_i$) and the eigenvalues are read there. The runs use a compiled kernel
# (`flatbias.label_noise`) that advances many chains at once.
#
# ## Protocol
#
# Declared before anything runs: the settings at both scales (one fixed horizon per reading of the
# paper's noise level), the claims, the criterion of every check and the validity conditions, each
# tagged as the paper's or ours. Every draw is reported against its reading's horizon.

# %% tags=["protocol", "hide-input"]
import math

from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)

LONG = 0.5  # relative tolerance of values read at the end of long chaotic SGD runs
PROTOCOL = Protocol(
    chapter="06_label_noise_rank_one",
    settings={
        "network": same([10, 3, 3], "paper", "(m, d, n), Figure 1"),
        "eta": same(0.05, "paper"),
        "s_variance": same(math.sqrt(0.03), "ours",
                           "'noise variance 0.03' read as s² = 0.03"),
        "s_std": same(0.03, "ours", "read as s = 0.03"),
        "draws": Setting(2, 8, "ours", "data draws with λ_min(XXᵀ) ≥ lam_min"),
        "raw_draws": Setting(1, 4, "ours",
                             "draws taken as they come: reported, not judged"),
        "lam_min": same(1e-2, "ours"),
        "horizon_variance": Setting(1_000_000, 90_000_000, "ours",
                                    "steps, s² = 0.03; the horizon rule (06 and 08)"),
        "horizon_std": Setting(1_000_000, 20_000_000, "ours", "steps, s = 0.03"),
        "records": same(100, "ours", "records per run"),
        "demo": same([0.5, 2_000_000, 8], "ours", "quick demo: s, steps, draws"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("rank_one", "At Figure 1's settings (m = 10, d = n = 3, η = 0.05, "
              "noise variance 0.03) label-noise SGD drives the second and third "
              "eigenvalues of ΦΦᵀ to zero", "Paper 1, Section 5 and Figure 1",
              kind="reading", quote="As Figure 1 shows, the second and third "
              "eigenvalues converge to zero which is predicted by Theorem 3.3.",
              locator="Section 5 (Experimental Setup), Figure 1",
              ours_part="'converge to zero' read as a drop by 10⁻³ of "
              "eig₂,₃/eig₁ on M within the horizon; 'noise variance 0.03' read "
              "as s² = 0.03; "
              "sinh, labels, init and data conditioning"),
        Claim("s2_scaling", "The drift along M is proportional to s²: with s = 0.03, "
              "step k is where s² = 0.03 is at step 0.03·k (so Figure 1 under the "
              "std reading needs 33× more steps)",
              "Li, Wang and Arora's limiting flow as stated in SPEC §C.1; our test "
              "of the two readings of Figure 1", kind="ours"),
    ],
    checks=[
        Check("worst_drop", "largest eig₂,₃/eig₁ on M at the horizon relative to "
              "step 0, well-conditioned draws, s² = 0.03",
              Criterion("<=", 1e-3, "ours"), claim="rank_one", fmt=".1e",
              tolerance=LONG),
        Check("F_gap", "largest (F − F*)/F* on M at the horizon, well-conditioned "
              "draws, s² = 0.03", Criterion("<=", 1e-6, "ours"), role="secondary",
              claim="rank_one", fmt=".1e", tolerance=LONG),
        Check("scaling_gap", "max |e_std(k) − e_var(0.03k)|, "
              "e = (F − F*)/(F(0) − F*), well-conditioned draws",
              Criterion("<=", 0.1, "ours"), claim="s2_scaling", fmt=".3f",
              tolerance=0.2),
        Check("kernel_vs_autograd",
              "max |θ| difference, kernel vs autograd loop, 300 steps",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("on_M", "max |f(x_i) − y_i| at the projected iterates",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("F_star",
              "max rel. difference of F* (label_noise vs optimum closed form)",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("eig_vs_numpy",
              "max |eigenvalue − numpy eigvalsh(ΦΦᵀ)| / eig₁ at the horizon",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
    ],
    validity=[
        Validity("horizon_reaches", "largest e^{−2μcH} over the well-conditioned "
                 "draws: the drop the flow's linear rate predicts at the horizon "
                 "(μ at the closed-form optimum, c = η²s²/(4n))",
                 Criterion("<=", 1e-3, "ours", "the horizon rule"), "reached",
                 "rank_one", fmt=".1e"),
        Validity("demo_median_drop", "demo (s = 0.5, 2·10⁶ steps): median over "
                 "draws "
                 "of the largest eig₂,₃/eig₁ drop", Criterion("<=", 1e-3, "ours"),
                 "positive control", "rank_one", fmt=".1e", tolerance=LONG),
    ],
    changes=[
        Change("horizon of the variance reading",
               "4·10⁷ steps, and a draw whose eig₂,₃/eig₁ had not fallen by "
               "10⁻³ was continued in blocks of 2·10⁷ steps until it had (up to "
               "2·10⁸): the stopping rule was the pass threshold, so the check "
               "could not fail",
               "one fixed horizon, 8·10⁷ steps, for every draw",
               "a check must be able to fail. 8·10⁷ is the longest run the old rule "
               "needed (one draw), so this horizon was chosen after those data were "
               "seen"),
        Change("horizon of the std reading", "4·10⁷ steps", "2·10⁷ steps",
               "run time on the 2-core machine; this reading now serves the s² "
               "scaling check, which needs F to move, not to finish"),
        Change("horizon of the variance reading (symmetric rule)",
               "8·10⁷ steps, the slowest draw's need under the old rule; chapter 08 "
               "gave 1-SAM 4·10⁷",
               "9·10⁷ steps for both methods, by one declared rule: the smallest "
               "multiple of 10⁷ with e^{−2μ_min cH} ≤ 10⁻³ (μ from the "
               "closed-form optimum, c = 6.25·10⁻⁶ for both), with the validity "
               "condition "
               "horizon_reaches",
               "two methods compared must get their horizons from one rule, not "
               "from one method's slowest draw. The rule was written after the "
               "earlier records were seen (at 4·10⁷ that draw's SGD drop was "
               "3.3·10⁻²)"),
        Change("demo_median_drop", "a guard",
               "the positive control demo_median_drop (same key)",
               "the demo (s = 0.5) is a case built to satisfy the claim: it shows "
               "that projection and eigenvalues see a collapse when there is one; "
               "its failure would make the claim inconclusive, not stop the build"),
        Change("kinds of claim", "both claims marked 'ours' (old form)",
               "rank_one: our reading of the quoted Figure 1 sentence; s2_scaling: "
               "ours", "the book's second rule: three kinds of claim"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import chapter_record, drift_horizon, optimum, verdict
from flatbias import label_noise as ln
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
EIG_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c"]
print(f"scale = {scale}: {P['draws']} + {P['raw_draws']} draws; horizons "
      f"{P['horizon_variance']:.0e} (s^2 = 0.03) and {P['horizon_std']:.0e} "
      "(s = 0.03) steps")

# %% [markdown]
# ## A quick demonstration with a larger noise
#
# With $s=0.5$ the drift along $\mathcal{M}$ is $(0.5/0.173)^2\approx 8$ times faster than with
# $s^2=0.03$, so a few million steps suffice. (This is **not** the paper's setting; the next section
# is.) It is the claim's positive control: if the projection and the eigenvalues could not see a
# collapse where there is one, the test at the paper's setting would mean nothing.

# %% tags=["hide-input"]
demo_s, demo_steps, demo_draws = P["demo"]
demo_prob = ln.draw_problems(draws=demo_draws, raw_draws=0, seed=P["seed"])
demo = ln.collapse(demo_prob["theta0"], demo_prob["X"], demo_prob["y"],
                   s_values=[demo_s], steps=demo_steps, record_every=demo_steps // 50,
                   seed=1, progress=False)


def drops(eig):
    """eig_{k+1}/eig_1 at the end relative to step 0: (draw, k) of (draw, record, n)"""
    r = eig[:, :, 1:] / eig[:, :, :1]
    return r[:, -1] / r[:, 0]


demo_drop = drops(demo["eig_M"][0])
print("demo: median eig2/eig1 and eig3/eig1 drop over draws:",
      ", ".join(f"{v:.1e}" for v in np.median(demo_drop, 0)))

# %% [markdown]
# ## The paper's setting: Figure 1, one horizon per reading
#
# At $\eta=0.05$ and $s^2=0.03$ the drift is $c=6.25\cdot10^{-6}$ units of flow time per step, so the
# collapse takes tens of millions of steps; with $s=0.03$ it is 33 times slower. Every draw runs to
# its reading's horizon from the protocol, and is reported against it. First the horizon rule, from
# the draws and their closed-form optima alone:

# %% tags=["hide-input"]
prob = ln.draw_problems(draws=P["draws"], raw_draws=P["raw_draws"], seed=P["seed"],
                        lam_min=P["lam_min"])
X, y, cond = prob["X"], prob["y"], prob["conditioned"]
mu = drift_horizon.flow_rates(prob["theta0"][cond], X[cond], y[cond])
c_var = drift_horizon.drift_per_step("sgd", P["eta"], X.shape[1], s=P["s_variance"])
predicted = drift_horizon.predicted_drop(mu, P["horizon_variance"], c_var)
print(f"mu of the well-conditioned draws: {np.array2string(mu, precision=4)}; "
      f"predicted drop at the horizon: largest {predicted.max():.1e}")

# %% tags=["hide-input"]
runs = {}
for reading, s, H in (("variance", P["s_variance"], P["horizon_variance"]),
                      ("std", P["s_std"], P["horizon_std"])):
    runs[reading] = ln.collapse(prob["theta0"], X, y, s_values=[s], steps=H,
                                record_every=H // P["records"], eta=P["eta"],
                                seed=P["seed"], progress=False)
F_star = runs["variance"]["F_star"]
drop = {r: drops(runs[r]["eig_M"][0]) for r in runs}  # (draw, k)
F_gap = (runs["variance"]["F_M"][0][:, -1] - F_star) / F_star
for p in range(len(X)):
    print(f"draw {p:2d}: lambda_min(XX^T) = {prob['lam_min_K'][p]:.1e}"
          f"{'' if cond[p] else ' (as it came)'}; eig2,3/eig1 drop: s^2 = 0.03 "
          f"{drop['variance'][p].max():.0e} (F gap {F_gap[p]:.0e}); "
          f"s = 0.03 {drop['std'][p].max():.0e}")

# %% [markdown]
# ## The $s^2$ scaling
#
# The drift along $\mathcal{M}$ is proportional to $s^2$, so at the same $\eta$ the $s=0.03$ run at
# step $k$ should be where the $s^2=0.03$ run is at step $0.03\,k$. A short, finely recorded run of
# the variance reading covers those steps; the relative excess sharpness
# $e=(F-F^*)/(F(0)-F^*)$ of the two is compared record by record.

# %% tags=["hide-input"]
factor = P["s_std"] ** 2 / P["s_variance"] ** 2
every_std = P["horizon_std"] // P["records"]
fine = ln.collapse(prob["theta0"], X, y, s_values=[P["s_variance"]],
                   steps=round(factor * P["horizon_std"]),
                   record_every=round(factor * every_std),
                   eta=P["eta"], seed=P["seed"], progress=False)


def excess(F):
    return (F - F_star[:, None]) / (F[:, :1] - F_star[:, None])


e_std, e_var = excess(runs["std"]["F_M"][0]), excess(fine["F_M"][0])
scaling_gap = np.abs(e_std - e_var)[cond].max()
print(f"factor {factor:.4f}; max |e_std(k) - e_var({factor:.2f} k)| over the "
      f"well-conditioned draws: {scaling_gap:.3f}")

# %% [markdown]
# ## Checks, and the paper-scale record
#
# The guards check the book's own code at every scale: the kernel against a plain autograd loop fed
# the same noise, the projected iterates on $\mathcal{M}$, $F^*$ from two modules, and the
# eigenvalues against numpy.

# %% tags=["hide-input"]
th_M = runs["variance"]["theta_M"][0]  # (draw, record, m, d)
f = np.sinh(np.einsum("pnd,prmd->prnm", X, th_M)).sum(-1)
Phi = np.sinh(np.einsum("pnd,pmd->pnm", X, th_M[:, -1]))
eig_np = np.linalg.eigvalsh(Phi @ Phi.transpose(0, 2, 1))[:, ::-1]
eig_end = runs["variance"]["eig_M"][0][:, -1]
F_star_opt = np.array([optimum.F_star(torch.tensor(X[p]), torch.tensor(y[p]), "sinh",
                                      P["network"][0]) for p in range(len(X))])
kernel_gap = ln.kernel_reference_gap(prob["theta0"][:2], X[:2], y[:2], eta=P["eta"],
                                     s=P["s_variance"])

# %% tags=["hide-input"]
measured = {
    "worst_drop": float(drop["variance"][cond].max()),
    "F_gap": float(F_gap[cond].max()),
    "scaling_gap": float(scaling_gap),
    "kernel_vs_autograd": kernel_gap,
    "on_M": float(np.abs(f - y[:, None]).max()),
    "F_star": float(np.max(np.abs(F_star - F_star_opt) / F_star_opt)),
    "eig_vs_numpy": float(np.max(np.abs(eig_end - eig_np) / eig_np[:, :1])),
    "horizon_reaches": float(predicted.max()),
    "demo_median_drop": float(np.median(demo_drop, 0).max()),
}
keep = ("steps", "eig", "eig_M", "F_M")
data = {"lam_min": prob["lam_min_K"], "conditioned": cond, "F_star": F_star,
        "runs": {r: {k: runs[r][k][0] if k != "steps" else runs[r][k] for k in keep}
                 for r in runs}, "mu": mu, "predicted": predicted,
        "drop": drop, "F_gap": F_gap, "e_std": e_std, "e_var": e_var, "factor": factor,
        "fine_steps": fine["steps"], "demo": {k: demo[k][0] if k != "steps" else demo[k]
                                              for k in ("steps", "eig", "eig_M")}}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))


# %% tags=["hide-input"]
def plot_eigs(ax, steps, eig_M, eig_raw, title):
    """Eigenvalues of ΦΦᵀ on M (a line per draw) and of the raw iterates (faint)."""
    for k in range(eig_M.shape[-1]):
        for p in range(eig_M.shape[0]):
            lab = f"eigenvalue {k + 1}" if p == 0 else None
            ax.plot(steps, np.clip(eig_raw[p, :, k], 1e-17, None), color=EIG_COLORS[k],
                    lw=0.6, alpha=0.25)
            ax.plot(steps, np.clip(eig_M[p, :, k], 1e-17, None), color=EIG_COLORS[k],
                    lw=1, alpha=0.8, label=lab)
    ax.set(yscale="log", xlabel="step", ylabel=r"eigenvalues of $\Phi\Phi^\top$",
           title=title, ylim=(1e-17, 1e2))


shown = paper.data or data  # the paper-scale record; this build's run if none
sc = np.array(shown["conditioned"], dtype=bool)
dm = shown["demo"]
fig, ax = plt.subplots(figsize=(6, 3.2))
plot_eigs(ax, np.array(dm["steps"]), np.array(dm["eig_M"]), np.array(dm["eig"]),
          "demo: $s=0.5$ (larger than the paper's)")
ax.legend(fontsize=8, loc="lower left")
glue("fig_demo", fig, display=False)
plt.close(fig)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.3), sharey=True)
for ax, (r, title) in zip(axes, (("variance", r"$s^2=0.03$"), ("std", r"$s=0.03$"))):
    run_r = shown["runs"][r]
    plot_eigs(ax, np.array(run_r["steps"]), np.array(run_r["eig_M"])[sc],
              np.array(run_r["eig"])[sc], title)
axes[0].legend(fontsize=8, loc="lower left")
axes[1].set_ylabel("")
glue("fig_figure1", fig, display=False)
plt.close(fig)
glue("n_draws", int(sc.sum()), display=False)

# %% tags=["hide-input"]
fig, (ax0, ax1) = plt.subplots(1, 2, figsize=(7.6, 3.2))
run_v = shown["runs"]["variance"]
Fs = np.array(shown["F_star"])
gapF = (np.array(run_v["F_M"]) - Fs[:, None]) / Fs[:, None]
for p in range(len(Fs)):
    ax0.plot(run_v["steps"], np.clip(gapF[p], 1e-16, None), color=COLORS["sgd"],
             lw=1 if sc[p] else 0.8, ls="-" if sc[p] else ":")
ax0.set(yscale="log", xlabel="step", ylabel=r"$(F-F^*)/F^*$ on $\mathcal{M}$",
        ylim=(1e-16, 10), title=r"$s^2=0.03$")
fs, first = np.array(shown["fine_steps"]), np.flatnonzero(sc)[0]
for p in np.flatnonzero(sc):
    ax1.plot(fs, shown["e_var"][p], color=COLORS["sgd"], lw=1.2,
             label=r"$s^2=0.03$ at step $k$" if p == first else None)
    ax1.plot(fs, shown["e_std"][p], color=COLORS["reference"], ls="--", lw=1,
             label=r"$s=0.03$ at step $k/0.03$" if p == first else None)
ax1.set(xlabel=r"step $k$ of the $s^2=0.03$ run", ylabel=r"$(F-F^*)/(F(0)-F^*)$",
        title=r"the $s^2$ scaling")
ax1.legend(fontsize=7)
glue("fig_sharpness", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_demo
# :name: fig-ln-demo
#
# The positive control: label-noise SGD with a larger noise $s=0.5$ on 8 data draws. Look at the
# solid lines, the three eigenvalues of $\Phi\Phi^\top$ after projecting each iterate onto
# $\mathcal{M}$: the second (orange) and third (green) fall by many orders of magnitude while the
# first (blue) stays put. The faint lines are the raw iterates, whose small eigenvalues stall at
# the noise floor: that is why the eigenvalues are read on $\mathcal{M}$.
# ```
#
# ```{glue:figure} fig_figure1
# :name: fig-ln-figure1
#
# Paper 1's Figure 1 setting ($m=10$, $d=n=3$, $\eta=0.05$) at paper scale, the
# {glue:text}`n_draws` well-conditioned draws, each run to its reading's horizon. Left: "noise
# variance 0.03" read as $s^2=0.03$: the second and third eigenvalues (solid) fall towards zero
# within the horizon, the slowest draw last. Right: read as a standard deviation $s=0.03$: at its
# horizon they have barely moved, since the drift is 33 times slower. Faint: raw iterates.
# ```
#
# ```{glue:figure} fig_sharpness
# :name: fig-ln-sharpness
#
# Left: relative gap between the sharpness $F$ at the projected iterate and the closed-form minimum
# $F^*=m\sum_i\lVert x_i\rVert^2\phi'(\phi^{-1}(y_i/m))^2$ of Theorem 3.3 (solid: well-conditioned
# draws, which reach $F^*$; dotted: draws taken as they come, which lag). Right: the $s=0.03$ run
# with its steps divided by $1/0.03$ (dashed) lies on top of the $s^2=0.03$ run (solid), one pair
# per well-conditioned draw: the drift is proportional to $s^2$.
# ```
#
# (verdict-06)=
# ## Verdict
#
# The statuses below are derived from the checks and validity conditions by the book's one rule
# ({doc}`../book/intro`); the numbers come from the paper-scale record named on the first line,
# and this build's smoke run follows.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% tags=["remove-cell"]
ev = paper.evaluation if paper.record else smoke
for key in ("worst_drop", "scaling_gap", "horizon_reaches"):
    glue(key, ev.value(key), display=False)
sd = np.array(shown["drop"]["std"])[sc].max(1)
glue("std_median_drop", float(np.median(sd)), display=False)
rd = np.array(shown["drop"]["variance"])[~sc].max(1)
glue("raw_drops", ", ".join(f"{v:.0e}" for v in rd), display=False)

# %% [markdown]
# Status: {glue:text}`status`. Reading "noise variance 0.03" as $s^2=0.03$, every
# well-conditioned draw is judged at one fixed horizon, set by the rule that also sets 1-SAM's in
# {doc}`08_one_sam`, with no per-draw extension: the largest remaining eig₂,₃/eig₁ (relative to
# its start) is {glue:text}`worst_drop:.1e`, against our bar of $10^{-3}$ for the paper's
# "converge to zero". The horizon rule predicts at most {glue:text}`horizon_reaches:.1e` for the
# slowest draw from the flow's linear rate alone (validity condition `horizon_reaches`); the
# positive control with $s=0.5$ collapses as it should. The bar, the horizon and the reading of
# the noise level are ours, so the claim is judged "under our reading".
#
# Reading the noise level as $s=0.03$, the drift is $33\times$ slower; the $s^2$ scaling of the
# drift holds to {glue:text}`scaling_gap:.3f` in relative excess sharpness, so that reading would
# need about $33\times$ more steps ($\sim10^9$) for Figure 1: at its horizon the median draw's
# largest eig₂,₃/eig₁ stood at {glue:text}`std_median_drop:.1e` times its value at step 0. The
# paper's figure is consistent with the variance reading. The draws taken as they come
# (near-singular $XX^\top$, not judged) reach only {glue:text}`raw_drops` by the same horizon: the
# flow's rate near the optimum is proportional to $\lambda_{\min}(XX^\top)$
# ({doc}`05_convergence_rate`).
