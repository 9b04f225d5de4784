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
# # SAM linear stability: a sufficient condition, its lower bound, and Figure 1(c)
#
# Paper 2 {cite}`chang2025unified` linearizes SAM {cite}`foret2021sharpness` at an
# interpolating minimum and extends Dexter et al.'s SGD condition ({doc}`11_sgd_stability`)
# to it: SAM leaves minima that SGD can stay at. Its Theorems 3.2 and 3.3 reached us through
# a secondary summary; this chapter tests them against the exact mean-square operator, and
# recomputes Figure 1(c), whose published version cannot show a stable SAM cell (a defect
# of the authors' tally, read from their code below).

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q",
                    "git+https://github.com/flatbias/flatbias-book"], check=True)

# %% tags=["parameters"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else full on a GPU, smoke on a CPU

# %% [markdown]
# ## Protocol
#
# Declared before anything runs. Theorem 3.3 is read, like Dexter et al.'s Theorem 2, as a
# statement about a construction when $\sigma$ and $n/B$ are of order one: we take "order
# one" as $\sigma\le5$ and $n/B\le5$ and "a constant factor" as at most 10, and test it on
# the authors' construction (primary). The same bound on generic families is our stronger
# reading (secondary).

# %% tags=["protocol"]
from flatbias.claims import Change, Check, Claim, Criterion, Protocol, Setting, same

