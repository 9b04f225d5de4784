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
#     execution_timeout: 1800
# ---

# %% [markdown]
# # SGD linear stability and the exact mean-square criterion
#
# Dexter et al. {cite}`dexter2024precise` give a sufficient condition for linearized SGD to
# leave a minimum, in terms of the sharpness $\lambda_1(H)$, the coherence $\sigma$ and the
# batch size; paper 2 {cite}`chang2025unified` builds on it and illustrates it with a
# (batch size, coherence) heat-map, its Figure 1(a). The inequality reached us through a
# secondary summary (the reproduction spec, `SPEC.md` §B.3), so it is a **reading**: this
# chapter tests it against the exact mean-square dynamics under the sampling of the theorem
# (Bernoulli). Whether it also holds under the sampling of the authors' code (without
# replacement), which the theorem does not cover, is a question of **ours**, and so are the
# two hypotheses about the authors' simulation rule tested at the end.

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
# ## The claim and the ground truth
#
# Linearized SGD at an interpolating minimum is $w_{t+1}=(I-\eta\hat H_t)w_t$,
# $\hat H_t=\frac1B\sum_{i\in S_t}H_i$. The second moment $W_t=\mathbb{E}[w_tw_t^\top]$
# evolves **exactly** by a linear map, $W_{t+1}=\mathcal{T}(W_t)$ with
# $$
# \mathcal{T}(X) = X-\eta(HX+XH)+\eta^2\Big[a\,HXH + c\sum_i H_iXH_i\Big],
# $$
# $(a,c)=(1,\tfrac{n-B}{n^2B})$ for Bernoulli sampling and
# $(\tfrac{(B-1)n}{B(n-1)},\tfrac{n-B}{Bn(n-1)})$ for $B$ indices without replacement.
# $\mathcal{T}$ maps PSD matrices to PSD matrices, so $\mathbb{E}\lVert w_t\rVert^2$
# diverges iff its spectral radius $\rho(\mathcal{T})>1$ (on the range of $H$; null
# directions of $H$ never move).
#
# ```{prf:theorem} Sufficient condition for divergence (Dexter et al., Theorem 1, as reconstructed)
# :label: thm-dexter
#
# With Bernoulli$(B/n)$ sampling, if
# $\lambda_1(H)\ \ge\ \dfrac{\sigma}{\eta}\Big(\dfrac nB-1\Big)^{-1/2}$ then linearized SGD
# diverges in mean square.
# ```
#
# The authors' code draws $B$ indices **without** replacement (`np.random.choice(n, B,
# replace=False)`), a sampling the theorem does not cover. We test the condition under both;
# the second test is a question of ours, not a test of the theorem.
#
# | part of the setting | source |
# |---|---|
# | the inequality | a secondary summary of the paper (constants could differ) |
# | exact operator $\mathcal{T}$, its threshold $\eta^*=1/\rho(L^{-1}Q)$ | **our derivation** (checked below and in the unit tests) |
# | random families (ranges in the protocol), clustered, $B\in[1,n-1]$, $\eta=f\cdot\eta_{\rm Dexter}$ | **our choice** |
# | heat-map: $n=100$, $\eta=0.5$, 10 repetitions, 1000 steps, diverged if $\lVert w_t\rVert^2\ge1000\lVert w_0\rVert^2$, stable if $\ge5$ of 10 stay bounded, $w_0\sim U[0,1]^d$, without replacement | the authors' code |

# %% [markdown]
# ## Protocol
#
# Declared before anything runs (the code is one click away). The heat-map uses the
# authors' whole $50\times49$ grid and their settings at both scales (it costs seconds);
# only the number of random families and of Monte-Carlo runs grows at full scale. Each
# claim says its kind: our **reading** of a statement known from a summary, or a
# hypothesis of **ours**. A validity condition says when a check tests its claim at all.

# %% tags=["protocol", "hide-input"]
from flatbias.claims import (Change, Check, Claim, Criterion, Protocol, Setting,
                             Validity, same)
from flatbias.protocol_changes import rho_at_one

