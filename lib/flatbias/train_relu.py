"""Paper 2's synthetic experiments with the two-layer ReLU net (SPEC §B.8(b)(c)), with exact per-epoch coherence.

Settings follow the authors' code (``nn_training.py``), not the paper note where they conflict (note: h = 100,
lr 0.01; code: h = 120, lr 0.1): seed, parity data (train n = 100, then a fresh validation set of 100),
d = 30, h = 120, PyTorch's default init, plain SGD lr 0.1 (no momentum, no weight decay), batch 10,
reshuffled every epoch, 50 epochs, loss = mean over the batch of (f − y)². SAM: e = ρ g/(‖g‖ + 1e-12) from
the minibatch gradient g, gradient at θ + e, SGD step from θ.

Differences from the code, all ours: float64; gradients in closed form (tested against autograd);
metrics once per epoch (at the start of every epoch and after the last) instead of every step for the
full-batch Hessian and from epoch 5 on for the coherence; the coherence is exact (closed form,
:mod:`flatbias.relu_hessian`) instead of dense per-sample Hessians; λ_max by Lanczos instead of a dense eig.

Two experiments, each a function that returns plain dicts and a CLI that writes a result record:

- ``training``: default init, SGD and SAM ρ ∈ {0.01, 0.05, 0.1, 0.2}, several seeds (SPEC §B.8(b));
- ``perturb``: start at the (C = 3, r = 31^{1/4}) generalizing solution + N(0, 0.01²) on every parameter
  (SPEC §B.8(c); the authors' init addresses ``model.net[0]``/``model.net[2]``, which their module does not
  have — we load it into ``feature_extractor[0]``/``output_layer``, see :meth:`TwoLayerReLU.load_flat`).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from . import records, relu_hessian, relu_net
from . import validate as vd

METHODS = ("sgd", "sam_0.01", "sam_0.05", "sam_0.1", "sam_0.2")


def method_rho(method: str) -> float:
    """'sgd' → 0; 'sam_0.1' → 0.1; anything else is a clear error."""
    if method == "sgd":
        return 0.0
    if isinstance(method, str) and method.startswith("sam_"):
        try:
            rho = float(method[4:])
        except ValueError:
            rho = -1.0
        if 0 < rho < float("inf"):
            return rho
    raise vd.InvalidArgumentError(
        f"unknown method {method!r}: use 'sgd' or 'sam_<rho>' with rho > 0, e.g. 'sam_0.1'")


def method_label(method: str) -> str:
    rho = method_rho(method)
    return "SGD" if rho == 0 else f"SAM ρ={rho:g}"


@dataclass
class Config:
    d: int = 30
    h: int = 120
    n: int = 100
    n_val: int = 100
    lr: float = 0.1
    batch_size: int = 10
    epochs: int = 50
    seed: int = 0
    method: str = "sgd"
    init: str = "default"          # "default" (PyTorch init) or "generalizing" (C, r construction + noise)
    C: int = 3
    noise: float = 0.01            # std of the perturbation of the generalizing init
    extra: dict = field(default_factory=dict)

    def check(self) -> "Config":
        """Check every field (a clear :class:`~flatbias.validate.InvalidArgumentError` naming it); return self."""
        method_rho(self.method)
        if self.init not in ("default", "generalizing"):
            raise vd.InvalidArgumentError(f"init must be 'default' or 'generalizing', got {self.init!r}")
        vd.integer("d", self.d, 2, why="(the label x_1 x_2 reads two inputs)")
        vd.integer("h", self.h, 1)
        vd.integer("n", self.n, 1)
        vd.integer("n_val", self.n_val, 1)
        vd.batch_size(self.batch_size, self.n, "batch_size", "(the number of training points)")
        vd.integer("seed", self.seed, 0)
        vd.positive("lr", self.lr)
        if self.n % self.batch_size:
            raise vd.InvalidArgumentError(
                f"n = {self.n} is not a multiple of the batch size {self.batch_size}; "
                "the authors' loop would leave a short last batch: pick a divisor")
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or self.epochs < 0:
            raise vd.InvalidArgumentError(
                f"need lr > 0 and epochs ≥ 0, got lr = {self.lr}, epochs = {self.epochs}")
        if self.init == "generalizing":
            vd.integer("C", self.C, 2, self.d, why="(the generalizing init reads the first C inputs)")
            if self.h < 2 ** self.C:
                raise vd.InvalidArgumentError(
                    f"h = {self.h} is too small for the C = {self.C} generalizing init; "
                    f"it needs h ≥ 2^C = {2 ** self.C}")
            vd.nonnegative("noise", self.noise)
        if not isinstance(self.extra, dict):
            raise vd.ArgumentTypeError(f"extra must be a dict; got {type(self.extra).__name__}")
        return self


def batch_gradient(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇_θ mean_i (f(x_i) − y_i)² = (2/B) Gᵀ r."""
    relu_net.check_inputs(theta, X, y)
    return _batch_gradient(theta, X, y)


