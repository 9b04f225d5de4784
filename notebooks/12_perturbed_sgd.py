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
# # Random-perturbation SGD: same stability, a constant factor, a noise floor
#
# Paper 2 {cite}`chang2025unified` compares SGD with a "random perturbation" variant that
# adds isotropic Gaussian noise to the iterate before every step. Its Theorem 3.1 says that
# the noise does not change which minima are stable, that it makes the escape from unstable
# minima faster, and that at a stable minimum the iterates do not converge but keep
# fluctuating. A reviewer reads the second part as "once a minimum is unstable, the noise
# causes the iterates to diverge at a **faster rate**". This chapter tests the three parts,
# and both readings of the second, against the exact second moments (computed by brute force
# over every minibatch) and against simulation at the authors' Figure-1(b) settings.

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    url = "git+https://github.com/flatbias/flatbias-book"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", url], check=True)

# %% tags=["parameters"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else full on a GPU, smoke on a CPU

# %% [markdown]
# ## Protocol
#
# Declared before anything runs: the settings at both scales, the claims (one per reading of
# part (ii)), and the criterion of every check, each tagged as the paper's or ours.

# %% tags=["protocol"]
from flatbias.claims import Change, Check, Claim, Criterion, Protocol, Setting, same

PROTOCOL = Protocol(
    chapter="12_perturbed_sgd",
    settings={
        "n": same(100, "paper", "samples of the Figure-1 family (authors' code)"),
        "eta": same(0.5, "paper", "heat-map step size"),
        "reps": same(10, "paper", "runs per heat-map cell"),
        "steps": same(1000, "paper", "horizon; diverged at |w|² ≥ 1000 |w0|²"),
        "noise_std": same(1.0, "paper", "s, hard-coded 1 in random_process"),
        "sigmas": Setting(list(range(1, 51, 7)), list(range(1, 51)), "paper",
                          "heat-map σ (the full grid is the authors')"),
        "batches": Setting(list(range(1, 50, 6)), list(range(1, 50)), "paper",
                           "heat-map B"),
        "families": Setting(60, 300, "ours", "random families, exact second moments"),
        "family_n": same([4, 12], "ours", "range of n (every minibatch is enumerated)"),
        "family_d": same([2, 5], "ours", "range of d"),
        "horizon": same(600, "ours", "steps of the exact second-moment recursions"),
        "guard_families": same(8, "ours", "families also checked against the library"),
        "mc_runs": Setting(20_000, 40_000, "ours", "Monte-Carlo runs, noise floor"),
        "mc_steps": same(150, "ours"),
        "mc_sgd_steps": same(10, "ours", "SGD guard horizon (heavy tails later)"),
        "esc_runs": Setting(4_000, 10_000, "ours", "Monte-Carlo runs, typical escape"),
        "esc_steps": same(120, "ours"),
        "seed": same(0, "ours"),
    },
    claims=[
        Claim("same_stability", "Noise does not change which minima are stable: "
              "the perturbed method diverges in mean square exactly where SGD does, "
              "and the simulated Figure-1(b) maps of the two coincide",
              "Paper 2, Theorem 3.1 (i); Figure 1(b)"),
        Claim("faster_by_factor", "Past the threshold the perturbed mean square "
              "exceeds SGD's by a factor that converges to a constant > 1, and "
              "perturbed runs escape sooner",
              "Paper 2, Theorem 3.1 (ii), as paraphrased in SPEC §B.5",
              reading="ours"),
        Claim("faster_rate", "Once a minimum is unstable, the noise makes the iterates "
              "diverge at a faster (exponential) rate",
              "Paper 2, Theorem 3.1 (ii), as a reviewer reads it"),
        Claim("noise_floor", "At a stable minimum the perturbed iterates do not "
              "converge: E|w_t|² tends to the floor tr (I − 𝒯)⁻¹F > 0 and "
              "single "
              "runs stay away from the minimum",
              "Paper 2, Theorem 3.1 (iii); floor: our derivation",
              reading="ours"),
    ],
    checks=[
        Check("rate_vs_sgd", "max over families |g − max(ρ(𝒯),1)| / "
                             "max(ρ(𝒯),1), g the "
              "late growth of the brute-force perturbed E|w|²",
              Criterion("<=", 1e-3, "ours"), claim="same_stability", fmt=".1e"),
        Check("map_agree", "share of heat-map cells where perturbed and SGD maps agree",
              Criterion(">=", 0.95, "ours", "'largely coincide'"),
              claim="same_stability"),
        Check("rnd_vs_exact", "share of cells where the perturbed map = ρ(𝒯) < 1 "
                              "map",
              Criterion(">=", 0.95, "ours", "SPEC §B.10"), role="secondary",
              claim="same_stability"),
        Check("floor_high", "stable cells whose noise floor exceeds 1000× the start",
              Criterion("<=", 0, "ours"), role="secondary", claim="same_stability",
              fmt=".0f"),
        Check("c_min", "smallest ratio c of perturbed to SGD E|w_T|² (unstable)",
              Criterion(">", 1.0, "ours"), claim="faster_by_factor"),
        Check("c_conv", "largest |c_T / c_(T−1) − 1| (the ratio has converged)",
              Criterion("<=", 1e-3, "ours"), claim="faster_by_factor", fmt=".1e"),
        Check("esc_ratio", "median over cells of (SGD / perturbed) median escape step",
              Criterion(">", 1.0, "ours"), role="secondary", claim="faster_by_factor"),
        Check("rate_ratio", "median (unstable) of log g(perturbed) / log g(SGD)",
              Criterion(">", 1.01, "ours", "a rate at least 1 % faster"),
              claim="faster_rate", fmt=".4f"),
        Check("typical_rate_ratio", "at 2 η*: typical growth rate, perturbed / SGD",
              Criterion(">", 1.05, "ours"), role="secondary", claim="faster_rate"),
        Check("floor_z", "|z| of the Monte-Carlo E|w_T|² against tr (I − "
                         "𝒯)⁻¹F",
              Criterion("<=", 3.0, "ours"), claim="noise_floor", fmt=".2f"),
        Check("near_min_share", "share of runs with |w_T|² < 1e-3 tr W_∞",
              Criterion("<=", 0.01, "ours"), claim="noise_floor"),
        Check("enum_vs_lib", "brute-force E|w_t|² vs stability.second_moments (rel.)",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
        Check("radius_vs_enum", "stability.spectral_radius vs brute force (rel.)",
              Criterion("<=", 1e-8, "ours"), role="guard", fmt=".1e"),
        Check("mc_vs_exact", "max |z| of Monte-Carlo E|w_t|² (SGD, perturbed) vs "
              "exact, every step",
              Criterion("<=", 4.5, "ours", "Bonferroni over 300 tests"),
              role="guard", fmt=".2f"),
        Check("clear_cells_wrong", "simulated cells with ρ(𝒯) < 0.7 called "
                                   "unstable or "
              "ρ(𝒯) > 2 called stable (both maps)", Criterion("<=", 0, "ours"),
              role="guard", fmt=".0f"),
        Check("floor_closed_form", "per-axis noise floor vs (I − 𝒯)⁻¹F, dense "
                                   "(rel.)",
              Criterion("<=", 1e-9, "ours"), role="guard", fmt=".1e"),
    ],
    changes=[
        Change("random families at full scale", "1000 families, library recursion",
               "300 families, brute force over every minibatch",
               "the old check compared the library's recursion with its own operator; "
               "each family is now an exact, independent test, and 300 span the same "
               "range of n, d, B and η at a tenth of the time"),
        Change("Monte-Carlo runs at full scale",
               "100 000 (noise floor), 20 000 (escape)", "40 000, 10 000",
               "33 minutes at full scale; the z-test keeps a relative standard error "
               "near 1 %"),
        Change("reading of part (ii)",
               "one claim, its status beside the words 'not a faster rate'",
               "two claims, one per reading", "a careful reader's review (issue 12)"),
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

from flatbias import chapter_record, repro, simulate, stability, verdict
from flatbias.scale import get_scale
from flatbias.style import set_style

scale = get_scale(scale)
P = PROTOCOL.at(scale)
set_style()
torch.set_num_threads(1)  # small tensors: one thread is fastest on a shared CPU
t_start = time.perf_counter()
gen = repro.seed_everything(P["seed"])
S = P["noise_std"]
print(f"scale = {scale}: {P['families']} families; heat-map {len(P['sigmas'])} x "
      f"{len(P['batches'])} cells x {P['reps']} runs x {P['steps']} steps")

# %% [markdown]
# ## The claim
#
# ```{prf:theorem} Random perturbation (paper 2, Theorem 3.1, as reconstructed from a summary)
# :label: thm-random-perturbation
#
# Let $w_{t+1}=(I-\eta\hat H_t)(w_t+s\,\xi_t)$ with $\xi_t\sim\mathcal N(0,I)$ independent of
# the minibatch. Then (i) it diverges in mean square under exactly the same condition as SGD,
# (ii) it escapes unstable minima faster, and (iii) at a stable minimum it does not converge:
# the iterates keep fluctuating.
# ```
#
# A reviewer summarizes (ii) as "once a minimum is unstable, the noise causes the iterates to
# diverge at a faster rate"; our specification (SPEC §B.5) paraphrases it as "faster by a
# constant factor". The two readings make different predictions, so the protocol tests each
# as its own claim.
#
# **Our derivation.** With $W_t=\mathbb E[w_tw_t^\top]$ and $\mathcal T$ the SGD mean-square
# operator of {doc}`11_sgd_stability`, independence of $\xi_t$ gives
# $$
# W_{t+1}=\mathcal T(W_t+s^2I)=\mathcal T(W_t)+F,\qquad F=s^2\,\mathcal T(I)\succ0 .
# $$
# So $W_t=\mathcal T^t(W_0)+\sum_{j<t}\mathcal T^j(F)$: SGD's operator plus a forcing. It stays
# bounded iff $\rho(\mathcal T)<1$ (then $W_t\to W_\infty=(I-\mathcal T)^{-1}F\ne0$, the noise
# floor) and otherwise grows at the **same** rate $\rho(\mathcal T)^t$ as SGD, with a larger
# prefactor. The derivation predicts the constant-factor reading and contradicts the
# faster-rate one. The checks below do not use it: they compute the second moments by brute
# force, averaging $(I-\eta\hat H_S)(W+s^2I)(I-\eta\hat H_S)^\top$ over every minibatch $S$,
# and they simulate.
#
# | part of the setting | source |
# |---|---|
# | update $(I-\eta\hat H_t)(w_t+\xi_t)$, $s=1$, $B$ indices without replacement | the authors' code (`random_process`) |
# | heat-map: $n=100$, $\eta=0.5$, 10 runs, 1000 steps, diverged at $\lVert w_t\rVert^2\ge1000\lVert w_0\rVert^2$, $w_0\sim U[0,1]^d$ | the authors' code |
# | second-moment recursion, noise floor $(I-\mathcal T)^{-1}F$ | **our derivation** |
# | random families, $\eta=f\,\eta^*$ with $f\in[0.5,0.9]\cup[1.1,2]$ | **our choice** |
#
# ## (i) and (ii) on random families, by brute force
#
# For each family we enumerate every minibatch, build $\mathbb E_S[A_S\otimes A_S]$ with
# $A_S=I-\eta\hat H_S$, and iterate the exact second moment of SGD and of the perturbed method
# from $W_0=I$. The late growth factor $g=\operatorname{tr}W_T/\operatorname{tr}W_{T-1}$ of each
# is compared with SGD's $\rho(\mathcal T)$ from the library, and the ratio
# $c_T=\operatorname{tr}W_T^{\text{pert}}/\operatorname{tr}W_T^{\text{SGD}}$ is recorded.

# %%
def random_family(n, d, tau, g):
    shape = dict(generator=g, dtype=torch.float64)
    A = torch.randn(1, d, d, **shape) + tau * torch.randn(n, d, d, **shape)
    return A @ A.transpose(1, 2)


T = P["horizon"]
fam = []  # (rho, g_sgd, g_rnd, log c_T, |c_T / c_(T-1) - 1|)
guard_enum, guard_rho = 0.0, 0.0
for j in range(P["families"]):
    n = int(torch.randint(P["family_n"][0], P["family_n"][1] + 1, (1,), generator=gen))
    d = int(torch.randint(P["family_d"][0], P["family_d"][1] + 1, (1,), generator=gen))
    H, B = random_family(n, d, 0.7, gen), int(torch.randint(1, n, (1,), generator=gen))
    u = float(torch.rand(1, generator=gen))
    f = 0.5 + 0.8 * u if u < 0.5 else 1.1 + 0.9 * (2 * u - 1)
    eta = f * stability.critical_eta(H, B)
    M = stability.enumerated_operator(H, eta, B)
    W0 = torch.eye(d, dtype=torch.float64)
    lg = [stability.enumerated_second_moments(H, eta, B, W0, T, noise_std=s, operator=M)
          for s in (0.0, S)]
    rho = stability.spectral_radius(H, eta, B)
    log_c = lg[1] - lg[0]
    fam.append((rho, math.exp(lg[0][-1] - lg[0][-2]), math.exp(lg[1][-1] - lg[1][-2]),
                float(log_c[-1]), abs(math.expm1(log_c[-1] - log_c[-2]))))
    if j < P["guard_families"]:  # library recursion and radius against brute force
        lib = stability.second_moments(H, eta, B, W0, 50, noise_std=S)
        guard_enum = max(guard_enum, float((lg[1][:51].exp() / lib - 1).abs().max()))
        brute = float(torch.linalg.eigvals(M).abs().max())
        guard_rho = max(guard_rho, abs(rho / brute - 1))
F = np.array(fam)
unst = F[:, 0] > 1
target = np.maximum(F[:, 0], 1.0)
print(f"{len(F)} families, {unst.sum()} unstable; max |g - max(rho, 1)| / max(rho, 1): "
      f"perturbed {np.max(np.abs(F[:, 2] / target - 1)):.1e}")
ratio_log = np.log(F[unst, 2]) / np.log(F[unst, 1])
c_unst = np.exp(F[unst, 3])
print(f"unstable: c from {c_unst.min():.3g} to {c_unst.max():.3g}; "
      f"log g ratio (perturbed / SGD) median {np.median(ratio_log):.6f}")

# %% [markdown]
# ## (iii) The noise floor, exact and simulated
#
# On a stable instance ($n=6$, $d=3$, $B=2$, $\lambda_1(H)=1$, $\eta=0.6\,\eta^*$) we start
# at the minimum, $w_0=0$, run many independent perturbed trajectories, and compare the mean
# of $\lVert w_t\rVert^2$ with the exact $\operatorname{tr}W_t$ at every step and with the
# stationary value $\operatorname{tr}W_\infty$ at the end. SGD runs from $w_0=(1,1,1)$ are
# compared with its exact second moment the same way over the first steps (a guard on the
# simulator; later, SGD's decaying $\lVert w_t\rVert^2$ is too heavy-tailed for a z-test).

# %%
H6 = random_family(6, 3, 1.0, gen)
H6 = H6 / float(torch.linalg.eigvalsh(H6.mean(0))[-1])
eta6 = 0.6 * stability.critical_eta(H6, 2)
R, T_mc = P["mc_runs"], P["mc_steps"]
zeros = torch.zeros(R, 3, dtype=torch.float64)
exact_rnd = stability.second_moments(H6, eta6, 2, torch.zeros(3, 3), T_mc, noise_std=S)
W_inf = float(torch.trace(stability.stationary_second_moment(H6, eta6, 2, noise_std=S)))
mc = simulate.simulate(H6, eta6, 2, zeros, T_mc, method="random", noise_std=S,
                       generator=gen)
ones = torch.ones(3, dtype=torch.float64)
T_sgd = P["mc_sgd_steps"]  # SGD's |w_t|² gets heavy-tailed: its z-test is short
exact_sgd = stability.second_moments(H6, eta6, 2, ones.outer(ones), T_sgd)
mc_sgd = simulate.simulate(H6, eta6, 2, ones.expand(R, 3), T_sgd, generator=gen)
z = [((m.mean(1) - e) / (m.std(1) / math.sqrt(R)))[1:].abs().max()
     for m, e in ((mc, exact_rnd), (mc_sgd, exact_sgd))]
z_inf = float((mc[-1].mean() - W_inf) / (mc[-1].std() / math.sqrt(R)))
near_min = float((mc[-1] < 1e-3 * W_inf).double().mean())
print(f"rho(T) = {stability.spectral_radius(H6, eta6, 2):.3f}; tr W_inf = {W_inf:.4g}; "
      f"MC at t = {T_mc}: {mc[-1].mean():.4g} +- {mc[-1].std() / math.sqrt(R):.2g}")

# %% [markdown]
# ## (ii) Typical runs past the threshold
#
# Same family at $\eta=1.2\,\eta^*$ and $2\,\eta^*$ (unstable), from one $w_0\sim\mathcal N(0,I)$.
# A *typical* run (the median of $\lVert w_t\rVert^2$ over runs) grows at the almost-sure
# rate, which can differ from the mean-square rate $\rho(\mathcal T)$; we measure it for both
# methods over the second half of the horizon.

# %%
w0 = torch.randn(3, generator=gen, dtype=torch.float64)
T_esc, R_esc, esc, curves = P["esc_steps"], P["esc_runs"], {}, {}
for f in (1.2, 2.0):
    eta_u = f * stability.critical_eta(H6, 2)
    lg = [stability.enumerated_second_moments(H6, eta_u, 2, w0.outer(w0), T_esc,
                                              noise_std=s) for s in (0.0, S)]
    med = [simulate.simulate(H6, eta_u, 2, w0.expand(R_esc, 3), T_esc, method=m,
                             noise_std=S, generator=gen).log().median(1).values
           for m in ("sgd", "random")]
    half = T_esc // 2
    slopes = [float(v[-1] - v[half]) / (T_esc - half) for v in med]
    curves[f] = ([x.tolist() for x in lg], [x.tolist() for x in med])
    rho_u = stability.spectral_radius(H6, eta_u, 2)
    esc[f] = dict(rho=rho_u, sgd=slopes[0], rnd=slopes[1])
    print(f"eta = {f} eta*: log rho(T) = {math.log(esc[f]['rho']):.3f}; typical growth "
          f"per step: SGD {slopes[0]:.3f}, perturbed {slopes[1]:.3f}")

# %% [markdown]
# ## Figure 1(b): the (batch size, coherence) heat-map
#
# The authors' rule (a cell is stable if at least 5 of 10 runs stay below
# $1000\lVert w_0\rVert^2$ for 1000 steps) for SGD and for the perturbed method, next to the
# exact $\rho(\mathcal T)<1$ map, on the family of {doc}`10_coherence` ($\lambda_1(H)=2$ for
# every $\sigma$). The runs use the compiled kernel `simulate.escape_times_axes_rng` (numpy
# `Generator` streams, several times faster for the noise). For these diagonal families the
# noise floor is exact per axis, $\operatorname{tr}W_\infty=\sum_k s^2m_k/(1-m_k)$ with $m_k$
# the axis multipliers; where it exceeds the threshold $1000\,\mathbb E\lVert w_0\rVert^2=1000\,d/3$,
# the authors' rule would call a mean-square stable cell unstable.

# %%
N, ETA, REPS, STEPS = P["n"], P["eta"], P["reps"], P["steps"]
k, a, d, Bs, ss = simulate.authors_grid(N, P["sigmas"], P["batches"])
D = torch.zeros(len(Bs), N, int(d.max()), dtype=torch.float64)
D = D.scatter_(2, k[:, :, None], a[:, :, None])
rho_cells = stability.spectral_radius_diagonal(D, ETA, Bs).numpy()
seeds = torch.randint(0, 2**40, (2,), generator=gen).tolist()
Tsgd = simulate.escape_times_axes_rng(k, a, d, Bs, ETA, REPS, STEPS, seed=seeds[0])
Trnd = simulate.escape_times_axes_rng(k, a, d, Bs, ETA, REPS, STEPS, method="random",
                                      noise_std=S, seed=seeds[1])
sgd_stable = simulate.stable_cells(Tsgd <= STEPS).numpy()
rnd_stable = simulate.stable_cells(Trnd <= STEPS).numpy()
exact_stable = rho_cells < 1
m_k = stability.diagonal_multipliers(D, ETA, Bs)  # padded axes (k >= d) are not in it
valid = torch.arange(D.shape[2])[None, :] < d[:, None]
per_axis = torch.where(m_k < 1, S**2 * m_k / (1 - m_k), torch.full_like(m_k, math.inf))
floor = torch.where(valid, per_axis, torch.zeros_like(m_k)).sum(1).numpy()
floor_high = exact_stable & (floor >= 1000 * d.numpy() / 3)
both = ((Tsgd <= STEPS) & (Trnd <= STEPS)).all(1)
med_sgd, med_rnd = (x[both].double().median(1).values for x in (Tsgd, Trnd))
speedup = (med_sgd / med_rnd).numpy()
clear = (rho_cells < 0.7) | (rho_cells > 2)
wrong = sum(int((clear & (m != exact_stable)).sum()) for m in (sgd_stable, rnd_stable))
print(f"{len(Bs)} cells: perturbed = SGD on {np.mean(sgd_stable == rnd_stable):.1%}; "
      f"perturbed = exact on {np.mean(rnd_stable == exact_stable):.1%}; "
      f"SGD = exact on {np.mean(sgd_stable == exact_stable):.1%}; "
      f"{int(both.sum())} cells where every run escapes")

# %% [markdown]
# A last guard checks the per-axis noise floor against the dense $(I-\mathcal T)^{-1}F$ on a
# small cell of the same construction ($n=10$, $\sigma=4$, $B=3$).

# %%
k10, a10, d10 = simulate.authors_grid(10, [4], [3])[:3]
H10 = torch.zeros(10, int(d10[0]), int(d10[0]), dtype=torch.float64)
H10[torch.arange(10), k10[0], k10[0]] = a10[0]
dense_floor = torch.trace(stability.stationary_second_moment(H10, 0.3, 3, noise_std=S))
axis_floor = stability.diagonal_noise_floor(torch.diagonal(H10, dim1=1, dim2=2), 0.3, 3,
                                            noise_std=S)
guard_floor = abs(float(axis_floor / dense_floor) - 1)

# %% [markdown]
# ## Checks, and the paper-scale record
#
# Every check of the protocol is measured here. At `full` scale this run's numbers and figure
# data become the chapter's record; at `smoke` scale they re-check the pipeline (the guards
# must pass) and the figures and verdict come from the committed paper-scale record.

# %%
measured = {
    "rate_vs_sgd": float(np.max(np.abs(F[:, 2] / target - 1))),
    "map_agree": float(np.mean(sgd_stable == rnd_stable)),
    "rnd_vs_exact": float(np.mean(rnd_stable == exact_stable)),
    "floor_high": int(floor_high.sum()),
    "c_min": float(c_unst.min()),
    "c_conv": float(F[unst, 4].max()),
    "esc_ratio": float(np.median(speedup)) if both.any() else float("nan"),
    "rate_ratio": float(np.median(ratio_log)),
    "typical_rate_ratio": esc[2.0]["rnd"] / esc[2.0]["sgd"],
    "floor_z": abs(z_inf),
    "near_min_share": near_min,
    "enum_vs_lib": guard_enum,
    "radius_vs_enum": guard_rho,
    "mc_vs_exact": float(max(z)),
    "clear_cells_wrong": wrong,
    "floor_closed_form": guard_floor,
}
data = {
    "families": F, "sigmas": list(P["sigmas"]), "batches": list(P["batches"]),
    "sgd_stable": sgd_stable, "rnd_stable": rnd_stable, "rho_cells": rho_cells,
    "exact_rnd": exact_rnd, "mc_mean": mc.mean(1), "W_inf": W_inf, "curves": curves,
    "esc": esc, "n_cells_escape": int(both.sum()),
}
smoke, paper = chapter_record.conclude(PROTOCOL, scale, measured, data, t_start)
print(smoke.report(("primary", "secondary", "guard")))

# %% tags=["hide-input"]
shown = paper.data or data  # the paper-scale record; this build's run when none
sig_s, bat_s = shown["sigmas"], shown["batches"]
shape = (len(sig_s), len(bat_s))
ext = [min(bat_s) - 0.5, max(bat_s) + 0.5, min(sig_s) - 0.5, max(sig_s) + 0.5]
rho_s = np.array(shown["rho_cells"], dtype=float)
maps = [np.array(shown[k], dtype=float) for k in ("sgd_stable", "rnd_stable")]
maps.append((rho_s < 1).astype(float))
titles = ["SGD (authors' rule)", "random perturbation (authors' rule)",
          r"exact: $\rho(\mathcal{T})<1$"]
fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.0), sharey=True)
for ax, zz, title in zip(axes, maps, titles):
    ax.imshow(zz.reshape(shape), origin="lower", aspect="auto", extent=ext,
              cmap="RdYlGn", vmin=0, vmax=1)
    ax.contour(np.array(bat_s), np.array(sig_s), rho_s.reshape(shape), levels=[1.0],
               colors="k", linewidths=0.8)
    ax.set(title=title, xlabel="batch size $B$")
axes[0].set_ylabel(r"coherence $\sigma$")
glue("fig_random_heatmap", fig, display=False)
plt.close(fig)

fig2, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.2))
t = np.arange(len(shown["exact_rnd"]))
ax1.plot(t, shown["exact_rnd"], "k", label=r"exact $\operatorname{tr}W_t$")
ax1.plot(t, shown["mc_mean"], "C1--", label="Monte Carlo mean")
ax1.axhline(shown["W_inf"], color="C2", ls=":",
            label=r"$\operatorname{tr}(I-\mathcal{T})^{-1}F$")
