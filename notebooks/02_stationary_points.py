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
# # Stationary points of the sharpness are rank-one global minima
#
# The previous chapter reduced the sharpness on the zero-loss manifold $\mathcal{M}$ to
# $F(\theta)=\sum_i\lVert x_i\rVert^2\sum_j\phi'(\theta_j^\top x_i)^2$. Paper 1
# {cite}`gatmiry2024simplicity` then shows that $F$ has a remarkably simple landscape on
# $\mathcal{M}$: "the trace of the Hessian regularizer has a unique stationary point on the
# manifold" (its Theorem 3.3), a global minimum at which all neurons compute the *same*
# feature on the data. The paper extends this to the cube activation: "Although [$z^3$] does
# not satisfy the strict positivity required in Assumption 3.1, we separately prove Theorem
# 3.3 for [$z^3$] (see Lemma G.4 in the Appendix.)"
#
# This chapter minimizes $F$ on $\mathcal{M}$ from many random starts and compares the end
# points with the closed form. For the cube it examines the points where descent stalls: they
# are exact stationary points that are not global minima, so the extension to $z^3$ fails.
# It then leaves the theorem's assumptions and looks at what breaks.

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
# ```{prf:theorem} Stationary points are rank-one global minima (paper 1, Theorem 3.3; our reconstruction of the statement)
# :label: thm-stationary
#
# Let $x_1,\dots,x_n$ be linearly independent and $\phi'>0$, $\phi'''>0$ (Assumption 3.1).
# A point $\theta\in\mathcal{M}$ is a first-order stationary point of $F$ on $\mathcal{M}$ if
# and only if
# $$\theta_j^\top x_i=\phi^{-1}(y_i/m)\qquad\text{for all } i, j .$$
# Hence every stationary point is a global minimum,
# $F^*=m\sum_i\lVert x_i\rVert^2\phi'(\phi^{-1}(y_i/m))^2$, and the feature matrix
# $\Phi_{ij}=\phi(\theta_j^\top x_i)=y_i/m$ has rank one.
# ```
#
# Why (our reconstruction of the proof): stationarity means $\nabla F=J^\top\lambda$ for some
# multipliers $\lambda$; block $j$ reads
# $\sum_i \phi'(z_{ij})\,(2\lVert x_i\rVert^2\phi''(z_{ij})-\lambda_i)\,x_i=0$. Independent
# $x_i$ give $\phi'(z_{ij})\,(2\lVert x_i\rVert^2\phi''(z_{ij})-\lambda_i)=0$; **dividing by
# $\phi'(z_{ij})>0$** gives $\phi''(z_{ij})=\lambda_i/(2\lVert x_i\rVert^2)$ for every $j$;
# $\phi''$ is injective because $\phi'''>0$, so $z_{ij}$ does not depend on $j$, and the
# constraint $m\,\phi(z_{ij})=y_i$ fixes it.
#
# For the cube the paper argues (Lemma G.4) that "the only argument that we use in the proof
# of Theorem 3.3 which depends on Assumption 3.1 is the invertibility of [$\phi$ and
# $\phi''$] which holds for the cube activation". The division by $\phi'(z_{ij})$ is a second
# such argument, and $\phi'(0)=0$ for $z^3$.
#
# | part of the setting | source |
# |---|---|
# | $f_\theta(x)=\sum_j\phi(\theta_j^\top x)$, independent data, Assumption 3.1 | the paper |
# | $m=10$, $d=n=3$, data uniform on $[0,1]$ | the paper (its Figure 1) |
# | labels $y_i\sim U[0,1]$; activations $\sinh$, $z+z^3/3$, $z^3$ | **our choice** |
# | rejecting data draws with $\lambda_{\min}(XX^\top)<0.05$ | **our choice**, for speed ({doc}`05_convergence_rate`) |
# | minimizer: Riemannian gradient descent, Armijo steps, Newton retraction | **our choice** |
# | general second-layer weights: $a_j\phi''(z_{ij})=\kappa_i$ | **our derivation** (the paper states only "rank one") |

# %% [markdown]
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims, and the criterion of
# every check, each tagged as the paper's or ours. The checks below read their thresholds from
# here.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import Change, Check, Claim, Criterion, Protocol, Setting, same
from flatbias.protocol_changes import error_tolerance

