"""When does the linearized stability criterion predict nonlinear training? (our extension, chapter 19).

Many runs of the two-layer ReLU net of :mod:`flatbias.relu_net` advanced together as one tensor computation:
θ is a batch (R, P) of flat parameter vectors, and run k draws its own minibatches, B indices without
replacement from a fresh permutation every epoch (the authors' loop, ``nn_training.py``). The loss is the
authors' mean over the batch of (f − y)², so at an interpolating minimum H_i = 2 g_ig_iᵀ (chapter 14).

Three optimizers, each a function of θ and the minibatch:

    sgd          θ ← θ − η ∇L_B(θ)                                        (``train_relu.step``, ρ = 0)
    sam          θ ← θ − η ∇L_B(θ + ρ ĝ/(‖ĝ‖ + 1e-12)),  ĝ = ∇L_B(θ)       (``train_relu.step``, ρ > 0)
    ascent ρ/α   θ ← θ − η ∇L_B(θ + (ρ/α) ∇L(θ))                           (full-batch ascent, unnormalized)

The last one is the nonlinear map whose linearization at θ* is chapter 13's linearized SAM (the authors'
``SAM_process``; α stands in for ‖∇L‖): w_{t+1} = (I − ηĤ_t(I + (ρ/α)H))w_t, the operator of
``stability.spectral_radius_rank_one(..., method="sam", rho_over_alpha=ρ/α)``. Normalized SAM (``sam``) has no
linearization at a minimum: its ascent has length ρ whatever w is.

A run *escapes* when ‖θ_t − θ*‖ ≥ factor · ‖θ_0 − θ*‖ (or θ_t is not finite) at some t ≤ T; otherwise it
*stays*. Escaped runs are dropped from the batch (their θ is frozen at the escape step).

Minibatches come in two schemes (:data:`SCHEDULES`): ``reshuffled`` (the authors' loop, a fresh permutation every
epoch) and ``iid`` (an independent B-subset at every step, the sampling 𝒯 assumes). :func:`lyapunov` estimates the
almost-sure growth rate of the linearized map under either, with a confidence interval; :func:`decided` says
whether a horizon is long enough for that rate to show (a run that shrinks, or one that passes the escape factor).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from . import relu_net, train_relu
from . import validate as vd

__all__ = ["directions", "minibatch_schedule", "iid_schedule", "batch_gradients", "full_gradients", "steps_batched",
           "Runs", "run_batched", "run_loop", "run_linear", "sweep", "escaped", "agreement", "radius_of_agreement",
           "benchmark", "summarize", "lyapunov", "exponent_interval", "decided", "SCHEDULES"]


# ---------------------------------------------------------------------------------------------- checks
def _check_theta(theta_star, X, y):
    relu_net.check_inputs(theta_star, X, y)
    return relu_net.hidden_size(theta_star, X.shape[1])


def _check_opt(lr, rho, rho_over_alpha):
    lr = vd.positive("lr (the learning rate η)", lr)
    rho = vd.nonnegative("rho (SAM's radius ρ)", rho)
    ra = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    if rho and ra:
        raise vd.InvalidArgumentError(
            f"give either rho (normalized SAM) or rho_over_alpha (full-batch ascent), not both; "
            f"got rho = {rho}, rho_over_alpha = {ra}")
    return lr, rho, ra


def _check_W0(W0, P):
    vd.tensor("W0", W0, 2, "(runs, P): the initial perturbations θ_0 − θ*")
    if W0.shape[1] != P:
        raise vd.InvalidArgumentError(f"W0 must have P = {P} columns (the parameters of θ*); "
                                      f"got shape {vd.fmt_shape(W0.shape)}")
    if W0.dtype != torch.float64:
        raise vd.InvalidArgumentError(f"W0 must be float64 like θ*; got {W0.dtype}")
    if bool((W0.norm(dim=1) == 0).any()):
        raise vd.InvalidArgumentError("every perturbation in W0 must be nonzero (escape is relative to ‖w_0‖)")
    return W0


# ---------------------------------------------------------------------------------------------- inputs
def directions(runs: int, P: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``runs`` unit vectors uniform on the sphere of R^P (normalized Gaussians), float64, shape (runs, P)."""
    runs, P = vd.integer("runs", runs, 1), vd.integer("P", P, 1)
    vd.generator("generator", generator)
    Z = torch.randn(runs, P, generator=generator, dtype=torch.float64)
    return Z / Z.norm(dim=1, keepdim=True)


