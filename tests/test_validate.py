"""Bad input to flatbias's public functions is a clear error (issue 13): the exception is a package exception
(:class:`flatbias.validate.InvalidArgumentError`, a ``ValueError``, or a documented one such as ``StepSizeError``)
and its message names the argument. Every public function family gets at least a wrong shape, a NaN/inf, an
out-of-range value and, where it matters, a wrong dtype. The command lines print one line and exit with status 2."""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from flatbias import (activations, coherence, feature_rank, grad_coherence, label_noise, manifold, optimum, precision,
                      relu_hessian, relu_net, repro, riemannian, simulate, stability, train_relu, twolayer)
from flatbias import validate as vd

F64, NAN, INF = torch.float64, float("nan"), float("inf")
ROOT = Path(__file__).resolve().parents[1]
BAD = vd.InvalidArgumentError


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _with(t, value, idx=0):
    """A copy of ``t`` with one entry replaced (NaN, inf, ...)."""
    t = t.clone()
    t.view(-1)[idx] = value
    return t


# ---------------------------------------------------------------------------------------------- data
X, Y = twolayer.uniform_data(3, 3, _gen(1))  # paper 1: n = d = 3
TH, A = torch.randn(4, 3, generator=_gen(2), dtype=F64), torch.ones(4, dtype=F64)  # m = 4
HS = coherence.authors_family(4, 2)  # paper 2: n = 4 PSD matrices, d = 3
GR = torch.randn(4, 5, generator=_gen(3), dtype=F64)  # per-sample gradients, n = 4
W0 = torch.eye(3, dtype=F64)
K, AX, DX, BX, _ = simulate.authors_grid(6, [2], [2])
XR, YR = relu_net.parity_data(8, 4, _gen(4))  # ReLU net: n = 8, d = 4
THR = relu_net.init_flat(4, 6, _gen(5))  # h = 6: 36 entries
THR_OTHER = relu_net.init_flat(10, 3, _gen(6))  # built for d = 10, h = 3: also 36 entries
P1 = label_noise.draw_problems(0, 2, m=4, seed=0)  # two chains for the label-noise kernel
MLP = nn.Sequential(nn.Linear(4, 3)).double().eval()
XM, YM = torch.randn(5, 4, generator=_gen(7), dtype=F64), torch.tensor([0, 1, 2, 0, 1])
MLP32, XM32 = nn.Sequential(nn.Linear(4, 3)), torch.randn(5, 4, generator=_gen(8))
X_DUP = torch.cat([X[:2], X[:1]])  # paper 1's data with x_3 = x_1: XXᵀ singular, M empty for y_3 ≠ y_1
P1_X_DUP = P1["X"].copy()
P1_X_DUP[1, 2] = P1_X_DUP[1, 0]  # chain 1 repeats a data point


def _dead_mlp():
    """Every ReLU unit is off on every input (weights 0, bias −1): every per-sample gradient is exactly zero."""
    mlp = nn.Sequential(nn.Linear(4, 3), nn.ReLU()).double().eval()
    with torch.no_grad():
        mlp[0].weight.zero_()
        mlp[0].bias.fill_(-1.0)
    return mlp


DEAD = _dead_mlp()


def _acc(**kw):
    acc = feature_rank.GramAccumulator()
    acc.update(torch.randn(4, 3, dtype=F64))
    return acc


def _collapse(**kw):
    base = dict(s_values=[0.1], steps=10, record_every=5, progress=False)
    return label_noise.collapse(P1["theta0"], P1["X"], P1["y"], **{**base, **kw})


def _run(theta0=P1["theta0"], X_=P1["X"], y=P1["y"], **kw):
    base = dict(eta=0.05, s=0.1, steps=10, record_every=5, progress=False)
    return label_noise.run(theta0, X_, y, **{**base, **kw})


def _ref(**kw):
    idx, eps = label_noise.draw_noise(0, 1, 3, 5)
    base = dict(eta=0.05, s=0.1, idx=idx[0], eps=eps[0])
    return label_noise.reference_run(P1["theta0"][0], P1["X"][0], P1["y"][0], **{**base, **kw})


def _axes(**kw):
    base = dict(k=K, a=AX, d=DX, B=BX, eta=0.5, reps=2, steps=3)
    base.update(kw)
    return simulate.simulate_axes(base.pop("k"), base.pop("a"), base.pop("d"), base.pop("B"), base.pop("eta"),
                                  generator=_gen(), **base)