SIM = 0.05  # relative tolerance between CPUs of values from long simulations (ours)
PROTOCOL = Protocol(
    chapter="11_sgd_stability",
    settings={
        "families": Setting(200, 1500, "ours", "random families for Theorem 1"),
        "family_n": same([4, 12], "ours"),
        "family_d": same([2, 6], "ours"),
        "family_rank": same([1, 3], "ours"),
        "eta_factor": same([0.5, 2.0], "ours", "η = f·η_Dexter, f uniform"),
        "n": same(100, "paper", "authors' code"),
        "eta": same(0.5, "paper", "authors' code"),
        "sigmas": same(list(range(1, 51)), "paper", "authors' code"),
        "batches": same(list(range(1, 50)), "paper", "authors' code"),
        "reps": same(10, "paper", "authors' code"),
        "steps": same(1000, "paper", "authors' code (blow-up 1000×)"),
        "mc": same([6, 3, 2, 0.15, 20], "ours", "(n, d, B, η, T), stable instance"),
        "mc_runs": Setting(20_000, 100_000, "ours"),
        "kernel_reps": Setting(100, 300, "ours", "runs per cell, kernel vs paths"),
        "kernel_cells": Setting(3, 12, "ours", "cells checked, kernel vs paths"),
        "tail_runs": Setting(300, 4000, "ours",
                             "runs at the worst disagreeing cell"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("thm1", "Bernoulli sampling: λ₁(H) ≥ (σ/η)(n/B − 1)^(−1/2) "
                      "⇒ E‖w_t‖² → ∞",
              "Dexter et al., Theorem 1, as reconstructed in SPEC.md §B.3 from a "
              "secondary summary", kind="reading",
              ours_part="the inequality's form and constants (from a summary, not "
              "the paper's text); the random families and the range of η tested"),
        Claim("thm1_authors", "Dexter's condition under another sampling: it also "
              "implies divergence when B indices are drawn without replacement, the "
              "sampling of Paper 2's code",
              "ours: Theorem 1 carried to a sampling it does not cover (SPEC.md §B.1)",
              kind="ours"),
        Claim("fig1a", "At equal sharpness λ₁(H) = 2, SGD is unstable at low "
              "coherence and small batches, stable at high coherence and large "
              "batches",
              "Paper 2, Figure 1(a), known from the authors' code (coherence_local.py,"
              " SPEC.md §B.10(a)); we have not seen the figure", kind="reading",
              ours_part="what the figure shows (read from the code): monotone in σ "
              "and B up to 1 % of adjacent cell pairs, and the two corners"),
        Claim("rule", "The authors' simulation rule finds the mean-square boundary "
              "ρ(𝒯) = 1, up to cells next to it", "ours (SPEC.md §B.10)",
              kind="ours"),
        Claim("why", "Where the rule and ρ(𝒯) disagree, E‖w_t‖² diverges but "
              "typical runs do not: heavy tails", "ours", kind="ours"),
    ],
    checks=[
        Check("viol_bern", "families meeting the condition with ρ(𝒯_Bern) < 1",
              Criterion("<=", 0, "ours"), claim="thm1", fmt=".0f",
              tolerance="exact"),
        Check("ratio_bern", "min η_Dexter/η*_Bern over the families",
              Criterion(">=", 1 - 1e-9, "ours"), role="secondary", claim="thm1"),
        Check("viol_wor", "families meeting the condition with ρ(𝒯_wor) < 1",
              Criterion("<=", 0, "ours"), claim="thm1_authors", fmt=".0f",
              tolerance="exact"),
        Check("ratio_wor", "min η_Dexter/η*_wor over the families",
              Criterion(">=", 1 - 1e-9, "ours"), role="secondary",
              claim="thm1_authors"),
        Check("grid_viol", "Figure-1 cells meeting the condition with ρ(𝒯_wor) < 1",
              Criterion("<=", 0, "ours"), role="secondary", claim="thm1_authors",
              fmt=".0f", tolerance="exact"),
        Check("monotone", "fraction of adjacent cell pairs where the simulated map "
              "loses stability as σ or B grows", Criterion("<=", 0.01, "ours"),
              claim="fig1a", fmt=".4f", tolerance=SIM),
        Check("corners", "simulated: (σ=1, B=1) unstable and (σ=50, B=49) stable",
              Criterion("==", True, "ours"), claim="fig1a", tolerance="exact"),
        Check("agree", "cells where the simulated map equals ρ(𝒯_wor) < 1 "
                       "(fraction)",
              Criterion(">=", 0.95, "ours", "SPEC.md §B.10"), claim="rule",
              fmt=".4f", tolerance=SIM),
        Check("near", "max |ρ(𝒯) − 1| over the disagreeing cells",
              Criterion("<", 0.02, "ours", "SPEC.md §B.10"), role="secondary",
              claim="rule", fmt=".4f", tolerance=SIM),
        Check("typical", "disagreeing cells where the almost-sure rate keeps typical "
              "runs below 1000× (fraction)", Criterion(">=", 0.9, "ours"),
              claim="why", fmt=".3f", tolerance=SIM),
        Check("tail", "worst disagreeing cell: Monte-Carlo mean / exact E‖w_T‖²",
              Criterion("<=", 0.5, "ours"), role="secondary", claim="why", fmt=".2e",
              tolerance=SIM),
        Check("kind", "disagreements that are ρ(𝒯) ≥ 1 cells called stable "
              "(fraction; at ρ(𝒯) < 1 Doob's inequality caps a run's escape "
              "at 1/1000)",
              Criterion(">=", 1.0, "ours"), role="guard", fmt=".3f", tolerance=SIM),
        Check("crossing", "ρ(𝒯) crosses 1 at η* = 1/ρ(L⁻¹Q) on every family, "
              "both samplings", Criterion("==", True, "ours"), role="guard",
              tolerance="exact"),
        Check("mc_wor", "Monte Carlo vs tr 𝒯ᵗ(W₀), without replacement: max |z| "
                        "over t",
              Criterion("<=", 4, "ours", "20 correlated comparisons"), role="guard",
              fmt=".2f", tolerance=SIM),
        Check("mc_bern", "Monte Carlo vs tr 𝒯ᵗ(W₀), Bernoulli: max |z| over t",
              Criterion("<=", 4, "ours", "20 correlated comparisons"), role="guard",
              fmt=".2f", tolerance=SIM),
        Check("diag_dense", "spectral_radius_diagonal vs the dense operator, "
              "construction n = 12, all σ and B, both samplings (max abs. diff.)",
              Criterion("<=", 1e-10, "ours"), role="guard", fmt=".1e"),
        Check("boundary", "exact diverging batch sizes equal the spec's closed form "
              "(σ = 1, 2, 5, 10, 25, 50)",
              Criterion("==", True, "ours", "SPEC.md §B.8a"), role="guard",
              tolerance="exact"),
        Check("kernel", "heat-map kernel vs axes_log_norms: escape fractions, max |z| "
              "over the checked cells", Criterion("<=", 4, "ours"), role="guard",
              fmt=".2f", tolerance=SIM),
    ],
    validity=[
        Validity("power", "fraction of families meeting the condition",
                 Criterion(">=", 0.4, "ours"), "power", "thm1"),
        Validity("power_wor", "fraction of families meeting the condition",
                 Criterion(">=", 0.4, "ours"), "power", "thm1_authors"),
        Validity("n_disagree", "cells where the rule and ρ(𝒯) < 1 disagree",
                 Criterion(">=", 3, "ours"), "power", "why", fmt=".0f",
                 tolerance=SIM),
    ],
    changes=[
        Change("heat-map grid at smoke scale", "8 × 9 cells", "the authors' 50 × 49",
               "the whole grid costs seconds"),
        Change("Monte-Carlo guard", "|z| < 3 at every t", "max |z| ≤ 4",
               "20 correlated comparisons; 3 s.e. each is a false alarm now and then"),
        Change("kernel-guard runs per cell (smoke / full)", "200 / 400", "100 / 300",
               "cost (set before the full-scale run); the criterion is unchanged"),
        Change("kernel-guard cells (smoke / full)", "12 / 12", "3 / 12",
               "cost: smoke runs in CI on 2 cores (set before the full-scale run)"),
        Change("tail runs (smoke / full)", "2000 / 10000", "300 / 4000",
               "cost (set before the full-scale run); 4000 runs still show the gap"),
        Change("claim thm1_authors", "a reading of Theorem 1, judged like the "
               "theorem itself", "a hypothesis of ours",
               "Theorem 1 is stated for Bernoulli sampling; its failure without "
               "replacement is our finding, not a failure of the paper"),
        Change("claims thm1 and fig1a", "kind paper / old-form reading",
               "readings that say what is ours",
               "the inequality comes from a summary, the figure from the code"),
        Change("family power", "a guard (fraction meeting the condition ≥ 0.4)",
               "a validity condition of thm1 and thm1_authors, same criterion",
               "a test without power is inconclusive, not a bug of the book"),
        Change("primary check of 'why'", "kind (a secondary: typical)",
               "typical; kind becomes a guard",
               "kind cannot fail: at ρ(𝒯) < 1 each axis' square is a "
               "supermartingale, so a run crosses 1000× with probability "
               "≤ 1/1000 and 6 of 10 never do"),
        Change("validity of 'why'", "none ('typical' read 1 without any "
               "disagreeing cell)", "at least 3 disagreeing cells",
               "set after the record had 65 such cells; a claim about disagreeing "
               "cells is untested without them"),
        rho_at_one("no value of this chapter moved in that run"),
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

from flatbias import almost_sure, chapter_record, coherence as co
from flatbias import divergence_conditions as dc, escape_agreement, repro, simulate
from flatbias import stability, verdict
from flatbias.families import clustered_family
from flatbias.heatmap_panels import stability_panel
from flatbias.scale import get_scale
from flatbias.style import set_style

# %% tags=["hide-input"]
scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
torch.set_num_threads(1)  # small tensors: extra threads only spin (CPU time)
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
N, ETA, SIGMAS, BATCHES = P["n"], P["eta"], P["sigmas"], P["batches"]
print(f"scale = {scale}: {P['families']} families; "
      f"heat-map {len(SIGMAS)} x {len(BATCHES)} cells")

# %% [markdown]
# ## Measurement
#
# **Theorem 1 on random families, under both samplings.** Each family gets its exact
# thresholds $\eta^*$ (one per sampling) and the radius at $f\cdot\eta_{\rm Dexter}$.

# %% tags=["hide-input"]
# rows: f, ρ(𝒯) at f·η_D and η_D/η* (Bernoulli), the same without replacement
R, crossing = dc.random_sgd_trials(P["families"], P["family_n"], P["family_d"],
                                   P["family_rank"], P["eta_factor"], gen)
meets = R[:, 0] >= 1
viol_bern, viol_wor = dc.violations(R, 1), dc.violations(R, 3)
print(f"{len(R)} families, {meets.sum()} meet the condition; violations: Bernoulli "
      f"{viol_bern}, without replacement {viol_wor}; min eta_D/eta*: "
      f"{R[:, 2].min():.3f} (Bernoulli), {R[:, 4].min():.3f} (without replacement)")

# %% [markdown]
# **The exact operator against Monte Carlo.** On a stable instance (sizes in the protocol,
# $\lambda_1(H)=1$), the mean of $\lVert w_t\rVert^2$ over many independent runs must equal
# $\operatorname{tr}\mathcal{T}^t(w_0w_0^\top)$ within the Monte-Carlo error at every $t$,
# for both samplings.

# %% tags=["hide-input"]
mn, md, mB, meta, mT = P["mc"]
Hs = clustered_family(mn, md, 2, 1.0, gen)
Hs = Hs / float(torch.linalg.eigvalsh(Hs.mean(0))[-1])
w0 = torch.randn(md, generator=gen, dtype=torch.float64)
mc_z = {}
for smp in ("without_replacement", "bernoulli"):
    exact = stability.second_moments(Hs, meta, mB, torch.outer(w0, w0), mT,
                                     sampling=smp)
    mc = simulate.simulate(Hs, meta, mB, w0.expand(P["mc_runs"], md), mT, sampling=smp,
                           generator=gen)
    z = (mc.mean(1) - exact) / (mc.std(1) / math.sqrt(P["mc_runs"])).clamp_min(1e-300)
    mc_z[smp] = float(z[1:].abs().max())
print("max |z| over t:", {k: round(v, 2) for k, v in mc_z.items()})

# %% [markdown]
# **Figure 1(a), the (batch size, coherence) heat-map.** The authors' family
# ({doc}`10_coherence`) has $\lambda_1(H)=2$ for every $\sigma$, so the heat-map varies
# coherence at fixed sharpness. All $H_i$ are diagonal, so $\mathcal{T}$ acts on each axis
# separately and $\rho(\mathcal{T})$ is the largest per-axis multiplier
# $\mathbb{E}[(1-\eta\hat h_k)^2]$ (exact, our derivation). Two guards check it: against the
# dense operator on a smaller construction, and against the closed-form boundary of the
# spec. The simulation runs every cell and repetition in one compiled kernel (numba).

# %% tags=["hide-input"]
k, a, d, Bs, ss = simulate.authors_grid(N, SIGMAS, BATCHES)
D = torch.zeros(len(Bs), N, int(d.max()), dtype=torch.float64).scatter_(
    2, k[:, :, None], a[:, :, None])
rho_cells = stability.spectral_radius_diagonal(D, ETA, Bs).numpy()
div = simulate.simulate_axes(k, a, d, Bs, ETA, reps=P["reps"], steps=P["steps"],
                             generator=gen, progress=False)
sim_stable = simulate.stable_cells(div).numpy()
exact_stable = stability.stable(rho_cells)
escapes = div.sum(1).numpy()
dexter_unstable = ETA * 2 >= ss.numpy() / np.sqrt(N / Bs.numpy() - 1)  # λ1(H) = 2
grid_viol = int((dexter_unstable & exact_stable).sum())
agree = sim_stable == exact_stable
print(f"{len(Bs)} cells: simulation = exact on {agree.mean():.1%}; "
      f"{int((~agree).sum())} disagree")

# %% tags=["hide-input"]
diag_dense = 0.0  # guard: the per-axis formula against the dense operator (n = 12)
for s in range(1, 13):
    Hc = co.authors_family(12, s)
    for b in range(1, 12):
        for smp in ("without_replacement", "bernoulli"):
            dense = stability.spectral_radius(Hc, ETA, b, sampling=smp,
                                              algorithm="dense")
            diag = float(stability.spectral_radius_diagonal(
                torch.diagonal(Hc, dim1=1, dim2=2), ETA, b, sampling=smp))
            diag_dense = max(diag_dense, abs(dense - diag))
spec_boundary = {1: 49, 2: 33, 5: 16, 10: 8, 25: 2, 50: 0}  # largest diverging B (spec)
grid = rho_cells.reshape(len(SIGMAS), len(BATCHES))
found = {s: max([b for b, r in zip(BATCHES, grid[SIGMAS.index(s)]) if r > 1], default=0)
         for s in spec_boundary}
print(f"diagonal vs dense: {diag_dense:.1e}; largest diverging B: {found}")

# %% [markdown]
# **Where the simulated map and $\rho(\mathcal{T})$ disagree.** Mean-square divergence is
# driven by rare, very large excursions; a typical run follows the **almost-sure** growth
# rate $\gamma=\max_k\mathbb{E}\log\lvert1-\eta\hat h_k\rvert$, which is smaller. For this
# family $\hat h_k$ is $a/B$ times a Bernoulli (orthogonal axes) or a hypergeometric count
# (the shared axis), so $\gamma$ is exact (`flatbias.almost_sure`). A typical run crosses
# the 1000× threshold in $T=1000$ steps roughly when $2T\gamma>\log(1000\,d)$ (our
# heuristic).

# %% tags=["hide-input"]
gamma = np.array([almost_sure.authors_growth_rate(s, b, N, ETA)
                  for b, s in zip(Bs.tolist(), ss.tolist())])
typical_unstable = 2 * P["steps"] * gamma > np.log(1000 * d.numpy())
bad = np.flatnonzero(~agree)
same_as = (sim_stable == ~typical_unstable).mean()
print(f"simulation = almost-sure heuristic on {same_as:.1%} of cells")
for i in bad[np.argsort(-rho_cells[bad])][:8]:
    print(f"  sigma={int(ss[i]):2d} B={int(Bs[i]):2d}: rho={rho_cells[i]:.4f}, "
          f"E growth over T: {rho_cells[i] ** P['steps']:.2g}x, typical: "
          f"{math.exp(2 * P['steps'] * gamma[i]):.2g}x, "
          f"escaped {escapes[i]}/{P['reps']}")

# %% [markdown]
# At the disagreeing cell with the largest $\rho(\mathcal{T})$ we run many more trajectories
# with `simulate.axes_log_norms`, which carries $\log\lvert w_k\rvert$ per axis (no overflow,
# no freezing), and compare the Monte-Carlo mean of $\lVert w_T\rVert^2$ with the exact
# $\mathbb{E}\lVert w_T\rVert^2=\sum_k m_k^T\,\mathbb{E}w_{0,k}^2$ ($w_{0,k}\sim U[0,1]$, so
# $\mathbb{E}w_{0,k}^2=1/3$).

# %% tags=["hide-input"]
T, tail = P["steps"], None
if len(bad):
    worst = int(bad[np.argmax(rho_cells[bad])])
    s_w, b_w = int(ss[worst]), int(Bs[worst])
    k_w, a_w, d_w = co.authors_axes(N, s_w)
    paths = simulate.axes_log_norms(k_w, a_w, d_w, b_w, ETA, P["tail_runs"], T,
                                    generator=gen)
    m_w = stability.diagonal_multipliers(D[worst, :, :d_w], ETA, b_w)
    log_exact = float(torch.logsumexp(T * m_w.log(), 0)) - math.log(3)
    log_mc = float(torch.logsumexp(paths[:, -1], 0)) - math.log(P["tail_runs"])
    tail = {"sigma": s_w, "B": b_w, "rho": float(rho_cells[worst]),
            "log10_exact": log_exact / math.log(10), "log10_mc": log_mc / math.log(10),
            "log10_median": float(paths[:, -1].median()) / math.log(10),
            "final": paths[:, -1].numpy() / math.log(10)}
    print(f"sigma={s_w}, B={b_w}: log10 E||w_T||^2 exact {tail['log10_exact']:.2f}, "
          f"MC mean {tail['log10_mc']:.2f}, median {tail['log10_median']:.2f}")

# %% [markdown]
# The same independent simulator checks the compiled kernel: on the disagreeing cells (or,
# when there are none, the boundary cells of the spec) both must give the same escape
# fraction (`flatbias.escape_agreement`).

# %% tags=["hide-input"]
spec_cells = [SIGMAS.index(s) * len(BATCHES) + BATCHES.index(b)
              for s, b in ((2, 33), (5, 16), (10, 8))]
checked = (bad if len(bad) else spec_cells)[:P["kernel_cells"]]
kz = max((escape_agreement.escape_z(N, int(ss[i]), int(Bs[i]), ETA, P["kernel_reps"],
                                    T, generator=gen) for i in checked), default=0.0)
print(f"kernel vs axes_log_norms on {len(checked)} cells: max |z| = {kz:.2f}")

# %% [markdown]
# ## Checks, and the paper-scale record

# %% tags=["hide-input"]
sg = sim_stable.reshape(grid.shape)  # rows: σ, columns: B
pairs = np.concatenate([(sg[1:] < sg[:-1]).ravel(), (sg[:, 1:] < sg[:, :-1]).ravel()])
first, last = 0, len(Bs) - 1  # (σ=1, B=1) and (σ=50, B=49)
has_bad = len(bad) > 0  # without disagreeing cells 'why' is inconclusive (validity)
measured = {
    "viol_bern": viol_bern, "ratio_bern": float(R[:, 2].min()),
    "viol_wor": viol_wor, "ratio_wor": float(R[:, 4].min()), "grid_viol": grid_viol,
    "monotone": float(pairs.mean()),
    "corners": bool(not sim_stable[first] and sim_stable[last]),
    "agree": float(agree.mean()),
    "near": float(np.abs(rho_cells[bad] - 1).max()) if has_bad else 0.0,
    "typical": float((~typical_unstable[bad]).mean()) if has_bad else 1.0,
    "tail": 10 ** (tail["log10_mc"] - tail["log10_exact"]) if has_bad else 0.0,
    "kind": float((~exact_stable[bad] & sim_stable[bad]).mean()) if has_bad else 1.0,
    "crossing": bool(crossing), "diag_dense": diag_dense,
    "mc_wor": mc_z["without_replacement"], "mc_bern": mc_z["bernoulli"],
    "boundary": found == spec_boundary, "kernel": kz,
    "power": float(meets.mean()), "power_wor": float(meets.mean()),
    "n_disagree": len(bad),
}

# %% tags=["hide-input"]
data = {"families": R, "rho": rho_cells, "sim_stable": sim_stable, "escapes": escapes,
        "dexter_unstable": dexter_unstable, "gamma": gamma, "tail": tail}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% [markdown]
# ## Figures

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; else this build's run
rho_s = np.array(shown["rho"], dtype=float)
sim_s = np.array(shown["sim_stable"], bool)
dex_s = np.array(shown["dexter_unstable"], bool)
fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.0), sharey=True)
panels = [(sim_s, "simulated (authors' rule)"),
          (stability.stable(rho_s), r"exact: $\rho(\mathcal{T})<1$"),
          (~dex_s, "Dexter bound not met")]
for ax, (z, title) in zip(axes, panels):
    stability_panel(ax, z, rho_s, SIGMAS, BATCHES, title)
axes[0].set_ylabel(r"coherence $\sigma$")
glue("fig_sgd_heatmap", fig, display=False)
plt.close(fig)

# %% tags=["hide-input"]
Rf = np.array(shown["families"])
fig2, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.0))
ax1.hist(np.log10(Rf[:, 2]), bins=40, color="C0", alpha=0.7, label="Bernoulli")
ax1.hist(np.log10(Rf[:, 4]), bins=40, color="C1", alpha=0.7,
         label="without replacement")
