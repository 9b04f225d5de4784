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
# # Label-noise SGD follows the sharpness flow
#
# {doc}`06_label_noise_rank_one` watched label-noise SGD reach the rank-one minimizer. The proof of
# paper 1's main theorem {cite}`gatmiry2024simplicity` gets there in two steps; this chapter checks
# the first one, due to Li, Wang and Arora {cite}`li2022happens` (locally, Blanc et al.
# {cite}`blanc2020implicit`): once SGD is at the zero-loss manifold, its slow drift along the
# manifold *is* the Riemannian gradient flow of the sharpness, on a known time scale. The statement
# is a limit $\eta\to0$, so the test is how the gap between SGD and the flow closes as $\eta$ shrinks.

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
# ```{prf:theorem} Limiting drift of label-noise SGD (Li, Wang and Arora; SPEC §C.1)
# :label: thm-lwa-flow
#
# Let $L(\theta)=\frac1n\sum_i\tfrac12(f_\theta(x_i)-y_i)^2$ and run label-noise SGD with batch
# size 1, step $\eta$ and label noise of variance $s^2$, started on the zero-loss manifold
# $\mathcal{M}$. As $\eta\to0$, the iterate after $k=t/\eta^2$ steps converges to $\theta(t)$, the
# solution of $\dot\theta=-\tfrac{s^2}{4}\,\mathrm{grad}_{\mathcal{M}}\operatorname{tr}\nabla^2L(\theta)$.
# ```
#
# For paper 1's network, on $\mathcal{M}$, $\operatorname{tr}\nabla^2L=F/n$ with
# $F(\theta)=\sum_i\lVert x_i\rVert^2\sum_j\phi'(\theta_j^\top x_i)^2$ (Lemma 4.2/4.3,
# {doc}`01_trace_of_hessian`; here $L$ carries the factor $\tfrac1{2n}$). The flow is therefore
# $\dot\theta=-\tfrac{s^2}{4n}\,\mathrm{grad}_\mathcal{M}F$, and in the time
# $\tau=\tfrac{s^2}{4n}t=\tfrac{\eta^2s^2}{4n}k$ it is the plain Riemannian gradient flow
# $d\theta/d\tau=-\mathrm{grad}_\mathcal{M}F$. SGD step $k$ corresponds to flow time $\tau_k=c\,k$ with
#
# $$
# c=\frac{\eta^2 s^2}{4n},
# $$
#
# the constant the code uses and this chapter checks. (An earlier version of this box wrote
# $k=t/(\eta^2s^2/4)$ together with $\dot\theta=-\tfrac14\mathrm{grad}\operatorname{tr}\nabla^2L$;
# that pair gives $c=\eta^2s^2/(16n)$, a factor 4 below what is computed. The normalization of
# SPEC §C.1, time $t=\eta^2k$ and the factor $s^2/4$ in the flow, is the one above.)
#
# The theorem is a limit. At a finite step the drift has corrections of relative order
# $\eta\lVert\nabla f_i\rVert^2$ (the residual's fluctuation adds to the label noise; the
# regularizer of Damian et al. {cite}`damian2021label` is
# $-\tfrac1{2\eta}\operatorname{tr}\log(I-\tfrac\eta2\nabla^2L)=\tfrac14\operatorname{tr}\nabla^2L
# +O(\eta)$). So the test: fit the time constant $\hat c$ for each $\eta$ and each data draw, and
# check that $\hat c/c-1$ vanishes **in proportion to $\eta$** (a log-log slope of 1, with its
# confidence interval over draws) and that $\hat c/c$ extrapolates to 1 at $\eta=0$.
#
# | part of the setting | source |
# |---|---|
# | the limiting flow and its time scale | Li–Wang–Arora as SPEC §C.1 states it (**not checked against their text**) |
# | $m=10$, $d=n=3$, data uniform on $[0,1]$ | paper 1's Figure 1 setting |
# | $\phi=\sinh$, labels $U[0,1]$, $\theta_j(0)\sim\mathcal{N}(0,I/d)$ retracted onto $\mathcal{M}$ | **our choice** |
# | $s=1$, the step sizes, the draws, the fit's range | **our choice** (the protocol below) |

