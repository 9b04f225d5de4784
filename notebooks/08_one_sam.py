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
# # 1-SAM collapses the features too
#
# Paper 1 {cite}`gatmiry2024simplicity` states its main result, Theorem 1.1, for label-noise SGD. It
# names 1-SAM, sharpness-aware minimization with batch size one
# {cite}`foret2021sharpness,andriushchenko2022towards`, only in prose: Theorem 3.3 "together with our
# main convergence result Theorem 1.1 proves the low-rank bias conjecture proposed by (huh2021low) in
# the two-layer network setting for label noise SGD and 1-SAM", and the conclusion says "in the limit
# of step size going to zero, we prove that label noise SGD or 1-SAM converge exponentially fast to a
# global minimizer". The step from label-noise SGD to 1-SAM rests on Wen, Ma and Li
# {cite}`wen2023sharpness`: near the zero-loss manifold both minimize the trace of the Hessian, so both
# should end at the same rank-one network. This chapter runs 1-SAM on the setting of
# {doc}`06_label_noise_rank_one`, and tests our prediction of its speed against label-noise SGD.

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
# ## The algorithm and what it should do
#
# One step of 1-SAM picks a sample $i$, climbs to the worst point of a small ball for that sample's
# loss $\ell_i(\theta)=\tfrac12(f_\theta(x_i)-y_i)^2$, and descends with the gradient taken there:
#
# $$
# \theta' = \theta+\rho\,\frac{\nabla\ell_i(\theta)}{\lVert\nabla\ell_i(\theta)\rVert},\qquad
# \theta\leftarrow\theta-\eta\,\nabla\ell_i(\theta').
# $$
#
# No label noise is needed: the ascent step itself keeps the iterate bouncing around $\mathcal{M}$.
#
# ```{prf:theorem} 1-SAM minimizes the trace of the Hessian on $\mathcal{M}$ (Wen, Ma and Li)
# :label: thm-one-sam
#
# Near the zero-loss manifold and for small $\eta,\rho$, 1-SAM follows the Riemannian gradient flow of
# $\operatorname{tr}\nabla^2 L$ on $\mathcal{M}$. With paper 1's Theorem 3.5, it therefore converges to the rank-one
# global minimizer of {prf:ref}`thm-label-noise-rank-one`.
# ```
#
# **Speed (our derivation).** Expand the 1-SAM step near $\mathcal{M}$, where $r=f_\theta(x_i)-y_i$ is small and
# $\nabla\ell_i/\lVert\nabla\ell_i\rVert=\operatorname{sign}(r)\,\nabla f_i/\lVert\nabla f_i\rVert$. The residual at
# $\theta'$ is $r+\rho\,\operatorname{sign}(r)\lVert\nabla f_i\rVert+O(\rho^2)$ and
# $\nabla f_i(\theta')=\nabla f_i+\rho\operatorname{sign}(r)\nabla^2 f_i\,\nabla f_i/\lVert\nabla f_i\rVert$; their product
# contains the sign-free term $\rho^2\nabla^2f_i\nabla f_i=\tfrac{\rho^2}{2}\nabla\lVert\nabla f_i\rVert^2$. Averaged
# over $i$ the step therefore drifts by $-\eta\frac{\rho^2}{2n}\nabla F$ along $\mathcal{M}$, with
# $F=\sum_i\lVert\nabla f_i\rVert^2$. Label-noise SGD drifts by $-\frac{\eta^2s^2}{4n}\nabla F$
# ({doc}`07_sgd_tracks_the_flow`). At the same step size the two match when $\rho^2=\eta s^2/2$.
#
# | part of the setting | source |
# |---|---|
# | 1-SAM update, $\ell_i=\tfrac12(f-y)^2$, $\nabla\ell/(\lVert\nabla\ell\rVert+10^{-12})$ | the literature (SAM's reference code) |
# | network, data, $m=10$, $d=n=3$, $\eta=0.05$ | paper 1 (Figure 1) |
# | $\rho$, activation $\sinh$, labels, init, data conditioning | **our choice** (as in {doc}`06_label_noise_rank_one`) |
# | drift rates $\eta\rho^2/(2n)$ and $\eta^2s^2/(4n)$ | **our derivation** (small-$\eta$ limit) |
# | the horizon at the paper's noise | **ours**: the rule of {doc}`06_label_noise_rank_one`, the same for both methods |
#
# **One rule for both methods.** At the paper's noise level, 1-SAM with the matched radius and
# label-noise SGD drift at the same $c=6.25\cdot10^{-6}$ flow-time units per step, so they get the
# same horizon from the same rule: the smallest multiple of $10^7$ steps $H$ with
# $e^{-2\mu_{\min}cH}\le10^{-3}$ over the well-conditioned draws ($9\cdot10^7$ steps; see
# {doc}`06_label_noise_rank_one`). In the speed demo both methods run the same number of steps
# from the same starts.
#
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims, the criterion of every
# check and the validity conditions, each tagged as the paper's or ours. "Reached $F^*$" means
# that the sharpness gap on $\mathcal{M}$, $(F-F^*)/F^*$, fell to `gap` (the first crossing,
# interpolated in $\log$ between records). The speed prediction is a small-step limit, so its
# primary test extrapolates to $\eta\to0$ from $\eta$ and $\eta/2$ (with $\rho^2\propto\eta$,
# which keeps the predicted ratio fixed at 1.6); the test at the demo's own $\eta$ is secondary.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)

