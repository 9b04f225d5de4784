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
# # Random-perturbation SGD: same stability, faster escape, a noise floor
#
# Paper 2 {cite}`chang2025unified` compares SGD with a "random perturbation" variant that adds isotropic Gaussian noise
# to the iterate before every step. Its Theorem 3.1 says that the noise changes neither which minima are stable nor
# the stability region of Figure 1(b), that it speeds up the escape from unstable minima, and that at a stable minimum
# the iterates do not converge but keep fluctuating. This chapter tests the three statements against the exact
# second-moment dynamics and against simulation.

# %% tags=["remove-cell"]
# Colab: install the book's package (does nothing elsewhere).
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "git+https://github.com/flatbias/flatbias-book"],
                   check=True)

# %% tags=["parameters"]
scale = None  # "smoke" | "full"; None: $BOOK_SCALE, else "full" on a GPU and "smoke" on a CPU

# %% tags=["hide-input"]
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
from myst_nb import glue

from flatbias import repro, simulate, stability
from flatbias.scale import get_scale, pick
from flatbias.style import set_style
from flatbias.verdict import glue_verdict

scale = get_scale(scale)
set_style()
gen = repro.seed_everything(0)
FAMILIES = pick(scale, smoke=100, full=1000)  # random families for "same operator"
RUNS = pick(scale, smoke=20_000, full=100_000)  # Monte-Carlo runs for the noise floor
SIGMAS = pick(scale, smoke=list(range(1, 51, 7)), full=list(range(1, 51)))  # heat-map grid
BATCHES = pick(scale, smoke=list(range(1, 50, 6)), full=list(range(1, 50)))
N, ETA, REPS, STEPS, S = 100, 0.5, 10, 1000, 1.0  # the authors' settings; S = noise std (hard-coded 1 in their code)
print(f"scale = {scale}: {FAMILIES} families, {RUNS} runs; heat-map {len(SIGMAS)} x {len(BATCHES)} cells")

# %% [markdown]
# ## The claim
#
# ```{prf:theorem} Random perturbation (paper 2, Theorem 3.1, as reconstructed from a summary)
# :label: thm-random-perturbation
#
# Let $w_{t+1}=(I-\eta\hat H_t)(w_t+s\,\xi_t)$ with $\xi_t\sim\mathcal N(0,I)$ independent of the minibatch. Then
# (i) it diverges in mean square under exactly the same condition as SGD, (ii) it escapes unstable minima faster by a
# constant factor, and (iii) at a stable minimum it does not converge: the iterates keep fluctuating.
# ```
#
# **Our derivation.** With $W_t=\mathbb E[w_tw_t^\top]$ and $\mathcal T$ the SGD mean-square operator of
# {doc}`11_sgd_stability`, independence of $\xi_t$ gives
# $$
# W_{t+1}=\mathcal T(W_t+s^2I)=\mathcal T(W_t)+F,\qquad F=s^2\,\mathcal T(I)\succ0 .
# $$
# So $W_t=\mathcal T^t(W_0)+\sum_{j<t}\mathcal T^j(F)$: the same operator as SGD plus a forcing. It stays bounded iff
# $\rho(\mathcal T)<1$ (then $W_t\to W_\infty=(I-\mathcal T)^{-1}F\ne0$, the noise floor) and otherwise grows at the
# same rate $\rho(\mathcal T)^t$ as SGD, with a larger prefactor. Part (ii) therefore holds for $\mathbb E\lVert w_t\rVert^2$
# as "larger by a factor", with the **same** exponential rate; we measure that factor and the escape times.
#
# | part of the setting | source |
# |---|---|
# | update $(I-\eta\hat H_t)(w_t+\xi_t)$, $s=1$, $B$ indices without replacement | the authors' code (`random_process`) |
# | heat-map: $n=100$, $\eta=0.5$, 10 repetitions, 1000 steps, diverged at $\lVert w_t\rVert^2\ge1000\lVert w_0\rVert^2$, $w_0\sim U[0,1]^d$ | the authors' code |
# | second-moment recursion, noise floor $(I-\mathcal T)^{-1}F$ | **our derivation** (checked by Monte Carlo below) |
# | random families $n\in[4,12]$, $d\in[2,5]$, full rank, $\eta=f\,\eta^*$ with $f\in[0.5,0.9]\cup[1.1,2]$ | **our choice** |
#
# ## (i) The same operator, the same growth rate