# (module, case id, call, expected exception, a word the message must contain: the argument's name)
CASES = [
    # validate itself
    ("validate", "number NaN", lambda: vd.positive("eta", NAN), BAD, "eta"),
    ("validate", "integer 2.5", lambda: vd.integer("steps", 2.5, 0), vd.ArgumentTypeError, "steps"),
    ("validate", "integer bool", lambda: vd.integer("steps", True, 0), vd.ArgumentTypeError, "steps"),
    ("validate", "batch 0", lambda: vd.batch_size(0, 5), BAD, "B"),
    ("validate", "tensor list", lambda: vd.tensor("X", [[1.0]]), vd.ArgumentTypeError, "X"),
    ("validate", "tensor int dtype", lambda: vd.tensor("X", torch.zeros(2, dtype=torch.long)), vd.ArgumentTypeError,
     "X"),
    ("validate", "shape", lambda: vd.shape("y", torch.zeros(5, 1), (5,), "to match X's 5 rows"), BAD, "y"),
    ("validate", "choice", lambda: vd.choice("method", "adam", ("sgd", "sam")), BAD, "method"),
    # activations
    ("activations", "unknown name", lambda: activations.get_activation("relu"), BAD, "activation"),
    ("activations", "name not a str", lambda: activations.get_activation(["sinh"]), BAD, "activation"),
    ("activations", "inv out of range", lambda: activations.get_activation("tanh").inv(torch.tensor([2.0])), BAD,
     "y"),
    ("activations", "inv NaN", lambda: activations.get_activation("tanh").inv(torch.tensor([NAN])), BAD, "y"),
    ("activations", "inv list", lambda: activations.get_activation("sinh").inv([0.5]), vd.ArgumentTypeError, "y"),
    ("activations", "inv bool dtype", lambda: activations.get_activation("sinh").inv(torch.tensor([True])),
     vd.ArgumentTypeError, "y"),
    # twolayer
    ("twolayer", "loss y (n, 1)", lambda: twolayer.loss(TH, X, Y[:, None], "sinh"), BAD, "y"),
    ("twolayer", "trace_hessian y (n, 1)", lambda: twolayer.trace_hessian(TH, X, Y[:, None], "sinh"), BAD, "y"),
    ("twolayer", "residual_term y NaN", lambda: twolayer.residual_term(TH, X, _with(Y, NAN), "sinh"), BAD, "y"),
    ("twolayer", "trace_hessian_autograd y (2,)", lambda: twolayer.trace_hessian_autograd(TH, X, Y[:2], "sinh"),
     BAD, "y"),
    ("twolayer", "forward θ 1-D", lambda: twolayer.forward(TH[0], X, "sinh"), BAD, "θ"),
    ("twolayer", "forward X NaN", lambda: twolayer.forward(TH, _with(X, NAN), "sinh"), BAD, "X"),
    ("twolayer", "jacobian θ inf", lambda: twolayer.jacobian(_with(TH, INF), X, "sinh"), BAD, "θ"),
    ("twolayer", "sharpness θ int", lambda: twolayer.sharpness(TH.long(), X, "sinh"), vd.ArgumentTypeError, "θ"),
    ("twolayer", "feature_matrix dtypes differ", lambda: twolayer.feature_matrix(TH.float(), X, "sinh"), BAD, "X"),
    ("twolayer", "preactivations X list", lambda: twolayer.preactivations(TH, X.tolist()), vd.ArgumentTypeError,
     "X"),
    ("twolayer", "a wrong shape", lambda: twolayer.forward(TH, X, "sinh", A[:3]), BAD, "a"),
    ("twolayer", "uniform_data n = 0", lambda: twolayer.uniform_data(0, 3, _gen()), BAD, "n"),
    ("twolayer", "uniform_data int dtype", lambda: twolayer.uniform_data(3, 3, _gen(), torch.long),
     vd.ArgumentTypeError, "dtype"),
    ("twolayer", "conditioned min_eig < 0", lambda: twolayer.conditioned_uniform_data(3, 3, _gen(), -1.0), BAD,
     "min_eig"),
    ("twolayer", "gram_min_eig X 1-D", lambda: twolayer.gram_min_eig(X[0]), BAD, "X"),
    # manifold
    ("manifold", "retract y (1,)", lambda: manifold.retract(TH, X, Y[:1], "sinh"), BAD, "y"),
    ("manifold", "retract tol < 0", lambda: manifold.retract(TH, X, Y, "sinh", tol=-1.0), BAD, "tol"),
    ("manifold", "retract max_iter 2.5", lambda: manifold.retract(TH, X, Y, "sinh", max_iter=2.5),
     vd.ArgumentTypeError, "max_iter"),
    ("manifold", "constraints X NaN", lambda: manifold.constraints(TH, _with(X, NAN), Y, "sinh"), BAD, "X"),
    ("manifold", "check_data X 3-D", lambda: manifold.check_data(X[None]), BAD, "X"),
    ("manifold", "check_gram not square", lambda: manifold.check_gram(torch.ones(2, 3, dtype=F64)), BAD, "G"),
    ("manifold", "check_gram NaN", lambda: manifold.check_gram(_with(torch.eye(3, dtype=F64), NAN)),
     manifold.RankDeficientError, "JJᵀ"),
    ("manifold", "project_tangent v shape", lambda: manifold.project_tangent(TH, TH[:2], X, "sinh"), BAD, "v"),
    ("manifold", "tangent_projector rtol NaN", lambda: manifold.tangent_projector(TH, X, "sinh", rtol=NAN), BAD,
     "rtol"),
    ("manifold", "random_point m = 0", lambda: manifold.random_point(X, Y, "sinh", 0, _gen()), BAD, "m"),
    ("manifold", "random_point init_std < 0", lambda: manifold.random_point(X, Y, "sinh", 4, _gen(), init_std=-1.0),
     BAD, "init_std"),
    ("manifold", "random_point generator", lambda: manifold.random_point(X, Y, "sinh", 4, 0), vd.ArgumentTypeError,
     "generator"),
    # riemannian
    ("riemannian", "grad θ other d", lambda: riemannian.grad(TH[:, :2], X, "sinh"), BAD, "θ"),
    ("riemannian", "grad X inf", lambda: riemannian.grad(TH, _with(X, INF), "sinh"), BAD, "X"),
    ("riemannian", "multipliers θ int", lambda: riemannian.multipliers(TH.long(), X, "sinh"), vd.ArgumentTypeError,
     "θ"),
    ("riemannian", "euclidean_grad a NaN", lambda: riemannian.euclidean_grad(TH, X, "sinh", _with(A, NAN)), BAD,
     "a"),
    ("riemannian", "hess_vec v shape", lambda: riemannian.hess_vec(TH, TH.T, X, "sinh"), BAD, "v"),
    ("riemannian", "hessian_weights X 1-D", lambda: riemannian.hessian_weights(TH, X[0], "sinh"), BAD, "X"),
    ("riemannian", "hess_matrix a shape", lambda: riemannian.hess_matrix(TH, X, "sinh", A[:2]), BAD, "a"),
    ("riemannian", "tangent_basis θ NaN", lambda: riemannian.tangent_basis(_with(TH, NAN), X, "sinh"), BAD, "θ"),
    ("riemannian", "lambda_min X NaN", lambda: riemannian.lambda_min(TH, _with(X, NAN), "sinh"), BAD, "X"),
    ("riemannian", "lambda_max act", lambda: riemannian.lambda_max(TH, X, "relu"), BAD, "activation"),
    ("riemannian", "descent step str", lambda: riemannian.descent(TH, X, Y, "sinh", step="fast"), BAD, "step"),
    ("riemannian", "descent step < 0", lambda: riemannian.descent(TH, X, Y, "sinh", step=-1.0), BAD, "step"),
    ("riemannian", "descent log_every 0", lambda: riemannian.descent(TH, X, Y, "sinh", log_every=0), BAD,
     "log_every"),
    ("riemannian", "descent max_steps < 0", lambda: riemannian.descent(TH, X, Y, "sinh", max_steps=-1), BAD,
     "max_steps"),
    ("riemannian", "descent tol NaN", lambda: riemannian.descent(TH, X, Y, "sinh", tol=NAN), BAD, "tol"),
    ("riemannian", "descent y (n, 1)", lambda: riemannian.descent(TH, X, Y[:, None], "sinh"), BAD, "y"),
    # optimum
    ("optimum", "global_optimum y NaN", lambda: optimum.global_optimum(TH, X, _with(Y, NAN), "sinh"), BAD, "y"),
    ("optimum", "F_star y NaN", lambda: optimum.F_star(X, _with(Y, NAN), "sinh", 4), BAD, "y"),
    ("optimum", "F_star m = 0", lambda: optimum.F_star(X, Y, "sinh", 0), BAD, "m"),
    ("optimum", "F_star m = 2.5", lambda: optimum.F_star(X, Y, "sinh", 2.5), vd.ArgumentTypeError, "m"),
    ("optimum", "F_star y int", lambda: optimum.F_star(X, Y.long(), "sinh", 4), vd.ArgumentTypeError, "y"),
    ("optimum", "F_star duplicate rows (M empty)", lambda: optimum.F_star(X_DUP, Y, "sinh", 4),
     manifold.RankDeficientError, "X"),
    ("optimum", "optimal_preactivations y (n, 1)", lambda: optimum.optimal_preactivations(X, Y[:, None], "sinh", 4),
     BAD, "y"),
    ("optimum", "optimal_preactivations a = 0", lambda: optimum.optimal_preactivations(X, Y, "sinh", 4, A * 0), BAD,
     "second-layer weights"),
    ("optimum", "global_optimum θ0 other d", lambda: optimum.global_optimum(TH[:, :2], X, Y, "sinh"), BAD, "θ0"),
    ("optimum", "distance_to_optimum θ inf", lambda: optimum.distance_to_optimum(_with(TH, INF), X, Y, "sinh"), BAD,
     "θ"),
    # label_noise
    ("label_noise", "run θ0 NaN", lambda: _run(theta0=_with(torch.tensor(P1["theta0"]), NAN)), BAD, "θ0"),
    ("label_noise", "run y shape", lambda: _run(y=P1["y"][:, :2]), BAD, "y"),
    ("label_noise", "run eta < 0", lambda: _run(eta=-0.1), BAD, "eta"),
    ("label_noise", "run steps < 0", lambda: _run(steps=-5), BAD, "steps"),
    ("label_noise", "run record_every 0", lambda: _run(record_every=0), BAD, "record_every"),
    ("label_noise", "run method", lambda: _run(method="adam"), BAD, "method"),
    ("label_noise", "run X strings", lambda: _run(X_=np.full((2, 3, 3), "a")), vd.ArgumentTypeError, "X"),
    ("label_noise", "reference_run idx out of range", lambda: _ref(idx=np.array([0, 1, 2, 3, 9])), BAD, "idx"),
    ("label_noise", "reference_run eps NaN", lambda: _ref(eps=np.array([0.0, NAN, 0, 0, 0])), BAD, "eps"),
    ("label_noise", "reference_run eta 0", lambda: _ref(eta=0.0), BAD, "eta"),
    ("label_noise", "retract_batch tol 0", lambda: label_noise.retract_batch(P1["theta0"], P1["X"], P1["y"], tol=0),
     BAD, "tol"),
    ("label_noise", "retract_batch X 2-D", lambda: label_noise.retract_batch(P1["theta0"], P1["X"][0], P1["y"]),
     BAD, "X"),
    ("label_noise", "closed_form_optimum y NaN",
     lambda: label_noise.closed_form_optimum(P1["theta0"], P1["X"], np.full((2, 3), NAN)), BAD, "y"),
    ("label_noise", "closed_form_optimum duplicate rows (M empty)",
     lambda: label_noise.closed_form_optimum(P1["theta0"], P1_X_DUP, P1["y"]), manifold.RankDeficientError, "X"),
    ("label_noise", "summarize shapes", lambda: label_noise.summarize(P1["theta0"], P1["X"][:1], P1["y"]), BAD, "θ"),
    ("label_noise", "draw_problems n > d", lambda: label_noise.draw_problems(2, 0, n=5, d=3), BAD, "lam_min"),
    ("label_noise", "draw_problems seed < 0", lambda: label_noise.draw_problems(2, 0, seed=-1), BAD, "seed"),
    ("label_noise", "ChainNoise chains < 0", lambda: label_noise.ChainNoise(0, -1), BAD, "chains"),
    ("label_noise", "draw_noise n 0", lambda: label_noise.draw_noise(0, 1, 0, 5), BAD, "n"),
    ("label_noise", "collapse s_values empty", lambda: _collapse(s_values=[]), BAD, "s_values"),
    ("label_noise", "collapse s_values inf", lambda: _collapse(s_values=[INF]), BAD, "s_values"),
    ("label_noise", "sam_record s2 < 0", lambda: label_noise.sam_record("/nonexistent/x.json", s2=-0.03), BAD, "s2"),
    # coherence
    ("coherence", "H strings", lambda: coherence.coherence([["a"]]), vd.ArgumentTypeError, "H"),
    ("coherence", "H NaN", lambda: coherence.coherence(_with(HS, NAN)), BAD, "H"),
    ("coherence", "H 2-D", lambda: coherence.coherence_matrix(HS[0]), BAD, "H"),
    ("coherence", "H complex", lambda: coherence.check_psd_family(HS.to(torch.complex128)), vd.ArgumentTypeError,
     "H"),
    ("coherence", "G inf", lambda: coherence.coherence_from_gradients(_with(GR, INF)), BAD, "G"),
    ("coherence", "G 1-D", lambda: coherence.check_gradients(GR[0]), BAD, "G"),
    ("coherence", "c NaN", lambda: coherence.coherence_from_gradients(GR, NAN), BAD, "c"),
    ("coherence", "c < 0", lambda: coherence.coherence_from_gradients(GR, -2.0), BAD, "c"),
    ("coherence", "authors_axes σ = 0", lambda: coherence.authors_axes(4, 0), BAD, "σ"),
    ("coherence", "authors_family n 2.5", lambda: coherence.authors_family(2.5, 1), vd.ArgumentTypeError, "n"),
    ("coherence", "authors_family σ > n", lambda: coherence.authors_family(4, 5), BAD, "σ"),
    # stability
    ("stability", "sam_eta ρ/α NaN", lambda: stability.sam_eta(HS, 2, NAN), BAD, "rho_over_alpha"),
    ("stability", "sam_eta ρ/α < 0", lambda: stability.sam_eta(HS, 1, -5.0), BAD, "rho_over_alpha"),
    ("stability", "sam_condition ρ/α NaN", lambda: stability.sam_condition(HS, 0.5, 2, NAN), BAD, "rho_over_alpha"),
    ("stability", "sam_eta lambda_min", lambda: stability.sam_eta(HS, 2, 1.0, lambda_min="min"), BAD, "lambda_min"),
    ("stability", "orthogonal_threshold(-3)", lambda: stability.orthogonal_threshold(-3), BAD, "B"),
    ("stability", "second_moments steps < 0", lambda: stability.second_moments(HS, 0.5, 2, W0, -1), BAD, "steps"),
    ("stability", "second_moments W0 shape", lambda: stability.second_moments(HS, 0.5, 2, W0[:2], 3), BAD, "W0"),
    ("stability", "second_moments noise NaN", lambda: stability.second_moments(HS, 0.5, 2, W0, 3, noise_std=NAN),
     BAD, "noise_std"),
    ("stability", "second_moment_growth zero start", lambda: stability.second_moment_growth(HS, 0.5, 2, W0 * 0, 5),
     BAD, "W0"),
    ("stability", "second_moment_growth W0 NaN", lambda: stability.second_moment_growth(HS, 0.5, 2, _with(W0, NAN), 5),
     BAD, "W0"),
    ("stability", "spectral_radius B = 0", lambda: stability.spectral_radius(HS, 0.5, 0), BAD, "B"),
    ("stability", "spectral_radius B > n", lambda: stability.spectral_radius(HS, 0.5, 5), BAD, "B"),
    ("stability", "spectral_radius B 1.5", lambda: stability.spectral_radius(HS, 0.5, 1.5), vd.ArgumentTypeError,
     "B"),
    ("stability", "spectral_radius eta inf", lambda: stability.spectral_radius(HS, INF, 2), BAD, "eta"),
    ("stability", "spectral_radius method", lambda: stability.spectral_radius(HS, 0.5, 2, "adam"), BAD, "method"),
    ("stability", "spectral_radius algorithm", lambda: stability.spectral_radius(HS, 0.5, 2, algorithm="magic"),
     BAD, "algorithm"),
    ("stability", "spectral_radius_rank_one G NaN", lambda: stability.spectral_radius_rank_one(_with(GR, NAN), 0.5, 2),
     BAD, "G"),
    ("stability", "mean_square_operator ρ/α with sgd", lambda: stability.mean_square_operator(HS, 0.5, 2,
                                                                                             rho_over_alpha=1.0),
     BAD, "ρ/α"),
    ("stability", "dexter_eta σ < 0", lambda: stability.dexter_eta(HS, 2, sigma=-1.0), BAD, "sigma"),
    ("stability", "dexter_condition eta NaN", lambda: stability.dexter_condition(HS, NAN, 2), BAD, "eta"),
    ("stability", "diagonal_multipliers broadcast", lambda: stability.diagonal_multipliers(
        torch.ones(2, 4, 3, dtype=F64), torch.tensor([0.1, 0.2, 0.3]), 2), BAD, "eta"),
    ("stability", "diagonal_multipliers D NaN", lambda: stability.diagonal_multipliers(
        _with(torch.ones(4, 3, dtype=F64), NAN), 0.1, 2), BAD, "D"),
    ("stability", "critical_eta_diagonal B 0", lambda: stability.critical_eta_diagonal(torch.ones(4, 3), 0), BAD,
     "B"),
    ("stability", "diagonal_noise_floor noise < 0", lambda: stability.diagonal_noise_floor(
        torch.ones(4, 3), 0.1, 2, noise_std=-1.0), BAD, "noise_std"),
    ("stability", "spectral_radius_diagonal sampling", lambda: stability.spectral_radius_diagonal(
        torch.ones(4, 3), 0.1, 2, sampling="poisson"), BAD, "sampling"),
    ("stability", "critical_eta H 2-D", lambda: stability.critical_eta(HS[0], 2), BAD, "H"),
    ("stability", "stationary method", lambda: stability.stationary_second_moment(HS, 0.1, 2, method="adam"), BAD,
     "method"),
    ("stability", "identical_threshold n 0", lambda: stability.identical_threshold(0, 1), BAD, "n"),
    ("stability", "sampling_coefficients sampling", lambda: stability.sampling_coefficients(4, 2, "poisson"), BAD,
     "sampling"),
    ("stability", "radius_power op", lambda: stability.radius_power(HS), vd.ArgumentTypeError, "op"),
    ("stability", "radius_power max_iter 0", lambda: stability.radius_power(
        stability.mean_square_operator(HS, 0.5, 2), max_iter=0), BAD, "max_iter"),
    ("stability", "radius_lanczos tol NaN", lambda: stability.radius_lanczos(
        stability.mean_square_operator(HS, 0.5, 2), tol=NAN), BAD, "tol"),
    # simulate
    ("simulate", "simulate w0 NaN", lambda: simulate.simulate(HS, 0.5, 2, _with(torch.ones(2, 3), NAN), 3), BAD,
     "w0"),
    ("simulate", "simulate w0 other d", lambda: simulate.simulate(HS, 0.5, 2, torch.ones(2, 4), 3), BAD, "w0"),
    ("simulate", "simulate steps < 0", lambda: simulate.simulate(HS, 0.5, 2, torch.ones(2, 3), -1), BAD, "steps"),
    ("simulate", "simulate noise NaN", lambda: simulate.simulate(HS, 0.5, 2, torch.ones(2, 3), 3, noise_std=NAN),
     BAD, "noise_std"),
    ("simulate", "simulate w0 int", lambda: simulate.simulate(HS, 0.5, 2, torch.ones(2, 3, dtype=torch.long), 3),
     vd.ArgumentTypeError, "w0"),
    ("simulate", "simulate_axes a NaN", lambda: _axes(a=_with(AX, NAN)), BAD, "a"),
    ("simulate", "simulate_axes k float", lambda: _axes(k=K.double()), vd.ArgumentTypeError, "k"),
    ("simulate", "simulate_axes B > n", lambda: _axes(B=BX * 10), BAD, "B"),
    ("simulate", "simulate_axes a shape", lambda: _axes(a=AX[:, :3]), BAD, "a"),
    ("simulate", "simulate_axes reps 0", lambda: _axes(reps=0), BAD, "reps"),
    ("simulate", "simulate_axes eta < 0", lambda: _axes(eta=-0.5), BAD, "eta"),
    ("simulate", "escape_times_axes backend", lambda: simulate.escape_times_axes(K, AX, DX, BX, 0.5, backend="gpu"),
     BAD, "backend"),
    ("simulate", "floyd_batches B > n", lambda: simulate.floyd_batches(4, 5, 3), BAD, "B"),
    ("simulate", "floyd_batches seed < 0", lambda: simulate.floyd_batches(4, 2, 3, seed=-1), BAD, "seed"),
    ("simulate", "batch_masks B float", lambda: simulate.batch_masks(torch.tensor([1.0]), 4, "bernoulli", None),
     vd.ArgumentTypeError, "B"),
    ("simulate", "batch_masks B 0", lambda: simulate.batch_masks(torch.tensor([0]), 4, "bernoulli", None), BAD, "B"),
    ("simulate", "stable_cells float", lambda: simulate.stable_cells(torch.zeros(2, 3)), vd.ArgumentTypeError,
     "diverged"),
    ("simulate", "authors_counted_stable 0-D", lambda: simulate.authors_counted_stable(torch.tensor(True)), BAD,
     "diverged"),
    ("simulate", "authors_grid batches 0", lambda: simulate.authors_grid(6, [2], [0]), BAD, "batches"),
    # relu_net
    ("relu_net", "mse_loss y (n, 1)", lambda: relu_net.mse_loss(THR, XR, YR[:, None], h=6), BAD, "y"),
    ("relu_net", "accuracy y (3,)", lambda: relu_net.accuracy(THR, XR, YR[:3], h=6), BAD, "y"),
    ("relu_net", "forward θ NaN", lambda: relu_net.forward(_with(THR, NAN), XR, h=6), BAD, "θ"),
    ("relu_net", "forward θ of another width", lambda: relu_net.forward(THR_OTHER, XR, h=3), BAD, "θ"),
    ("relu_net", "features X 1-D", lambda: relu_net.features(THR, XR[0], h=6), BAD, "X"),
    ("relu_net", "preactivations θ int", lambda: relu_net.preactivations(THR.long(), XR, h=6), vd.ArgumentTypeError,
     "θ"),
    ("relu_net", "forward h None (a flat θ needs its width)", lambda: relu_net.forward(THR, XR, h=None),
     vd.ArgumentTypeError, "h"),
    ("relu_net", "forward X empty", lambda: relu_net.forward(THR, XR[:0], h=6), BAD, "X"),
    ("relu_net", "hidden_size length", lambda: relu_net.hidden_size(THR[:-1], 4), BAD, "θ"),
    ("relu_net", "unflatten d 0", lambda: relu_net.unflatten(THR, 0, 6), BAD, "d"),
    ("relu_net", "flatten b1 shape", lambda: relu_net.flatten(torch.ones(3, 2), torch.ones(2), torch.ones(3)), BAD,
     "b1"),
    ("relu_net", "parity_data d 1", lambda: relu_net.parity_data(4, 1), BAD, "d"),
    ("relu_net", "generalizing_solution r < 0", lambda: relu_net.generalizing_solution(2, 4, 8, r=-1.0), BAD, "r"),
    ("relu_net", "memorizing_solution y shape", lambda: relu_net.memorizing_solution(XR, YR[:2], 8), BAD, "y"),
    ("relu_net", "memorizing_solution h 2.5", lambda: relu_net.memorizing_solution(XR, YR, 2.5), vd.ArgumentTypeError,
     "h"),
    ("relu_net", "TwoLayerReLU d 0", lambda: relu_net.TwoLayerReLU(0, 3), BAD, "d"),
    ("relu_net", "init_flat dtype", lambda: relu_net.init_flat(4, 6, dtype=torch.long), vd.ArgumentTypeError, "dtype"),
    ("relu_net", "n_params h 0", lambda: relu_net.n_params(4, 0), BAD, "h"),
    ("relu_net", "used_inputs θ 2-D", lambda: relu_net.used_inputs(THR[None], 4, h=6), BAD, "θ"),
    ("relu_net", "load_flat θ NaN", lambda: relu_net.TwoLayerReLU(4, 6).load_flat(_with(THR, NAN)), BAD, "θ"),
    # relu_hessian
    ("relu_hessian", "coherence θ of another width", lambda: relu_hessian.coherence(THR_OTHER, XR, YR, h=3), BAD,
     "θ"),
    ("relu_hessian", "coherence y (n, 1)", lambda: relu_hessian.coherence(THR, XR, YR[:, None], h=6), BAD, "y"),
    ("relu_hessian", "coherence X NaN", lambda: relu_hessian.coherence(THR, _with(XR, NAN), YR, h=6), BAD, "X"),
    ("relu_hessian", "coherence X empty", lambda: relu_hessian.coherence(THR, XR[:0], YR[:0], h=6), BAD, "X"),
    ("relu_hessian", "full_hessian_trace X empty", lambda: relu_hessian.full_hessian_trace(THR, XR[:0], h=6), BAD,
     "X"),
    ("relu_hessian", "per_sample_gradients θ of another width",
     lambda: relu_hessian.per_sample_gradients(THR_OTHER, XR, h=3), BAD, "θ"),
    ("relu_hessian", "trace_products dtypes", lambda: relu_hessian.trace_products(THR.float(), XR, YR, h=6), BAD,
     "X"),
    ("relu_hessian", "per_sample_lambda_max y NaN",
     lambda: relu_hessian.per_sample_lambda_max(THR, XR, _with(YR, NAN), h=6), BAD, "y"),
    ("relu_hessian", "per_sample_gradients X 1-D", lambda: relu_hessian.per_sample_gradients(THR, XR[0], h=6), BAD,
     "X"),
    ("relu_hessian", "parts y bool", lambda: relu_hessian.parts(THR, XR, YR > 0, h=6), vd.ArgumentTypeError, "y"),
    ("relu_hessian", "gram not Parts", lambda: relu_hessian.gram(THR), vd.ArgumentTypeError, "p"),
    ("relu_hessian", "full_hessian_trace θ inf", lambda: relu_hessian.full_hessian_trace(_with(THR, INF), XR, h=6),
     BAD, "θ"),
    ("relu_hessian", "full_hessian_lambda_max tol 0",
     lambda: relu_hessian.full_hessian_lambda_max(THR, XR, YR, 0.0, h=6), BAD, "tol"),
    ("relu_hessian", "full_hessian_hvp v shape", lambda: relu_hessian.full_hessian_hvp(THR, XR, YR, h=6)(THR[:5]), BAD,
     "v"),
    ("relu_hessian", "effective_rank threshold", lambda: relu_hessian.effective_rank(torch.ones(4, 3), 1.5), BAD,
     "threshold"),
    ("relu_hessian", "effective_rank one row", lambda: relu_hessian.effective_rank(torch.ones(1, 3)), BAD,
     "features"),
    ("relu_hessian", "effective_rank NaN", lambda: relu_hessian.effective_rank(_with(torch.ones(4, 3), NAN)), BAD,
     "features"),
    ("relu_hessian", "sam_effective_gram ρ/α < 0", lambda: relu_hessian.sam_effective_gram(GR, -1.0), BAD,
     "rho_over_alpha"),
    ("relu_hessian", "gram_factor not square", lambda: relu_hessian.gram_factor(GR), BAD, "K"),
    ("relu_hessian", "per_sample_hessian_autograd y vector",
     lambda: relu_hessian.per_sample_hessian_autograd(THR, XR[0], YR, h=6), BAD, "y"),
    ("relu_hessian", "per_sample_hessian_rows x 2-D",
     lambda: relu_hessian.per_sample_hessian_rows(THR, XR, YR[0], h=6), BAD, "x"),
    # train_relu
    ("train_relu", "method_rho negative", lambda: train_relu.method_rho("sam_-1"), BAD, "method"),
    ("train_relu", "method_rho not a str", lambda: train_relu.method_rho(3), BAD, "method"),
    ("train_relu", "Config lr 0", lambda: train_relu.Config(lr=0.0).check(), BAD, "lr"),
    ("train_relu", "Config lr NaN", lambda: train_relu.Config(lr=NAN).check(), BAD, "lr"),
    ("train_relu", "Config batch_size 0", lambda: train_relu.Config(batch_size=0).check(), BAD, "batch_size"),
    ("train_relu", "Config epochs < 0", lambda: train_relu.Config(epochs=-1).check(), BAD, "epochs"),
    ("train_relu", "Config C > d", lambda: train_relu.Config(init="generalizing", C=9, d=8).check(), BAD, "C"),
    ("train_relu", "Config noise NaN", lambda: train_relu.Config(init="generalizing", noise=NAN).check(), BAD,
     "noise"),
    ("train_relu", "train not a Config", lambda: train_relu.train({"lr": 0.1}), vd.ArgumentTypeError, "cfg"),
    ("train_relu", "step lr NaN", lambda: train_relu.step(THR, XR, YR, NAN, 0.0), BAD, "lr"),
    ("train_relu", "step yb shape", lambda: train_relu.step(THR, XR, YR[:2], 0.1, 0.0), BAD, "yb"),
    ("train_relu", "batch_gradient X NaN", lambda: train_relu.batch_gradient(THR, _with(XR, NAN), YR), BAD, "X"),
    ("train_relu", "metrics yv shape", lambda: train_relu.metrics(THR, XR, YR, XR, YR[:2], h=6), BAD, "yv"),
    ("train_relu", "run seed < 0", lambda: train_relu.run([-1], ["sgd"], epochs=0), BAD, "seed"),
    ("train_relu", "run unknown setting", lambda: train_relu.run([0], ["sgd"], epochz=1), BAD, "epochz"),
    ("train_relu", "summary key", lambda: train_relu.summary({"sgd": {"0": {"sigma": [1.0]}}}, "sigmaa"), BAD, "key"),
    ("train_relu", "run_and_record scale", lambda: train_relu.run_and_record("training", [0], "huge"), BAD, "scale"),
    # feature_rank
    ("feature_rank", "thresholds > 1", lambda: feature_rank.rank_from_eigenvalues([3.0, 1.0], [1.5]), BAD,
     "thresholds"),
    ("feature_rank", "thresholds a number", lambda: feature_rank.rank_from_eigenvalues([3.0, 1.0], 0.9),
     vd.ArgumentTypeError, "thresholds"),
    ("feature_rank", "eigenvalues 2-D", lambda: feature_rank.rank_from_eigenvalues(np.ones((2, 2))), BAD,
     "eigenvalues"),
    ("feature_rank", "eigenvalues NaN", lambda: feature_rank.rank_from_eigenvalues([NAN, 1.0]), BAD, "variance"),
    ("feature_rank", "update 1-D", lambda: feature_rank.GramAccumulator().update(torch.ones(3)), BAD, "features"),
    ("feature_rank", "update other dim", lambda: _acc().update(torch.ones(4, 5)), BAD, "features"),
    ("feature_rank", "update NaN", lambda: _acc().update(_with(torch.ones(4, 3), NAN)), BAD, "features"),
    ("feature_rank", "update bool", lambda: _acc().update(torch.ones(4, 3, dtype=torch.bool)), vd.ArgumentTypeError,
     "features"),
    ("feature_rank", "rank_of_features 1-D", lambda: feature_rank.rank_of_features(torch.ones(5)), BAD, "features"),
    ("feature_rank", "feature_rank fn", lambda: feature_rank.feature_rank(None, []), vd.ArgumentTypeError,
     "features_fn"),
    # grad_coherence
    ("grad_coherence", "per_sample_grads y float", lambda: grad_coherence.per_sample_grads(MLP, XM, YM.double()),
     vd.ArgumentTypeError, "y"),
    ("grad_coherence", "per_sample_grads y length", lambda: grad_coherence.per_sample_grads(MLP, XM, YM[:3]), BAD,
     "y"),
    ("grad_coherence", "per_sample_grads x NaN", lambda: grad_coherence.per_sample_grads(MLP, _with(XM, NAN), YM),
     BAD, "x"),
    ("grad_coherence", "per_sample_grads y < 0", lambda: grad_coherence.per_sample_grads(MLP, XM, YM - 1), BAD, "y"),
    ("grad_coherence", "per_sample_grads chunk 0", lambda: grad_coherence.per_sample_grads(MLP, XM, YM, 0), BAD,
     "chunk_size"),
    ("grad_coherence", "gradient_gram block 0", lambda: grad_coherence.gradient_gram(MLP, XM, YM, block=0), BAD,
     "block"),
    ("grad_coherence", "proxy_from_gram not square", lambda: grad_coherence.proxy_from_gram(GR), BAD, "G"),
    ("grad_coherence", "proxy_from_gram eps < 0", lambda: grad_coherence.proxy_from_gram(torch.eye(2), -1.0), BAD,
     "eps"),
    ("grad_coherence", "proxy_from_gram all zero (0/0)", lambda: grad_coherence.proxy_from_gram(torch.zeros(3, 3)),
     grad_coherence.UndefinedProxyError, "G"),
    ("grad_coherence", "coherence_proxy every gradient zero", lambda: grad_coherence.coherence_proxy(DEAD, XM, YM),
     grad_coherence.UndefinedProxyError, "every per-sample gradient is zero"),
    ("grad_coherence", "auto_block n 0", lambda: grad_coherence.auto_block(MLP, 0), BAD, "n"),
    ("grad_coherence", "coherence_proxy model", lambda: grad_coherence.coherence_proxy(None, XM, YM),
     vd.ArgumentTypeError, "model"),
    # precision
    ("precision", "round_mantissa bits 53", lambda: precision.round_mantissa(torch.ones(2), 53), BAD, "bits"),
    ("precision", "round_mantissa bits 2.5", lambda: precision.round_mantissa(torch.ones(2), 2.5),
     vd.ArgumentTypeError, "bits"),
    ("precision", "round_mantissa t int", lambda: precision.round_mantissa(torch.ones(2, dtype=torch.long), 7),
     vd.ArgumentTypeError, "t"),
    ("precision", "autocast precision", lambda: precision.autocast("cpu", "fp16"), BAD, "precision"),
    ("precision", "ascent rho < 0", lambda: precision.ascent_gradient_fidelity(MLP32, XM32, YM, -0.1, 7), BAD, "rho"),
    ("precision", "ascent x NaN", lambda: precision.ascent_gradient_fidelity(MLP32, _with(XM32, NAN), YM, 0.1, 7),
     BAD, "x"),
    ("precision", "ascent y float", lambda: precision.ascent_gradient_fidelity(MLP32, XM32, YM.float(), 0.1, 7),
     vd.ArgumentTypeError, "y"),
    ("precision", "below_resolution bits < 0", lambda: precision.perturbation_below_resolution(MLP32, XM32, YM, 0.1,
                                                                                               -1), BAD, "bits"),
    ("precision", "below_resolution y shape", lambda: precision.perturbation_below_resolution(MLP32, XM32, YM[:2], 0.1,
                                                                                              7), BAD, "y"),
    # repro
    ("repro", "seed < 0", lambda: repro.seed_everything(-1), BAD, "seed"),
    ("repro", "seed bool", lambda: repro.seed_everything(True), BAD, "seed"),
    ("repro", "seed too large", lambda: repro.seed_everything(2**70), BAD, "seed"),
    ("repro", "deterministic str", lambda: repro.deterministic("yes"), vd.ArgumentTypeError, "enabled"),
    ("repro", "device name", lambda: repro.device("quantum"), BAD, "prefer"),
    ("repro", "device type", lambda: repro.device(3), vd.ArgumentTypeError, "prefer"),
]