ax1.axvline(0, color="k", lw=0.8)
ax1.set(xlabel=r"$\log_{10}(\eta_{\rm Dexter}/\eta^*)$", ylabel="families",
        title="how conservative Theorem 1 is")
ax1.legend(fontsize=7)
tl = shown["tail"]
if tl is not None:
    ax2.hist(np.array(tl["final"]), bins=60, color="0.6")
    ax2.axvline(tl["log10_exact"], color="k", label=r"exact $\log_{10}E\|w_T\|^2$")
    ax2.axvline(tl["log10_mc"], color="C3", ls="--", label="log10 of the MC mean")
    ax2.set(xlabel=r"$\log_{10}\|w_T\|^2$ per run", ylabel="runs",
            title=rf"$\sigma={tl['sigma']}$, $B={tl['B']}$, $\rho={tl['rho']:.3f}$")
    ax2.legend(fontsize=7)
glue("fig_sgd_ratio", fig2, display=False)
plt.close(fig2)

# %% tags=["remove-cell"]
glue("n_inst", len(Rf), display=False)
glue("n_meet", int((Rf[:, 0] >= 1).sum()), display=False)
glue("n_viol_wor", dc.violations(Rf, 3), display=False)
glue("ratio_min_wor", float(Rf[:, 4].min()), display=False)
glue("ratio_median", float(np.median(Rf[:, 2])), display=False)
glue("ratio_median_wor", float(np.median(Rf[:, 4])), display=False)
bad_s = np.flatnonzero(sim_s != stability.stable(rho_s))
glue("n_bad", len(bad_s), display=False)
glue("rho_bad_max", float(rho_s[bad_s].max()) if len(bad_s) else 1.0, display=False)
glue("rho_bad_min", float(rho_s[bad_s].min()) if len(bad_s) else 1.0, display=False)
glue("growth_bad_max", float(rho_s[bad_s].max() ** P["steps"]) if len(bad_s) else 1.0,
     display=False)