def minibatch_schedule(runs: int, n: int, B: int, steps: int,
                       generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (steps, runs, B): run k reshuffles 0..n−1 every epoch (its own permutation) and takes
    consecutive slices of B, as the authors' loop; B must divide n (no short last batch)."""
    runs, n, steps = vd.integer("runs", runs, 1), vd.integer("n", n, 1), vd.integer("steps", steps, 1)
    B = vd.batch_size(B, n)
    vd.generator("generator", generator)
    if n % B:
        raise vd.InvalidArgumentError(f"n = {n} is not a multiple of the batch size {B}: pick a divisor")
    per = n // B
    epochs = -(-steps // per)
    perm = torch.argsort(torch.rand(epochs, runs, n, generator=generator), dim=-1)
    idx = perm.reshape(epochs, runs, per, B).permute(0, 2, 1, 3).reshape(epochs * per, runs, B)
    return idx[:steps].contiguous()


def iid_schedule(runs: int, n: int, B: int, steps: int,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (steps, runs, B): at every step an independent uniform B-subset of 0..n−1 (without replacement
    within the step), the sampling the exact operator 𝒯 assumes (SPEC §B.4); no epochs."""
    runs, n, steps = vd.integer("runs", runs, 1), vd.integer("n", n, 1), vd.integer("steps", steps, 1)
    B = vd.batch_size(B, n)
    vd.generator("generator", generator)
    out = torch.empty(steps, runs, B, dtype=torch.int64)
    for lo in range(0, steps, 1000):  # chunks: the uniforms of 1000 steps at a time
        hi = min(steps, lo + 1000)
        u = torch.rand(hi - lo, runs, n, generator=generator)  # the B smallest of n uniforms: a uniform B-subset
        out[lo:hi] = torch.topk(u, B, dim=-1, largest=False, sorted=False).indices
    return out


#: the two ways of drawing minibatches: the authors' loop (per-epoch reshuffling) and the operator's (i.i.d.)
SCHEDULES = {"reshuffled": minibatch_schedule, "iid": iid_schedule}


# ---------------------------------------------------------------------------------------------- batched maps
# _grad is the hot loop of chapter 19 (every step of every run; with the full-batch ascent, most of it in the
# gradient of the whole training set). It calls bmm/mm on laid-out tensors instead of einsum (_grad_einsum, the
# formula the chapter's records were made with), chosen so that every sum runs in the same order as einsum's: its
# result is bit-identical to _grad_einsum (tests: test_grad_bit_identical_to_einsum, at the chapter's shapes and
# at small ones). What is gone is einsum's dispatch, its operand copies and a slow bool-to-float product; the
# full-batch gradient runs over blocks of runs whose temporaries stay in the cache.
_RUN_BLOCK = 16  # runs per block of the full-batch gradient: (16, h, n) temporaries fit a core's L2 at h, n ~ 100


def _positive(Z):
    """The 0/1 mask (Z > 0) in Z's dtype, as ``(Z > 0).to(Z.dtype)`` but without its slow bool-to-float cast."""
    return torch.gt(Z, 0, out=torch.empty_like(Z))


def _grad_shared(T, X, y, d):
    """:func:`_grad` for one batch X (B, d), y (B,) shared by every run: Z laid out (R, h, B) (one mm gives it),
    dZ (R, B, h) (the layout whose batch sum einsum's code took)."""
    R, P = T.shape
    h = P // (d + 2)
    hd, B = h * d, X.shape[0]
    W1, b1, W2 = T[:, :hd].view(R, h, d), T[:, hd: hd + h], T[:, hd + h:]
    Z = torch.mm(W1.reshape(R * h, d), X.T).view(R, h, B)
    Z += b1[:, :, None]
    A = torch.relu(Z)
    coef = torch.bmm(W2[:, None, :], A).view(R, B)
    coef -= y
    coef *= 2.0 / B  # (R, B)
    dZ = coef[:, :, None] * W2[:, None, :]
    dZ *= _positive(Z).transpose(1, 2)  # (R, B, h)
    dW1 = torch.bmm(dZ.transpose(1, 2), X.expand(R, B, d))
    return torch.cat([dW1.view(R, hd), dZ.sum(1), torch.bmm(coef[:, None, :], A.transpose(1, 2)).view(R, h)], 1)


def _grad_einsum(T, Xb, yb, d):
    """The einsum formula of :func:`_grad` (its reference), used where einsum takes other paths than the bmm calls
    below: a single run (einsum drops the run axis) and a shared batch too small for BLAS (h·B < 400)."""
    R, P = T.shape
    h = P // (d + 2)
    W1, b1, W2 = T[:, : h * d].view(R, h, d), T[:, h * d: h * d + h], T[:, h * d + h:]
    shared = Xb.ndim == 2
    Z = (torch.einsum("rhd,bd->rbh", W1, Xb) if shared else torch.einsum("rhd,rbd->rbh", W1, Xb))
    Z = Z + b1[:, None, :]
    A = torch.relu(Z)
    coef = (2.0 / Xb.shape[-2]) * (torch.einsum("rbh,rh->rb", A, W2) - yb)  # (R, B)
    dZ = coef[:, :, None] * W2[:, None, :] * (Z > 0).to(T.dtype)
    dW1 = torch.einsum("rbh,bd->rhd", dZ, Xb) if shared else torch.einsum("rbh,rbd->rhd", dZ, Xb)
    return torch.cat([dW1.reshape(R, h * d), dZ.sum(1), torch.einsum("rb,rbh->rh", coef, A)], 1)


def _grad(T, Xb, yb, d):
    """∇_θ mean_b (f(x_b) − y_b)² for every run; T (R, P), Xb (R, B, d) or (B, d), yb (R, B) or (B,)."""
    R, P = T.shape
    h = P // (d + 2)
    if Xb.ndim == 2:  # one batch (the training set) for every run, in blocks of at least _RUN_BLOCK // 2 runs
        if R == 1 or h * Xb.shape[0] < 400:
            return _grad_einsum(T, Xb, yb, d)
        k = -(-R // _RUN_BLOCK)
        if k == 1:
            return _grad_shared(T, Xb, yb, d)
        cut = [R * i // k for i in range(k + 1)]
        return torch.cat([_grad_shared(T[a:b], Xb, yb, d) for a, b in zip(cut, cut[1:])])
    hd, B = h * d, Xb.shape[1]
    W1, b1, W2 = T[:, :hd].view(R, h, d), T[:, hd: hd + h], T[:, hd + h:]
    Z = torch.bmm(Xb, W1.transpose(1, 2))  # (R, B, h)
    Z += b1[:, None, :]
    A = torch.relu(Z)
    coef = torch.bmm(A, W2[:, :, None]).view(R, B)
    coef -= yb
    coef *= 2.0 / B  # (R, B)
    dZ = coef[:, :, None] * W2[:, None, :]
    dZ *= _positive(Z)  # (R, B, h)
    if B == 1:  # sums of one term: the products themselves
        return torch.cat([(dZ.view(R, h, 1) * Xb.view(R, 1, d)).view(R, hd), dZ.view(R, h), coef * A.view(R, h)], 1)
    dW1 = torch.bmm(dZ.transpose(1, 2), Xb)
    return torch.cat([dW1.view(R, hd), dZ.sum(1), torch.bmm(coef[:, None, :], A).view(R, h)], 1)


def _check_batch_inputs(thetas, Xb, yb):
    vd.tensor("thetas", thetas, 2, "(runs, P)")
    R = thetas.shape[0]
    vd.tensor("Xb", Xb, 3, "(runs, B, d)")
    vd.tensor("yb", yb, 2, "(runs, B)")
    if Xb.shape[0] != R or tuple(yb.shape) != tuple(Xb.shape[:2]):
        raise vd.InvalidArgumentError(
            f"Xb must be (runs, B, d) and yb (runs, B) with runs = {R}; got Xb {vd.fmt_shape(Xb.shape)}, "
            f"yb {vd.fmt_shape(yb.shape)}")
    d = Xb.shape[2]
    if thetas.shape[1] % (d + 2) or thetas.shape[1] == 0:
        raise vd.InvalidArgumentError(f"thetas must have h·(d+2) columns for d = {d}; got {thetas.shape[1]}")
    vd.same_kind(thetas=thetas, Xb=Xb, yb=yb)
    return d


def batch_gradients(thetas: torch.Tensor, Xb: torch.Tensor, yb: torch.Tensor) -> torch.Tensor:
    """∇_θ of the authors' minibatch loss mean_b (f − y)², one run per row: thetas (R, P), Xb (R, B, d),
    yb (R, B); row k equals ``train_relu.batch_gradient(thetas[k], Xb[k], yb[k])``."""
    d = _check_batch_inputs(thetas, Xb, yb)
    return _grad(thetas, Xb, yb, d)


def full_gradients(thetas: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇L(θ) of the whole training set (X (n, d), y (n,)) for every run (R, P)."""
    vd.tensor("thetas", thetas, 2, "(runs, P)")
    relu_net.check_inputs(thetas[0], X, y)
    return _grad(thetas, X, y, X.shape[1])


def _step(T, Xb, yb, X, y, lr, rho, ra, d):
    if ra > 0:  # unnormalized ascent along the full-batch gradient (chapter 13's linearized SAM)
        g = _grad(T + ra * _grad(T, X, y, d), Xb, yb, d)
    else:
        g = _grad(T, Xb, yb, d)
        if rho > 0:  # normalized SAM, ascent along the minibatch gradient (train_relu.step)
            g = _grad(T + rho * g / (g.norm(dim=1, keepdim=True) + 1e-12), Xb, yb, d)
    if g.requires_grad:  # (autograd: no out=)
        return T - lr * g
    g *= lr  # g is ours: θ − ηg in its storage, the same bits as T − lr * g
    return torch.sub(T, g, out=g)


def steps_batched(thetas: torch.Tensor, X: torch.Tensor, y: torch.Tensor, schedule: torch.Tensor, lr: float,
                  rho: float = 0.0, rho_over_alpha: float = 0.0) -> torch.Tensor:
    """Every step of ``schedule`` (steps, R, B) applied to every run (no escape test); returns θ_T (R, P)."""
    vd.tensor("thetas", thetas, 2, "(runs, P)")
    relu_net.check_inputs(thetas[0], X, y)
    lr, rho, ra = _check_opt(lr, rho, rho_over_alpha)
    _check_schedule(schedule, thetas.shape[0], X.shape[0])
    T = thetas.clone()
    for idx in schedule:
        T = _step(T, X[idx], y[idx], X, y, lr, rho, ra, X.shape[1])
    return T


def _check_schedule(schedule, R, n):
    vd.tensor("schedule", schedule, 3, "(steps, runs, B) indices", dtype="int")
    if schedule.shape[1] != R:
        raise vd.InvalidArgumentError(f"schedule must have {R} runs in its second axis; got "
                                      f"{vd.fmt_shape(schedule.shape)}")
    if int(schedule.min()) < 0 or int(schedule.max()) >= n:
        raise vd.InvalidArgumentError(f"schedule indices must lie in 0..{n - 1}")
    return schedule


# ---------------------------------------------------------------------------------------------- runs
@dataclass
class Runs:
    """The outcome of R runs from θ* + w_0: escape step (−1: stayed), ‖w_t‖/‖w_0‖ at the end (or at the
    escape), the largest ratio seen, and the final θ (frozen at the escape step)."""

    escape_step: torch.Tensor   # (R,) int64
    final_ratio: torch.Tensor   # (R,)
    max_ratio: torch.Tensor     # (R,)
    theta: torch.Tensor         # (R, P)

    @property
    def escaped(self) -> torch.Tensor:
        return self.escape_step >= 0


def run_batched(theta_star: torch.Tensor, X: torch.Tensor, y: torch.Tensor, W0: torch.Tensor,
                schedule: torch.Tensor, lr: float, rho: float = 0.0, rho_over_alpha: float = 0.0,
                factor: float = 10.0) -> Runs:
    """All runs θ_0 = θ* + W0[k] together, run k on minibatches schedule[:, k]; a run escapes at the first
    step t with ‖θ_t − θ*‖ ≥ factor·‖W0[k]‖ or a non-finite θ_t, and leaves the batch there."""
    _check_theta(theta_star, X, y)
    lr, rho, ra = _check_opt(lr, rho, rho_over_alpha)
    W0 = _check_W0(W0, theta_star.numel())
    factor = vd.number("factor", factor, 1.0, lo_open=True)
    _check_schedule(schedule, W0.shape[0], X.shape[0])
    R, d = W0.shape[0], X.shape[1]
    r0 = W0.norm(dim=1)
    T = theta_star + W0
    out = T.clone()
    esc = torch.full((R,), -1, dtype=torch.int64)
    mx = torch.ones(R, dtype=torch.float64)
    fin = torch.ones(R, dtype=torch.float64)
    act, r0a, every = torch.arange(R), r0, True  # every: no run has left yet (no gathers needed)
    for t, idx in enumerate(schedule, start=1):
        ia = idx if every else idx[act]
        T = _step(T, X[ia], y[ia], X, y, lr, rho, ra, d)
        # a non-finite θ_t has a non-finite norm (inf or NaN), as has one that overflows: all count as inf
        ratio = ((T - theta_star).norm(dim=1) / r0a).nan_to_num(nan=math.inf, posinf=math.inf)
        if every:
            torch.maximum(mx, ratio, out=mx)
        else:
            mx[act] = torch.maximum(mx[act], ratio)
        gone = ratio >= factor
        if bool(gone.any()):
            esc[act[gone]] = t
            fin[act[gone]] = ratio[gone]
            out[act[gone]] = T[gone]
            keep = ~gone
            act, T, r0a, every = act[keep], T[keep], r0[act[keep]], False
            if act.numel() == 0:
                break
    if act.numel():
        out[act] = T
        fin[act] = (T - theta_star).norm(dim=1) / r0[act]
    return Runs(esc, fin, mx, out)


def run_loop(theta_star: torch.Tensor, X: torch.Tensor, y: torch.Tensor, W0: torch.Tensor,
             schedule: torch.Tensor, lr: float, rho: float = 0.0, rho_over_alpha: float = 0.0,
             factor: float = 10.0) -> Runs:
    """Reference for :func:`run_batched`: a plain Python loop over runs and steps, one θ (P,) at a time, with
    ``train_relu.step`` (SGD, normalized SAM) or the full-batch ascent written out (slow; for checks)."""
    _check_theta(theta_star, X, y)
    lr, rho, ra = _check_opt(lr, rho, rho_over_alpha)
    W0 = _check_W0(W0, theta_star.numel())
    factor = vd.number("factor", factor, 1.0, lo_open=True)
    _check_schedule(schedule, W0.shape[0], X.shape[0])
    esc, fin, mx, out = [], [], [], []
    for k in range(W0.shape[0]):
        th, r0, e, m, ratio = theta_star + W0[k], float(W0[k].norm()), -1, 1.0, 1.0
        for t in range(schedule.shape[0]):
            i = schedule[t, k]
            if ra > 0:
                asc = th + ra * train_relu.batch_gradient(th, X, y)
                th = th - lr * train_relu.batch_gradient(asc, X[i], y[i])
            else:
                th = train_relu.step(th, X[i], y[i], lr, rho) if bool(torch.isfinite(th).all()) else th
            ratio = float((th - theta_star).norm()) / r0
            if not (ratio == ratio and bool(torch.isfinite(th).all())):
                ratio = float("inf")
            m = max(m, ratio)
            if ratio >= factor:
                e = t + 1
                break
        esc.append(e), fin.append(ratio), mx.append(m), out.append(th)
    return Runs(torch.tensor(esc), torch.tensor(fin, dtype=torch.float64), torch.tensor(mx, dtype=torch.float64),
                torch.stack(out))


def run_linear(G: torch.Tensor, W0: torch.Tensor, schedule: torch.Tensor, lr: float,
               rho_over_alpha: float = 0.0, c: float = 2.0, factor: float = 10.0,
               return_path: bool = False):
    """The linearized map w_{t+1} = (I − ηK̂_t)w_t, K̂_t = (c/B)Σ_{i∈S_t} g_ig_iᵀ (I + (ρ/α)H), H = (c/n)GᵀG
    (chapter 13; SPEC §B.6), on the same minibatches, in the coordinates of span{g_i} (the rest of w_0 is
    neutral). Returns :class:`Runs` (theta = w_T) or, with ``return_path``, every w_t (steps+1, R, P)."""
    from .coherence import check_gradients

    G = check_gradients(G, c)
    lr = vd.positive("lr (the learning rate η)", lr)
    ra = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    W0 = _check_W0(W0, G.shape[1])
    factor = vd.number("factor", factor, 1.0, lo_open=True)
    _check_schedule(schedule, W0.shape[0], G.shape[0])
    Q, _ = torch.linalg.qr(G.T)  # (P, m), spans the g_i (m = n ≥ rank: extra columns are harmless)
    U = G @ Q
    Hbar = c * U.T @ U / G.shape[0]
    Cw = W0 @ Q
    perp = W0 - Cw @ Q.T
    p2 = (perp ** 2).sum(1)
    r0 = W0.norm(dim=1)
    B = schedule.shape[2]
    R = W0.shape[0]
    esc = torch.full((R,), -1, dtype=torch.int64)
    mx = torch.ones(R, dtype=torch.float64)
    path = [W0.clone()] if return_path else None
    for t, idx in enumerate(schedule, start=1):
        V = Cw + ra * Cw @ Hbar if ra else Cw  # M w (H̄ symmetric)
        Ub = U[idx]  # (R, B, m)
        Cw = Cw - lr * (c / B) * torch.einsum("rbm,rb->rm", Ub, torch.einsum("rbm,rm->rb", Ub, V))
        ratio = torch.sqrt((Cw ** 2).sum(1) + p2) / r0
        ratio = torch.where(torch.isfinite(ratio), ratio, torch.full_like(ratio, float("inf")))
        mx = torch.maximum(mx, ratio)
        esc = torch.where((esc < 0) & (ratio >= factor), torch.full_like(esc, t), esc)
        if return_path:
            path.append(Cw @ Q.T + perp)
    if return_path:
        return torch.stack(path)
    return Runs(esc, ratio, mx, Cw @ Q.T + perp)


def sweep(theta_star: torch.Tensor, X: torch.Tensor, y: torch.Tensor, G: torch.Tensor, radii, dirs: torch.Tensor,
          schedule: torch.Tensor, lr: float, rho_over_alpha: float = 0.0, factor: float = 10.0) -> dict:
    """One setting: every radius r_j × direction u_k from θ* + r_j u_k as one batch (direction k always on
    minibatches schedule[:, k]), and the linearized map from the same u_k on the same minibatches (its outcome
    does not depend on r). Returns escape (radii, dirs) bool, escape_step (radii, dirs), linear (dirs,) bool,
    and linear_growth (dirs,): log(‖c_T‖/‖c_0‖)/T of the linearized w's coordinates c in span{g_i}."""
    radii = [vd.positive("radius", r) for r in vd.array("radii", radii, 1)]
    vd.tensor("dirs", dirs, 2, "(dirs, P) unit vectors")
    _check_schedule(schedule, dirs.shape[0], X.shape[0])
    nr, nd = len(radii), dirs.shape[0]
    W0 = torch.cat([r * dirs for r in radii])  # run j·nd + k: radius j, direction k
    res = run_batched(theta_star, X, y, W0, schedule.repeat(1, nr, 1), lr, 0.0, rho_over_alpha, factor)
    lin = run_linear(G, dirs, schedule, lr, rho_over_alpha, factor=factor)
    Q, _ = torch.linalg.qr(G.T)
    with torch.no_grad():  # per-step log growth of the span{g_i} part of the linearized w (a Lyapunov estimate)
        growth = torch.log((lin.theta @ Q).norm(dim=1) / (dirs @ Q).norm(dim=1)) / schedule.shape[0]
    return {"escape": res.escaped.reshape(nr, nd), "escape_step": res.escape_step.reshape(nr, nd),
            "linear": lin.escaped, "linear_step": lin.escape_step, "linear_growth": growth}


def lyapunov(G: torch.Tensor, dirs: torch.Tensor, schedule: torch.Tensor, lr, rho_over_alpha: float = 0.0,
             c: float = 2.0, burn: float = 0.2) -> torch.Tensor:
    """Finite-time Lyapunov exponents of the linearized map w ↦ (I − ηK̂_t)w (as :func:`run_linear`) on
    span{g_i} (its rank, not n, dimensions: a direction outside it is neutral and would pull every exponent to 0),
    one per run: (ℓ_T − ℓ_{T₀})/(T − T₀) with ℓ_t = log‖c_t‖ of w_t's coordinates in span{g_i}
    (renormalized every step, so any growth rate is representable) and T₀ = ⌊burn·T⌋ (the transient dropped).
    ``lr`` is one step size or one per run (R,), so settings that differ only in η run as one batch."""
    from .coherence import check_gradients

    G = check_gradients(G, c)
    ra = vd.nonnegative("rho_over_alpha (ρ/α)", rho_over_alpha)
    vd.tensor("dirs", dirs, 2, "(runs, P)")
    R, T = dirs.shape[0], schedule.shape[0]
    _check_schedule(schedule, R, G.shape[0])
    lrs = torch.as_tensor(lr, dtype=torch.float64).reshape(-1)
    if lrs.numel() not in (1, R) or not bool((lrs > 0).all()) or not bool(torch.isfinite(lrs).all()):
        raise vd.InvalidArgumentError(f"lr must be one positive step size or one per run ({R}); got {lr!r}")
    lrs = lrs.expand(R)[:, None]
    burn = vd.number("burn", burn, 0.0, 1.0, hi_open=True)
    t0 = int(burn * T)
    _, S, Vh = torch.linalg.svd(G, full_matrices=False)
    Q = Vh[S > S[0] * 1e-10].T  # an orthonormal basis of span{g_i} itself (G may have rank < n): no neutral axis
    U = G @ Q
    Hbar = c * U.T @ U / G.shape[0]
    Cw = dirs.to(torch.float64) @ Q
    nrm = Cw.norm(dim=1, keepdim=True)
    if bool((nrm == 0).any()):
        raise vd.InvalidArgumentError("every direction needs a nonzero part in span{g_i}")
    Cw, ell, ell0 = Cw / nrm, torch.zeros(R, dtype=torch.float64), torch.zeros(R, dtype=torch.float64)
    B = schedule.shape[2]
    for t, idx in enumerate(schedule, start=1):
        V = Cw + ra * Cw @ Hbar if ra else Cw
        Ub = U[idx]
        Cw = Cw - lrs * (c / B) * torch.einsum("rbm,rb->rm", Ub, torch.einsum("rbm,rm->rb", Ub, V))
        nrm = Cw.norm(dim=1, keepdim=True)
        ell = ell + torch.log(nrm[:, 0])
        Cw = Cw / nrm
        if t == t0:
            ell0 = ell.clone()
    return (ell - ell0) / (T - t0)


def exponent_interval(exponents, level: float = 0.95) -> dict:
    """Mean of independent runs' exponents and its ``level`` confidence interval (Student t): mean, lo, hi."""
    from scipy import stats

    ex = torch.as_tensor(vd.array("exponents", exponents, 1), dtype=torch.float64)
    level = vd.probability("level", level, lo_open=True, hi_open=True)
    R = ex.numel()
    if R < 2:
        raise vd.InvalidArgumentError(f"need at least 2 runs for a confidence interval; got {R}")
    mean = float(ex.mean())
    half = float(stats.t.ppf(0.5 + level / 2, R - 1)) * float(ex.std()) / math.sqrt(R)
    return {"mean": mean, "lo": mean - half, "hi": mean + half}


def decided(lo: float, hi: float, steps: int, factor: float = 10.0, share: float = 1.0) -> bool:
    """Whether a horizon of ``steps`` decides a run's fate, from a confidence interval [lo, hi] of its Lyapunov
    exponent: the typical run shrinks (hi < 0), or grows fast enough to pass ``factor`` within the horizon even
    at the interval's low end, steps · lo ≥ log(factor / share), where ``share`` is the part of ‖w_0‖ that lies in
    the growing subspace (for a direction uniform on the sphere of R^P and a subspace of dimension m, about
    √(m/P)). An interval around 0, or growth too slow, is undecided."""
    steps = vd.integer("steps", steps, 1)
    factor = vd.number("factor", factor, 1.0, lo_open=True)
    share = vd.probability("share", share, lo_open=True)
    lo, hi = float(lo), float(hi)
    if not lo <= hi:
        raise vd.InvalidArgumentError(f"need lo <= hi; got [{lo}, {hi}]")
    return bool(hi < 0 or steps * lo >= math.log(factor / share))


# ---------------------------------------------------------------------------------------------- verdicts
def escaped(ratios: torch.Tensor, factor: float = 10.0) -> torch.Tensor:
    """The escape criterion on trajectories of ‖θ_t − θ*‖/‖θ_0 − θ*‖ (R, T+1) or (T+1,): True where some entry
    is ≥ factor or not finite (NaN, inf)."""
    vd.tensor("ratios", ratios, finite=False)
    if ratios.ndim not in (1, 2):
        raise vd.InvalidArgumentError(f"ratios must be 1-D (one run) or 2-D (runs, steps); got "
                                      f"{vd.fmt_shape(ratios.shape)}")
    factor = vd.number("factor", factor, 1.0, lo_open=True)
    bad = (ratios >= factor) | ~torch.isfinite(ratios)
    return bad.any(-1)


def agreement(escape: torch.Tensor, predicted_unstable: bool) -> float:
    """Share of runs whose outcome matches the linear prediction: escape if ρ(𝒯) > 1, stay if ρ(𝒯) < 1."""
    vd.tensor("escape", escape, dtype="bool")
    if escape.numel() == 0:
        raise vd.InvalidArgumentError("escape is empty: no runs to compare")
    if not isinstance(predicted_unstable, bool):
        raise vd.ArgumentTypeError(f"predicted_unstable must be a bool; got {type(predicted_unstable).__name__}")
    return float((escape == predicted_unstable).to(torch.float64).mean())


def radius_of_agreement(radii, agree, level: float = 0.9) -> float:
    """r*: the largest radius r_j such that agreement ≥ level at r_1 ≤ … ≤ r_j (all smaller radii);
    0 when the smallest radius already fails."""
    vd.array("radii", radii, 1)
    vd.array("agree", agree, 1)
    level = vd.probability("level", level)
    radii, agree = list(map(float, radii)), list(map(float, agree))
    if len(radii) != len(agree) or not radii:
        raise vd.InvalidArgumentError(f"radii and agree must be nonempty and of equal length; got "
                                      f"{len(radii)} and {len(agree)}")
    if any(b <= a for a, b in zip(radii, radii[1:])):
        raise vd.InvalidArgumentError("radii must increase strictly")
    best = 0.0
    for r, a in zip(radii, agree):
        if a < level:
            break
        best = r
    return best


def summarize(out: dict, radii, unstable: bool, level: float = 0.9) -> dict:
    """One setting's outcome from :func:`sweep`'s ``out``: the agreement with the prediction (escape iff
    ``unstable``) per radius, that of the linearized map, the share of runs that end as the linearized map
    per radius, r* (:func:`radius_of_agreement`) and the share of runs that escape per radius."""
    agree = [agreement(e, unstable) for e in out["escape"]]
    return {"agree": agree, "lin_agree": agreement(out["linear"], unstable),
            "same_as_lin": [float((e == out["linear"]).double().mean()) for e in out["escape"]],
            "rstar": radius_of_agreement(radii, agree, level),
            "escape_frac": [float(e.double().mean()) for e in out["escape"]]}


def benchmark(theta_star, X, y, W0, schedule, lr, rho=0.0, rho_over_alpha=0.0, factor=10.0) -> dict:
    """Wall time of :func:`run_batched` and :func:`run_loop` on the same runs, and their largest difference."""
    t0 = time.perf_counter()
    a = run_batched(theta_star, X, y, W0, schedule, lr, rho, rho_over_alpha, factor)
    t1 = time.perf_counter()
    b = run_loop(theta_star, X, y, W0, schedule, lr, rho, rho_over_alpha, factor)
    t2 = time.perf_counter()
    scale = float(theta_star.abs().max())
    return {"batched_s": t1 - t0, "loop_s": t2 - t1, "speedup": (t2 - t1) / (t1 - t0),
            "max_rel_diff": float((a.theta - b.theta).abs().max()) / scale,
            "same_escapes": bool((a.escape_step == b.escape_step).all()), "runs": int(W0.shape[0]),
            "steps": int(schedule.shape[0])}