ax1.set(xlabel="step $t$", ylabel=r"$\mathbb{E}\Vert w_t\Vert^2$",
        title=r"stable ($0.6\,\eta^*$), from $w_0=0$")
lg, med = shown["curves"]["1.2"] if "1.2" in shown["curves"] else shown["curves"][1.2]
te = np.arange(len(lg[0]))
for e, m_, lab, col in [(lg[0], med[0], "SGD", "C0"),
                        (lg[1], med[1], "perturbed", "C3")]:
    ax2.semilogy(te, np.exp(e), color=col, label=f"{lab}: mean (exact)")
    ax2.semilogy(te, np.exp(m_), color=col, ls="--", label=f"{lab}: median (simulated)")
ax2.set(xlabel="step $t$", ylabel=r"$\Vert w_t\Vert^2$",
        title=r"unstable ($1.2\,\eta^*$)")
ax1.legend(fontsize=7)
ax2.legend(fontsize=7)
glue("fig_random_floor", fig2, display=False)
plt.close(fig2)

F_s = np.array(shown["families"], dtype=float)
un_s = F_s[:, 0] > 1
fig3, ax3 = plt.subplots(figsize=(4.6, 3.2))
ax3.scatter(np.log(F_s[un_s, 1]), np.log(F_s[un_s, 2]), s=10, c=F_s[un_s, 3],
            cmap="viridis")