gam = np.array(shown["gamma"], dtype=float)  # JSON keeps inf as "inf"
glue("gamma_bad_max", float(gam[bad_s].max()) if len(bad_s) else 0.0, display=False)
for key in ("log10_exact", "log10_mc", "log10_median"):
    glue(f"tail_{key[6:]}", tl[key] if tl is not None else float("nan"), display=False)
glue("tail_runs", len(tl["final"]) if tl is not None else 0, display=False)

# %% [markdown]
# ```{glue:figure} fig_sgd_heatmap
# :name: fig-sgd-heatmap
#
# Figure 1(a) recomputed at paper scale (green: stable, red: unstable; black line:
# $\rho(\mathcal{T})=1$). Left: the authors' simulation rule; middle: the exact mean-square
# criterion; right: where Dexter's sufficient condition does *not* predict divergence. Look
# at the bottom-left: low coherence and small batches are unstable at the same sharpness
# $\lambda_1(H)=2$ in all three; and at the band just right of the black line, where the
# rule (left) calls cells stable that the exact criterion (middle) calls unstable.
# ```
#
# ```{glue:figure} fig_sgd_ratio
# :name: fig-sgd-ratio
#
# Left: ratio of Dexter's learning-rate threshold to the exact one on the random families,
# under both samplings; look left of the black line ($\eta_{\rm Dexter}<\eta^*$): only the
# sampling without replacement has families there. Right: at the disagreeing cell with the
# largest $\rho(\mathcal{T})$, $\log_{10}\lVert w_T\rVert^2$ of every run ($T=1000$): the
# exact mean (black) sits far to the right of where the runs are, and the Monte-Carlo mean
# (dashed) is set by the few largest runs.
# ```
#
# (verdict-11)=
# ## Verdict
#
# The statuses below are derived from the checks and validity conditions by the book's one
# rule ({doc}`../book/intro`); the numbers come from the paper-scale record named on the
# first line, and this build's smoke run follows.