# %%
def random_family(n, d, k, tau, g):
    A = torch.randn(1, d, k, generator=g, dtype=torch.float64) + tau * torch.randn(n, d, k, generator=g, dtype=torch.float64)
    return A @ A.transpose(1, 2)


# method="random" shares SGD's operator by construction, so comparing spectral radii would prove nothing: the test is
# the measured growth of the noisy second-moment recursion, with its forcing, against rho(T) of SGD.
rows = []  # (rho(T), late growth of E|w|^2 for SGD, same with noise)
for _ in range(FAMILIES):
    n, d = int(torch.randint(4, 13, (1,), generator=gen)), int(torch.randint(2, 6, (1,), generator=gen))
    H, B = random_family(n, d, d, 0.7, gen), int(torch.randint(1, n, (1,), generator=gen))
    u = float(torch.rand(1, generator=gen))
    eta = stability.critical_eta(H, B) * (0.5 + 0.4 * 2 * u if u < 0.5 else 1.1 + 0.9 * (2 * u - 1))
    W0 = torch.eye(d, dtype=torch.float64)
    g_sgd, g_rnd = (stability.second_moment_growth(H, eta, B, W0, 400, noise_std=s) for s in (0.0, S))
    rows.append((stability.spectral_radius(H, eta, B), g_sgd, g_rnd))
F = np.array(rows)
unst = F[:, 0] > 1
print(f"{len(F)} families, {unst.sum()} unstable; max |growth - rho| (unstable): SGD {np.abs(F[unst, 1] - F[unst, 0]).max():.1e}, "
      f"perturbed {np.abs(F[unst, 2] - F[unst, 0]).max():.1e}; stable: perturbed late growth - 1 up to {np.abs(F[~unst, 2] - 1).max():.1e}")

# %% [markdown]
# On unstable families the late growth factor $\operatorname{tr}W_{t+1}/\operatorname{tr}W_t$ of both methods equals
# $\rho(\mathcal T)$; on stable ones the perturbed second moment stops growing (factor 1, a plateau) while SGD's decays.

# %%
# NBVAL_CHECK_OUTPUT
same_rate = bool((np.abs(F[unst, 2] - F[unst, 0]) < 1e-6 * F[unst, 0]).all() and (np.abs(F[unst, 1] - F[unst, 0]) < 1e-6 * F[unst, 0]).all())
plateau = bool((np.abs(F[~unst, 2] - 1) < 1e-3).all() and (F[~unst, 1] < 1).all())
print(f"both stable and unstable families present: {bool(unst.any() and (~unst).any())}")
print(f"unstable: SGD and perturbed grow at rate rho(T) (rel. 1e-6): {same_rate}")
print(f"stable: perturbed second moment plateaus, SGD's decays: {plateau}")
assert unst.any() and (~unst).any() and same_rate and plateau

# %% [markdown]
# ## (iii) The noise floor, exact and simulated
#
# On a stable instance ($n=6$, $d=3$, $B=2$, $\lambda_1(H)=1$, $\eta=0.6\,\eta^*$) we start at the minimum, $w_0=0$, run
# many independent perturbed trajectories, and compare the mean of $\lVert w_t\rVert^2$ with the exact
# $\operatorname{tr}W_t$ at every step (4 standard errors: 150 comparisons at once, Bonferroni) and with the stationary
# value $\operatorname{tr}W_\infty$ at the end (3 standard errors).