@pytest.mark.parametrize("module, what, call, exc, word", CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_bad_input_is_a_clear_error(module, what, call, exc, word):
    with pytest.raises(ValueError) as info:  # every input error is a ValueError
        call()
    assert isinstance(info.value, exc), f"{what}: got {type(info.value).__name__}: {info.value}"
    assert word in str(info.value), f"{what}: the message does not name {word!r}: {info.value}"


def test_every_module_is_covered():
    counts = {}
    for module, *_ in CASES:
        counts[module] = counts.get(module, 0) + 1
    assert set(counts) >= {"activations", "twolayer", "manifold", "riemannian", "optimum", "label_noise", "coherence",
                           "stability", "simulate", "relu_net", "relu_hessian", "train_relu", "feature_rank",
                           "grad_coherence", "precision", "repro"}
    assert min(counts.values()) >= 6, counts


def test_message_says_what_was_expected_and_what_came_in():
    with pytest.raises(BAD, match=re.escape("y must have shape (3,) to match X's 3 rows; got (3, 1)")):
        twolayer.loss(TH, X, Y[:, None], "sinh")
    with pytest.raises(BAD, match=re.escape("must be a finite number ≥ 0; got -5.0")):
        stability.sam_eta(HS, 1, -5.0)
    with pytest.raises(BAD, match=r"θ0 must be finite; it contains NaN or inf \(1 of 24 entries, first at index "):
        _run(theta0=_with(torch.tensor(P1["theta0"]), NAN))
    assert issubclass(vd.ArgumentTypeError, TypeError) and issubclass(BAD, ValueError)


# ---------------------------------------------------------------------------------------------- the cases
def test_descent_with_a_huge_fixed_step_is_a_step_size_error():
    """manifold.check_gram tests for NaN/inf before eigvalsh: the package's StepSizeError, not a LinAlgError."""
    gen = _gen(0)
    Xd, yd = twolayer.uniform_data(3, 3, gen)
    theta = manifold.random_point(Xd, yd, "sinh", 10, gen)
    h = 10 / riemannian.lambda_max(theta, Xd, "sinh")
    with pytest.raises(riemannian.StepSizeError, match="diverges with step"):
        riemannian.descent(theta, Xd, yd, "sinh", step=h, max_steps=200, progress=False)


def test_retract_batch_not_strict_gives_nan_for_a_singular_chain():
    th, Xb, yb = P1["theta0"].copy(), P1["X"].copy(), P1["y"].copy()
    Xb[1, 1] = Xb[1, 0]  # chain 1: two equal data points with different labels, JJᵀ singular
    good = label_noise.retract_batch(th[:1], Xb[:1], yb[:1])
    out = label_noise.retract_batch(th, Xb, yb, strict=False)
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[0], good[0], rtol=0, atol=1e-12)  # the other chain is retracted as alone
    with pytest.raises(manifold.RetractionError, match="singular"):
        label_noise.retract_batch(th, Xb, yb)


