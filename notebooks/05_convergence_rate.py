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
# # Exponential convergence of the Riemannian gradient flow
#
# Paper 1's main technical result {cite}`gatmiry2024simplicity`: the Riemannian gradient flow of the sharpness on the
# zero-loss manifold converges to the rank-one global minimum of {prf:ref}`thm-stationary` *exponentially fast, from every
# initialization*. Label-noise SGD follows this flow in the small-step limit {cite}`li2022happens,damian2021label`, which
# is how the paper concludes that SGD finds the simple solution. This chapter integrates the flow, identifies its two
# phases, and compares the late exponential rate with the curvature at the optimum.

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
import torch
from myst_nb import glue

from flatbias import manifold, optimum, repro, riemannian, twolayer
from flatbias.activations import get_activation
from flatbias.scale import get_scale, pick
from flatbias.style import COLORS, set_style
from flatbias.verdict import glue_verdict

torch.set_default_dtype(torch.float64)
scale = get_scale(scale)
set_style()
gen = repro.seed_everything(0)
n, d, m, act = 3, 3, 10, "sinh"  # the paper's Figure-1 sizes
DRAWS = pick(scale, smoke=3, full=10)  # data draws (uniform on [0, 1]); every λ_min(XXᵀ) is reported
INITS = pick(scale, smoke=3, full=10)  # initializations per draw
KAPPAS = pick(scale, smoke=[0.02, 0.05, 0.1], full=[0.005, 0.01, 0.02, 0.05, 0.1])  # λ_min(XXᵀ) of the sweep
MIN_EIG_K = 1e-2  # our choice (SPEC §A.8): reject draws with λ_min(XXᵀ) < 1e-2, for speed
print(f"scale = {scale}: {DRAWS} data draws x {INITS} inits, conditioning sweep over λ_min(XXᵀ) = {KAPPAS}")

# %% [markdown]
# ## The claim
#
# ```{prf:definition} β-normality (our working definition, not the paper's)
# :label: def-beta-normal
#
# $\phi$ is *$\beta$-normal* if $\phi''(z)^2\le\beta\,\phi'(z)\,\phi'''(z)$ for all $z$.
# ```
#
# The paper's Assumption 3.4 ("β-normality") exists, but its formula was not recovered (SPEC §A.3). The definition above
# is **ours**: it is what makes the Hessian weights $w_{ij}$ of {prf:ref}`lem-riemannian-hessian` comparable to
# $\phi'\phi'''$ near stationary points. $\sinh$ is 1-normal ($\sinh^2\le\cosh^2$), $z+z^3/3$ is 2-normal.
#
# ```{prf:theorem} Exponential convergence (paper 1, Theorem 3.5; constants not recovered)
# :label: thm-convergence
#
# Under Assumptions 3.1, 3.2 and 3.4, from every $\theta(0)\in\mathcal{M}$ the flow
# $\dot\theta=-\operatorname{grad}_\mathcal{M}F(\theta)$ converges to the global minimizer $\theta^*$ of
# {prf:ref}`thm-stationary`, and $F(\theta(t))-F^*\le C e^{-ct}$.
# ```
#
# What we can predict (**our derivation**, SPEC §A.8): near $\theta^*$ the flow is linear with rate set by
# $\mu=\lambda_{\min}$ of $\operatorname{Hess}_\mathcal{M}F(\theta^*)$ on the tangent directions inside the data span, so
# $F-F^*\propto e^{-2\mu t}$ late in the run; $\mu$ grows with $\lambda_{\min}(XX^\top)$. And every update of $\theta_j$ is a
# combination of the $x_i$, so the part of $\theta_j$ orthogonal to $\operatorname{span}\{x_i\}$ never moves.
#
# | part of the setting | source |
# |---|---|
# | the flow, the claim of exponential convergence from every initialization | the paper |
# | $\beta$-normality as defined above; the rate $2\mu$ | **ours** |
# | $m=10$, $d=n=3$, data uniform on $[0,1]$ | the paper (Figure 1) |
# | $\phi=\sinh$, labels $U[0,1]$, $\theta_j\sim\mathcal N(0,I/d)$ retracted | **our choice** |
# | rejecting data draws with $\lambda_{\min}(XX^\top)<10^{-2}$ | **our choice**, for speed (SPEC §A.8) |
# | integrator: Riemannian GD with Armijo steps capped at $h\le0.05/\mu$, time $t=\sum h$ | **our choice** |
#
# Our β values, measured on a grid:

# %%
z = torch.linspace(-6, 6, 2001)
for name in ["sinh", "cubic"]:
    a = get_activation(name)
    print(f"{name}: max φ''² / (φ' φ''') on [-6, 6] = {float((a.d2(z) ** 2 / (a.d1(z) * a.d3(z))).max()):.3f}")

# %% [markdown]
# ## Many initializations on several data draws

# %%
def run(X, y, theta0):
    """Flow from θ0; returns (t, F - F*, ‖grad‖, μ, fitted late rate, max orthogonal drift)."""
    Fs, ts = optimum.F_star(X, y, act, m), optimum.global_optimum(theta0, X, y, act)
    mu = riemannian.lambda_min(ts, X, act, span_only=True)
    # h ≤ 0.05/μ keeps the discretization bias of the late rate, −2 log(1 − hμ)/h vs 2μ, below ~3%
    tr = riemannian.descent(theta0, X, y, act, tol=1e-10, max_steps=20000, log_every=5, keep_thetas=True,
                            h_max=0.05 / mu)
    t, gap = np.array(tr.t), (np.array(tr.F) - Fs) / Fs
    late = (gap < 1e-4) & (gap > 1e-11)
    rate = -np.polyfit(t[late], np.log(gap[late]), 1)[0]
    Pperp = torch.eye(X.shape[1]) - X.T @ torch.linalg.solve(X @ X.T, X)
    drift = max(float(((th - theta0) @ Pperp).norm()) for th in tr.thetas)
    return t, gap, np.array(tr.grad_norm), mu, rate, drift


results = []  # (λ_min(XXᵀ), d, run tuple)
for draw in range(DRAWS):
    for dd in [d, 5]:  # d = n (Figure 1) and d > n (an orthogonal part exists)
        X, y = twolayer.conditioned_uniform_data(n, dd, gen, MIN_EIG_K)
        lk = twolayer.gram_min_eig(X)
        results += [(lk, dd, run(X, y, manifold.random_point(X, y, act, m, gen))) for _ in range(INITS)]
print("λ_min(XXᵀ) of the draws:", sorted({round(r[0], 4) for r in results}))
ratios = np.array([r[2][4] / (2 * r[2][3]) for r in results])
print(f"{len(results)} runs; fitted late rate / 2μ: min {ratios.min():.3f}, max {ratios.max():.3f}")

# %%
# NBVAL_CHECK_OUTPUT
all_converged = all(r[2][1][-1] < 1e-11 for r in results)
rate_matches = bool(np.all(np.abs(ratios - 1) <= 0.2))
orth_fixed = max(r[2][5] for r in results) <= 1e-10
print(f"every run reaches F - F* < 1e-11 F*: {all_converged}")
print(f"late rate of F - F* within 20% of 2μ in every run: {rate_matches}")
print(f"part of θ_j orthogonal to span{{x_i}} moves by at most 1e-10: {orth_fixed}")
assert all_converged and rate_matches and orth_fixed

# %% [markdown]
# ## The rate follows the conditioning of the data
#
# To isolate the conditioning we take one draw $X=U\Sigma V^\top$ and set its smallest singular value so that
# $\lambda_{\min}(XX^\top)=\kappa$, keeping everything else fixed.

# %%
X0, y0 = twolayer.uniform_data(n, d, gen)
U, S, Vh = torch.linalg.svd(X0, full_matrices=False)
theta_init = torch.randn(m, d, generator=gen) / d**0.5
sweep = []  # (κ, μ, fitted rate, t, gap)
for kappa in KAPPAS:
    S2 = S.clone()
    S2[-1] = kappa**0.5
    X = U @ torch.diag(S2) @ Vh
    t, gap, _, mu, rate, _ = run(X, y0, manifold.retract(theta_init, X, y0, act))
    sweep.append((float(torch.linalg.eigvalsh(X @ X.T)[0]), mu, rate, t, gap))
    print(f"λ_min(XXᵀ) = {sweep[-1][0]:.3f}: μ = {mu:.4f}, fitted rate = {rate:.4f} (rate / 2μ = {rate / (2 * mu):.3f})")
slope = float(np.polyfit(np.log([s[0] for s in sweep]), np.log([s[2] for s in sweep]), 1)[0])
print(f"log-log slope of the rate against λ_min(XXᵀ): {slope:.2f}")