def _batch_gradient(theta, X, y):
    G = relu_hessian._per_sample_gradients(theta, X)
    return 2.0 / X.shape[0] * (G.T @ (relu_net._forward(theta, X) - y))


def step(theta: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, lr: float, rho: float) -> torch.Tensor:
    """One SGD (rho = 0) or SAM step on a minibatch (SAM: e = ρ g/(‖g‖ + 1e-12), gradient at θ + e)."""
    relu_net.check_inputs(theta, xb, yb, X_name="xb", y_name="yb")
    return _step(theta, xb, yb, vd.positive("lr", lr), vd.nonnegative("rho", rho))


def _step(theta, xb, yb, lr: float, rho: float):
    g = _batch_gradient(theta, xb, yb)
    if rho > 0:
        g = _batch_gradient(theta + rho * g / (g.norm() + 1e-12), xb, yb)
    return theta - lr * g


def metrics(theta: torch.Tensor, X: torch.Tensor, y: torch.Tensor, Xv: torch.Tensor, yv: torch.Tensor, *,
            h: int) -> dict:
    """Everything the chapters plot, at one θ with ``h`` hidden units (coherence exact, residual terms included)."""
    relu_net.check_inputs(theta, Xv, yv, relu_net._width(h), X_name="Xv", y_name="yv")
    coh = relu_hessian.coherence(theta, X, y, h=h)
    return {
        "train_loss": float(relu_net.mse_loss(theta, X, y, h=h)),
        "val_loss": float(relu_net.mse_loss(theta, Xv, yv, h=h)),
        "train_acc": relu_net.accuracy(theta, X, y, h=h),
        "val_acc": relu_net.accuracy(theta, Xv, yv, h=h),
        "sigma": coh.sigma,
        "lambda_S": coh.lambda_S,
        "max_lambda_Hi": coh.max_lambda_Hi,
        "negative_trHiHj": coh.negative_entries,
        "hess_lambda_max": relu_hessian.full_hessian_lambda_max(theta, X, y, tol=1e-8, h=h),
        "hess_trace": relu_hessian.full_hessian_trace(theta, X, y, h=h),
        "eff_rank": relu_hessian.effective_rank(relu_net.features(theta, X, h=h), 0.90),
    }


def data(cfg: Config) -> tuple[torch.Tensor, ...]:
    """Training and validation parity data drawn in the authors' order: train, validation (then the init)."""
    _config(cfg)
    gen = torch.Generator().manual_seed(cfg.seed)
    X, y = relu_net.parity_data(cfg.n, cfg.d, gen)
    Xv, yv = relu_net.parity_data(cfg.n_val, cfg.d, gen)
    return X, y, Xv, yv, gen


def _config(cfg) -> Config:
    if not isinstance(cfg, Config):
        raise vd.ArgumentTypeError(f"cfg must be a train_relu.Config; got {type(cfg).__name__}")
    return cfg.check()


def initial_theta(cfg: Config, gen: torch.Generator) -> torch.Tensor:
    """θ at epoch 0: PyTorch's default init, or the (C, r) generalizing solution plus N(0, noise²) noise."""
    _config(cfg)
    vd.generator("gen", gen)
    if cfg.init == "default":
        torch.manual_seed(cfg.seed)
        return relu_net.TwoLayerReLU(cfg.d, cfg.h).flat()
    theta = relu_net.TwoLayerReLU(cfg.d, cfg.h).load_flat(relu_net.generalizing_solution(cfg.C, cfg.d, cfg.h)).flat()
    return theta + cfg.noise * torch.randn(theta.shape, generator=gen, dtype=theta.dtype)


def train(cfg: Config, track_inputs: bool = False) -> dict:
    """Train one configuration; per-epoch metrics at epochs 0..E (epoch e = before the e-th pass, E = after the last)."""
    _config(cfg)
    X, y, Xv, yv, gen = data(cfg)
    theta = initial_theta(cfg, gen)
    rho = method_rho(cfg.method)
    hist: dict[str, list] = {}
    for epoch in range(cfg.epochs + 1):
        for k, v in metrics(theta, X, y, Xv, yv, h=cfg.h).items():
            hist.setdefault(k, []).append(v)
        if track_inputs:
            used = relu_net.used_inputs(theta, cfg.d, h=cfg.h)
            hist.setdefault("used_inputs", []).append([round(u, 6) for u in used.tolist()])
        if epoch == cfg.epochs:
            break
        perm = torch.randperm(cfg.n, generator=gen)
        for i in range(0, cfg.n, cfg.batch_size):
            idx = perm[i: i + cfg.batch_size]
            theta = _step(theta, X[idx], y[idx], cfg.lr, rho)
        if not torch.isfinite(theta).all():
            raise FloatingPointError(f"{cfg.method} seed {cfg.seed} diverged in epoch {epoch}; lower the learning rate")
    hist["final_theta_norm"] = float(theta.norm())
    return hist