LONG = 0.5  # relative tolerance of values read at the end of long chaotic runs
PROSE = ("Paper 1, prose after Theorem 3.3 (\"… for label noise SGD and 1-SAM\") "
         "and Conclusion; Theorem 1.1 itself is stated for label-noise SGD")
PROTOCOL = Protocol(
    chapter="08_one_sam",
    settings={
        "m_d_n": same([10, 3, 3], "paper", "Figure 1's network and data"),
        "eta": same(0.05, "paper", "step size"),
        "s2": same(0.03, "paper", "label-noise variance; 1-SAM gets ρ² = η s²/2"),
        "paper_draws": Setting(2, 8, "ours", "well-conditioned draws of chapter 06"),
        "paper_steps": Setting(4_000_000, 90_000_000, "ours",
                               "horizon at the paper's noise: chapter 06's rule"),
        "demo_s": same(0.5, "ours", "label noise of the speed demo"),
        "demo_rho": same(0.1, "ours", "1-SAM radius of the speed demo at η"),
        "demo_draws": Setting(4, 8, "ours", "same draws and starts for both methods"),
        "demo_steps": Setting(1_000_000, 4_000_000, "ours",
                              "at η, both methods; 4× as many at η/2"),
        "gap": same(1e-5, "ours", "(F − F*)/F* that counts as reaching F*"),
        "records": same(200, "ours", "snapshots per run"),
        "seed": same(0, "ours", "data; noise seed 2"),
        "guard_steps": same(300, "ours", "steps of the kernel-vs-autograd guards"),
    },
    claims=[
        Claim("sam_rank_one", "1-SAM, without label noise, drives the feature matrix "
              "on M to rank one and F = tr∇²L/2 to its global minimum F*, like "
              "label-noise SGD", PROSE, kind="reading",
              quote="Furthermore, in the limit of step size going to zero, we prove "
              "that label noise SGD or 1-SAM converge exponentially fast to a global "
              "minimizer.", locator="Section 6 (Conclusion)",
              ours_part="the radius matched to the label noise (ρ² = ηs²/2), the "
              "horizon, and the bars 10⁻² (eigenvalues) and 10⁻⁴ (sharpness "
              "gap)"),
        Claim("speed", "Small-step drift along M: 1-SAM −ηρ²/(2n)∇F per step, "
              "label-noise SGD −η²s²/(4n)∇F, so SGD needs 2ρ²/(ηs²) times "
              "as many steps (1.6 in the demo)",
              "our derivation in this chapter, from the small-step limits of 1-SAM "
              "and label-noise SGD", kind="ours"),
    ],
    checks=[
        Check("collapse_paper",
              "paper's noise: max over draws of eig₂,₃/eig₁ on M, end / start",
              Criterion("<=", 1e-2, "ours", "SPEC A.12 for Figure 1"),
              claim="sam_rank_one", fmt=".1e", tolerance=LONG),
        Check("Fgap_paper",
              "paper's noise: max over draws of (F − F*)/F* on M at the end",
              Criterion("<=", 1e-4, "ours"), claim="sam_rank_one", fmt=".1e",
              tolerance=LONG),
        Check("collapse_1e3_paper", "paper's noise: the same drop on every draw",
              Criterion("<=", 1e-3, "ours", "chapter 06's convergence level"),
              "secondary", "sam_rank_one", ".1e", tolerance=LONG),
        Check("Fgap_demo", "demo (ρ = 0.1): max over draws of (F − F*)/F* at the "
              "end", Criterion("<=", 1e-4, "ours"), "secondary", "sam_rank_one",
              ".1e", tolerance=LONG),
        Check("ratio_limit_err", "|r₀/1.6 − 1|, r₀ = 2 r(η/2) − r(η), r = "
              "median SGD/1-SAM step ratio", Criterion("<=", 0.15, "ours"),
              claim="speed", fmt=".2f", tolerance=1.0),
        Check("ratio_err_eta", "|r(η)/1.6 − 1| at η = 0.05",
              Criterion("<=", 0.25, "ours",
                        "set after the earlier 2.1 (31 %) was seen"),
              "secondary", "speed", ".2f", tolerance=0.2),
        Check("ratio_err_shrinks", "|r(η/2)/1.6 − 1| / |r(η)/1.6 − 1|",
              Criterion("<=", 0.75, "ours", "an O(η) error halves"),
              "secondary", "speed", ".2f", tolerance=1.0),
        Check("sam_faster_every_draw", "min over draws of SGD/1-SAM step ratio at η",
              Criterion(">", 1.0, "ours"), "secondary", "speed", ".2f",
              tolerance=0.05),
        Check("kernel_vs_autograd_sam",
              "1-SAM kernel vs PyTorch autograd loop, max |Δθ|",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("kernel_vs_autograd_sgd",
              "label-noise SGD kernel vs autograd loop, max |Δθ|",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("F_star_closed_form",
              "F(θ*) vs m Σ‖x_i‖²(1 + y_i²/m²) (rel.), and θ* on M",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("on_M", "max |f(x_i) − y_i| at the projected final iterates",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("eig_vs_numpy", "eigenvalues on M from summarize vs numpy (rel. to "
              "eig₁)", Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
    ],
    validity=[
        Validity("horizon_reaches", "largest e^{−2μcH} over the draws at the "
                 "paper's noise: the drop the flow's linear rate predicts at the "
                 "horizon (μ at the closed-form optimum, c = ηρ²/(2n))",
                 Criterion("<=", 1e-3, "ours", "the horizon rule of chapter 06"),
                 "reached", "sam_rank_one", fmt=".1e"),
        Validity("reached_all", "every demo draw reaches F* with both methods at η "
                 "and η/2 (a ratio of steps needs both crossings)",
                 Criterion("==", True, "ours"), "reached", "speed",
                 tolerance="exact"),
    ],
    changes=[
        Change("claim source", "\"Theorem 1.1 for 1-SAM\"", PROSE,
               "the paper states Theorem 1.1 for label-noise SGD only"),
        Change("1e-3 check at the paper's noise", "at least 7 of 8 draws",
               "every draw", "the verdict said \"all draws\""),
        Change("speed check", "direction only (1-SAM faster on every draw)",
               "the predicted ratio, at η (within 25 %) and extrapolated to η → 0 "
               "(within 15 %)", "the measured 2.1 against a predicted 1.6 went "
               "untested"),
        Change("threshold of ratio_err_eta", "none (the ratio at η was reported)",
               "25 %, a secondary check",
               "set after the earlier measured 2.1 (31 % off) was seen, so it is "
               "listed here; it stays secondary because the claim is a small-step "
               "limit, whose primary test is the extrapolation to η → 0"),
        Change("horizon at the paper's noise (paper_steps)", "4·10⁷ steps, while "
               "chapter 06 gave label-noise SGD 8·10⁷",
               "9·10⁷ steps for both methods, by chapter 06's rule (smallest "
               "multiple of 10⁷ with e^{−2μ_min cH} ≤ 10⁻³), with the "
               "validity "
               "condition horizon_reaches",
               "two methods compared must get their horizons from one declared rule; "
               "at 4·10⁷ the slowest draw's drop was 3.3·10⁻² for SGD and "
               "6.7·10⁻³ "
               "for 1-SAM. Written after those data were seen"),
        Change("reached_all", "a secondary check of 'speed'", "a validity condition "
               "(reached)", "whether every run reached the level in its horizon "
               "decides whether the step ratio can be measured at all; it is not a "
               "prediction of the claim"),
        Change("kinds of claim", "both claims marked 'ours' (old form)",
               "sam_rank_one: our reading of the quoted Conclusion; speed: ours",
               "the book's second rule: three kinds of claim"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
from myst_nb import glue

from flatbias import chapter_record, crossing, drift_horizon, verdict
from flatbias import label_noise as ln
from flatbias.scale import get_scale
from flatbias.style import COLORS, set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
ETA, S, RHO = P["eta"], P["demo_s"], P["demo_rho"]
PRED = 2 * RHO**2 / (ETA * S**2)  # predicted SGD/1-SAM step ratio (our derivation)
print(f"scale = {scale}: demo {P['demo_steps']:.0e} steps at eta = {ETA}, s = {S}, "
      f"rho = {RHO}; paper's noise {P['paper_steps']:.0e} steps; "
      f"predicted ratio {PRED:.2f}")

# %% [markdown]
# ## Side by side: same data, same start, same step size
#
# Label-noise SGD ($s=0.5$) and 1-SAM ($\rho=0.1$) from the same starting points, at $\eta$ and at
# $\eta/2$ (there $\rho^2$ is halved too, so the predicted ratio stays 1.6, and the horizon is 4×
# longer for both, since both drifts per step scale with $\eta^2$ then).

# %% tags=["hide-input"]
prob = ln.draw_problems(draws=P["demo_draws"], raw_draws=0, seed=P["seed"])
args = (prob["theta0"], prob["X"], prob["y"])
C = P["demo_draws"]


def pair(eta, steps):
    """Label-noise SGD (s = S) and 1-SAM (rho² = PRED η s²/2) at step size eta."""
    rho = math.sqrt(PRED * eta * S**2 / 2)
    kw = dict(steps=steps, record_every=steps // P["records"], eta=np.full(C, eta),
              seed=2, progress=False)
    sgd = ln.collapse(*args, s_values=[S], **kw)
    sam = ln.collapse(*args, s_values=[0.0], method="sam", rho=np.full(C, rho), **kw)
    return sgd, sam


demo = {"eta": pair(ETA, P["demo_steps"]), "eta/2": pair(ETA / 2, 4 * P["demo_steps"])}

# %% tags=["hide-input"]
ratio, reached = {}, True
for key, (sgd, sam) in demo.items():
    t_sgd, t_sam = crossing.steps_to(sgd, P["gap"]), crossing.steps_to(sam, P["gap"])
    ok = np.isfinite(t_sgd) & np.isfinite(t_sam)
    reached &= bool(ok.all())
    ratio[key] = t_sgd[ok] / t_sam[ok]
    print(f"{key}: reached by both on {ok.sum()} of {C} draws; "
          f"SGD/1-SAM step ratio {np.round(ratio[key], 2)}")
r_eta, r_half = (float(np.median(ratio[k])) if len(ratio[k]) else float("nan")
                 for k in ("eta", "eta/2"))
r_zero = 2 * r_half - r_eta  # linear extrapolation to eta -> 0
print(f"median ratio {r_eta:.2f} at eta, {r_half:.2f} at eta/2, "
      f"extrapolated {r_zero:.2f}; predicted {PRED:.2f}")

# %% [markdown]
# ## At the paper's noise level
#
# 1-SAM with the radius that matches label-noise SGD at noise variance $s^2=0.03$
# ($\rho=\sqrt{\eta s^2/2}\approx0.027$), on the well-conditioned draws of
# {doc}`06_label_noise_rank_one` and from the same starting points, for the horizon the shared
# rule sets. First the rule's prediction, from the draws and their closed-form optima alone:

# %% tags=["hide-input"]
full = ln.draw_problems(8, 4, seed=P["seed"])
keep = np.flatnonzero(full["conditioned"])[: P["paper_draws"]]
rho_p = math.sqrt(ETA * P["s2"] / 2)
Xk, yk, thk = full["X"][keep], full["y"][keep], full["theta0"][keep]
mu = drift_horizon.flow_rates(thk, Xk, yk)
c_sam = drift_horizon.drift_per_step("sam", ETA, Xk.shape[1], rho=rho_p)
predicted = drift_horizon.predicted_drop(mu, P["paper_steps"], c_sam)
print(f"rho = {rho_p:.4f}, c = {c_sam:.3g} per step; predicted drop at the horizon: "
      f"largest {predicted.max():.1e}")

# %% tags=["hide-input"]
paper_run = ln.collapse(thk, Xk, yk, s_values=[0.0], steps=P["paper_steps"],
                        method="sam", record_every=P["paper_steps"] // P["records"],
                        eta=np.full(len(keep), ETA), rho=np.full(len(keep), rho_p),
                        seed=P["seed"], progress=False)
drop = paper_run["ratio_drop"][0]  # (draw, k): eig_k/eig_1 on M, end over start
gap_p = (paper_run["F_M"][0, :, -1] - paper_run["F_star"]) / paper_run["F_star"]
print(f"per draw, max eig_2,3/eig_1 drop {np.array2string(drop.max(1), precision=1)}; "
      f"(F - F*)/F* at the end {np.array2string(gap_p, precision=1)}")

# %% [markdown]
# ## Guards: the book's own computation
#
# Both kernels are compared step by step with a plain PyTorch autograd loop fed the same noise; the
# optimum $F^*$ with its closed form $m\sum_i\lVert x_i\rVert^2\cosh^2(\operatorname{asinh}(y_i/m))$
# and the closed-form optimum with the constraints; the projected iterates with the constraints; and
# the eigenvalues on $\mathcal{M}$ with numpy.

# %% tags=["hide-input"]
X, y, th0 = prob["X"][0], prob["y"][0], prob["theta0"][0]
T = P["guard_steps"]
idx, eps = ln.draw_noise(7, 1, len(y), T)
guard_kernel = {}
for method, s, rho in (("sam", 0.0, RHO), ("sgd", S, 0.0)):
    fast = ln.run(th0[None], X[None], y[None], eta=np.full(1, ETA), s=np.full(1, s),
                  rho=np.full(1, rho), steps=T, record_every=T, seed=7, method=method,
                  progress=False)
    slow = ln.reference_run(th0, X, y, eta=ETA, s=s, rho=rho, idx=idx[0], eps=eps[0],
                            method=method)
    guard_kernel[method] = float(np.abs(fast.theta[-1, 0] - slow[-1].numpy()).max())


# %% tags=["hide-input"]
def on_M(res, Xs, ys):
    th = res["theta_M"][0, :, -1]  # (draw, m, d) projected final iterates
    return float(np.abs(np.sinh(np.einsum("pnd,pmd->pnm", Xs, th)).sum(-1) - ys).max())


m = P["m_d_n"][0]
F_closed = m * ((prob["X"] ** 2).sum(-1) * (1 + (prob["y"] / m) ** 2)).sum(-1)
star = ln.closed_form_optimum(*args)
f_star = np.sinh(np.einsum("pnd,pmd->pnm", prob["X"], star)).sum(-1)
res_star = np.abs(f_star - prob["y"])
guard_F = max(float(np.abs(demo["eta"][0]["F_star"] / F_closed - 1).max()),
              float(res_star.max()))
guard_on_M = max(on_M(demo["eta"][1], prob["X"], prob["y"]), on_M(paper_run, Xk, yk))
th = demo["eta"][1]["theta_M"][0, :, -1]
Phi = np.sinh(np.einsum("pnd,pmd->pnm", prob["X"], th))
eig_np = np.linalg.eigvalsh(Phi @ Phi.transpose(0, 2, 1))[:, ::-1]
eig_pkg = demo["eta"][1]["eig_M"][0, :, -1]
guard_eig = float((np.abs(eig_pkg - eig_np).max(1) / eig_np[:, 0]).max())
print(f"kernel vs autograd: 1-SAM {guard_kernel['sam']:.1e}, "
      f"SGD {guard_kernel['sgd']:.1e}; F* {guard_F:.1e}; on M {guard_on_M:.1e}; "
      f"eigenvalues {guard_eig:.1e}")

# %% [markdown]
# ## Checks, and the paper-scale record
#
# Every check and validity condition of the protocol is measured here. At `full` scale this run's
# numbers and figure data become the chapter's record; at `smoke` scale they re-check the pipeline
# (the guards must pass) and the figures and verdict come from the committed paper-scale record.

# %% tags=["hide-input"]
sam_eta = demo["eta"][1]
gap_demo = (sam_eta["F_M"][0, :, -1] - sam_eta["F_star"]) / sam_eta["F_star"]
err_eta, err_half = abs(r_eta / PRED - 1), abs(r_half / PRED - 1)
measured = {
    "collapse_paper": float(drop.max()), "Fgap_paper": float(gap_p.max()),
    "collapse_1e3_paper": float(drop.max()), "Fgap_demo": float(gap_demo.max()),
    "ratio_limit_err": abs(r_zero / PRED - 1), "ratio_err_eta": err_eta,
    "ratio_err_shrinks": float(np.divide(err_half, err_eta)),
    "sam_faster_every_draw": float(min(ratio["eta"], default=np.nan)),
    "kernel_vs_autograd_sam": guard_kernel["sam"],
    "kernel_vs_autograd_sgd": guard_kernel["sgd"],
    "F_star_closed_form": guard_F, "on_M": guard_on_M, "eig_vs_numpy": guard_eig,
    "horizon_reaches": float(predicted.max()), "reached_all": reached,
}


# %% tags=["hide-input"]
def curves(res):
    """eig_2/eig_1 and (F - F*)/F* on M, per draw and record."""
    e = res["eig_M"][0]
    g = (res["F_M"][0] - res["F_star"][:, None]) / res["F_star"][:, None]
    return {"steps": res["steps"], "ratio": e[..., 1] / e[..., 0], "gap": g}


data = {
    "demo": {f"{key}/{name}": curves(res) for key, pr in demo.items()
             for name, res in zip(("sgd", "sam"), pr)},
    "paper": curves(paper_run), "drop": drop, "gap_paper": gap_p, "rho_paper": rho_p,
    "ratios": {k: v for k, v in ratio.items()}, "r": [r_eta, r_half, r_zero],
    "pred": PRED, "mu": mu, "predicted": predicted,
}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; this build's run if none
fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.3))
for name, c, label in (("sgd", COLORS["sgd"], f"label-noise SGD, $s={S}$"),
                       ("sam", COLORS["sam"], rf"1-SAM, $\rho={RHO}$")):
    cv = shown["demo"][f"eta/{name}"]
    steps = np.array(cv["steps"])
    for p, (rr, g) in enumerate(zip(cv["ratio"], cv["gap"])):
        axes[0].plot(steps, np.clip(rr, 1e-17, None), color=c, lw=0.9,
                     label=label if p == 0 else None)
        axes[1].plot(steps, np.clip(g, 1e-17, None), color=c, lw=0.9)
axes[1].axhline(PROTOCOL.at("full")["gap"], color=COLORS["reference"], ls="--", lw=0.8)
axes[0].set(yscale="log", xlabel="step",
            ylabel=r"$\mathrm{eig}_2/\mathrm{eig}_1$ on $\mathcal{M}$")
axes[1].set(yscale="log", xlabel="step", ylabel=r"$(F-F^*)/F^*$ on $\mathcal{M}$")
axes[0].legend(fontsize=8)
glue("fig_sam_demo", fig, display=False)
plt.close(fig)

# %% tags=["remove-cell"]
glue("pred_ratio", shown["pred"], display=False)
for key, v in zip(("meas_ratio", "half_ratio", "zero_ratio"), shown["r"]):
    glue(key, v, display=False)
glue("err_eta_pct", 100 * abs(shown["r"][0] / shown["pred"] - 1), display=False)
glue("err_zero_pct", 100 * abs(shown["r"][2] / shown["pred"] - 1), display=False)

# %% [markdown]
# ```{glue:figure} fig_sam_demo
# :name: fig-sam-demo
#
# Paper scale, the demo at $\eta=0.05$: 1-SAM (red, no label noise) and label-noise SGD (green) from
# the same starting points, for the same number of steps. Left: the ratio of the second to the
# first eigenvalue of $\Phi\Phi^\top$ after projection onto $\mathcal{M}$. Right: the sharpness gap
# to the closed-form minimum $F^*$ (dashed: the level that counts as reaching $F^*$). Look at where
# each colour crosses the dashed line: the red curves get there first, by a factor that the speed
# claim predicts in the small-step limit.
# ```
#
# The small-step prediction of the SGD/1-SAM step ratio is {glue:text}`pred_ratio:.2f`. The
# measured median is {glue:text}`meas_ratio:.2f` at $\eta=0.05$ and {glue:text}`half_ratio:.2f`
# at $\eta/2$; extrapolated linearly to $\eta\to0$ it is {glue:text}`zero_ratio:.2f`.

# %% tags=["hide-input"]
cv = shown["paper"]
fig, ax = plt.subplots(figsize=(6, 3.2))
for p, rr in enumerate(cv["ratio"]):
    ax.plot(cv["steps"], np.clip(rr, 1e-17, None), color=COLORS["sam"], lw=0.9,
            label=rf"1-SAM, $\rho={shown['rho_paper']:.3f}$" if p == 0 else None)
ax.set(yscale="log", xlabel="step",
       ylabel=r"$\mathrm{eig}_2/\mathrm{eig}_1$ on $\mathcal{M}$")
ax.legend(fontsize=8)
glue("fig_sam_full", fig, display=False)
plt.close(fig)
drops = np.array(shown["drop"]).max(1)
glue("n_1e3", f"{int((drops <= 1e-3).sum())} of {len(drops)}", display=False)
glue("worst_drop", float(drops.max()), display=False)

# %% [markdown]
# ```{glue:figure} fig_sam_full
# :name: fig-sam-full
#
# Paper scale, the paper's noise level: 1-SAM with the radius matched to label-noise SGD at
# $s^2=0.03$, on the well-conditioned draws of {doc}`06_label_noise_rank_one`, for the horizon
# that the shared rule sets for both methods. Look at the right end: the drop of eig₂,₃/eig₁
# reaches $10^{-3}$ on {glue:text}`n_1e3` draws within the horizon; the worst draw's drop is
# {glue:text}`worst_drop:.1e`.
# ```
#
# (verdict-08)=
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

# %% [markdown]
# 1-SAM needs no label noise: the ascent step alone keeps the iterate moving along $\mathcal{M}$.
#
# - **Rank one.** At the paper's noise level, with the matched radius and the horizon that one
#   rule sets for both 1-SAM and label-noise SGD ({doc}`06_label_noise_rank_one`), the drop of
#   eig₂,₃/eig₁ on $\mathcal{M}$ reaches $10^{-3}$ on {glue:text}`n_1e3` draws, and the slowest
#   draw stops at {glue:text}`worst_drop:.1e`. The earlier protocol gave 1-SAM half of
#   label-noise SGD's horizon (4·10⁷ against 8·10⁷ steps); at 4·10⁷ steps the slowest draw's drop
#   was 6.7·10⁻³ for 1-SAM and 3.3·10⁻² for SGD, so the two chapters were not comparable. The bars
#   and the matched radius are ours; the paper states the 1-SAM result in its prose ("label noise
#   SGD or 1-SAM converge exponentially fast to a global minimizer"), not in a theorem, so this is
#   our reading of it.
# - **Speed.** The prediction is ours and is a small-step statement, so its primary test is the
#   extrapolation to $\eta\to0$, which lands {glue:text}`err_zero_pct:.0f` % from the prediction
#   (criterion 15 %). At $\eta=0.05$, where $\eta\lVert\nabla f_i\rVert^2$ is of order one, the
#   measured ratio misses it by {glue:text}`err_eta_pct:.0f` %: that secondary check's 25 % bar
#   was set after an earlier 31 % was seen, and is listed as a change to the protocol. The
#   finite-step correction makes 1-SAM faster still than the limit predicts, and it shrinks as
#   $\eta$ does.
#
# The chapter's headline status is {glue:text}`status`.