# %%
H6 = random_family(6, 3, 3, 1.0, gen)
H6 = H6 / float(torch.linalg.eigvalsh(H6.mean(0))[-1])
eta6 = 0.6 * stability.critical_eta(H6, 2)
T_mc = 150
exact_rnd = stability.second_moments(H6, eta6, 2, torch.zeros(3, 3, dtype=torch.float64), T_mc, noise_std=S)
W_inf = stability.stationary_second_moment(H6, eta6, 2, noise_std=S)
mc = simulate.simulate(H6, eta6, 2, torch.zeros(RUNS, 3, dtype=torch.float64), T_mc, method="random", noise_std=S, generator=gen)
z = (mc.mean(1) - exact_rnd) / (mc.std(1) / math.sqrt(RUNS))
z_inf = float((mc[-1].mean() - torch.trace(W_inf)) / (mc[-1].std() / math.sqrt(RUNS)))
print(f"rho(T) = {stability.spectral_radius(H6, eta6, 2):.3f}; tr W_inf = {torch.trace(W_inf):.4g}; MC at t={T_mc}: "
      f"{mc[-1].mean():.4g} +- {mc[-1].std() / math.sqrt(RUNS):.2g}; max |z| over t = {z[1:].abs().max():.2f}, z vs W_inf = {z_inf:.2f}")

# %%
# NBVAL_CHECK_OUTPUT
floor_ok = abs(z_inf) < 3 and float(torch.trace(W_inf)) > 0
print(f"Monte Carlo within 4 s.e. of tr W_t at every one of the {T_mc} steps: {bool((z[1:].abs() < 4).all())}")
print(f"Monte Carlo at t = {T_mc} within 3 s.e. of the noise floor tr (I - T)^-1 F > 0: {floor_ok}")
print(f"W_t has reached W_inf (relative gap < 1e-6): {abs(float(exact_rnd[-1]) / float(torch.trace(W_inf)) - 1) < 1e-6}")
assert bool((z[1:].abs() < 4).all()) and floor_ok

# %% [markdown]
# ## (ii) Escape from an unstable minimum
#
# Same family, now at $\eta=1.2\,\eta^*$ and $2\,\eta^*$ (unstable), from one $w_0\sim\mathcal N(0,I)$. Exactly, both
# second moments grow at the rate $\rho(\mathcal T)$ and their ratio tends to a constant $c$: the "constant factor" of
# the theorem. That factor is not universal: it depends on the noise level relative to $\lVert w_0\rVert$. A
# *typical* run (the median of $\lVert w_t\rVert^2$ over runs) grows more slowly than the mean, at the almost-sure rate;
# we measure that rate for both methods.