# %%
# NBVAL_CHECK_OUTPUT
print(verdict.report(paper, smoke))

# %% tags=["remove-cell"]
verdict.glue_verdict(paper, smoke);

# %% [markdown]
# **Theorem 1, under its own sampling (our reading).** On {glue:text}`n_inst` random
# families ({glue:text}`n_meet` meet the condition) the reconstructed inequality is tested
# under Bernoulli sampling, the theorem's; the first check above counts the families that
# meet it yet stay stable. The condition is conservative: the median ratio of its
# learning-rate threshold to the exact one is {glue:text}`ratio_median:.2f`.
#
# **Dexter's condition under another sampling (ours).** Under the authors' sampling without
# replacement, which the theorem does not cover, the condition does not always imply
# divergence: {glue:text}`n_viol_wor` families meet it and stay stable, and the smallest
# ratio $\eta_{\rm Dexter}/\eta^*$ is {glue:text}`ratio_min_wor:.3f` (median
# {glue:text}`ratio_median_wor:.2f`). Sampling without replacement has less minibatch noise
# than Bernoulli sampling (the batch size is not random), so its exact threshold is higher.
# This is a finding about a question of ours, not a failure of the theorem.
#
# **Figure 1(a), our reading.** Low coherence and small batches are unstable at equal
# sharpness, in the simulated map and in the exact one: the checks `monotone` and
# `corners` above.
#
# **The authors' rule and the exact criterion (ours).** They disagree on
# {glue:text}`n_bad` of the 2450 cells, with $\rho(\mathcal{T})$ between
# {glue:text}`rho_bad_min:.4f` and {glue:text}`rho_bad_max:.4f`: the check `near` says
# whether they sit next to the boundary; the guard `kind` confirms that all are unstable
# cells ($\rho(\mathcal{T})\ge1$) that the rule calls stable (the other kind of
# disagreement is ruled out by Doob's maximal inequality). Over $T=1000$ steps a radius of
# {glue:text}`rho_bad_max:.4f` multiplies $\mathbb{E}\lVert w_t\rVert^2$ by
# {glue:text}`growth_bad_max:.3g`, far above the rule's 1000×, yet the typical run
# shrinks: the largest almost-sure rate among these cells is $\gamma=$
# {glue:text}`gamma_bad_max:.2g` per step. The mean is carried by rare runs. At the worst
# cell, {glue:text}`tail_runs` runs give $\log_{10}$ of the Monte-Carlo mean of
# $\lVert w_T\rVert^2$ = {glue:text}`tail_mc:.1f` against the exact
# {glue:text}`tail_exact:.1f`, and the median run sits at {glue:text}`tail_median:.1f`: with
# heavy tails a Monte-Carlo mean falls below the exact second moment unless the rare runs
# that carry it are drawn, and a majority vote of 10 runs sees only typical runs. So the
# rule measures typical (almost-sure) divergence, not the mean-square divergence the
# theorems are about; the exact map is the one to read the theorems against. Overall
# status: {glue:text}`status`.