# every public function that reads a flat ReLU θ with data (or with d), and how to call it without h
FLAT_THETA_CALLS = {
    "relu_net.preactivations": lambda **h: relu_net.preactivations(THR_OTHER, XR, **h),
    "relu_net.features": lambda **h: relu_net.features(THR_OTHER, XR, **h),
    "relu_net.forward": lambda **h: relu_net.forward(THR_OTHER, XR, **h),
    "relu_net.mse_loss": lambda **h: relu_net.mse_loss(THR_OTHER, XR, YR, **h),
    "relu_net.accuracy": lambda **h: relu_net.accuracy(THR_OTHER, XR, YR, **h),
    "relu_net.unflatten": lambda **h: relu_net.unflatten(THR_OTHER, 4, **h),
    "relu_net.used_inputs": lambda **h: relu_net.used_inputs(THR_OTHER, 4, **h),
    "relu_hessian.parts": lambda **h: relu_hessian.parts(THR_OTHER, XR, YR, **h),
    "relu_hessian.per_sample_gradients": lambda **h: relu_hessian.per_sample_gradients(THR_OTHER, XR, **h),
    "relu_hessian.trace_products": lambda **h: relu_hessian.trace_products(THR_OTHER, XR, YR, **h),
    "relu_hessian.per_sample_lambda_max": lambda **h: relu_hessian.per_sample_lambda_max(THR_OTHER, XR, YR, **h),
    "relu_hessian.coherence": lambda **h: relu_hessian.coherence(THR_OTHER, XR, YR, **h),
    "relu_hessian.full_hessian_trace": lambda **h: relu_hessian.full_hessian_trace(THR_OTHER, XR, YR, **h),
    "relu_hessian.full_hessian_hvp": lambda **h: relu_hessian.full_hessian_hvp(THR_OTHER, XR, YR, **h),
    "relu_hessian.full_hessian_lambda_max": lambda **h: relu_hessian.full_hessian_lambda_max(THR_OTHER, XR, YR, **h),
    "relu_hessian.per_sample_hessian_autograd":
        lambda **h: relu_hessian.per_sample_hessian_autograd(THR_OTHER, XR[0], YR[0], **h),
    "relu_hessian.per_sample_hessian_rows":
        lambda **h: relu_hessian.per_sample_hessian_rows(THR_OTHER, XR[0], YR[0], **h),
    "relu_hessian.reference_errors": lambda **h: relu_hessian.reference_errors(THR_OTHER, XR, YR, [0], **h),
}