# %% [markdown]
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims, the criterion of every
# check and the validity conditions, each tagged as the paper's or ours. The checks below read
# their thresholds from here.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)
from flatbias.protocol_changes import error_tolerance

AVG = 0.05  # relative tolerance of fits on F averaged over many long SGD chains
PROTOCOL = Protocol(
    chapter="07_sgd_tracks_the_flow",
    settings={
        "network": same([10, 3, 3], "paper", "(m, d, n), paper 1's Figure 1"),
        "s": same(1.0, "ours", "label-noise level; large, so the drift is quick"),
        "etas": Setting([0.04, 0.02, 0.01], [0.04, 0.02, 0.01, 0.005], "ours",
                        "step sizes"),
        "fit_etas": Setting([0.02, 0.01], [0.02, 0.01, 0.005], "ours",
                            "step sizes of the fits: 0.04 is left out, there "
                            "η·‖∇f_i‖² approaches 1"),
        "draws": Setting(2, 6, "ours", "data draws with λ_min(XXᵀ) ≥ 1e-2"),
        "chains": Setting(4, 16, "ours", "noise streams per draw and η; F averaged"),
        "sgd_time": same(4.0, "ours", "flow time c·K each SGD run covers"),
        "flow_time": same(6.0, "ours", "flow time integrated (SGD may run ahead)"),
        "flow_rtol": same(1e-10, "ours",
                          "relative tolerance of the DOP853 integration of the flow"),
        "flow_grid": same(6001, "ours", "times at which the flow is read (step 0.001)"),
        "records": same(100, "ours", "records per SGD run"),
        "fit_floor": same(0.02, "ours", "fit where F − F* > 2 % of F(0) − F*"),
        "seed": same(0, "ours", "data draws"),
        "noise_seed": same(3, "ours"),
    },
    claims=[
        Claim("limit", "As η → 0, label-noise SGD on M follows the Riemannian "
              "gradient flow θ̇ = −grad_M F with step k at flow time c·k, "
              "c = η²s²/(4n): the fitted constant ĉ extrapolates to c at η = 0",
              "Li, Wang and Arora's Theorem 4.6, restated in Paper 1, Appendix A "
              "(formulas lost); its normalization as in SPEC §C.1", kind="reading",
              quote="Theorem 1.1 is a direct combination of Theorem 4.6 of "
              "li2021happens, Theorem 3.3, and Theorem 3.5.",
              locator="Paper 1, Appendix A",
              ours_part="the constant c = η²s²/(4n) (our normalization of SPEC "
              "§C.1), the fit of ĉ, the band 1 ± 0.05, the network and s = 1"),
        Claim("first_order", "At finite η the error of the time constant, "
              "|ĉ/c − 1|, vanishes in proportion to η",
              "our expansion of the drift in η (Damian et al.'s regularizer is "
              "¼ tr∇²L + O(η))", kind="ours"),
    ],
    checks=[
        Check("intercept",
              "ĉ/c extrapolated to η → 0 (line in η per draw, mean over draws)",
              Criterion("in", (0.95, 1.05), "ours"), claim="limit", fmt=".3f",
              tolerance=AVG),
        Check("slope_lo", "lower end of the 95 % CI of the slope of log|ĉ/c − 1| "
              "against log η (mean over draws)", Criterion(">=", 0.75, "ours"),
              claim="first_order", fmt=".2f", tolerance=AVG),
        Check("slope_hi", "upper end of that 95 % CI",
              Criterion("<=", 1.25, "ours"), claim="first_order", fmt=".2f",
              tolerance=AVG),
        Check("gap_slope", "slope of log(max gap of F to the flow) against log η, "
              "mean over draws", Criterion("in", (0.75, 1.25), "ours"),
              role="secondary", claim="first_order", fmt=".2f", tolerance=AVG),
        Check("kernel_vs_autograd",
              "max |θ| difference, kernel vs autograd loop, 300 steps",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("on_M", "max |f(x_i) − y_i| at the projected SGD iterates",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("F_star",
              "max rel. difference of F* (label_noise vs optimum closed form)",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("flow_energy", "max |F(T) − F(0) + ∫‖grad_M F‖² dt| / (F(0) − "
              "F(T)) along the flows",
              Criterion("<=", 1e-6, "ours"), role="guard", fmt=".1e",
              tolerance="error"),
        Check("flow_on_M", "max |f(x_i) − y_i| along the flows",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e",
              tolerance="error"),
        Check("const_smallest_eta", "max |ĉ/c − 1| at this run's smallest η",
              Criterion("<=", 0.5, "ours"), role="guard", fmt=".3f", tolerance="error"),
    ],
    validity=[
        Validity("draws_limit", "data draws in the mean over draws",
                 Criterion(">=", 4, "ours", "a mean over fewer draws is not a test"),
                 "power", "limit", fmt=".0f", tolerance="exact"),
        Validity("draws_first_order", "data draws in the Student-t interval",
                 Criterion(">=", 4, "ours", "with fewer, t(0.975) ≥ 4.3 and the "
                           "interval cannot decide"),
                 "power", "first_order", fmt=".0f", tolerance="exact"),
    ],
    changes=[
        Change("criterion of the time-constant check",
               "|ĉ/c − 1| shrinks monotonically over η and is < 10 % at the "
               "smallest η, on one data draw (set against a measured 9.3 %)",
               "the slope of |ĉ/c − 1| against η has a 95 % CI within [0.75, 1.25] "
               "and ĉ/c extrapolates to 1 ± 0.05 at η → 0, over 6 draws",
               "the old threshold was chosen after the number was seen, and it did not "
               "test the limit η → 0 itself"),
        Change("integration of the flow",
               "Riemannian GD with a fixed step 0.001 (O(h) error); energy identity by "
               "a trapezoid sum, to 1e-2",
               "the flow ODE by DOP853 at rtol 1e-10, read every 0.001; energy "
               "identity integrated along, to 1e-6; the flow kept on M (new guard)",
               "cost: the fixed-step descent took about a minute per draw, most of "
               "the chapter's run time; decided before any full-scale run of it"),
        Change("claims", "one claim 'limit' (ours) with the intercept and the "
               "slope interval as primaries",
               "'limit' (our reading of the theorem the paper builds on: the "
               "intercept) and 'first_order' (ours: the O(η) approach, the slope "
               "interval and the gap slope)",
               "the limit is the cited theorem's statement; its first-order "
               "approach is our expansion, tested as a claim of ours"),
        Change("validity conditions draws_limit, draws_first_order (power)", "none",
               "at least 4 data draws", "added after the paper-scale record (6 "
               "draws) was seen; the smoke scale's 2 draws cannot decide"),
        Change("note of fit_etas", "η·‖∇f_i‖² ≲ 0.3, the expansion's regime",
               "0.04 is left out, there η·‖∇f_i‖² approaches 1",
               "the old note was wrong: at η = 0.02, η·max‖∇f_i‖² is about "
               "0.6 at "
               "the start and 0.4 at θ*; no regime condition is declared on it"),
        error_tolerance(["flow_energy", "flow_on_M", "const_smallest_eta"],
                        "here they agreed"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import chapter_record, optimum, verdict
from flatbias import label_noise as ln
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
S, (M, D_IN, N) = P["s"], P["network"]
print(f"scale = {scale}: eta in {P['etas']}, {P['draws']} data draws "
      f"x {P['chains']} chains, s = {S}")

# %% [markdown]
# ## The flow, for each data draw
#
# The flow's ODE $d\theta/d\tau=-\mathrm{grad}_\mathcal{M}F$ (the closed form of
# `flatbias.riemannian`) is integrated by an adaptive 8th-order Runge–Kutta method (DOP853) to a
# relative tolerance $10^{-10}$ (`label_noise.sharpness_flow`). Along an exact gradient flow
# $dF/d\tau=-\lVert\mathrm{grad}_\mathcal{M}F\rVert^2$: the integral of $\lVert\mathrm{grad}F\rVert^2$,
# carried along, must match the drop of $F$ computed independently, and the flow must stay on
# $\mathcal{M}$ (guards).

# %% tags=["hide-input"]
prob = ln.draw_problems(draws=P["draws"], raw_draws=0, seed=P["seed"])
X, y = prob["X"], prob["y"]
theta0 = ln.retract_batch(prob["theta0"], X, y)  # every chain starts on M
flows, F_star, energy, flow_res = [], [], 0.0, 0.0
for p in range(len(X)):
    fl = ln.sharpness_flow(theta0[p], X[p], y[p], t_max=P["flow_time"],
                           n_eval=P["flow_grid"], rtol=P["flow_rtol"])
    F0, FT = fl["F_ends"]  # F by flatbias.twolayer at both ends
    energy = max(energy, abs(FT - F0 + fl["energy"][-1]) / (F0 - FT))
    flow_res = max(flow_res, fl["residual"])
    flows.append((fl["t"], fl["F"]))
    F_star.append(optimum.F_star(torch.tensor(X[p]), torch.tensor(y[p]), "sinh", M))
F_star = np.array(F_star)
for p, (t, F) in enumerate(flows):
    print(f"draw {p}: lambda_min(XX^T) = {prob['lam_min_K'][p]:.3f}; "
          f"flow F {F[0]:.3f} -> {F[-1]:.4f} by t = {t[-1]:.1f} (F* = {F_star[p]:.4f})")

# %% [markdown]
# ## SGD at several step sizes
#
# SGD runs in the compiled kernel (`flatbias.label_noise`), `chains` independent noise streams per
# draw and step size, for $K=\tau/c$ steps; every record is projected onto $\mathcal{M}$ before $F$
# is read, and $F$ is averaged over the chains. For each $\eta$ and draw, $\hat c$ is found by
# placing each SGD value $F_k$ at the flow time where the flow has the same $F$, and fitting those
# times against $k$ by a line through 0 (`label_noise.fitted_time_constant`).

# %% tags=["hide-input"]
def c_of(eta):
    return eta**2 * S**2 / (4 * N)


C, R, D = P["chains"], P["records"], len(X)
rep = lambda a: np.repeat(a, C, axis=0)  # noqa: E731 - rows p*C .. p*C+C-1: draw p
sgd, residual = {}, 0.0
for eta in P["etas"]:
    K = int(round(P["sgd_time"] / c_of(eta) / R)) * R
    res = ln.collapse(rep(theta0), rep(X), rep(y), s_values=[S], steps=K,
                      record_every=K // R, eta=eta, seed=P["noise_seed"],
                      progress=False)
    th = res["theta_M"][0]  # (draw x chain, record, m, d) on M
    f = np.sinh(np.einsum("cnd,crmd->crnm", rep(X), th)).sum(-1)
    residual = max(residual, float(np.abs(f - rep(y)[:, None]).max()))
    sgd[eta] = (res["steps"], res["F_M"][0].reshape(D, C, -1).mean(1))  # (draw, record)

# %% tags=["hide-input"]
ratio = np.array([[ln.fitted_time_constant(sgd[e][0], sgd[e][1][p], *flows[p],
                                           F_star[p], P["fit_floor"]) / c_of(e)
                   for e in P["etas"]] for p in range(D)])  # (draw, eta): c_hat / c
gap = np.array([[ln.gap_to_flow(sgd[e][0], sgd[e][1][p], c_of(e), *flows[p], F_star[p])
                 for e in P["etas"]] for p in range(D)])
for p in range(D):
    print(f"draw {p}: c_hat/c =", "  ".join(f"{r:.3f}" for r in ratio[p]),
          "| max gap:", "  ".join(f"{g:.1e}" for g in gap[p]))

# %% [markdown]
# ## The limit: how the error closes as $\eta\to0$
#
# Over the step sizes of the fit, the slope of $\log|\hat c/c-1|$ against $\log\eta$ is fitted per
# draw; its mean over the draws, with a Student-$t$ 95 % interval, must lie within $[0.75, 1.25]$
# (the error is proportional to $\eta$). A straight line of $\hat c/c$ in $\eta$ per draw,
# extrapolated to $\eta=0$, must give $1\pm0.05$ on average (the limit's constant is $c$).

# %% tags=["hide-input"]
use = [P["etas"].index(e) for e in P["fit_etas"]]
fit_eta = np.array(P["fit_etas"])
slope = ln.slope_ci(fit_eta, np.abs(ratio[:, use] - 1))
gap_slope = ln.slope_ci(fit_eta, gap[:, use])
intercepts = [np.polyfit(fit_eta, ratio[p, use], 1)[1] for p in range(D)]
print(f"slope of |c_hat/c - 1| vs eta: {slope['mean']:.2f} +- {slope['se']:.2f} "
      f"(s.e.), 95 % CI [{slope['lo']:.2f}, {slope['hi']:.2f}]")
print(f"c_hat/c extrapolated to eta = 0: {np.mean(intercepts):.3f} "
      f"(draws: {', '.join(f'{v:.3f}' for v in intercepts)})")
print(f"slope of the max gap vs eta: {gap_slope['mean']:.2f} +- {gap_slope['se']:.2f}")

# %% [markdown]
# ## Checks, and the paper-scale record
#
# Every check of the protocol is measured here, with the guards: the kernel against a plain autograd
# loop fed the same noise, the projected iterates on $\mathcal{M}$, the closed-form $F^*$ of two
# modules, the flow's energy identity and its distance to $\mathcal{M}$, and the time constant at
# this run's smallest step.

# %% tags=["hide-input"]
kernel_gap = ln.kernel_reference_gap(theta0[:2], X[:2], y[:2], eta=0.02, s=S, steps=300,
                                     seed=P["noise_seed"])
F_star_ln = ln.summarize(ln.closed_form_optimum(theta0, X, y)[None], X, y)[1][0]
measured = {
    "slope_lo": slope["lo"], "slope_hi": slope["hi"],
    "intercept": float(np.mean(intercepts)), "gap_slope": gap_slope["mean"],
    "kernel_vs_autograd": kernel_gap, "on_M": residual,
    "F_star": float(np.max(np.abs(F_star_ln - F_star) / F_star)),
    "flow_energy": float(energy), "flow_on_M": float(flow_res),
    "const_smallest_eta": float(np.max(np.abs(ratio[:, -1] - 1))),
    "draws_limit": float(D), "draws_first_order": float(D),
}

# %% tags=["hide-input"]
data = {"etas": P["etas"], "fit_etas": P["fit_etas"], "ratio": ratio, "gap": gap,
        "slopes": slope["slopes"], "intercepts": intercepts,
        "lam_min": prob["lam_min_K"],
        "flow_t": [t[::20] for t, _ in flows], "flow_F": [F[::20] for _, F in flows],
        "F_star": F_star, "sgd_t": [sgd[e][0] * c_of(e) for e in P["etas"]],
        "sgd_F": [sgd[e][1][0] for e in P["etas"]]}  # SGD curves of draw 0
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
def plot_flow(ax, shown):
    """F − F* along the flow and along SGD (time c·k) for each η, draw 0."""
    t0, F0 = np.array(shown["flow_t"][0]), np.array(shown["flow_F"][0])
    Fs = shown["F_star"][0]
    ax.plot(t0, F0 - Fs, color=COLORS["flow"], lw=2.2, label="Riemannian flow of $F$")
    for q, (eta, t, F) in enumerate(zip(shown["etas"], shown["sgd_t"], shown["sgd_F"])):
        ax.plot(t, np.array(F) - Fs, lw=1, color=plt.cm.Greens(0.9 - 0.18 * q),
                label=rf"SGD, $\eta={eta:g}$")
    ax.set(yscale="log", xlabel=r"flow time $\tau = \eta^2 s^2 k/(4n)$",
           ylabel=r"$F-F^*$ (SGD: projected, mean)", title="draw 0")
    ax.legend(fontsize=7)


shown = paper.data or data  # the paper-scale record; this build's run if none
etas = np.array(shown["etas"])
err = np.abs(np.array(shown["ratio"]) - 1)

# %% tags=["hide-input"]
fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.3))
plot_flow(axes[0], shown)
for p in range(len(err)):
    axes[1].loglog(etas, err[p], "o-", color=COLORS["sgd"], lw=0.8, ms=3, alpha=0.6,
                   label=r"$|\hat c/c-1|$, one line per draw" if p == 0 else None)
mid = np.exp(np.mean(np.log(err[:, -1])))
axes[1].loglog(etas, mid * etas / etas[-1], color=COLORS["reference"], ls="--", lw=1,
               label=r"$\propto\eta$")
axes[1].set(xlabel=r"step size $\eta$", ylabel="relative error of the time constant")
axes[1].set_xticks(etas, [f"{e:g}" for e in etas], minor=False)
axes[1].xaxis.set_minor_formatter(plt.NullFormatter())
axes[1].legend(fontsize=7)
glue("fig_flow", fig, display=False)
plt.close(fig)
glue("n_draws", len(err), display=False)

# %% [markdown]
# ```{glue:figure} fig_flow
# :name: fig-sgd-flow
#
# Paper scale ({glue:text}`n_draws` data draws). Left: the sharpness $F$ (minus $F^*$) along the
# Riemannian gradient flow (purple) and along label-noise SGD for several step sizes, SGD's step
# count converted to flow time by $c=\eta^2s^2/(4n)$: look at how the green curves close in on the
# purple one as $\eta$ shrinks (the darkest is the largest $\eta$). Right: the error of the fitted
# time constant against $\eta$, one line per draw; the lines run parallel to the dashed line of
# slope 1, which is what "error proportional to $\eta$" looks like.
# ```
#
# (verdict-07)=
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
for key in ("slope_lo", "slope_hi", "intercept"):
    glue(key, ev.value(key), display=False)
glue("err_smallest", float(np.median(err[:, -1])), display=False)
glue("eta_smallest", float(etas[-1]), display=False)

# %% [markdown]
# Status: {glue:text}`status`. With time rescaled by $c=\eta^2s^2/(4n)$, the SGD curves close in on
# the flow as $\eta$ shrinks, and $\hat c/c$ extrapolates to {glue:text}`intercept:.3f` at
# $\eta=0$: the limit's constant is the one derived above. That is our reading of the theorem
# paper 1 builds on (its Appendix A restates Li, Wang and Arora's Theorem 4.6, whose formulas our
# source lost; the normalization of $c$ and the band $1\pm0.05$ are ours). The approach to the
# limit is our own claim: the error of the fitted time constant has a log-log slope against $\eta$
# whose 95 % interval over the draws is [{glue:text}`slope_lo:.2f`, {glue:text}`slope_hi:.2f`],
# first order in $\eta$ as the expansion predicts. At finite $\eta$ SGD drifts a little *faster*
# than the limit (median error {glue:text}`err_smallest:.1%` at
# $\eta=${glue:text}`eta_smallest`), which is why paper 1's Theorem 1.1 needs "a small enough step
# size". The step $\eta=0.04$ is shown but left out of the fit: there $\eta\lVert\nabla
# f_i\rVert^2$ is close to 1. Both claims need at least 4 data draws (validity conditions); the
# smoke scale's 2 draws read "inconclusive".