PROTOCOL = Protocol(
    chapter="02_stationary_points",
    settings={
        "size": same([3, 3, 10], "paper", "(n, d, m) of Figure 1"),
        "min_eig_K": same(0.05, "ours", "smallest λ_min(XXᵀ) of the data draw"),
        "seed": same(0, "ours"),
        "inits": Setting(5, 20, "ours", "random starts per activation"),
        "tol": same(1e-9, "ours", "stop at ‖grad_M F‖ ≤ tol"),
        "max_steps": same(5000, "ours", "step budget of runs expected to converge"),
        "cube_steps": Setting(1500, 2000, "ours", "horizon of the cube's random runs"),
        "snap_tol": same(0.05, "ours", "|z_ij| below this counts as a zero"),
        "positive_starts": Setting(3, 20, "ours", "cube starts with all z_ij > 0"),
        "random_points": Setting(30, 100, "ours", "random points of M per activation"),
        "beyond_inits": Setting(2, 5, "ours", "softplus / tanh starts per init"),
        "beyond_steps": same(1000, "ours", "softplus / tanh horizon"),
        "third_order_t": same(1e-3, "ours", "step of the third-order test"),
    },
    claims=[
        Claim("rank_one", "Under Assumption 3.1 (φ = sinh, z + z³/3) every "
                          "stationary point of F on M has θ_jᵀx_i = φ⁻¹(y_i/m): "
                          "it is the global minimum, and Φ is rank one",
              "Paper 1, Theorem 3.3 (formula lost in extraction)", kind="reading",
              quote="Under aforementioned Assumptions 3.1 and 3.2, we show that the "
                    "trace of the Hessian regularizer has a unique stationary point "
                    "on the manifold.",
              locator="Section 3.1, the sentence introducing Theorem 3.3",
              ours_part="the formula θ_jᵀx_i = φ⁻¹(y_i/m) (reconstructed); "
                        "the tolerances 1e-6 / 1e-9; sinh and z + z³/3"),
        Claim("cube", "For φ(z) = z³ (labels ≠ 0) Theorem 3.3 holds as well: every "
              "stationary point of F on M is the rank-one global minimum",
              "Paper 1, Section 3.1 and Lemma G.4", kind="paper",
              quote="Although [z³] does not satisfy the strict positivity required "
                    "in Assumption 3.1, we separately prove Theorem 3.3 for [z³] "
                    "(see Lemma G.4 in the Appendix.)",
              locator="Section 3.1, after Assumption 3.1 (bracketed formulas were "
                      "lost in extraction)"),
        Claim("cube_saddles", "For z³ the points where descent stalls are stationary "
              "points with some z_ij = 0: degenerate saddles (Hessian PSD, F falls at "
              "third order), approached from z_ij < 0 and never left",
              "ours (our analysis of the cube's stall points)", kind="ours"),
        Claim("general_a", "With fixed second-layer weights a_j ≠ 0 the φ''-image "
              "a_jφ''(z_ij) is rank one at the stationary point",
              "Paper 1, Section 4.2", kind="reading",
              quote="namely, the image of the feature matrix is rank one",
              locator="Section 4.2, Results for General Second Layer Weights",
              ours_part="the image is a_jφ''(z_ij) (the paper's formula was lost; "
                        "the φ''-embedding is named in the next sentence); the "
                        "tolerance 1e-6"),
        Claim("beyond", "Outside Assumption 3.1 the rank-one point need not be the "
              "minimum: softplus runs end there, tanh runs fall below half its F, "
              "and for tanh it is a strict local maximum of F on M",
              "ours", kind="ours"),
    ],
    checks=[
        Check("dz_rank_one", "max |z − z*| at the end of the sinh, z+z³/3 runs",
              Criterion("<=", 1e-6, "ours"), claim="rank_one", fmt=".1e",
              tolerance="error"),
        Check("dF_rank_one", "max (F − F*)/F* at their end",
              Criterion("<=", 1e-9, "ours"), claim="rank_one", fmt=".1e"),
        Check("sigma_rank_one", "max σ2/σ1 of Φ at their end",
              Criterion("<=", 1e-6, "ours"), claim="rank_one", fmt=".1e",
              tolerance="error"),
        Check("below_F_star", "random points of M with F < F* (sinh, z+z³/3)",
              Criterion("<=", 0, "paper"), role="secondary", claim="rank_one",
              fmt=".0f", tolerance="exact"),
        Check("cube_stationary", "random-start runs that stall at a non-optimal "
              "stationary point (snapped: F > F*(1 + 1e-6), "
              "‖grad_M F‖ ≤ 1e-10 ‖∇F‖)",
              Criterion("<=", 0, "paper"), claim="cube", fmt=".0f",
              tolerance="exact"),
        Check("cube_trapped", "random-start runs with a z_ij trapped below 0",
              Criterion("<=", 0, "paper"), claim="cube", fmt=".0f",
              tolerance="exact"),
        Check("cube_positive_miss", "runs from starts with all z_ij > 0 that miss "
              "z* by more than 1e-6", Criterion("<=", 0, "paper"), role="secondary",
              claim="cube", fmt=".0f", tolerance="exact"),
        Check("cube_below_F_star", "random points of M with F < F* (z³)",
              Criterion("<=", 0, "paper"), role="secondary", claim="cube", fmt=".0f",
              tolerance="exact"),
        Check("saddle_psd", "min λ_min/λ_max of Hess_M F there",
              Criterion(">=", -1e-10, "ours"), claim="cube_saddles", fmt=".1e"),
        Check("saddle_zero_modes", "zero eigenvalues of Hess_M F = zero z_ij",
              Criterion("==", True, "ours"), claim="cube_saddles",
              tolerance="exact"),
        Check("saddle_third_order", "max |ΔF/(−λ_i t³) − 1| moving one zero "
                                    "z_ij to ±t",
              Criterion("<=", 0.01, "ours"), claim="cube_saddles", fmt=".1e",
              tolerance="error"),
        Check("trap_velocity", "max ‖ż − predicted ż‖/‖predicted‖ of the "
                               "small z_ij",
              Criterion("<=", 0.1, "ours"), role="secondary", claim="cube_saddles",
              fmt=".1e", tolerance=0.05),
        Check("stall_gap", "max (F_end − F_S)/(F_S − F*) of the stalled runs",
              Criterion("<=", 0.01, "ours"), role="secondary", claim="cube_saddles",
              fmt=".1e", tolerance=0.05),
        Check("general_dz", "max |z − z*| with general a (sinh, z+z³/3)",
              Criterion("<=", 1e-6, "ours"), claim="general_a", fmt=".1e",
              tolerance="error"),
        Check("general_image", "max σ2/σ1 of a_jφ''(z_ij)",
              Criterion("<=", 1e-6, "ours"), claim="general_a", fmt=".1e",
              tolerance="error"),
        Check("general_cubic_phi", "σ2/σ1 of Φ for z+z³/3 (ours: Φ not rank one)",
              Criterion(">", 1e-5, "ours"), role="secondary", claim="general_a",
              fmt=".1e", tolerance=0.01),
        Check("softplus_at_sym", "max |F_end/F_sym − 1| for softplus",
              Criterion("<=", 1e-6, "ours"), claim="beyond", fmt=".1e",
              tolerance="error"),
        Check("tanh_below", "max F_end/F_sym for tanh",
              Criterion("<", 0.5, "ours"), claim="beyond", tolerance=0.05),
        Check("tanh_sym_max", "largest eigenvalue of Hess_M F / spectral radius at "
              "tanh's rank-one point", Criterion("<", 0, "ours",
                                                  "a strict local maximum"),
              role="secondary", claim="beyond", fmt=".2g"),
        Check("on_M", "max |f(x_i) − y_i| at every start, end and snapped point",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("saddle_grad", "max ‖grad_M F‖/‖∇F‖ at the points with z_ij "
                             "snapped to 0 (stationary by their closed form)",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("grad_vs_autograd", "max ‖grad_M F − P_T ∇F "
                                  "(autograd)‖/‖∇F‖",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("hess_vs_autograd", "max |Hess_M F − projected autograd Hessian| / "
                                  "λ_max",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
        Check("multipliers", "max rel. error of λ at the snapped points vs "
                             "12‖x_i‖²c_i",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
        Check("closed_values", "max rel. error of F*, F_S vs F at their points",
              Criterion("<=", 1e-12, "ours"), role="guard", fmt=".1e"),
        Check("optimum_stationary", "max ‖grad_M F‖/‖∇F‖ at "
                                    "optimum.global_optimum",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("positive_start_min_z", "min z_ij at the positive cube starts",
              Criterion(">", 0, "ours"), role="guard"),
    ],
    changes=[
        Change("cube check", "`reached or min|z| < 0.02` (cannot tell a stationary "
               "point from a slow run)", "grad, Hessian, third-order and velocity "
               "checks at the stall points", "classify the stall points"),
        Change("positive cube starts", "retraction of (y_i/m)^{1/3}(0.5 + U), asserted "
               "positive", "row-scaled positive z, exactly on M (no retraction)",
               "the retraction turned a small z_ij negative in 10 of 200 draws, so the "
               "full run stopped at its assert (a bug of the book's start, not a "
               "finding)"),
        Change("cube horizon (full)", "60000 steps", "2000 steps",
               "the stall points are classified, not waited out; time budget"),
        Change("softplus / tanh (full)", "20 starts, 20000 steps",
               "5 starts, 1000 steps",
               "F_end/F_sym is flat after ~1000 steps; time budget"),
        Change("cube_stationary", "counted the constructed single-zero point too "
               "(stationary by construction, so the count was ≥ 1 whatever the runs "
               "did)", "counts random-start runs only",
               "a check must be able to pass; the constructed point stays in the "
               "guards"),
        Change("saddle_grad", "primary check of cube_saddles", "guard",
               "the snapped points are stationary by their closed form "
               "(optimum.cube_stationary_point): a check of our code, not a finding"),
        Change("tanh_sym_max", "absent (the text called tanh's rank-one point a "
               "saddle)", "secondary check of beyond, criterion < 0",
               "a reader found all 27 eigenvalues negative at chapter 04's control "
               "point: a strict local maximum; added after that was seen"),
        Change("claim kinds", "old form (every claim reading='ours')",
               "rank_one, general_a: reading; cube: paper (quoted); cube_saddles, "
               "beyond: ours", "the second rule of claims"),
        error_tolerance(["dz_rank_one", "sigma_rank_one", "saddle_third_order",
                         "general_dz", "general_image", "softplus_at_sym"],
                        "dz_rank_one, general_dz and general_image moved by 0.8 %, "
                        "saddle_third_order by 0.06 %"),
        Change("tolerance of general_cubic_phi",
               "round-off",
               "±0.01 (relative)",
               "σ2/σ1 is read at points a descent reached to |z − z*| ≤ 1e-6 "
               "(general_dz's bound), and moves with z at first order: relative "
               "changes up to about 1e-6 / 3e-4 are within the solver's accuracy (a "
               "run on a 2-core Intel Xeon (AVX-512) beside the records made on an "
               "AMD EPYC (AVX2) found values of this kind that differ beyond "
               "round-off between CPUs; this one moved by 2e-6 relative); criterion "
               "unchanged"),
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

from flatbias import (chapter_record, cube_saddles, manifold, optimum, repro,
                      riemannian, twolayer, verdict)
from flatbias.activations import get_activation
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

torch.set_default_dtype(torch.float64)
torch.set_num_threads(1)  # tiny matrices: threads only add overhead on a shared CPU
scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
n, d, m = P["size"]
print(f"scale = {scale}: n = {n}, d = {d}, m = {m}; {P['inits']} starts per activation")

# %% [markdown]
# ## Descent from random points of $\mathcal{M}$ (Assumption 3.1)

# %% tags=["hide-input"]
X, y = twolayer.conditioned_uniform_data(n, d, gen, P["min_eig_K"])
lam_K = torch.linalg.eigvalsh(X @ X.T)
print("λ(XXᵀ) of this draw:", np.round(lam_K.numpy(), 3))
F_star = {a: optimum.F_star(X, y, a, m) for a in ["sinh", "cubic", "cube"]}

# %% tags=["hide-input"]
# activation -> [(max |z - z*|, (F - F*)/F*, σ2/σ1, t log, (F - F*)/F* log)]
ends = {}
starts, finals = [], []  # (activation, θ) for the guards
for act in ["sinh", "cubic"]:
    ends[act] = []
    for _ in range(P["inits"]):
        theta0 = manifold.random_point(X, y, act, m, gen)
        tr = riemannian.descent(theta0, X, y, act, tol=P["tol"],
                                max_steps=P["max_steps"], log_every=20)
        s = torch.linalg.svdvals(twolayer.feature_matrix(tr.theta, X, act))
        gap = (np.array(tr.F) - F_star[act]) / F_star[act]
        ends[act].append((optimum.distance_to_optimum(tr.theta, X, y, act), gap[-1],
                          float(s[1] / s[0]), tr.t, gap))
        starts.append((act, theta0))
        finals.append((act, tr.theta))
    print(f"{act:6s} F* = {F_star[act]:.4f}; max |z - z*| =",
          f"{max(r[0] for r in ends[act]):.1e}")

# %% [markdown]
# The theorem also says that no point of $\mathcal{M}$ does better than $F^*$. A direct
# check at random points, for the cube too:

# %% tags=["hide-input"]
below = {}
for act in ["sinh", "cubic", "cube"]:
    pts = [manifold.random_point(X, y, act, m, gen) for _ in range(P["random_points"])]
    below[act] = sum(float(twolayer.sharpness(t, X, act)) < F_star[act] for t in pts)
    starts += [(act, t) for t in pts[:3]]
print("random points of M with F < F*:", below)

# %% [markdown]
# ## The cube: where descent stalls
#
# The cube $\phi(z)=z^3$ has $\phi'''=6>0$ but $\phi'(0)=0$. The stationarity equation
# $\phi'(z_{ij})\,(2\lVert x_i\rVert^2\phi''(z_{ij})-\lambda_i)=0$ then has the extra
# solutions $z_{ij}=0$. For every **support** $S$ (which $z_{ij}$ are non-zero; at least one
# per row) the point
# $$z_{ij}=c_i=(y_i/|S_i|)^{1/3}\ \text{on } S,\qquad z_{ij}=0\ \text{off } S$$
# is on $\mathcal{M}$ and stationary, with multipliers $\lambda_i=12\lVert x_i\rVert^2c_i$ and
# $F_S=9\sum_i\lVert x_i\rVert^2y_i^{4/3}|S_i|^{-1/3}$, above $F^*$ unless $S$ is full (our
# derivation; `optimum.cube_stationary_point`). It is not a local minimum: moving one zero
# $z_{ij}$ to $t$ along $\mathcal{M}$ changes $F$ by $-\lambda_i t^3+O(t^4)$, a decrease for
# $t>0$ that the Hessian (zero in that direction) does not see. Near it a small $z_{ij}$ moves
# as $\dot z_{ij}\approx C z_{ij}^2$ with $C>0$ (`optimum.cube_slow_velocity`): from below it
# creeps up to $0$ like $-1/(Ct)$ and never crosses.
#
# We run descent from random points of $\mathcal{M}$ (about half of the $z_{ij}$ negative)
# for a fixed horizon, then take every end point apart: snap its small $z_{ij}$ to $0$
# (the support is the rest), and at the snapped point evaluate $\lVert\operatorname{grad}_
# \mathcal{M}F\rVert$, the Riemannian Hessian, and $F$ along the escape direction. One
# constructed point (a single zero, $z_{11}=0$) is examined the same way.

# %% tags=["hide-input"]
cube_runs = []  # (θ_end, trajectory) from random starts
for _ in range(P["inits"]):
    theta0 = manifold.random_point(X, y, "cube", m, gen)
    tr = riemannian.descent(theta0, X, y, "cube", tol=P["tol"],
                            max_steps=P["cube_steps"], log_every=25, keep_thetas=True)
    cube_runs.append(tr)
    starts.append(("cube", theta0))
    finals.append(("cube", tr.theta))
ends["cube"] = [optimum.distance_to_optimum(tr.theta, X, y, "cube") for tr in cube_runs]
print("cube, random starts: max |z - z*| per run:", [f"{e:.0e}" for e in ends["cube"]])

# %% tags=["hide-input"]
support0 = torch.ones(n, m, dtype=torch.bool)
support0[0, 0] = False  # the constructed point: a single zero, z_11 = 0
examined = [(None, support0, optimum.cube_stationary_point(cube_runs[0].theta, X, y,
                                                           support0))]
for tr in cube_runs:
    S = cube_saddles.support(tr.theta, X, P["snap_tol"])
    if S is not None:
        examined.append((tr, S, optimum.cube_stationary_point(tr.theta, X, y, S)))
saddles = [cube_saddles.examine(th, X, y, S, P["third_order_t"])
           for _, S, th in examined]
print("examined points: F_S/F* - 1 =",
      [f"{s['F_S'] / F_star['cube'] - 1:.1e}" for s in saddles])
print("max ‖grad_M F‖/‖∇F‖ there:", f"{max(s['grad'] for s in saddles):.0e}")

# %% [markdown]
# Which stalled runs are *trapped* (a small $z_{ij}<0$, which the flow pushes up to $0$ but
# never across) and which only *escape slowly* (a small $z_{ij}>0$, which grows away)? The
# measured velocity of the small $z_{ij}$ over the last logged interval, against the
# prediction $\dot z_{ij}\approx Cz_{ij}^2$ at the snapped support:

# %% tags=["hide-input"]
stalls = []  # per stalled run: (trapped?, velocity mismatch, (F_end - F_S)/(F_S - F*),
#               t log, log of the most negative small z_ij)
for (tr, S, th), sad in zip(examined[1:], saddles[1:]):
    a, b = tr.thetas[-2], tr.thetas[-1]
    Za, Zb = twolayer.preactivations(a, X), twolayer.preactivations(b, X)
    vel = ((Zb - Za) / (tr.t[-1] - tr.t[-2]))[~S]
    pred = optimum.cube_slow_velocity(0.5 * (a + b), X, y, S)[~S]
    trapped = bool((Zb[~S] < 0).any())
    z_log = [float(twolayer.preactivations(t, X)[~S].min()) for t in tr.thetas]
    gap = (tr.F[-1] - sad["F_S"]) / (sad["F_S"] - F_star["cube"])
    stalls.append((trapped, float((vel - pred).norm() / pred.norm()), gap, tr.t, z_log))
n_trapped = sum(s[0] for s in stalls)
print(f"{len(stalls)} of {len(cube_runs)} runs stall near a zero z_ij; "
      f"{n_trapped} trapped (a z_ij < 0)")
print("velocity of the small z_ij vs prediction, rel. mismatch:",
      [f"{s[1]:.1e}" for s in stalls])

# %% [markdown]
# Starts with **all** $z_{ij}>0$ begin away from the zeros. We build them exactly on
# $\mathcal{M}$: draw $u_{ij}\in[0.5,1.5]$, scale each row so that $\sum_j z_{ij}^3=y_i$, and
# solve for $\theta$ (`manifold.from_preactivations`), with no retraction, which could move a
# small $z_{ij}$ below $0$.

# %% tags=["hide-input"]
positive = []  # (max |z - z*|, min z at the start)
for _ in range(P["positive_starts"]):
    u = 0.5 + torch.rand(n, m, generator=gen)
    Z0 = u * (y[:, None] / (u**3).sum(1, True)) ** (1 / 3)  # Σ_j z_ij³ = y_i, all > 0
    theta0 = manifold.from_preactivations(Z0, X)
    tr = riemannian.descent(theta0, X, y, "cube", tol=P["tol"],
                            max_steps=P["max_steps"])
    positive.append((optimum.distance_to_optimum(tr.theta, X, y, "cube"),
                     float(twolayer.preactivations(theta0, X).min())))
    starts.append(("cube", theta0))
    finals.append(("cube", tr.theta))
print("cube, positive starts: max |z - z*| per run:", [f"{r[0]:.0e}" for r in positive])

# %% [markdown]
# ## General second-layer weights
#
# With $f_\theta(x)=\sum_j a_j\phi(\theta_j^\top x)$ and fixed $a_j\ne0$, the same argument
# gives $a_j\phi''(z_{ij})=\kappa_i$: the **$\phi''$-image** $[a_j\phi''(z_{ij})]$ is rank
# one, as the paper states; $\kappa_i$ is the unique root of
# $\sum_j a_j\phi\big((\phi'')^{-1}(\kappa_i/a_j)\big)=y_i$ (our derivation). For $\sinh$
# this is $z_{ij}=\operatorname{asinh}(y_i/(m a_j))$, so the feature matrix itself is still
# rank one; for $z+z^3/3$ it is not (only nearly: $z_{ij}=\kappa_i/(2a_j)$ is small here,
# where $\phi$ is nearly linear).

# %% tags=["hide-input"]
sign = torch.where(torch.rand(m, generator=gen) < 0.3, -1.0, 1.0)
a = (0.5 + torch.rand(m, generator=gen)) * sign
general = {}  # activation -> (max |z - z*|, σ2/σ1 of the φ''-image, σ2/σ1 of Φ)
for act in ["sinh", "cubic"]:
    theta0 = manifold.random_point(X, y, act, m, gen, a=a)
    tr = riemannian.descent(theta0, X, y, act, a=a, tol=P["tol"],
                            max_steps=P["max_steps"], log_every=50)
    Z = twolayer.preactivations(tr.theta, X)
    s_img = torch.linalg.svdvals(get_activation(act).d2(Z) * a)
    s_phi = torch.linalg.svdvals(twolayer.feature_matrix(tr.theta, X, act))
    general[act] = (optimum.distance_to_optimum(tr.theta, X, y, act, a),
                    float(s_img[1] / s_img[0]), float(s_phi[1] / s_phi[0]))
    print(f"{act}: max |z - z*| = {general[act][0]:.1e}, σ2/σ1 of a_j φ''(z_ij): "
          f"{general[act][1]:.1e}, of Φ: {general[act][2]:.1e}")

# %% [markdown]
# ## Beyond the theorem: activations with a sign change of $\phi'''$
#
# The rank-one point $z_{ij}=\phi^{-1}(y_i/m)$ is stationary for *every* activation.
# Assumption 3.1 is what makes it the only one. We run the same descent with softplus
# ($\phi'''$ changes sign at 0) and $\tanh$ ($\phi'''$ changes sign and $\phi'\to0$ in the
# tails; labels scaled by $1/2$ so that $y_i/m$ is in its range), also from wider starts
# $\theta_j\sim\mathcal N(0,4I)$, and compare the end value of $F$ with the rank-one value
# $F^{\rm sym}$.

# %% tags=["hide-input"]
beyond = {}  # "activation, init" -> list of F_end / F_sym
for act, labels in [("softplus", y), ("tanh", 0.5 * y)]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optimum.AssumptionWarning)  # outside on purpose
        F_sym = optimum.F_star(X, labels, act, m)
    for std in [None, 2.0]:
        key = f"{act}, std {'1/√d' if std is None else std}"
        beyond[key] = []
        for _ in range(P["beyond_inits"]):
            theta0 = manifold.random_point(X, labels, act, m, gen, init_std=std)
            tr = riemannian.descent(theta0, X, labels, act, tol=P["tol"],
                                    max_steps=P["beyond_steps"], log_every=50)
            beyond[key].append(tr.F[-1] / F_sym)
        print(f"{key}: F_end / F_sym =", [f"{r:.4f}" for r in beyond[key]])

# %% [markdown]
# Where does tanh's rank-one point sit? The eigenvalues of its Riemannian Hessian:

# %% tags=["hide-input"]
with warnings.catch_warnings():
    warnings.simplefilter("ignore", optimum.AssumptionWarning)
    sym = optimum.global_optimum(starts[0][1], X, 0.5 * y, "tanh")
ev_sym = torch.linalg.eigvalsh(riemannian.hess_matrix(sym, X, "tanh"))
tanh_sym_max = float(ev_sym[-1] / ev_sym.abs().max())
print(f"tanh, rank-one point: eigenvalues of Hess_M F from {float(ev_sym[0]):.3g} "
      f"to {float(ev_sym[-1]):.3g} ({len(ev_sym)} of them)")

# %% [markdown]
# ## Checks, and the paper-scale record
#
# The guards compare the package's closed forms with autograd at the start, end and snapped
# points: the Riemannian gradient with the autograd gradient of $F$ projected by the dense
# $P_T$, and the Riemannian Hessian with the autograd Hessian of the Lagrangian
# $F-\lambda^\top c$ in the same tangent basis.

# %% tags=["hide-input"]
def grad_error(act, theta):
    t = theta.clone().requires_grad_(True)
    g = torch.autograd.grad(twolayer.sharpness(t, X, act), t)[0].reshape(-1)
    auto = manifold.tangent_projector(theta, X, act) @ g
    closed = riemannian.grad(theta, X, act).reshape(-1)
    return float((closed - auto).norm() / g.norm())


optima = [(act, optimum.global_optimum(starts[0][1], X, y, act))
          for act in ["sinh", "cubic", "cube"]]
points = starts + finals + optima + [("cube", th) for _, _, th in examined]

# %% tags=["hide-input"]
measured = {
    "dz_rank_one": max(r[0] for act in ["sinh", "cubic"] for r in ends[act]),
    "dF_rank_one": max(r[1] for act in ["sinh", "cubic"] for r in ends[act]),
    "sigma_rank_one": max(r[2] for act in ["sinh", "cubic"] for r in ends[act]),
    "below_F_star": below["sinh"] + below["cubic"],
    "cube_stationary": sum(s["grad"] <= 1e-10 and s["F_S"] > F_star["cube"] * (1 + 1e-6)
                           for s in saddles[1:]),  # [0]: the constructed point
    "cube_trapped": n_trapped,
    "cube_positive_miss": sum(r[0] > 1e-6 for r in positive),
    "cube_below_F_star": below["cube"],
}

# %% tags=["hide-input"]
measured |= {
    "saddle_grad": max(s["grad"] for s in saddles),
    "saddle_psd": min(float(s["ev"][0] / s["ev"][-1]) for s in saddles),
    "saddle_zero_modes": all(int((s["ev"].abs() <= 1e-10 * s["ev"][-1]).sum())
                             == s["zeros"] for s in saddles),
    "saddle_third_order": max(s["third"] for s in saddles),
    "trap_velocity": max((s[1] for s in stalls), default=float("nan")),
    "stall_gap": max((s[2] for s in stalls), default=float("nan")),
    "general_dz": max(g[0] for g in general.values()),
    "general_image": max(g[1] for g in general.values()),
    "general_cubic_phi": general["cubic"][2],
    "softplus_at_sym": max(abs(r - 1) for k, v in beyond.items() if "softplus" in k
                           for r in v),
    "tanh_below": max(r for k, v in beyond.items() if "tanh" in k for r in v),
    "tanh_sym_max": tanh_sym_max,
}

# %% tags=["hide-input"]
measured |= {  # the guards
    "on_M": max(float(manifold.constraints(th, X, y, act).abs().max())
                for act, th in points),
    "grad_vs_autograd": max(grad_error(act, th) for act, th in points),
    "hess_vs_autograd": max(s["hess_err"] for s in saddles),
    "multipliers": max(s["lam_err"] for s in saddles),
    "closed_values": max(
        [abs(s["F0"] - s["F_S"]) / s["F_S"] for s in saddles]
        + [abs(float(twolayer.sharpness(th, X, act)) - F_star[act]) / F_star[act]
           for act, th in optima]),
    "optimum_stationary": max(float(riemannian.grad(th, X, act).norm()
                                    / riemannian.euclidean_grad(th, X, act).norm())
                              for act, th in optima),
    "positive_start_min_z": min(r[1] for r in positive),
}

# %% tags=["hide-input"]
data = {
    "lam_K": lam_K.tolist(), "F_star": F_star,
    "gaps": {act: [(r[3], r[4]) for r in ends[act]] for act in ["sinh", "cubic"]},
    "cube_gaps": [(tr.t, (np.array(tr.F) - F_star["cube"]) / F_star["cube"])
                  for tr in cube_runs],
    "stalls": [dict(trapped=s[0], t=s[3], z=s[4]) for s in stalls],
    "saddles": [dict(F_ratio=s["F_S"] / F_star["cube"], zeros=s["zeros"], ev=s["ev"])
                for s in saddles],
    "n_cube": len(cube_runs), "n_positive": len(positive), "beyond": beyond,
}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; this build's run if there is none
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(10.5, 3.2))
for k, act in enumerate(["sinh", "cubic"]):
    for i, (t, g) in enumerate(shown["gaps"][act]):
        t, g = np.array(t), np.array(g)
        ax0.loglog(t[1:], np.maximum(g[1:], 1e-16), color=f"C{k}", lw=1,
                   label=act if i == 0 else None)
for i, (t, g) in enumerate(shown["cube_gaps"]):
    t, g = np.array(t), np.array(g)
    ax0.loglog(t[1:], np.maximum(g[1:], 1e-16), color="C2", lw=1,
               label="cube" if i == 0 else None)
ax0.set(xlabel="time $t$ (sum of step sizes)", ylabel=r"$(F-F^*)/F^*$",
        title="descent from random starts")
ax0.legend(fontsize=8)

# %% tags=["hide-input"]
for s in shown["stalls"]:
    t, z = np.array(s["t"]), np.array(s["z"])
    sel = (t > 0) & (z < 0)
    ax1.loglog(t[sel], -z[sel], color="C2" if s["trapped"] else "C1", lw=1)
tt = np.array([10.0, 1e3])
ax1.loglog(tt, 2 / tt, color=COLORS["reference"], ls="--", lw=0.8, label="slope −1")
ax1.set(xlabel="time $t$", ylabel=r"$-\min_{\rm small}\, z_{ij}$",
        title="cube: trapped pre-activations")
ax1.legend(fontsize=8)
for k, (key, vals) in enumerate(shown["beyond"].items()):
    color = "C3" if "softplus" in key else "C4"
    ax2.scatter(np.full(len(vals), k), vals, color=color, s=18)
ax2.axhline(1, color=COLORS["reference"], ls="--", lw=0.8, label=r"$F^{\rm sym}$")
ax2.set_xticks(range(len(shown["beyond"])),
               [k.replace(", ", "\n") for k in shown["beyond"]], fontsize=7)
ax2.set(ylabel=r"$F_{\rm end}/F^{\rm sym}$", yscale="log",
        title="outside: softplus, tanh")
ax2.legend(fontsize=8)
glue("fig_stationary", fig, display=False)
plt.close(fig)

# %% tags=["remove-cell"]
ev_paper = paper.evaluation if paper.record is not None else smoke
glue("n_cube", shown["n_cube"], display=False)
glue("n_stalled", len(shown["stalls"]), display=False)
glue("n_trapped", int(ev_paper.value("cube_trapped")), display=False)
ratios = [s["F_ratio"] - 1 for s in shown["saddles"][1:]] or [float("nan")]
glue("F_S_min", min(ratios), display=False)
glue("F_S_max", max(ratios), display=False)
glue("saddle_grad", ev_paper.value("saddle_grad"), display=False)
glue("third", ev_paper.value("saddle_third_order"), display=False)
glue("tanh_ratio", ev_paper.value("tanh_below"), display=False)
glue("n_positive", shown["n_positive"], display=False)
glue("positive_miss", int(ev_paper.value("cube_positive_miss")), display=False)
glue("trap_velocity", ev_paper.value("trap_velocity"), display=False)
gap_end = ev_paper.value("stall_gap")
glue("stall_gap", abs(gap_end), display=False)
side = "above" if gap_end > 0 else "below"
glue("stall_side", verdict.PlainText(side), display=False)
glue("tanh_sym_max", ev_paper.value("tanh_sym_max"), display=False)
glue("lam_K_min", float(shown["lam_K"][0]), display=False)

# %% [markdown]
# ```{glue:figure} fig_stationary
# :name: fig-stationary
#
# Paper scale ($m=10$, $d=n=3$, $\lambda_{\min}(XX^\top)=$ {glue:text}`lam_K_min:.3f`).
# Left: relative gap $(F-F^*)/F^*$ along Riemannian gradient descent from random points of
# $\mathcal{M}$; every $\sinh$ and $z+z^3/3$ run falls to round-off at the closed-form optimum,
# while most cube runs level off at the value $F_S>F^*$ of a stationary point with some
# $z_{ij}=0$. Middle: in the stalled cube runs, the most negative small pre-activation creeps
# up to $0$ like $1/t$ (green: trapped runs; orange: runs whose small $z_{ij}$ are positive
# and escape). Right: outside Assumption 3.1. For softplus every run ends at the rank-one
# point; for $\tanh$ the descent goes far *below* it.
# ```
#
# (verdict-02)=
# ## Verdict
#
# The statuses below are derived from the checks by the book's one rule
# ({doc}`../book/intro`); the numbers come from the paper-scale record named on the first
# line, and this build's smoke run follows.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% [markdown]
# **Under Assumption 3.1** ($\sinh$, $z+z^3/3$) every run from a random point of
# $\mathcal{M}$ ends at $\theta_j^\top x_i=\phi^{-1}(y_i/m)$, with $F=F^*$ and a rank-one
# feature matrix, and no random point of $\mathcal{M}$ beats $F^*$. With general second-layer
# weights the $\phi''$-image is rank one.
#
# **For the cube** the paper's extension (Lemma G.4) does not hold as stated. Of
# {glue:text}`n_cube` random starts, {glue:text}`n_stalled` stall near a point with some
# $z_{ij}=0$ and {glue:text}`n_trapped` have a pre-activation trapped below $0$. The stall
# points are not an artifact of a slow optimizer: snapping the small $z_{ij}$ to $0$ gives
# points of $\mathcal{M}$ that are *exactly* stationary ($\lVert\operatorname{grad}_
# \mathcal{M}F\rVert/\lVert\nabla F\rVert\le$ {glue:text}`saddle_grad:.0e`, round-off) with
# $F_S/F^*-1$ from {glue:text}`F_S_min:.1e` to {glue:text}`F_S_max:.1e`, i.e. first-order
# stationary points that are not global minima. Their Riemannian Hessian is positive
# semi-definite with exactly one zero eigenvalue per zero $z_{ij}$, so they are second-order
# stationary as well; $F$ falls only at third order, as $-\lambda_it^3$ (to
# {glue:text}`third:.0e` at $t=10^{-3}$), along the direction that raises a zero $z_{ij}$.
# They are degenerate saddles. Descent approaches them from $z_{ij}<0$ and never crosses, so
# a positive share of random starts converges to them: for the cube, gradient descent on $F$
# does not find the rank-one minimum from most random starts. The gap in the proof is the
# division by $\phi'(z_{ij})$, which vanishes at $0$ for $z^3$. The rank-one point is still
# the global minimum (no random point beats $F^*$).
#
# Two secondary checks of our own reading are weaker than the rest. In most stalled runs the
# small $z_{ij}$ move at the predicted velocity $\dot z_{ij}\approx Cz_{ij}^2$ to a few
# per cent, but the worst run misses it by a factor {glue:text}`trap_velocity:.2g`, and the
# worst run ends {glue:text}`stall_side` its $F_S$, by {glue:text}`stall_gap:.2g` times the
# gap $F_S-F^*$ (the criterion asked for 0.01): within the horizon those runs have not yet
# settled next to one saddle (a small $z_{ij}$ is still in transit). Where these secondary
# checks fail, this claim of ours holds only in part (the verdict above says which). And {glue:text}`positive_miss` of {glue:text}`n_positive` starts with all
# $z_{ij}>0$ also ends at a stall rather than at $F^*$: positive pre-activations do not keep
# a run away from the saddles for certain, which we have not taken further (whether the
# continuous flow or only the discrete steps cross $0$ there is open).
#
# **Outside Assumption 3.1**, $\tanh$ shows that the rank-one point can fail to be the
# minimum: descent reaches $F/F^{\rm sym}\le$ {glue:text}`tanh_ratio:.3f`. Its runs do not
# converge: neurons move into the saturated tails where $\phi'\to0$ and their contribution to
# the sharpness vanishes, while neurons of opposite sign cancel in the output. The infimum of
# $F$ on $\mathcal{M}$ is not attained. The rank-one point itself is not a saddle but a strict
# local **maximum** of $F$ on $\mathcal{M}$: every eigenvalue of its Riemannian Hessian is
# negative (the largest, relative to the spectral radius, is {glue:text}`tanh_sym_max:.2g`).