# %%
w0 = torch.randn(3, generator=gen, dtype=torch.float64)
T_esc, R_esc, esc, curves = 120, RUNS // 5, {}, {}
for f in (1.2, 2.0):
    eta_u = f * stability.critical_eta(H6, 2)
    ex = [stability.second_moments(H6, eta_u, 2, torch.outer(w0, w0), T_esc, noise_std=s) for s in (0.0, S)]
    c_t = ex[1] / ex[0]
    med = [simulate.simulate(H6, eta_u, 2, w0.expand(R_esc, 3), T_esc, method=m, noise_std=S, generator=gen).log().median(1).values
           for m in ("sgd", "random")]
    slopes = [float(v[-1] - v[T_esc // 2]) / (T_esc - T_esc // 2) for v in med]
    curves[f] = (ex, med)
    esc[f] = dict(rho=stability.spectral_radius(H6, eta_u, 2), c=float(c_t[-1]), c_conv=abs(float(c_t[-1] / c_t[-2]) - 1),
                  sgd=slopes[0], rnd=slopes[1])
    print(f"eta = {f} eta*: log rho(T) = {math.log(esc[f]['rho']):.3f}; exact E|w|^2 ratio perturbed/SGD -> c = {esc[f]['c']:.3g}; "
          f"typical growth per step: SGD {slopes[0]:.3f}, perturbed {slopes[1]:.3f}")

# %% [markdown]
# At $1.2\,\eta^*$ the mean square of SGD explodes but a typical SGD run **decays**: the divergence lives in rare runs.
# The perturbed method's typical run does not decay, since the noise keeps re-seeding the unstable direction. At
# $2\,\eta^*$ typical runs of both grow, at the same rate. On the authors' Figure-1 family (next section) we record the
# first step at which a run crosses the $1000\times$ threshold, for both methods, in every cell where all runs of both escape.

# %%
k, a, d, Bs, ss = simulate.authors_grid(N, SIGMAS, BATCHES)
D = torch.zeros(len(Bs), N, int(d.max()), dtype=torch.float64).scatter_(2, k[:, :, None], a[:, :, None])
rho_cells = stability.spectral_radius_diagonal(D, ETA, Bs)
T_sgd = simulate.escape_times_axes(k, a, d, Bs, ETA, reps=REPS, steps=STEPS, generator=gen)
T_rnd = simulate.escape_times_axes(k, a, d, Bs, ETA, reps=REPS, steps=STEPS, method="random", noise_std=S, generator=gen)
both = ((T_sgd <= STEPS) & (T_rnd <= STEPS)).all(1)
speedup = (T_sgd[both].double().median(1).values / T_rnd[both].double().median(1).values).numpy()
print(f"{int(both.sum())} cells where every run escapes: median escape-time ratio SGD/perturbed {np.median(speedup):.2f} "
      f"(range {speedup.min():.2f}-{speedup.max():.2f}); median escape step SGD {T_sgd[both].double().median():.0f}, "
      f"perturbed {T_rnd[both].double().median():.0f}")

# %%
# NBVAL_CHECK_OUTPUT
conv = all(e["c"] > 1 and e["c_conv"] < 1e-3 for e in esc.values())
print(f"perturbed E|w|^2 exceeds SGD's by a converged constant factor c > 1 at both step sizes: {conv}")
print(f"at 1.2 eta*: typical SGD run decays, typical perturbed run does better: {esc[1.2]['sgd'] < 0 and esc[1.2]['rnd'] > esc[1.2]['sgd']}")
print(f"at 2 eta*: typical runs of both grow, rates within 5%: {esc[2.0]['sgd'] > 0 and abs(esc[2.0]['rnd'] / esc[2.0]['sgd'] - 1) < 0.05}")
print(f"perturbed runs escape no later than SGD runs (median over cells of the time ratio >= 1): {bool(np.median(speedup) >= 1)}")
assert conv and esc[1.2]["rnd"] > esc[1.2]["sgd"] and esc[2.0]["sgd"] > 0 and abs(esc[2.0]["rnd"] / esc[2.0]["sgd"] - 1) < 0.05
assert np.median(speedup) >= 1

# %% [markdown]
# ## Figure 1(b): the (batch size, coherence) heat-map
#
# The authors' rule (a cell is stable if at least 5 of 10 runs stay below $1000\lVert w_0\rVert^2$ for 1000 steps) for SGD and
# for the perturbed method, next to the exact $\rho(\mathcal T)<1$ map, on the family of {doc}`10_coherence`
# ($\lambda_1(H)=2$ for every $\sigma$). For these diagonal families the noise floor is exact per axis:
# $\operatorname{tr}W_\infty=\sum_k s^2m_k/(1-m_k)$, $m_k$ the axis multipliers (our derivation, unit-tested against
# $(I-\mathcal T)^{-1}F$). Where it exceeds the threshold $1000\,\mathbb E\lVert w_0\rVert^2=1000\,d/3$, the authors' rule
# calls a mean-square stable cell unstable.

# %%
sgd_stable = simulate.stable_cells(T_sgd <= STEPS).numpy()
rnd_stable = simulate.stable_cells(T_rnd <= STEPS).numpy()
exact_stable = (rho_cells < 1).numpy()
m_k = stability.diagonal_multipliers(D, ETA, Bs)  # per-axis multipliers; padded axes (k >= d) are not in the family
valid = torch.arange(D.shape[2])[None, :] < d[:, None]
floor = torch.where(valid & (m_k < 1), S ** 2 * m_k / (1 - m_k), torch.where(valid, math.inf, 0.0)).sum(1).numpy()
floor_high = exact_stable & (floor >= 1000 * d.numpy() / 3)
print(f"{len(Bs)} cells: perturbed = SGD on {np.mean(sgd_stable == rnd_stable):.1%}; perturbed = exact on "
      f"{np.mean(rnd_stable == exact_stable):.1%}; SGD = exact on {np.mean(sgd_stable == exact_stable):.1%}")
print(f"cells where the two maps differ: {int((sgd_stable != rnd_stable).sum())}, at rho(T) = "
      f"{np.round(rho_cells.numpy()[sgd_stable != rnd_stable], 3).tolist()[:12]}; stable cells whose noise floor "
      f"exceeds the threshold: {int(floor_high.sum())}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(9.5, 3.0), sharey=True)
ext = [min(BATCHES) - 0.5, max(BATCHES) + 0.5, min(SIGMAS) - 0.5, max(SIGMAS) + 0.5]
shape = (len(SIGMAS), len(BATCHES))
for ax, zz, title in zip(axes, [sgd_stable, rnd_stable, exact_stable],
                         ["SGD (authors' rule)", "random perturbation (authors' rule)", r"exact: $\rho(\mathcal{T})<1$"]):
    ax.imshow(zz.reshape(shape), origin="lower", aspect="auto", extent=ext, cmap="RdYlGn", vmin=0, vmax=1)
    ax.contour(np.array(BATCHES), np.array(SIGMAS), rho_cells.numpy().reshape(shape), levels=[1.0], colors="k", linewidths=0.8)
    ax.set(title=title, xlabel="batch size $B$")
axes[0].set_ylabel(r"coherence $\sigma$")
glue("fig_random_heatmap", fig, display=False)
plt.close(fig)

# %%
fig2, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.2))
t = np.arange(T_mc + 1)
ax1.plot(t, exact_rnd.numpy(), "k", label=r"exact $\operatorname{tr}W_t$")
ax1.plot(t, mc.mean(1).numpy(), "C1--", label="Monte Carlo mean")
ax1.axhline(float(torch.trace(W_inf)), color="C2", ls=":", label=r"$\operatorname{tr}(I-\mathcal{T})^{-1}F$")
ax1.set(xlabel="step $t$", ylabel=r"$\mathbb{E}\Vert w_t\Vert^2$", title=r"stable ($0.6\,\eta^*$), from $w_0=0$")
ex, med = curves[1.2]
te = np.arange(T_esc + 1)
for (e, m_, lab, col) in [(ex[0], med[0], "SGD", "C0"), (ex[1], med[1], "perturbed", "C3")]:
    ax2.semilogy(te, e.numpy(), color=col, label=f"{lab}: mean (exact)")
    ax2.semilogy(te, m_.exp().numpy(), color=col, ls="--", label=f"{lab}: median (simulated)")
ax2.set(xlabel="step $t$", ylabel=r"$\Vert w_t\Vert^2$", title=r"unstable ($1.2\,\eta^*$)")
ax1.legend(fontsize=7), ax2.legend(fontsize=7)
glue("fig_random_floor", fig2, display=False)
plt.close(fig2)

# %% [markdown]
# ```{glue:figure} fig_random_floor
# :name: fig-random-floor
#
# Left: at a stable minimum the perturbed iterates settle at a noise floor; the Monte-Carlo mean of
# $\lVert w_t\rVert^2$ follows the exact second moment and levels off at $\operatorname{tr}(I-\mathcal T)^{-1}F$ (SGD itself
# would converge to 0). Right: past the threshold both mean squares grow at the same rate $\rho(\mathcal T)$, the
# perturbed one a constant factor higher; the typical (median) SGD run still decays, while the perturbed run does not.
# ```
#
# ```{glue:figure} fig_random_heatmap
# :name: fig-random-heatmap
#
# Figure 1(b) recomputed next to 1(a) (green: stable, red: unstable; black line: $\rho(\mathcal T)=1$, the same for both
# methods). Noise does not move the boundary. The two simulated maps differ only in a few cells just right of the
# line, where $\mathbb E\lVert w_t\rVert^2$ diverges but typical SGD runs stay bounded: there the perturbed runs escape,
# so the perturbed map is the closer one to the exact criterion.
# ```

# %%
# NBVAL_CHECK_OUTPUT
differ = sgd_stable != rnd_stable
print(f"random-perturbation map = SGD map on >= 95% of cells: {np.mean(~differ) >= 0.95}")
print(f"stable cells whose noise floor exceeds the 1000x threshold: {int(floor_high.sum())}")
print(f"every cell where they differ is mean-square unstable or marginal (rho > 0.98), called stable for SGD and "
      f"unstable for the perturbed method: {bool(((rho_cells.numpy() > 0.98) & ~rnd_stable & sgd_stable)[differ].all())}")
print(f"perturbed map = exact rho(T) < 1 map on >= 95% of cells: {np.mean(rnd_stable == exact_stable) >= 0.95}")
assert np.mean(~differ) >= 0.95 and np.mean(rnd_stable == exact_stable) >= 0.95 and int(floor_high.sum()) == 0
assert bool(((rho_cells.numpy() > 0.98) & ~rnd_stable & sgd_stable)[differ].all())

# %% tags=["remove-cell"]
glue("n_fam", len(F), display=False)
glue("n_unst", int(unst.sum()), display=False)
glue("floor_exact", float(torch.trace(W_inf)), display=False)
glue("floor_mc", float(mc[-1].mean()), display=False)
glue("floor_se", float(mc[-1].std() / math.sqrt(RUNS)), display=False)
glue("c12", esc[1.2]["c"], display=False)
glue("c20", esc[2.0]["c"], display=False)
glue("esc_ratio", float(np.median(speedup)), display=False)
glue("n_esc_cells", int(both.sum()), display=False)
glue("map_agree", float(100 * np.mean(sgd_stable == rnd_stable)), display=False)
glue("n_differ", int(differ.sum()), display=False)
glue("rnd_exact", float(100 * np.mean(rnd_stable == exact_stable)), display=False)
glue("sgd_exact", float(100 * np.mean(sgd_stable == exact_stable)), display=False)
glue_verdict("verdict", "reproduced with our reconstruction",
             f"same ρ(𝒯) and growth rate; noise floor = (I−𝒯)⁻¹F within 3 s.e.; E‖w‖² larger by a constant "
             f"(not a faster rate); heat-maps agree on {np.mean(sgd_stable == rnd_stable):.0%} of cells")

# %% [markdown]
# ## Verdict
#
# Theorem 3.1 is **reproduced with our reconstruction**, with one sharpening of what "faster" means.
#
# * (i) *Same stability region.* The perturbed second moment obeys $W_{t+1}=\mathcal T(W_t)+F$ with SGD's operator; on
#   {glue:text}`n_fam` random families ({glue:text}`n_unst` unstable) its late growth factor equals $\rho(\mathcal T)$
#   exactly where SGD's does, and it plateaus where SGD's decays. The simulated Figure-1(b) map equals the SGD map on
#   {glue:text}`map_agree:.1f`% of cells; in the {glue:text}`n_differ` cells that differ, $\rho(\mathcal T)>1$ and only
#   the perturbed runs escape: the perturbed map matches $\rho(\mathcal T)<1$ on {glue:text}`rnd_exact:.1f`% of cells,
#   SGD's on {glue:text}`sgd_exact:.1f`%. No stable cell has a noise floor above the $1000\times$ threshold, so the
#   noise never makes the authors' rule call a stable cell unstable.
# * (ii) *Faster escape.* The mean square grows at the **same** exponential rate as SGD's, larger by a constant factor
#   ({glue:text}`c12:.3g` at $1.2\,\eta^*$, {glue:text}`c20:.3g` at $2\,\eta^*$ on our instance); the factor depends on the
#   noise level relative to $\lVert w_0\rVert$, so it is not a universal constant. Escape *times* shrink by an additive
#   amount, not a factor of the rate: on the Figure-1 family the median ratio of SGD's to the perturbed method's escape
#   step is {glue:text}`esc_ratio:.2f` over {glue:text}`n_esc_cells` cells. Just past the threshold the difference is
#   qualitative: typical SGD runs still converge (the mean square is carried by rare runs), perturbed runs do not.
# * (iii) *Inexact convergence.* At a stable minimum the iterates settle at a noise floor
#   $\operatorname{tr}(I-\mathcal T)^{-1}F=$ {glue:text}`floor_exact:.4g`; Monte Carlo gives {glue:text}`floor_mc:.4g`
#   ± {glue:text}`floor_se:.2g`.