lim = [0, float(np.log(F_s[un_s, 1]).max()) * 1.05]
ax3.plot(lim, lim, color="k", lw=0.8, ls="--", label="same rate")
ax3.set(xlabel=r"$\log g$ (SGD)", ylabel=r"$\log g$ (perturbed)",
        title="unstable families: growth per step")
ax3.legend(fontsize=7)
glue("fig_random_rates", fig3, display=False)
plt.close(fig3)
ev = paper.evaluation if paper.record else smoke
for key in ("c_min", "rate_ratio", "map_agree", "rnd_vs_exact", "esc_ratio",
            "typical_rate_ratio"):
    glue(key, ev.value(key), display=False)
glue("c_max", float(np.exp(F_s[un_s, 3].max())), display=False)
glue("n_fam", len(F_s), display=False)
glue("n_unst", int(un_s.sum()), display=False)
glue("floor_exact", float(shown["W_inf"]), display=False)
glue("floor_mc", float(shown["mc_mean"][-1]), display=False)
glue("n_esc_cells", shown["n_cells_escape"], display=False)
esc_s = {str(key): v for key, v in shown["esc"].items()}
glue("typ_sgd_12", esc_s["1.2"]["sgd"], display=False)
glue("typ_rnd_12", esc_s["1.2"]["rnd"], display=False)