PROTOCOL = Protocol(
    chapter="13_sam_stability",
    settings={
        "families": Setting(60, 800, "ours", "random full-rank families"),
        "family_n": same([4, 12], "ours"),
        "family_d": same([2, 5], "ours"),
        "ratios": same([0.1, 0.5, 1.0, 5.0], "ours",
                       "ρ/α for the theorems (authors' defaults: 0.5/0.1 = 5)"),
        "eta_factor": same([0.5, 2.0], "ours", "η = f·η_SAM, f uniform"),
        "order_one": same([5, 5], "ours", "σ ≤ 5 and n/B ≤ 5"),
        "n": same(100, "paper", "authors' code"),
        "eta": same(0.5, "paper", "authors' code"),
        "sigmas": Setting(list(range(1, 51, 3)), list(range(1, 51)), "paper",
                          "authors' code (smoke: every third)"),
        "batches": Setting(list(range(1, 50, 3)), list(range(1, 50)), "paper",
                           "authors' code (smoke: every third)"),
        "reps": same(10, "paper", "authors' code"),
        "steps": same(1000, "paper", "authors' code (blow-up 1000×)"),
        "map_ratios": Setting([0.0, 0.2, 0.5],
                              [0.0, 0.1, 0.2, 0.5, 1.0, 5.0], "ours",
                              "ρ/α of the heat-map sweep (0 = SGD)"),
        "kernel_ratio": same(0.5, "ours", "ρ/α of the simulator guard"),
        "kernel_reps": Setting(100, 200, "ours", "runs per cell, simulator guard"),
        "kernel_cells": Setting(3, 6, "ours", "cells of the simulator guard"),
        "kernel_steps": same(600, "ours", "horizon of the simulator guard"),
        "dense_batches": same([1, 3, 6, 11], "ours", "B of the dense-operator guard"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("thm32", "Bernoulli sampling: λ₁(H) ≥ (σ/η)(n/B − 1)^(−1/2)(1 "
                       "+ (ρ/α)"
              "λ_min(H))^(−1) ⇒ linearized SAM diverges in mean square",
              "Paper 2, Theorem 3.2 (inequality from a secondary summary)",
              reading="ours"),
        Claim("stricter", "SAM's stability criterion is stricter than SGD's: it leaves "
              "every minimum SGD leaves", "Paper 2 (abstract; Theorem 3.2)"),
        Claim("thm33", "The sufficient condition is tight up to a constant factor "
              "(≤ 10) when σ and n/B are of order one (≤ 5), on the authors' "
              "construction",
              "Paper 2, Theorem 3.3 (summary: 'differing by at most a constant "
              "factor')",
              reading="ours"),
        Claim("fig1c", "Counted correctly, the simulated SAM heat-map follows "
              "ρ(𝒯_SAM) < 1, and SAM's unstable region is larger than SGD's",
              "Paper 2, Figure 1(c)"),
    ],
    checks=[
        Check("viol", "families meeting the SAM condition with ρ(𝒯_SAM) < 1",
              Criterion("<=", 0, "ours"), claim="thm32", fmt=".0f"),
        Check("ratio_min", "min η_SAM/η* over the families",
              Criterion(">=", 1 - 1e-9, "ours"), role="secondary", claim="thm32"),
        Check("star_ratio", "max η*_SAM/η*_SGD over the families",
              Criterion("<=", 1 + 1e-9, "ours"), claim="stricter", fmt=".6f"),
        Check("nested",
              "exact unstable region nested along the ρ/α sweep (construction)",
              Criterion("==", True, "ours"), role="secondary", claim="stricter"),
        Check("cons_order_one", "construction, σ ≤ 5 and n/B ≤ 5, every ρ/α: "
              "max η_SAM/η*", Criterion("<=", 10, "ours"), claim="thm33", fmt=".2f"),
        Check("generic", "our stronger reading: max η_SAM/η* over the generic "
                         "families",
              Criterion("<=", 10, "ours"), role="secondary", claim="thm33", fmt=".3g"),
        Check("agree_min", "simulated map = ρ(𝒯_SAM) < 1, worst ρ/α of the sweep "
              "(fraction of cells)", Criterion(">=", 0.95, "ours", "spec B.10"),
              claim="fig1c", fmt=".4f"),
        Check("sim_larger", "simulated SAM unstable fraction ≥ SGD's at every ρ/α "
                            "> 0",
              Criterion("==", True, "ours"), role="secondary", claim="fig1c"),
        Check("crossing", "ρ(𝒯_SAM) crosses 1 at η*_SAM on every family",
              Criterion("==", True, "ours"), role="guard"),
        Check("diag_dense", "SAM: spectral_radius_diagonal vs the dense operator, "
              "n = 12, σ ≤ 12, ρ/α ∈ {0.2, 1}", Criterion("<=", 1e-10, "ours"),
              role="guard", fmt=".1e"),
        Check("star_diag", "critical_eta_diagonal: ρ(𝒯_SAM) crosses 1 there, every "
              "construction cell and "
              "ρ/α", Criterion("==", True, "ours"), role="guard"),
        Check("kernel", "SAM kernel vs axes_log_norms: escape fractions where ρ/α "
              "decides, max |z|", Criterion("<=", 4, "ours"), role="guard", fmt=".2f"),
    ],
    changes=[
        Change("sizes (cost, before any full-scale run)",
               "families 200/1500; grid 50×49 at both scales; map ρ/α at full "
               "0, .05, .1, .2, .3, .5, 1, 5; guard: 400 runs × 1000 steps",
               "families 60/800; smoke grid every third σ and B; map ρ/α at full "
               "0, .1, .2, .5, 1, 5; guard: 100/200 runs × 300 steps on 3/6 cells",
               "the declared sizes cost ~3 min CPU at smoke and ~5 at full"),
        Change("simulator guard (before any full-scale run)",
               "ρ/α = 0.2, 300 steps", "ρ/α = 0.5, 600 steps",
               "a planted kernel that ignores ρ gave |z| = 3.69 < 4 at ρ/α = 0.2: "
               "the guard could not see the bug it exists for"),
    ],
)
PROTOCOL

# %% tags=["hide-input"]
import math
import time

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import chapter_record
from flatbias import coherence as co
from flatbias import repro, simulate, stability, verdict
from flatbias.scale import get_scale
from flatbias.style import set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
N, ETA, RATIOS = P["n"], P["eta"], P["ratios"]
SIGMAS, BATCHES = P["sigmas"], P["batches"]
print(f"scale = {scale}: {P['families']} families; heat-map {len(SIGMAS)} x "
      f"{len(BATCHES)} cells at rho/alpha in {P['map_ratios']}")

# %% [markdown]
# ## The claims
#
# Linearized SAM (the authors' `SAM_process`) ascends along the full-batch gradient $Hw$
# scaled by $\rho/\alpha$ ($\alpha$ stands in for $\lVert\nabla L\rVert$) and descends with
# the minibatch gradient there: $w_{t+1}=\big(I-\eta\hat H_t(I+\tfrac\rho\alpha H)\big)w_t$.
# Its mean-square operator is that of {doc}`11_sgd_stability` with
# $K_i=H_i(I+\frac\rho\alpha H)$ in place of $H_i$; it has the spectrum of the SGD operator
# of the PSD family $M^{1/2}H_iM^{1/2}$, $M=I+\frac\rho\alpha H$ (our derivation,
# unit-tested), so $\rho(\mathcal T_{\rm SAM})$ is exact.
#
# ```{prf:theorem} SAM divergence (paper 2, Theorem 3.2, as reconstructed)
# :label: thm-sam-divergence
#
# If $\lambda_1(H)\ \ge\ \dfrac{\sigma}{\eta}\Big(\dfrac nB-1\Big)^{-1/2}\big(1+\tfrac\rho\alpha\lambda_{\min}(H)\big)^{-1}$
# then linearized SAM diverges in mean square.
# ```
#
# ```{prf:theorem} Matching lower bound (paper 2, Theorem 3.3, as summarized)
# :label: thm-sam-lower
#
# The upper and lower bounds on the stability threshold differ by at most a constant factor.
# ```
#
# We measure Theorem 3.3 by the ratio $\eta_{\rm SAM}/\eta^*$ between the learning rate at
# which Theorem 3.2 predicts divergence and the exact threshold $\eta^*$ (where
# $\rho(\mathcal T_{\rm SAM})=1$).
#
# | part of the setting | source |
# |---|---|
# | the two statements | a secondary summary of the paper (constants could differ) |
# | linearized SAM, $\rho/\alpha$ | the authors' code (`SAM_process`; defaults $\rho=0.5$, $\alpha=0.1$) |
# | Bernoulli sampling for the theorems, without replacement for the heat-maps | Dexter et al.; the authors' code |
# | random full-rank clustered families, $B\in[1,n-1]$, $\eta=f\,\eta_{\rm SAM}$ (ranges in the protocol) | **our choice** |
# | exact threshold $\eta^*$, the $M^{1/2}$ symmetrization | **our derivation** |
#
# ## Theorems 3.2 and 3.3 on random full-rank families

# %%
def random_family(n, d, tau, g):
    A = (torch.randn(1, d, d, generator=g, dtype=torch.float64)
         + tau * torch.randn(n, d, d, generator=g, dtype=torch.float64))
    return A @ A.transpose(1, 2)


def draw(lo_hi):
    return int(torch.randint(lo_hi[0], lo_hi[1] + 1, (1,), generator=gen))


f_lo, f_hi = P["eta_factor"]
kw = dict(sampling="bernoulli")
# f, ρ(T_SAM) at η, η_SAM/η*, η*_SAM/η*_SGD, ρ/α, σ, κ(H)
rows, crossing = [], True
for _ in range(P["families"]):
    n, d = draw(P["family_n"]), draw(P["family_d"])
    H = random_family(n, d, float(10 ** (2 * torch.rand(1, generator=gen) - 1.5)), gen)
    B = int(torch.randint(1, n, (1,), generator=gen))
    r = RATIOS[int(torch.randint(0, len(RATIOS), (1,), generator=gen))]
    sig, lam = co.coherence(H)[0], torch.linalg.eigvalsh(H.mean(0))
    eta_sam = stability.sam_eta(H, B, r, sigma=sig)
    f = f_lo + (f_hi - f_lo) * float(torch.rand(1, generator=gen))
    star = stability.critical_eta(H, B, "sam", rho_over_alpha=r, **kw)
    star_sgd = stability.critical_eta(H, B, **kw)
    lo, hi = (stability.spectral_radius(H, star * (1 + e), B, "sam", rho_over_alpha=r,
                                        **kw) for e in (-1e-6, 1e-6))
    crossing = crossing and lo < 1 < hi
    rho_f = stability.spectral_radius(H, f * eta_sam, B, "sam", rho_over_alpha=r, **kw)
    rows.append((f, rho_f, eta_sam / star, star / star_sgd, r, sig,
                 float(lam[-1] / lam[0])))
R = np.array(rows)
meets = R[:, 0] >= 1
violations = int((meets & (R[:, 1] < 1 - 1e-9)).sum())
print(f"{len(R)} families, {meets.sum()} meet the SAM condition, "
      f"{violations} violations; eta_SAM/eta*: min {R[:, 2].min():.2f}, "
      f"median {np.median(R[:, 2]):.1f}, "
      f"max {R[:, 2].max():.0f}")

# %% [markdown]
# The ratio $\eta_{\rm SAM}/\eta^*$ grows on generic families with the coherence and with
# the condition number $\kappa(H)=\lambda_1(H)/\lambda_{\min}(H)$: the SAM factor
# $(1+\frac\rho\alpha\lambda_{\min})^{-1}$ credits SAM only with the amplification of the
# *flattest* direction, while the instability comes from the sharpest, amplified by
# $1+\frac\rho\alpha\lambda_1$. Dexter et al.'s converse (their Theorem 2) is a statement
# about a construction with $\sigma$ and $n/B$ of order one, and Theorem 3.3 presumably is
# too. On the authors' construction ($\lambda_1(H)=2$; $\lambda_{\min}=2/\sigma$ on the
# orthogonal axes) all thresholds are exact per axis:

# %%
k, a, d, Bs, ss = simulate.authors_grid(N, SIGMAS, BATCHES)
D = torch.zeros(len(Bs), N, int(d.max()), dtype=torch.float64).scatter_(
    2, k[:, :, None], a[:, :, None])
lam_min = torch.where(ss < N, 2.0 / ss, torch.full_like(ss, 2.0, dtype=torch.float64))
s_max, nb_max = P["order_one"]
order_one = ((ss <= s_max) & (N / Bs <= nb_max)).numpy()
cons, star_diag = {}, True
for r in RATIOS:
    star = stability.critical_eta_diagonal(D, Bs, "sam", "bernoulli", r)
    # Theorem 3.2 with λ1(H) = 2
    pred = ss / (2.0 * torch.sqrt(N / Bs - 1.0)) / (1 + r * lam_min)
    cons[r] = (pred / star).numpy()
    lo, hi = (stability.spectral_radius_diagonal(D, star * (1 + e), Bs, "sam",
                                                 "bernoulli", r) for e in (-1e-6, 1e-6))
    star_diag = star_diag and bool(((lo < 1) & (hi > 1)).all())
for r, v in cons.items():
    print(f"rho/alpha={r:g}: eta_SAM/eta* in [{v.min():.2f}, {v.max():.1f}] "
          f"on the grid, max {v[order_one].max():.2f} "
          f"where sigma <= {s_max} and n/B <= {nb_max}")

# %%
diag_dense = 0.0  # guard: the per-axis SAM formula against the dense operator (n = 12)
for s in range(1, 13):
    Hc = co.authors_family(12, s)
    for b in P["dense_batches"]:
        for r in (0.2, 1.0):
            dense = stability.spectral_radius(Hc, ETA, b, "sam", rho_over_alpha=r,
                                              algorithm="dense")
            diag = float(stability.spectral_radius_diagonal(
                torch.diagonal(Hc, dim1=1, dim2=2), ETA, b, "sam", rho_over_alpha=r))
            diag_dense = max(diag_dense, abs(dense - diag))
print(f"SAM diagonal formula vs dense operator: {diag_dense:.1e}")

# %% [markdown]
# ## Figure 1(c): the (batch size, coherence) heat-map for SAM
#
# Same family and rule as Figure 1(a) ({doc}`11_sgd_stability`), now for linearized SAM,
# simulated and exact, over a sweep of $\rho/\alpha$, each run counted (see the tally
# defect below).

# %%
rho_map, sim_stable = {}, {}
for r in P["map_ratios"]:
    method = "sam" if r else "sgd"
    rho_map[r] = stability.spectral_radius_diagonal(D, ETA, Bs, method=method,
                                                    rho_over_alpha=r).numpy()
    div = simulate.simulate_axes(k, a, d, Bs, ETA, reps=P["reps"], steps=P["steps"],
                                 method=method, rho_over_alpha=r, generator=gen)
    sim_stable[r] = simulate.stable_cells(div).numpy()
agree = {r: float((sim_stable[r] == (rho_map[r] < 1)).mean()) for r in P["map_ratios"]}
frac = {r: (float((rho_map[r] >= 1).mean()), float(1 - sim_stable[r].mean()))
        for r in P["map_ratios"]}
print("agreement with rho(T) < 1: "
      + ", ".join(f"{r:g}: {v:.3f}" for r, v in agree.items()))
print("unstable fraction (exact / simulated): "
      + ", ".join(f"{r:g}: {e:.2f}/{s_:.2f}" for r, (e, s_) in frac.items()))

# %% [markdown]
# The simulator guard: where $\rho/\alpha$ decides the verdict ($\rho(\mathcal T_{\rm SGD})
# <0.95$ but $\rho(\mathcal T_{\rm SAM})\ge1.05$), the compiled kernel and the independent
# `simulate.axes_log_norms` must give the same escape fraction. A kernel that ignored
# $\rho$ would escape there as rarely as SGD.

# %%
r_k, runs, K_STEPS = P["kernel_ratio"], P["kernel_reps"], P["kernel_steps"]
rho_sgd = stability.spectral_radius_diagonal(D, ETA, Bs).numpy()
rho_k = stability.spectral_radius_diagonal(D, ETA, Bs, "sam",
                                           rho_over_alpha=r_k).numpy()
decides = np.flatnonzero((rho_sgd < 0.95) & (rho_k >= 1.05))
picked = decides[np.argsort(rho_k[decides])[-P["kernel_cells"]:]]  # ρ/α matters most
kz = 0.0
for i in picked:
    kk_, aa_, dd_ = co.authors_axes(N, int(ss[i]))
    lp = simulate.axes_log_norms(kk_, aa_, dd_, int(Bs[i]), ETA, runs, K_STEPS,
                                 rho_over_alpha=r_k, generator=gen)
    crossed = (lp - lp[:, :1]).max(1).values >= math.log(simulate.BLOWUP)
    p1 = float(crossed.double().mean())
    dv = simulate.simulate_axes(k[i:i + 1], a[i:i + 1], d[i:i + 1], Bs[i:i + 1], ETA,
                                reps=runs, steps=K_STEPS, method="sam",
                                rho_over_alpha=r_k, generator=gen)
    p2 = float(dv.double().mean())
    se = math.sqrt(max(p1 * (1 - p1) + p2 * (1 - p2), 1 / runs) / runs)
    kz = max(kz, abs(p1 - p2) / se)
print(f"{len(decides)} cells where rho/alpha = {r_k:g} decides; "
      f"kernel vs axes_log_norms on {len(picked)}: max |z| = {kz:.2f}")

# %% [markdown]
# ## Checks, and the paper-scale record

# %%
sweep = P["map_ratios"]
unstable = [rho_map[r] >= 1 for r in sweep]
measured = {
    "viol": violations, "ratio_min": float(R[:, 2].min()),
    "star_ratio": float(R[:, 3].max()),
    "nested": all(bool((b | ~a_).all()) for a_, b in zip(unstable, unstable[1:])),
    "cons_order_one": max(float(v[order_one].max()) for v in cons.values()),
    "generic": float(R[:, 2].max()),
    "agree_min": min(agree.values()),
    "sim_larger": all(frac[r][1] >= frac[0.0][1] for r in sweep if r),
    "crossing": bool(crossing), "diag_dense": diag_dense, "star_diag": star_diag,
    "kernel": kz if len(picked) else float("nan"),
}
data = {"families": R, "cons": {str(r): np.round(v, 6) for r, v in cons.items()},
        "order_one": order_one, "sweep": sweep,
        "rho": {str(r): np.round(rho_map[r], 6) for r in sweep},
        "sim_stable": {str(r): sim_stable[r] for r in sweep}, "agree": agree,
        "frac": {str(r): v for r, v in frac.items()},
        "sigmas": SIGMAS, "batches": BATCHES,
        "dis_rho": {str(r): float(np.min(rho_map[r][sim_stable[r] != (rho_map[r] < 1)],
                                        initial=np.inf)) for r in sweep}}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; else this build's run
sw = shown["sweep"]
big = max(sw)
fig, axes = plt.subplots(1, 4, figsize=(12, 3.0), sharey=True)
sg, bt = shown["sigmas"], shown["batches"]
ext = [min(bt) - 0.5, max(bt) + 0.5, min(sg) - 0.5, max(sg) + 0.5]
shape = (len(sg), len(bt))
panels = [(np.array(shown["sim_stable"]["0.0"]), 0.0, "SGD, simulated"),
          (np.array(shown["sim_stable"]["0.2"]), 0.2,
           r"SAM $\rho/\alpha=0.2$, simulated"),
          (np.array(shown["rho"]["0.2"]) < 1, 0.2,
           r"SAM $\rho/\alpha=0.2$, exact $\rho(\mathcal{T})<1$"),
          (np.array(shown["sim_stable"][str(big)]), big,
           rf"SAM $\rho/\alpha={big:g}$, simulated")]
for ax, (zz, r, title) in zip(axes, panels):
    ax.imshow(np.array(zz, float).reshape(shape), origin="lower", aspect="auto",
              extent=ext, cmap="RdYlGn", vmin=0, vmax=1)
    rho_r = np.array(shown["rho"][str(r)])
    if rho_r.min() < 1 < rho_r.max():
        ax.contour(np.array(bt), np.array(sg), rho_r.reshape(shape),
                   levels=[1.0], colors="k", linewidths=0.8)
    ax.set(title=title, xlabel="batch size $B$")
axes[0].set_ylabel(r"coherence $\sigma$")
glue("fig_sam_heatmap", fig, display=False)
plt.close(fig)

Rf = np.array(shown["families"])
fig2, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.5, 3.2))
for r in RATIOS:
    sel = Rf[:, 4] == r
    ax1.loglog(Rf[sel, 6], Rf[sel, 2], ".", ms=3, label=rf"$\rho/\alpha={r:g}$")