def run(seeds, methods=METHODS, progress: bool | None = None, **overrides) -> dict:
    """Train every (method, seed); returns {method: {seed: history}}."""
    seeds = [vd.integer("seed", s, 0) for s in seeds]
    for m in methods:
        method_rho(m)
    fields = [f for f in Config.__dataclass_fields__ if f not in ("seed", "method")]
    bad = sorted(set(overrides) - set(fields))
    if bad:
        raise vd.InvalidArgumentError(
            f"unknown settings {bad}: seeds and methods are arguments of run, the other "
            f"settings are {fields}")
    for m in methods:  # every configuration is checked before the first run starts
        Config(seed=seeds[0] if seeds else 0, method=m, **overrides).check()
    out: dict = {m: {} for m in methods}
    jobs = [(m, s) for m in methods for s in seeds]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny tensors: one thread is ~10x faster than two on a loaded 2-core machine
    try:
        for m, s in tqdm(jobs, disable=None if progress is None else not progress, desc="runs"):
            out[m][str(s)] = train(Config(seed=int(s), method=m, **overrides),
                                   track_inputs=overrides.get("init") == "generalizing")
    finally:
        torch.set_num_threads(threads)
    return out


def summary(runs: dict, key: str, epoch: int = -1) -> dict:
    """{method: (mean, std, [per-seed values])} of a metric at one epoch (default: the last)."""
    out = {}
    for m, by_seed in runs.items():
        for s, h in by_seed.items():
            if key not in h:
                raise vd.InvalidArgumentError(f"unknown metric key {key!r}; the runs hold {sorted(h)}")
            if not -len(h[key]) <= epoch < len(h[key]):
                raise vd.InvalidArgumentError(f"epoch = {epoch} is out of range for {m} seed {s} "
                                              f"({len(h[key])} epochs recorded)")
        vals = np.array([h[key][epoch] for h in by_seed.values()], dtype=float)
        out[m] = (float(vals.mean()), float(vals.std()), vals.tolist())
    return out


def run_and_record(experiment: str, seeds, scale: str, out: str | Path | None = None, progress: bool | None = None,
                   **overrides) -> Path:
    """Run an experiment ('training' or 'perturb') and write its record under results/relu/."""
    if experiment not in ("training", "perturb"):
        raise vd.InvalidArgumentError(f"unknown experiment {experiment!r}: use 'training' or 'perturb'")
    vd.choice("scale", scale, ("smoke", "full"))
    if experiment == "perturb":
        overrides.setdefault("init", "generalizing")
    t0 = time.perf_counter()
    runs = run(seeds, progress=progress, **overrides)
    wall = time.perf_counter() - t0
    settings = asdict(Config(**{k: v for k, v in overrides.items() if k in Config.__dataclass_fields__}))
    settings.update(seeds=list(map(int, seeds)), methods=list(runs), dtype="float64",
                    metrics_every="epoch (at the start of each epoch and after the last)", torch_threads_during_runs=1)
    settings.pop("seed"), settings.pop("method"), settings.pop("extra")
    path = Path(out) if out else records.repo_root() / "results" / "relu" / f"{experiment}_{scale}.json"
    return records.write_record(path, f"relu_{experiment}", scale, settings, {"runs": runs}, wall_time_s=wall)


def main(argv=None) -> None:
    """``python -m flatbias.train_relu {training,perturb} [--seeds ...] [--epochs E] [--scale S] [--out PATH]``;
    a bad argument is one line on stderr and exit status 2 (no traceback)."""
    prog = "python -m flatbias.train_relu"
    ap = vd.CliParser(prog=prog, description="Paper 2's two-layer ReLU experiments (SPEC §B.8(b)(c)).")
    ap.add_argument("experiment", choices=["training", "perturb"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=50)
    ap.add_argument("--scale", default="full", choices=["smoke", "full"])
    ap.add_argument("--out", default=None)
    a = ap.parse_args(argv)
    with vd.cli_errors(prog):
        path = run_and_record(a.experiment, a.seeds, a.scale, a.out, progress=True, epochs=a.epochs)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()


def step_autograd(theta: torch.Tensor, xb: torch.Tensor, yb: torch.Tensor, lr: float, rho: float) -> torch.Tensor:
    """Reference for :func:`step`: SAM (or SGD at ρ = 0) as two plain autograd passes (slow; for checks)."""
    h = relu_net.check_inputs(theta, xb, yb, X_name="xb", y_name="yb")  # the width step() reads θ with

    def grad(t: torch.Tensor) -> torch.Tensor:
        t = t.detach().clone().requires_grad_(True)
        (g,) = torch.autograd.grad(((relu_net.forward(t, xb, h=h) - yb) ** 2).mean(), t)
        return g

    g = grad(theta)
    if rho > 0:
        g = grad(theta + rho * g / (g.norm() + 1e-12))
    return theta - lr * g
