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
# # Local geodesic convexity of the sharpness
#
# A function on a manifold is *geodesically convex* where its Riemannian Hessian is positive
# semidefinite. $F$ is not convex on all of $\mathcal{M}$, but paper 1 {cite}`gatmiry2024simplicity`
# shows it is wherever the Riemannian gradient is small: approximate stationary points sit in convex
# basins. In the paper's words, "we discover a novel property — a local geodesic convexity — of the
# trace of Hessian of the loss at approximate stationary points on the manifold of zero loss". This
# chapter looks for the smallest Riemannian gradient at which the Hessian of
# {prf:ref}`lem-riemannian-hessian` still has a negative eigenvalue, sampling the whole range of
# gradients, and checks that the same search does find negative curvature at zero gradient when the
# activation is outside the paper's assumptions.

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
# ## The claim
#
# ```{prf:lemma} Local geodesic convexity (paper 1, Lemma 4.4 / B.4; quantitative form not recovered)
# :label: lem-local-convexity
#
# Under Assumptions 3.1, 3.2 and 3.4 there is $\varepsilon>0$, depending on the activation and
# the data, such that $\lVert\operatorname{grad}_\mathcal{M}F(\theta)\rVert\le\varepsilon$ implies
# $\operatorname{Hess}_\mathcal{M}F(\theta)\succeq0$. At the global minimizer the Hessian is
# positive definite on the directions inside the data span (Lemma B.4).
# ```
#
# Why it is plausible: on tangent vectors,
# $\langle v,\operatorname{Hess}F[v]\rangle=\sum_{ij}w_{ij}(x_i^\top v_j)^2$ with
# $w_{ij}=2\lVert x_i\rVert^2(\phi''^2_{ij}+\phi'_{ij}\phi'''_{ij})-\lambda_i\phi''_{ij}$. At an
# exact stationary point $\lambda_i=2\lVert x_i\rVert^2\phi''_{ij}$ for all $j$, so
# $w_{ij}=2\lVert x_i\rVert^2\phi'_{ij}\phi'''_{ij}$, positive under Assumption 3.1; by
# continuity the weights stay positive nearby. For $\tanh$, $\phi'''<0$ near $0$, so the same
# formula gives negative weights at its rank-one stationary point, which is in fact a strict
# local *maximum* of $F$ on $\mathcal{M}$ ({doc}`02_stationary_points`): the **control** of
# this chapter, where negative curvature at zero gradient is built in.
#
# What the lemma predicts, and how we test it. Let $\delta^*$ be the smallest gradient norm at which
# $\lambda_{\min}(\operatorname{Hess}_\mathcal{M}F)<0$. The lemma says $\delta^*>0$ (any
# $\varepsilon<\delta^*$ works). A test of it must look for negative curvature at *small* gradient,
# not only at the optimum and at random points, where the gradient is large. Per data draw:
#
# 1. random points of $\mathcal{M}$ at several initialization scales;
# 2. Riemannian gradient descent from the random points of most negative curvature, logging
#    $(\lVert\operatorname{grad}\rVert,\lambda_{\min})$ along the way, so the gradient sweeps
#    continuously from its starting value down to $10^{-8}$ (Armijo steps capped at
#    $10/\lambda_{\max}$ of the Hessian at $\theta^*$: a first full-scale run, with the cap taken
#    at the strongly curved start, left the flows too slow to cover the decade
#    $[10^{-6},10^{-5}]$ and stopped at the coverage guard);
# 3. a constrained search: minimize $\lVert\operatorname{grad}_\mathcal{M}F\rVert$ over the region
#    $\lambda_{\min}\le-10^{-8}$ (SLSQP with autograd gradients, in a global chart of $\mathcal{M}$,
#    which exists for $d=n$: the pre-activations $z_{ij}$, $j<m$, are free and
#    $z_{im}=\phi^{-1}(y_i-\sum_{j<m}\phi(z_{ij}))$), started from the negatively curved points
#    of smallest gradient.
#
# The same search, started next to $\tanh$'s rank-one stationary point, must find negative curvature
# at a vanishing gradient: a check that cannot fail there would be worthless here.
#
# | part of the setting | source |
# |---|---|
# | the statement (existence of $\varepsilon$) | the paper (Lemma 4.4, abstract) |
# | the value of $\varepsilon$ | **not recovered**; we measure $\delta^*$ |
# | $m=10$, $d=n=3$, data uniform on $[0,1]$ | the paper (Figure 1) |
# | labels $U[0,1]$; $\sinh$, $z+z^3/3$; draws with $\lambda_{\min}(XX^\top)\ge10^{-2}$ | **ours** |
# | random points, flows, the constrained search; the $\tanh$ control | **ours** |