@pytest.mark.parametrize("name", list(FLAT_THETA_CALLS))
def test_relu_flat_theta_requires_its_width(name):
    """Every flat θ is ambiguous: its length h(d+2) also fits other (d', h'). THR_OTHER, built for (d, h) = (10, 3),
    has 36 entries, which also fit X's d = 4 with h = 6, so without h it would silently pass; h is required, and
    with the width it was built with it is a clear error naming θ."""
    assert relu_net.hidden_size(THR_OTHER, 4) == 6  # the inferred width is a wrong one
    call = FLAT_THETA_CALLS[name]
    with pytest.raises(TypeError, match="'h'"):
        call()
    with pytest.raises(BAD, match=r"θ must have h·\(d\+2\) = 18 entries for h = 3"):
        call(h=3)


def test_relu_flat_theta_with_its_width_still_works():
    coh = relu_hessian.coherence(THR, XR, YR, h=6)
    G = relu_hessian.per_sample_gradients(THR, XR, h=6)
    assert G.shape == (8, 36) and coh.S.shape == (8, 8) and coh.sigma >= 1 - 1e-12
    assert relu_hessian.parts(THR, XR, YR, h=6).r.shape == (8,)


def test_paper1_closed_forms_accept_independent_rows_and_reject_dependent_ones():
    """The rank check is relative: a well-conditioned draw passes, X with a row that is a combination of the others
    (not a duplicate) is rejected as well."""
    assert math.isfinite(optimum.F_star(X, Y, "sinh", 4))
    assert np.isfinite(label_noise.closed_form_optimum(P1["theta0"], P1["X"], P1["y"])).all()
    X_comb = torch.stack([X[0], X[1], 0.5 * X[0] + 2.0 * X[1]])
    with pytest.raises(manifold.RankDeficientError, match="rank X = 2 < n = 3"):
        optimum.F_star(X_comb, Y, "sinh", 4)
    Xb = P1["X"].copy()
    Xb[0, 2] = 0.5 * Xb[0, 0] + 2.0 * Xb[0, 1]
    with pytest.raises(manifold.RankDeficientError, match="chain 0 has rank X = 2 < n = 3"):
        label_noise.closed_form_optimum(P1["theta0"], Xb, P1["y"])