ax1.axhline(10, color="0.5", ls=":", lw=0.8)
ax1.set(xlabel=r"$\kappa(H)=\lambda_1/\lambda_{\min}$",
        ylabel=r"$\eta_{\rm SAM}/\eta^*$", title="Theorem 3.2 vs exact threshold")
ax1.legend(fontsize=7)
xs = [r for r in sw if r]
ax2.semilogx(xs, [shown["frac"][str(r)][0] for r in xs], "k-o", ms=3,
             label=r"exact: $\rho(\mathcal{T})\geq1$")
ax2.semilogx(xs, [shown["frac"][str(r)][1] for r in xs], "C3--s", ms=3,
             label="simulated (every run counted)")
ax2.axhline(shown["frac"]["0.0"][0], color="0.5", ls=":", label="SGD, exact")
ax2.set(xlabel=r"$\rho/\alpha$", ylabel="unstable fraction of cells",
        title="SAM's unstable region grows")
ax2.legend(fontsize=7)
glue("fig_sam_ratio", fig2, display=False)
plt.close(fig2)

oo = np.array(shown["order_one"], bool)
cons_s = {float(r): np.array(v) for r, v in shown["cons"].items()}
glue("n_fam", len(Rf), display=False)
glue("n_meet", int((Rf[:, 0] >= 1).sum()), display=False)
glue("ratio_median", float(np.median(Rf[:, 2])), display=False)
glue("ratio_worst", float(Rf[:, 2].max()), display=False)
glue("kappa_worst", float(Rf[int(Rf[:, 2].argmax()), 6]), display=False)
for r, name in ((0.1, "01"), (5.0, "5")):
    glue(f"cons_oo_{name}", float(cons_s[r][oo].max()), display=False)
    glue(f"cons_all_{name}", float(cons_s[r].max()), display=False)