# %% [markdown]
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims, and the criterion of every
# check, each tagged as the paper's or ours. The checks below read their thresholds from here.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)

PROTOCOL = Protocol(
    chapter="04_local_g_convexity",
    settings={
        "activations": same(["sinh", "cubic"], "ours"),
        "sizes": same([3, 3, 10], "paper", "(n, d, m) of Figure 1"),
        "draws": Setting(1, 3, "ours", "data draws per activation"),
        "min_eig_K": same(1e-2, "ours", "reject draws with λ_min(XXᵀ) below this"),
        "random": Setting(20, 60, "ours", "random points of M per draw"),
        "std_range": same([0.3, 3.0], "ours", "init std / (1/√d), log-uniform"),
        "flows": Setting(1, 2, "ours", "flows per draw, from the most curved points"),
        "flow_steps": Setting(1500, 2000, "ours", "step budget of a flow"),
        "flow_tol": same(1e-8, "ours", "a flow stops at ‖grad‖ ≤ this"),
        "log_every": same(1, "ours", "flow steps between logged points"),
        "searches": Setting(1, 2, "ours", "constrained searches per draw"),
        "search_iter": same(200, "ours", "SLSQP iterations per search"),
        "lam_tol": same(1e-8, "ours", "negative curvature: λ_min < −lam_tol"),
        "control_kick": same(0.02, "ours", "tanh control: start offset in the chart"),
        "control_iter": same(400, "ours", "tanh control: SLSQP iterations"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("local_convexity", "There is ε > 0 such that ‖grad_M F(θ)‖ ≤ ε "
                                 "implies Hess_M F(θ) ⪰ 0 on M",
              "Paper 1, abstract and Lemma 4.4 (statement lost in extraction)",
              kind="reading",
              quote="we discover a novel property — a local geodesic "
                    "convexity — of the trace of Hessian of the loss at "
                    "approximate stationary "
                    "points on the manifold of zero loss",
              locator="Abstract; Lemma 4.4 (PSD Hessian when gradient vanishes), "
                      "whose formulas were lost",
              ours_part="the qualitative statement (ε > 0 exists; its value was not "
                        "recovered); ε > 0 tested as δ* ≥ 1e-6; negative curvature "
                        "as λ_min < −1e-8; the sampling, flows and searches"),
        Claim("strict_at_optimum", "At the global minimizer θ* the Hessian of F on M "
              "is positive definite (d = n)", "Paper 1, Lemma B.4 (strong convexity)",
              kind="reading",
              quote="we show that the Hessian of [F] on the manifold is strictly "
                    "positive with a uniform lower bound in a suitable subspace which "
                    "includes the gradient (Lemma B.4)",
              locator="Section 4.3, proof sketch of Theorem 3.5 (formulas lost)",
              ours_part="tested at θ* on the whole tangent space (d = n: no "
                        "direction leaves the data span), as λ_min > 1e-8"),
    ],
    checks=[
        Check("delta_star", "δ*: smallest ‖grad_M F‖ with λ_min < −1e-8 (all "
                            "draws)",
              Criterion(">=", 1e-6, "ours", "ε > 0, far above the searches' floor"),
              claim="local_convexity", tolerance=0.05),
        Check("delta_star_spec", "δ* against the δ = 1e-2 of SPEC §A.12",
              Criterion(">=", 1e-2, "ours"), role="secondary", claim="local_convexity",
              tolerance=0.05),
        Check("lmin_at_optimum", "smallest λ_min(Hess_M F(θ*)) over draws",
              Criterion(">", 1e-8, "ours"), claim="strict_at_optimum"),
        Check("grad_vs_autograd", "riemannian.grad vs autograd P_T∇F (max, / "
                                  "‖∇F‖)",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
        Check("lmin_vs_autograd", "riemannian.lambda_min vs autograd Hessian on T_θM "
              "(max abs. / λ_max)", Criterion("<=", 1e-9, "ours"), role="guard",
              fmt=".1e"),
        Check("search_objective", "search objective vs riemannian closed forms "
              "(max, / ‖∇F‖, / "
              "λ_max)", Criterion("<=", 1e-8, "ours"), role="guard",
              fmt=".1e"),
        Check("on_M", "max |f(x_i) − y_i| at the checked points",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("optimum_stationary", "‖grad_M F(θ*)‖ / ‖∇F(θ*)‖ at the "
                                    "closed form",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
    ],
    validity=[
        Validity("control_tanh", "next to tanh's rank-one point (a case built "
                 "to break the lemma's conclusion), the same search ends at "
                 "λ_min < −1e-8 with ‖grad‖ ≤ 1e-6",
                 Criterion("==", True, "ours"), kind="positive control",
                 claim="local_convexity", tolerance="exact"),
        Validity("coverage", "decades of ‖grad‖ in [1e-6, 10] with ≥ 10 "
                 "logged flow points",
                 Criterion(">=", 7, "ours", "the flows swept small gradients"),
                 kind="reached", claim="local_convexity", tolerance="exact"),
    ],
    changes=[
        Change("control_tanh", "guard (value: ‖grad‖ at the search's end)",
               "validity condition, positive control (true when the search finds the "
               "negative curvature built in)", "a search that cannot find negative "
               "curvature where it exists makes the test inconclusive, not a bug"),
        Change("coverage", "guard", "validity condition, reached",
               "flows that never reach small gradients leave the claim untested: "
               "inconclusive, not a failed build"),
        Change("claim kinds", "old form (paper)", "local_convexity, strict_at_optimum: "
               "reading", "the lemmas' statements were lost; we test our qualitative "
               "reconstruction of them"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import time
import warnings

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import (chapter_record, landscape, manifold, optimum, repro, riemannian,
                      twolayer, verdict)
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # tiny matrices: one thread is fastest on a shared machine
scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
n, d, m = P["sizes"]
print(f"scale = {scale}: {P['draws']} draws x {len(P['activations'])} activations; "
      f"{P['random']} random points, {P['flows']} flows, {P['searches']} searches")

# %% [markdown]
# ## Sampling the whole range of the gradient

# %% tags=["hide-input"]
results = {}  # activation -> list of landscape.probe outputs, one per data draw
optima = []  # (activation, ‖grad_M F(θ*)‖ / ‖∇F(θ*)‖, λ_min(θ*))
for act in P["activations"]:
    results[act] = []
    for _ in range(P["draws"]):
        X, y = twolayer.conditioned_uniform_data(n, d, gen, P["min_eig_K"])
        out = landscape.probe(
            X, y, act, m, gen, P["random"], P["std_range"], P["flows"], P["searches"],
            P["lam_tol"], P["flow_tol"], P["flow_steps"], P["log_every"],
            P["search_iter"])
        out["X"], out["y"] = X, y
        results[act].append(out)
        star = optimum.global_optimum(out["checked"][0], X, y, act)
        g_star = riemannian.grad(star, X, act).norm()
        e_star = riemannian.euclidean_grad(star, X, act).norm()
        lm_star = riemannian.lambda_min(star, X, act)
        optima.append((act, float(g_star / e_star), lm_star))
    print(f"{act}: δ* per draw =", [f"{r['delta_star']:.3g}" for r in results[act]],
          "; λ_min(θ*) =", [f"{o[2]:.3g}" for o in optima if o[0] == act])

# %% [markdown]
# The negative control: $\tanh$ with labels $y_i/2$ (so that $y_i/m$ is in its range). Its
# rank-one point $\theta_j^\top x_i=\tanh^{-1}(y_i/m)$ is stationary; we start the search a little
# away from it, where the gradient is of order one.

# %% tags=["hide-input"]
gen_c = torch.Generator().manual_seed(P["seed"] + 1)  # the same control at both scales
Xc, yc = twolayer.conditioned_uniform_data(n, d, gen_c, P["min_eig_K"])
yc = 0.5 * yc
with warnings.catch_warnings():
    warnings.simplefilter("ignore", optimum.AssumptionWarning)  # outside Assumption 3.1
    sym = optimum.global_optimum(torch.randn(m, d, generator=gen_c), Xc, yc, "tanh")
u = landscape.chart_coords(sym, Xc)
kick = P["control_kick"] * torch.randn(u.shape, generator=gen_c)
start = landscape.chart(u + kick, Xc, yc, "tanh")
end = landscape.frontier_search(start, Xc, yc, "tanh", P["lam_tol"], P["control_iter"])
control = {k: (float(riemannian.grad(th, Xc, "tanh").norm()),
               riemannian.lambda_min(th, Xc, "tanh"))
           for k, th in [("stationary", sym), ("start", start), ("end", end)]}
print({k: f"‖grad‖ = {g:.2e}, λ_min = {lm:.3g}" for k, (g, lm) in control.items()})
ev_sym = torch.linalg.eigvalsh(riemannian.hess_matrix(sym, Xc, "tanh"))
print(f"eigenvalues of Hess_M F at tanh's rank-one point: {float(ev_sym[0]):.4g} "
      f"to {float(ev_sym[-1]):.4g} ({len(ev_sym)} of them)")

# %% [markdown]
# The guards compare the package's closed forms with autograd at a few points of every draw (a
# random point, each flow's end, each search's end): the Riemannian gradient, the smallest eigenvalue
# of the Riemannian Hessian, and the differentiable objective the search uses.

# %% tags=["hide-input"]
err = {"grad": 0.0, "lmin": 0.0, "dense": 0.0, "on_M": 0.0}
for act, outs in results.items():
    for out in outs:
        X, y = out["X"], out["y"]
        for th in out["checked"]:
            g, lm = riemannian.grad(th, X, act), riemannian.lambda_min(th, X, act)
            e = float(riemannian.euclidean_grad(th, X, act).norm())  # round-off scale
            g_ref, H_ref = landscape.reference_grad_hessian(th, X, act)
            ev = torch.linalg.eigvalsh(H_ref)
            g2, lm_dense = landscape.grad_norm2_and_lambda_min(th, X, act)
            err["grad"] = max(err["grad"], float((g - g_ref).norm()) / e)
            scale_ev = float(ev.abs().max())
            err["lmin"] = max(err["lmin"], abs(lm - float(ev[0])) / scale_ev)
            g_rel = abs(float(g2) ** 0.5 - float(g.norm())) / e
            lm_rel = abs(float(lm_dense) - lm) / scale_ev
            err["dense"] = max(err["dense"], g_rel, lm_rel)
            off = manifold.constraints(th, X, y, act).abs().max()
            err["on_M"] = max(err["on_M"], float(off))
print({k: f"{v:.1e}" for k, v in err.items()})

# %% [markdown]
# ## Checks, and the paper-scale record

# %% tags=["hide-input"]
flow_g = np.array([p[0] for outs in results.values() for out in outs
                   for f in out["flow"] for p in f])
decades = sum(int(((flow_g >= 10.0**k) & (flow_g < 10.0 ** (k + 1))).sum() >= 10)
              for k in range(-6, 1))
delta_star = min(min(out["delta_star"], 1e9)  # 1e9: no negative curvature found at all
                 for outs in results.values() for out in outs)
g_end, lm_end = control["end"]
measured = {
    "delta_star": float(delta_star),
    "delta_star_spec": float(delta_star),
    "lmin_at_optimum": min(o[2] for o in optima),
    "control_tanh": bool(lm_end < -P["lam_tol"] and g_end <= 1e-6),
    "coverage": decades,
    "grad_vs_autograd": err["grad"],
    "lmin_vs_autograd": err["lmin"],
    "search_objective": err["dense"],
    "on_M": err["on_M"],
    "optimum_stationary": max(o[1] for o in optima),
}

# %% tags=["hide-input"]


def thin(pairs, k=400):  # the figure needs at most k points of each flow
    step = max(1, len(pairs) // k)
    return [list(p) for p in pairs[::step]] + [list(pairs[-1])]


data = {act: {"random": [list(p) for out in outs for p in out["random"]],
              "flow": [thin(f) for out in outs for f in out["flow"]],
              "search": [list(s) for out in outs for s in out["search"]],
              "delta_star": [min(out["delta_star"], 1e9) for out in outs]}
        for act, outs in results.items()}
data["control"] = control
data["control_ev"] = [float(ev_sym[0]), float(ev_sym[-1]), len(ev_sym)]
data["optima"] = optima
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; else this build's run
acts = [a for a in shown if a not in ("control", "optima", "control_ev")]
fig, axes = plt.subplots(1, len(acts) + 1, figsize=(7.6, 3.2))
for ax, act in zip(axes, acts):
    rec = shown[act]
    for k, f in enumerate(rec["flow"]):
        f = np.array(f)
        ax.scatter(f[:, 0], f[:, 1], s=3, color=COLORS["flow"], alpha=0.5,
                   label="flows" if k == 0 else None)
    r = np.array(rec["random"])
    ax.scatter(r[:, 0], r[:, 1], s=10, marker="x", color=COLORS["reference"],
               label="random points")
    s = np.array(rec["search"])
    ax.scatter(s[:, 1], s[:, 2], s=40, marker="*", color=COLORS["sgd"],
               label="search ends")
    ds = min(rec["delta_star"])
    ax.axvline(ds, color=COLORS["sgd"], ls=":", lw=1, label=rf"$\delta^*$ = {ds:.2g}")
    ax.axhline(0, color="k", lw=0.6)
    ax.set(xscale="log", xlabel=r"$\|\mathrm{grad}_\mathcal{M}F\|$", title=act)
    ax.set_yscale("symlog", linthresh=1e-4)

# %% tags=["hide-input"]
axes[0].set_ylabel(r"$\lambda_{\min}(\mathrm{Hess}_\mathcal{M}F)$")
axes[0].legend(fontsize=6)
ctl = shown["control"]
for k, key in enumerate(["start", "end", "stationary"]):
    g, lm = ctl[key]
    axes[-1].scatter(max(g, 1e-16), lm, s=30, color=f"C{k}", label=key)
axes[-1].axhline(0, color="k", lw=0.6)
axes[-1].set(xscale="log", title=r"control: $\tanh$",
             xlabel=r"$\|\mathrm{grad}_\mathcal{M}F\|$")
axes[-1].legend(fontsize=6)
glue("fig_convexity", fig, display=False)
plt.close(fig)
for act in acts:
    glue(f"delta_{act}", min(shown[act]["delta_star"]), display=False)
glue("control_g", ctl["end"][0], display=False)
glue("control_lm", ctl["end"][1], display=False)
ev_c = shown.get("control_ev", [float("nan")] * 3)
glue("control_ev_lo", ev_c[0], display=False)
glue("control_ev_hi", ev_c[1], display=False)
glue("control_ev_n", ev_c[2], display=False)

# %% [markdown]
# ```{glue:figure} fig_convexity
# :name: fig-convexity
#
# Paper scale. Smallest eigenvalue of the Riemannian Hessian against the Riemannian gradient norm
# ($m=10$, $d=n=3$; symmetric-log vertical axis). Dots: points along Riemannian gradient descent
# from negatively curved starts (thinned for the figure); crosses: random points of $\mathcal{M}$;
# stars: end points of the constrained search for the smallest gradient with negative curvature.
# Left of the dotted line $\delta^*$ no point has negative curvature. Right: the negative control,
# $\tanh$, where the same search ends at negative curvature with a vanishing gradient.
# ```
#
# (verdict-04)=
# ## Verdict
#
# The statuses below are derived from the checks by the book's one rule ({doc}`../book/intro`); the
# numbers come from the paper-scale record named on the first line, and this build's smoke run
# follows.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% [markdown]
# The earlier version of this chapter tested "$\lambda_{\min}\ge-10^{-8}$ wherever
# $\lVert\operatorname{grad}\rVert\le10^{-2}$", but its points with a small gradient all sat at
# $\theta^*$ and its random points all had gradients of order 5 or more, so the test only said that
# the Hessian is positive semidefinite at the optimum. Here the flows sweep the gradient continuously
# from its starting value down to $10^{-8}$, and the constrained search pushes the gradient down
# while holding the curvature negative. Negative curvature first appears at
# $\lVert\operatorname{grad}_\mathcal{M}F\rVert=$ {glue:text}`delta_sinh:.3g` for $\sinh$ and
# {glue:text}`delta_cubic:.3g` for $z+z^3/3$ (smallest over the paper-scale draws): the lemma's
# $\varepsilon$ is of order one on these data, far larger than the $10^{-2}$ the book used to test.
# The search is able to find the opposite (the control, a validity condition of the claim): next
# to $\tanh$'s rank-one stationary point it ends at
# $\lVert\operatorname{grad}\rVert=$ {glue:text}`control_g:.1e` with
# $\lambda_{\min}=$ {glue:text}`control_lm:.3g`. That point is not a saddle but a strict local
# maximum of $F$ on $\mathcal{M}$: all {glue:text}`control_ev_n` eigenvalues of its Riemannian
# Hessian are negative, from {glue:text}`control_ev_lo:.4g` to {glue:text}`control_ev_hi:.3g`.
# Since the lemma's statement (its formulas) did not survive the extraction of the paper's text,
# what is tested is our qualitative reconstruction of it, and the status says "under our
# reading". The measured $\delta^*$ is the smallest
# value our sampling and local searches found, an upper bound on the true one; the constrained search
# is local, so a region of negative curvature at smaller gradient that none of its starts reaches
# would be missed.