def test_gradient_proxy_is_defined_once_one_gradient_is_nonzero():
    G = torch.zeros(3, 3, dtype=F64)
    G[1, 1] = 2.0  # one nonzero gradient, the others zero: λ_max(G) = max_i G_ii, the proxy is 1
    assert grad_coherence.proxy_from_gram(G, eps=0.0) == 1.0


def test_valid_inputs_still_work():
    """The checks accept what the chapters pass: numpy scalars, 0-D tensors, integral floats, float32 data."""
    assert stability.orthogonal_threshold(np.int64(3)) == 6.0
    assert stability.spectral_radius(HS, torch.tensor(0.5), 2.0) == stability.spectral_radius(HS, 0.5, 2)
    assert stability.second_moments(HS, 0.5, 2, W0 * 0, 3, noise_std=1.0).shape == (4,)
    out = label_noise.retract_batch(P1["theta0"].astype(np.float32), P1["X"], P1["y"])
    assert np.isfinite(out).all()
    assert math.isfinite(twolayer.loss(TH.float(), X.float(), Y.float(), "sinh").item())


def test_checks_work_inside_torch_func_transforms():
    """The chapters differentiate public functions with torch.func (grad, jacrev, hessian) and may vmap them."""
    F = lambda t: twolayer.sharpness(t.reshape(4, 3), X, "sinh")  # noqa: E731
    flat = TH.reshape(-1)
    H = torch.func.hessian(F)(flat)
    torch.testing.assert_close(torch.func.jacrev(torch.func.grad(F))(flat), H)
    assert torch.func.vmap(F)(torch.stack([flat, 2 * flat])).shape == (2,)