for r, name in ((0.0, "sgd"), (0.2, "02"), (0.5, "05")):
    glue(f"frac_{name}", 100 * shown["frac"][str(r)][0], display=False)
glue("agree_worst", 100 * min(shown["agree"].values()), display=False)
r_w = min(shown["agree"], key=shown["agree"].get)
glue("agree_worst_r", float(r_w), display=False)
glue("dis_rho_worst", shown["dis_rho"][str(r_w)], display=False)
glue("sim_unst_worst", 100 * shown["frac"][str(r_w)][1], display=False)
glue("exact_unst_worst", 100 * shown["frac"][str(r_w)][0], display=False)

# %% [markdown]
# ```{glue:figure} fig_sam_heatmap
# :name: fig-sam-heatmap
#
# Figure 1(c) recomputed at paper scale, every run counted (green: stable, red: unstable;
# black line: $\rho(\mathcal T)=1$). At the authors' own settings ($\eta=0.5$,
# $\rho/\alpha=5$) the map is red everywhere: there
# $\eta\lambda_1(H)(1+\frac\rho\alpha\lambda_1(H))\ge2$, so even full-batch SAM is unstable
# on the sharp direction.
# ```
#
# ```{glue:figure} fig_sam_ratio
# :name: fig-sam-ratio
#
# Left: how conservative Theorem 3.2 is on random full-rank families; the ratio grows with
# the condition number of $H$ and with $\rho/\alpha$ (dotted: the constant 10 of the
# protocol). Right: the fraction of unstable cells of the Figure-1 grid grows with
# $\rho/\alpha$, from SGD's (dotted) to all cells.
# ```
#
# ## A defect in the authors' tally (read from their code)
#
# This is a finding about the authors' script `coherence_local.py`, read from its source,
# not something this chapter measures. Its loop over repetitions counts a successful run in
# the SGD and random branches, but not in the SAM branch:
#
# ```python
#             else:
#                 s, state = SAM_process(datalist, b, config.lr, config.steps, d, config.rho, config.alpha)
#                 if s == True:
#                     norm += state
# ```
#
# The line `success += s`, present in the two other branches, is missing here, so
# `success` stays 0 and `result = 1 if success >= (config.repetitions / 2) else 0` marks
# every SAM cell unstable whatever the runs did. The published Figure 1(c) therefore cannot
# show a stable SAM cell. The maps above count every run.
#
# (verdict-13)=
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
# * **Theorem 3.2**, in the form we reconstructed: on {glue:text}`n_fam` random full-rank
#   families, {glue:text}`n_meet` met the condition; the count of those with
#   $\rho(\mathcal T_{\rm SAM})<1$ is the first check above. SAM's exact threshold against
#   SGD's is the check of the claim that SAM is stricter.
# * **Theorem 3.3 on the construction.** Where $\sigma\le5$ and $n/B\le5$, the largest
#   ratio $\eta_{\rm SAM}/\eta^*$ is {glue:text}`cons_oo_01:.2f` at $\rho/\alpha=0.1$ and
#   {glue:text}`cons_oo_5:.2f` at $\rho/\alpha=5$. Over the whole grid it grows to
#   {glue:text}`cons_all_01:.1f` ($\rho/\alpha=0.1$) and {glue:text}`cons_all_5:.1f`
#   ($\rho/\alpha=5$), at large $\sigma$ and $B$: the bound is tight only in the regime
#   of order-one $\sigma$ and $n/B$, the form in which Dexter et al.'s converse is stated.
# * **Our stronger reading** (a constant factor on generic families) fails: the ratio has
#   median {glue:text}`ratio_median:.1f` and reaches {glue:text}`ratio_worst:.0f` (at
#   $\kappa(H)\approx$ {glue:text}`kappa_worst:.0f`).
# * **Figure 1(c).** Cell by cell, the simulated map matches $\rho(\mathcal T)<1$ on
#   {glue:text}`agree_worst:.1f`% of the cells at the worst $\rho/\alpha$ of the sweep
#   ({glue:text}`agree_worst_r:g`), against the 95% declared. There the exact operator
#   calls {glue:text}`exact_unst_worst:.0f`% of the cells unstable, the runs
#   {glue:text}`sim_unst_worst:.0f`%; every disagreeing cell has
#   $\rho(\mathcal T)\ge$ {glue:text}`dis_rho_worst:.3f`: the second moment grows while
#   most runs stay bounded for the authors' 1000 steps (heavy tails, as in
#   {doc}`11_sgd_stability`). The mean-square criterion over-predicts what the authors'
#   simulation shows near $\eta\lambda_1(1+\frac\rho\alpha\lambda_1)=2$. SAM's
#   exact unstable region contains SGD's and grows with $\rho/\alpha$:
#   {glue:text}`frac_sgd:.0f`% of cells for SGD, {glue:text}`frac_02:.0f`% at
#   $\rho/\alpha=0.2$, {glue:text}`frac_05:.0f`% at $\rho/\alpha=0.5$.
#
# Overall status: {glue:text}`status`.