# %%
# NBVAL_CHECK_OUTPUT
rate_grows = all(b[2] > a[2] for a, b in zip(sweep, sweep[1:]))
sweep_matches = all(abs(s[2] / (2 * s[1]) - 1) <= 0.2 for s in sweep)
print(f"rate increases with λ_min(XXᵀ): {rate_grows}; slope between 0.7 and 1.4: {0.7 < slope < 1.4}")
print(f"rate within 20% of 2μ across the sweep: {sweep_matches}")
assert rate_grows and 0.7 < slope < 1.4 and sweep_matches

# %% tags=["hide-input"]
fig, (ax0, ax1, ax2) = plt.subplots(1, 3, figsize=(7.6, 3.0))
for lk, dd, (t, gap, g, mu, rate, _) in results:
    ax0.semilogy(t, np.maximum(gap, 1e-16), lw=0.8, color=COLORS["flow"] if dd == 3 else COLORS["sgd"], alpha=0.7)
    ax1.semilogy(t, g, lw=0.8, color=COLORS["flow"] if dd == 3 else COLORS["sgd"], alpha=0.7)
ax0.set(xlabel="$t$", ylabel=r"$(F-F^*)/F^*$", title="sharpness gap")
ax1.set(xlabel="$t$", ylabel=r"$\|\mathrm{grad}_\mathcal{M}F\|$", title="gradient norm")
for k, (lk, mu, rate, t, gap) in enumerate(sweep):
    ax2.semilogy(t, np.maximum(gap, 1e-16), color=f"C{k}", lw=1, label=rf"$\lambda_{{\min}}(XX^\top)$={lk:.2g}")
    ax2.semilogy(t, gap[np.argmax(gap < 1e-4)] * np.exp(-2 * mu * (t - t[np.argmax(gap < 1e-4)])), color=f"C{k}",
                 ls=":", lw=1)
ax2.set(ylim=(1e-15, 1), xlabel="$t$", title=r"conditioning; dotted: $e^{-2\mu t}$")
ax2.legend(fontsize=6)
glue("fig_rate", fig, display=False)
plt.close(fig)

# %% [markdown]
# ```{glue:figure} fig_rate
# :name: fig-rate
#
# Riemannian gradient flow of the sharpness ($\sinh$, $m=10$, $n=3$; purple $d=3$, green $d=5$), from several
# initializations on several data draws. Left and middle: a first phase of fast, irregular decrease, then a straight
# line on the log scale: exponential convergence. Right: the same start with the data's smallest Gram eigenvalue set to
# $\kappa$; the late phase follows the prediction $e^{-2\mu t}$ (dotted), $\mu$ the smallest Riemannian-Hessian
# eigenvalue at $\theta^*$ inside the data span, and is slower for worse-conditioned data.
# ```

# %% tags=["remove-cell"]
glue("n_runs", len(results), display=False)
glue("ratio_lo", float(ratios.min()), display=False)
glue("ratio_hi", float(ratios.max()), display=False)
glue("slope", slope, display=False)
glue("drift", max(r[2][5] for r in results), display=False)
glue_verdict("verdict", "reproduced with our reconstruction",
             f"{len(results)} of {len(results)} runs converge exponentially; late rate / 2μ in "
             f"[{ratios.min():.2f}, {ratios.max():.2f}]; orthogonal part fixed to {max(r[2][5] for r in results):.0e}")

# %% [markdown]
# ## Verdict
#
# Theorem 3.5 is **reproduced with our reconstruction** of its rate. All {glue:text}`n_runs` runs (several data draws,
# $d=n$ and $d>n$) converge to the closed-form optimum, with a late phase that is exactly exponential: the fitted rate of
# $F-F^*$ is between {glue:text}`ratio_lo:.2f` and {glue:text}`ratio_hi:.2f` times $2\mu$, $\mu$ the smallest eigenvalue
# of the Riemannian Hessian at $\theta^*$ on the data span. The rate grows with $\lambda_{\min}(XX^\top)$ (log-log slope
# {glue:text}`slope:.2f` over our sweep), which is why ill-conditioned draws of uniform data make the flow, and
# label-noise SGD, slow. The component of every $\theta_j$ orthogonal to the data never moves (at most
# {glue:text}`drift:.0e`). The paper's constants and its β-normality condition were not recovered; our
# {prf:ref}`def-beta-normal` is a working definition.