# %% [markdown]
# ```{glue:figure} fig_random_rates
# :name: fig-random-rates
#
# Paper scale, {glue:text}`n_unst` unstable random families: the late growth per step of the
# exact (brute-force) mean square, perturbed against SGD. Every family lies on the diagonal:
# the same exponential rate. The colour is the log of the factor $c$ between the two.
# ```
#
# ```{glue:figure} fig_random_floor
# :name: fig-random-floor
#
# Left: at a stable minimum the perturbed iterates settle at a noise floor; the Monte-Carlo
# mean of $\lVert w_t\rVert^2$ follows the exact second moment and levels off at
# $\operatorname{tr}(I-\mathcal T)^{-1}F$ (SGD itself would converge to 0). Right: past the
# threshold both mean squares grow at the same rate $\rho(\mathcal T)$, the perturbed one a
# constant factor higher; dashed: the typical (median) runs of each, simulated.
# ```
#
# ```{glue:figure} fig_random_heatmap
# :name: fig-random-heatmap
#
# Figure 1(b) recomputed next to 1(a) at paper scale (green: stable, red: unstable; black
# line: $\rho(\mathcal T)=1$, the same for both methods).
# ```
#
# (verdict-12)=
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
# The chapter's status is {glue:text}`status`, and the reason is part (ii).
#
# * (i) *Same stability region.* On {glue:text}`n_fam` random families
#   ({glue:text}`n_unst` unstable) the brute-force second moment of the perturbed method,
#   computed without the library's operator, grows at SGD's $\rho(\mathcal T)$ where that
#   exceeds 1 and levels off where it does not. The simulated Figure-1(b) maps agree on a
#   share {glue:text}`map_agree:.3f` of the cells; the perturbed map matches
#   $\rho(\mathcal T)<1$ on {glue:text}`rnd_vs_exact:.3f`.
# * (ii), *constant-factor reading.* The perturbed mean square exceeds SGD's by a factor
#   that converges, between {glue:text}`c_min:.3g` and {glue:text}`c_max:.3g` over the
#   unstable families; it depends on the noise level relative to $\lVert w_0\rVert$, so it is
#   not a universal constant. On the Figure-1 family the median ratio of SGD's to the
#   perturbed method's escape step is {glue:text}`esc_ratio:.3g` over
#   {glue:text}`n_esc_cells` cells where every run escapes: the noise adds
#   $s^2 d$ to $\mathbb E\lVert w\rVert^2$ at every step, so the threshold is reached sooner.
#   On the paper-scale instance at $1.2\,\eta^*$ the typical (median) run grows by
#   {glue:text}`typ_sgd_12:.3f` per step in $\log\lVert w\rVert^2$ for SGD and by
#   {glue:text}`typ_rnd_12:.3f` for the perturbed method: where typical SGD runs still decay,
#   the noise keeps typical perturbed runs from settling (the instance decides; it is not a
#   check).
# * (ii), *faster-rate reading.* The ratio of the exponents, perturbed to SGD, has median
#   {glue:text}`rate_ratio:.4f` over the unstable families, and typical runs at $2\eta^*$
#   grow at a ratio {glue:text}`typical_rate_ratio:.3g`: the noise changes the prefactor, not
#   the rate, as the derivation says. Read as "diverges at a faster rate", part (ii) does not
#   hold for this linearized model.
# * (iii) *Inexact convergence.* At a stable minimum the iterates settle at a noise floor
#   $\operatorname{tr}(I-\mathcal T)^{-1}F=$ {glue:text}`floor_exact:.4g`; Monte Carlo gives
#   {glue:text}`floor_mc:.4g`, and almost no run comes close to the minimum.
