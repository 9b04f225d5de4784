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
# # Beyond the theorem: more data points than dimensions
#
# Paper 1's theorem needs linearly independent data, so $n\le d$. Real data have $n\gg d$. The paper reports
# that "a version of the simplicity bias does seem to exist even for the practical low-dimensional setting"
# (an ICLR reviewer's summary of its Figures 2–3): the feature matrix keeps only a few non-vanishing
# eigenvalues, two in its experiment, and the neurons cluster. The exact settings of those figures were not
# recovered, so this chapter chooses its own, says so, and shows what label-noise SGD does.

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
import matplotlib.pyplot as plt
import numpy as np
from myst_nb import glue

from flatbias import label_noise as ln
from flatbias.scale import get_scale, pick
from flatbias.style import set_style
from flatbias.verdict import glue_verdict

scale = get_scale(scale)
set_style()
M, D, ETA, S = 10, 3, 0.05, 0.5
NS = [3, 5, 10, 20]  # n = 3 = d is the theorem's case, for reference
DRAWS = pick(scale, smoke=3, full=8)
STEPS = pick(scale, smoke=1_000_000, full=10_000_000)
VANISH = 1e-3  # an eigenvalue "survives" if eig_k / eig_1 > VANISH (our threshold)
print(f"scale = {scale}: n in {NS}, {DRAWS} draws each, {STEPS:.0e} steps, eta = {ETA}, s = {S}")

# %% [markdown]
# ## Setting (all ours except the data and the network)
#
# | part of the setting | source |
# |---|---|
# | $m=10$ neurons, $d=3$, data entries uniform on $[0,1]$, $\eta=0.05$ | the paper ("same data generating process") |
# | $n\in\{5,10,20\}$ (and $n=3$ for reference), labels $y_i\sim U[0,1]$, $\phi=\sinh$ | **our choice** |
# | label noise $s=0.5$ (larger than the paper's, to fit the run in minutes) | **our choice** |
# | "non-vanishing" eigenvalue: $\mathrm{eig}_k/\mathrm{eig}_1>10^{-3}$ | **our choice** |
# | uncentered PCA (SVD) of the neuron matrix $\Theta=[\theta_1\dots\theta_m]^\top\in\mathbb{R}^{m\times d}$ | **our choice** |
#
# With $n>d$ the data cannot be linearly independent, so {prf:ref}`thm-label-noise-rank-one` says nothing: a rank-one
# feature matrix means $\Phi=\phi(Xw)\mathbf{1}^\top$ for one $w\in\mathbb{R}^d$, i.e. the network is $m\,\phi(w^\top x)$,
# which generally cannot fit $n>d$ labels. Some diversity among the neurons must survive; the question is how much.
# We look at the raw iterates (for $n>d$ they need not come close to a smooth zero-loss manifold).

# %%
runs = {}
for n in NS:
    prob = ln.draw_problems(draws=DRAWS, raw_draws=0, n=n, seed=10 + n, lam_min=0.0)
    runs[n] = ln.run(prob["theta0"], prob["X"], prob["y"], eta=ETA, s=S, steps=STEPS, record_every=STEPS // 40,
                     seed=n, progress=False)