# ---------------------------------------------------------------------------------------------- command lines
def _one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


@pytest.mark.parametrize("main, argv, word", [
    (label_noise.main, ["figure1", "--out", "x.json", "--steps", "50"], "--steps"),
    (label_noise.main, ["sam", "--out", "x.json", "--steps", "-100"], "--steps"),
    (label_noise.main, ["fig1", "--out", "x.json"], "invalid choice"),
    (label_noise.main, ["figure1"], "--out"),
    (label_noise.main, ["extend", "--out", "/nonexistent/record.json"], "no result record"),
    (train_relu.main, ["training", "--epochs", "-1", "--out", "/nonexistent/x.json"], "epochs"),
    (train_relu.main, ["training", "--seeds", "-3", "--out", "/nonexistent/x.json"], "seed"),
    (train_relu.main, ["training", "--epochs", "two"], "--epochs"),
    (train_relu.main, ["perturbation"], "invalid choice"),
], ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_cli_bad_arguments_are_one_line(capsys, main, argv, word):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    captured = capsys.readouterr()
    assert word in _one_line(captured.err) and captured.out == ""


def test_cli_as_a_process(tmp_path):
    """``python -m`` end to end, both command lines at once (each process spends its time importing torch)."""
    cases = [["flatbias.label_noise", "figure1", "--out", "x.json", "--steps", "7"],
             ["flatbias.train_relu", "training", "--seeds", "-1", "--out", "/nonexistent/x"]]
    procs = [subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=tmp_path) for argv in cases]
    for argv, proc in zip(cases, procs):
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 2 and out == "", (argv, out, err)
        assert _one_line(err).startswith(f"python -m {argv[0]}: error: ")


def test_chapter_record_bad_argument_exits_without_traceback(capsys):
    from flatbias import chapter_record

    with pytest.raises(SystemExit) as info:
        chapter_record.main(["--bogus"])
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err and "error: unrecognized arguments: --bogus" in err


def test_every_command_line_has_a_bad_argument_test():
    """Each ``__main__`` of the package is covered here, except the CIFAR/GPU ones, whose owner tests them."""
    mains = {p.stem for p in (ROOT / "lib" / "flatbias").glob("*.py") if "__name__ == \"__main__\"" in p.read_text()}
    cifar = {"cifar_train", "cifar_sweep", "gpu_session", "fused_train"}
    assert mains - cifar <= {"label_noise", "train_relu", "chapter_record"}, mains