share = {n: r.eig[..., 0] / r.eig.sum(-1) for n, r in runs.items()}  # top-eigenvalue share, (record, draw)
alive = {n: (r.eig[-1] / r.eig[-1, :, :1] > VANISH).sum(-1) for n, r in runs.items()}  # per draw
for n, r in runs.items():
    print(f"n = {n:2d}: surviving eigenvalues per draw {alive[n].tolist()}; top share {share[n][0].mean():.2f} -> "
          f"{share[n][-1].mean():.3f}; final noise-free loss (median) {np.median(r.loss[-1]):.1e}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.6, 3.3))
for n, r in runs.items():
    rel = np.clip(r.eig[-1] / r.eig[-1, :, :1], 1e-18, None)  # (draw, n)
    for p in range(rel.shape[0]):
        axes[0].plot(np.arange(1, n + 1), rel[p], marker="o", ms=3, lw=0.8, color=f"C{NS.index(n)}",
                     label=f"$n={n}$" if p == 0 else None)
r = runs[10]
for k in range(10):
    axes[1].plot(r.steps, np.clip(r.eig[:, 0, k] / r.eig[:, 0, 0], 1e-18, None), lw=1, label=f"{k + 1}" if k < 3 else None)
axes[0].axhline(VANISH, color="0.5", ls="--", lw=0.8)
axes[0].set(yscale="log", xlabel="index $k$", ylabel=r"$\mathrm{eig}_k/\mathrm{eig}_1$ of $\Phi\Phi^\top$ at the end",
            xscale="log")
axes[1].set(yscale="log", xlabel="step", ylabel=r"$\mathrm{eig}_k/\mathrm{eig}_1$", title="$n=10$, one draw")
axes[0].legend(fontsize=8)
glue("fig_spectrum", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_spectrum
# :name: fig-beyond-spectrum
#
# Left: the spectrum of $\Phi\Phi^\top$ at the end of label-noise SGD, relative to the top eigenvalue, for every draw and
# every $n$ (dashed: our vanishing threshold). Right: how the ten eigenvalues of one $n=10$ run evolve.
# ```
#
# ## The neurons cluster
#
# The uncentered singular values of $\Theta$ say how many directions the $m$ neuron vectors span. The scatter below shows
# the ten neurons of one $n=10$ run, in the plane of the top two right singular vectors of the final $\Theta$, at a few
# moments of training.

# %%
r = runs[10]
V = np.linalg.svd(r.theta[-1, 0])[2][:2]  # top-2 right singular vectors of the final Θ (one draw)
times = [0, len(r.steps) // 20, len(r.steps) // 4, len(r.steps) - 1]
fig, axes = plt.subplots(1, len(times), figsize=(7.6, 2.2), sharex=True, sharey=True)
for ax, t in zip(axes, times):
    P = r.theta[t, 0] @ V.T
    ax.scatter(P[:, 0], P[:, 1], s=14)
    ax.set(title=f"step {r.steps[t]:.0e}", xlabel="PC 1")
axes[0].set_ylabel("PC 2")
glue("fig_neurons", fig, display=False)
plt.close(fig)
sv_share = {n: (np.linalg.svd(r.theta, compute_uv=False) ** 2) for n, r in runs.items()}  # (record, draw, d)
sv_share = {n: v[..., 0] / v.sum(-1) for n, v in sv_share.items()}
for n in NS:
    print(f"n = {n:2d}: top singular share of Theta {sv_share[n][0].mean():.2f} -> {sv_share[n][-1].mean():.4f}")

# %% [markdown]
# ```{glue:figure} fig_neurons
# :name: fig-beyond-neurons
#
# The ten neurons $\theta_j$ of one $n=10$ run projected on the top two principal directions of the final weights
# (uncentered). They start spread out and gather into a few tight groups.
# ```

# %%
# NBVAL_CHECK_OUTPUT
big = [n for n in NS if n > D]
share_grows = all(float(share[n][-1].mean()) > float(share[n][0].mean()) for n in NS)
reference_rank_one = bool(sv_share[3][-1].mean() > 0.99)
few_survive = all(int(np.median(alive[n])) <= 3 for n in NS)
print(f"top-eigenvalue share of PhiPhi^T, mean over draws, grows from start to end for every n: {share_grows}")
print(f"n = d = 3 (the theorem's case): the neurons collapse to one direction (mean top share of Theta > 0.99): "
      f"{reference_rank_one}")
print(f"at most 3 eigenvalues above 1e-3 of the top one (median over draws) for every n up to 20: {few_survive}")
print("median surviving eigenvalues:", {n: int(np.median(alive[n])) for n in NS})
assert share_grows and reference_rank_one and few_survive

# %% tags=["remove-cell"]
typical = {n: int(np.median(alive[n])) for n in big}
glue("typical_alive", ", ".join(f"{typical[n]} for n = {n}" for n in big), display=False)
glue_verdict("verdict", "partly reproduced",
             "n > d: spectrum concentrates, median surviving eigenvalues " +
             ", ".join(f"{typical[n]} (n={n})" for n in big) + "; settings ours")

# %% [markdown]
# ## Verdict
#
# **Partly reproduced** (the settings are ours). Beyond the theorem ($n>d$), label-noise SGD still concentrates the
# spectrum of the feature matrix: on average the top eigenvalue's share grows, only a few eigenvalues stay above
# $10^{-3}$ of the top one (median {glue:text}`typical_alive`, to compare with the paper's "two" in an experiment whose
# settings we do not know), and the neurons gather into a few groups. It is not a clean law: individual draws differ
# (for some the share falls, and for $n=5$ some runs even collapse to rank one at the price of not fitting the data:
# with $s=0.5$ the iterates stay far from zero loss, outside the regime of the theory), and we did not find a setting
# where exactly two eigenvalues survive on every draw.
