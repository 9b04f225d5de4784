"""Paper 2's CIFAR-10 / ResNet-18 protocol (SGD vs SAM), with a GPU-fast training loop and per-epoch metrics.

The authors' protocol (``large_scale.py``; spec B.9): torchvision's ResNet-18 (ImageNet stem), SGD lr 0.1,
momentum 0.9, weight decay 5e-4, batch 128 (shuffled, last partial batch kept), MultiStepLR [100, 150] x 0.1,
200 epochs; random crop 32 with zero padding 4 + horizontal flip; normalization mean (0.4914, 0.4822, 0.4465),
std (0.2023, 0.1994, 0.2010). SAM: ρ ∈ {0.05, 0.1, 0.2}, see :mod:`flatbias.sam`.

Fast path: the whole data set lives on the device as uint8; shuffling, crop and flip run on the device in one
gather per batch; channels_last on CUDA; the step never synchronises with the host (losses and counts accumulate
in device tensors, read once per epoch); ``torch.compile`` (optionally with CUDA graphs) on request. Precision is
PyTorch's default by default (``precision="tf32"``: TF32 convolutions on Ampere and later GPUs, float32 matrix
products), what the authors' code most likely ran; ``"fp32"`` turns TF32 off (exact SAM ascent, see
:mod:`flatbias.precision`), ``"bf16"`` gives bf16 autocast. Every record stores the switches in force
(``settings.numerics``). The default seed is the authors' script's, 42.

Per epoch (``metrics_every``): test accuracy; feature rank at 90/95/99/99.9 % of the 512-d penultimate features
over the **un-augmented** training set (our choice; the authors' code uses augmented inputs); the coherence proxy
λ_max(G)/max‖g_i‖² on the first 10 training images of each class (100; our choice, as the paper's text says) and
optionally on the first 100 of each class (1000, what the authors' code does), every epoch or at the last one.

Checkpoints every ``checkpoint_every`` epochs allow an exact resume (the shuffling and augmentation of epoch e
are seeded by (seed, e)). A non-finite or exploding training loss stops the run with a clear message.

CLI: ``python -m flatbias.cifar_train --optimizer sam --rho 0.1 --seed 42 --epochs 200``; a bad argument prints
one line (``error: ...``) and exits with code 2.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import cifar, feature_rank, grad_coherence, precision, records, resnet
from .sam import SAM, disable_running_stats, enable_running_stats

MEAN = (0.4914, 0.4822, 0.4465)
STD = (0.2023, 0.1994, 0.2010)
DIVERGED_LOSS = 1e3  # a mean training loss above this (CE at chance is ln 10 ≈ 2.3) counts as diverged
OPTIMIZERS = ("sgd", "sam")
EXIT_INCOMPLETE = 3  # CLI exit code: stopped at the time limit, resumable
EXIT_BAD_ARGS = 2  # CLI exit code: bad arguments or settings, no data, or a diverged run (a one-line error)
AUTHORS_SEED = 42  # the seed of the authors' large_scale.py: our first seed
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exploded."""


class ArgumentError(ValueError):
    """A bad command-line argument (the CLIs print it as one line)."""


class Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that raises :class:`ArgumentError` instead of printing the usage and exiting, so that
    the command-line tools (``cifar_train``, ``cifar_sweep``, ``gpu_session``) answer a bad argument with one line
    (:func:`fail`) and can be called in-process (``main(argv)`` returns the exit code)."""

    def error(self, message):
        raise ArgumentError(f"{message} (see --help)")


def fail(exc: BaseException | str, prog: str = "python -m flatbias.cifar_train", code: int = EXIT_BAD_ARGS) -> int:
    """Print ``<prog>: error: <message>`` as one line on stderr and return ``code``: the CLIs' answer to a bad
    argument, missing data or a diverged run (no traceback)."""
    print(f"{prog}: error: " + (" ".join(str(exc).split()) or type(exc).__name__), file=sys.stderr)
    return code


@dataclass
class TrainConfig:
    optimizer: str = "sgd"
    rho: float = 0.05  # SAM only
    seed: int = AUTHORS_SEED
    epochs: int = 200
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    batch_size: int = 128
    milestones: tuple[int, ...] = (100, 150)
    gamma: float = 0.1
    stem: str = "imagenet"
    width: int = 64
    subset: int | None = None  # train on the first subset/10 images of each class (CPU/small mode)
    test_subset: int | None = None  # evaluate on the first test_subset/10 test images of each class
    metrics_every: int = 1  # rank + coherence every this many epochs (and at the last epoch)
    coherence_per_class: tuple[int, ...] = (10,)  # (10,) = 100 images; add 100 for the authors' 1000
    final_coherence_per_class: tuple[int, ...] = ()  # measured at the last epoch only, e.g. (100,) = 1000 images
    thresholds: tuple[float, ...] = feature_rank.THRESHOLDS
    eval_batch: int = 500
    precision: str = precision.DEFAULT  # "tf32" (PyTorch's defaults), "fp32" (TF32 off) or "bf16" autocast
    channels_last: bool | None = None  # None: on CUDA only (it slows the CPU down for this model)
    compile: str | None = None  # None: eager; else a torch.compile mode ("default", "reduce-overhead" = CUDA graphs)
    checkpoint_every: int = 5
    metrics_at_start: bool = False  # also measure the initial model (an "epoch 0" row)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.optimizer == "sam" and not self.rho > 0:
            raise ValueError(f"SAM needs rho > 0 (rho = 0 is plain SGD), got {self.rho}")
        for name in ("subset", "test_subset"):
            v = getattr(self, name)
            if v is not None and (v < 10 or v % 10):
                raise ValueError(f"{name} must be a positive multiple of 10 (equal images per class), got {v}")
        if self.epochs < 1 or self.batch_size < 1 or self.metrics_every < 1 or self.checkpoint_every < 1:
            raise ValueError("epochs, batch_size, metrics_every and checkpoint_every must be >= 1")
        if self.precision not in precision.PRECISIONS:
            raise ValueError(f"precision must be one of {precision.PRECISIONS}, got {self.precision!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"compile must be None or a torch.compile mode {COMPILE_MODES[1:]}, got {self.compile!r}")
        self.milestones = tuple(int(m) for m in self.milestones)
        self.coherence_per_class = tuple(int(k) for k in self.coherence_per_class)
        self.final_coherence_per_class = tuple(int(k) for k in self.final_coherence_per_class)
        self.thresholds = tuple(float(t) for t in self.thresholds)

    @property
    def name(self) -> str:
        return f"{self.run_id}_{self.epochs}ep"

    @property
    def run_id(self) -> str:
        """The name without the epoch count: a checkpoint can be resumed by a longer run."""
        opt = "sgd" if self.optimizer == "sgd" else f"sam_rho{self.rho:g}"
        width = "" if self.width == 64 else f"_w{self.width}"
        sub = f"_sub{self.subset}" if self.subset else ""
        return f"{opt}_{self.stem}{width}_seed{self.seed}{sub}"

    @property
    def protocol(self) -> str:
        """'full' (the authors' protocol), 'reduced' (the spec's reduced one, :data:`REDUCED`) or 'custom'.

        Only the settings that define the experiment count (not the optimizer, ρ, seed, precision or compile)."""
        mine = {k: getattr(self, k) for k in PROTOCOL_KEYS}
        for name, ref in (("full", {}), ("reduced", REDUCED)):
            if mine == {k: ref.get(k, getattr(_DEFAULTS, k)) for k in PROTOCOL_KEYS}:
                return name
        return "custom"

    @property
    def scale(self) -> str:
        """The record's scale: 'full' for the authors' protocol, 'smoke' on a subset, 'reduced' otherwise."""
        return "full" if self.protocol == "full" else ("smoke" if self.subset or self.test_subset else "reduced")

    def resume_key(self) -> dict:
        """The settings a checkpoint must share to be resumed (everything that changes the trajectory)."""
        d = dataclasses.asdict(self)
        for k in ("epochs", "checkpoint_every", "eval_batch", "metrics_every", "coherence_per_class",
                  "metrics_at_start", "final_coherence_per_class"):
            d.pop(k)
        return json.loads(json.dumps(d))


_DEFAULTS = TrainConfig()  # the authors' protocol (spec B.9)
PROTOCOL_KEYS = ("epochs", "lr", "momentum", "weight_decay", "batch_size", "milestones", "gamma", "stem", "width",
                 "subset", "test_subset")
REDUCED = {"epochs": 30, "milestones": (15, 23)}  # the spec's reduced protocol (B.9, our choice): 1 seed suffices


# --- data on the device --------------------------------------------------------------------------

def to_input(x: torch.Tensor, channels_last: bool = True) -> torch.Tensor:
    """uint8 NHWC images → normalized float32 NCHW (ToTensor + Normalize)."""
    mean = torch.tensor(MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    out = (x.permute(0, 3, 1, 2).float() / 255.0 - mean) / std  # NHWC storage = channels_last already
    return out.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


def augment(x: torch.Tensor, gen: torch.Generator, pad: int = 4) -> torch.Tensor:
    """RandomCrop(32, padding=pad) with zero fill + RandomHorizontalFlip, on uint8 NHWC, in one gather."""
    n, h, w, _ = x.shape
    xp = F.pad(x, (0, 0, pad, pad, pad, pad))  # zeros, as torchvision pads the PIL image before ToTensor
    oy = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=gen)
    ox = torch.randint(0, 2 * pad + 1, (n, 1), device=x.device, generator=gen)
    flip = torch.rand(n, 1, device=x.device, generator=gen) < 0.5
    ar_h, ar_w = torch.arange(h, device=x.device), torch.arange(w, device=x.device)
    rows = oy + ar_h
    cols = ox + torch.where(flip, w - 1 - ar_w, ar_w)
    b = torch.arange(n, device=x.device)[:, None, None]
    return xp[b, rows[:, :, None], cols[:, None, :]]


def epoch_generator(seed: int, epoch: int, device: torch.device) -> torch.Generator:
    """The generator for the shuffling and augmentation of one epoch: depends only on (seed, epoch)."""
    return torch.Generator(device=device).manual_seed(int(seed) * 1_000_003 + int(epoch))


def select(data: cifar.Cifar10, cfg: TrainConfig) -> dict[str, np.ndarray]:
    """The training/test arrays a config uses (whole data set, or the first k per class)."""
    out = {"x_train": data.x_train, "y_train": data.y_train, "x_test": data.x_test, "y_test": data.y_test}
    if cfg.subset:
        i = np.sort(cifar.first_per_class(data.y_train, cfg.subset // 10))
        out["x_train"], out["y_train"] = data.x_train[i], data.y_train[i]
    if cfg.test_subset:
        i = np.sort(cifar.first_per_class(data.y_test, cfg.test_subset // 10))
        out["x_test"], out["y_test"] = data.x_test[i], data.y_test[i]
    return out


# --- model, optimizer, step ----------------------------------------------------------------------

def resolve(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """``cfg`` with the device-dependent defaults filled in (channels_last on CUDA only)."""
    if cfg.channels_last is None:
        cfg = dataclasses.replace(cfg, channels_last=device.type == "cuda")
    return cfg


def compiled(model, cfg: TrainConfig):
    """The callable that the training step uses: the model itself, or ``torch.compile(model)``."""
    if not cfg.compile:
        return model
    return torch.compile(model, mode=None if cfg.compile == "default" else cfg.compile)


def build(cfg: TrainConfig, device: torch.device):
    torch.manual_seed(cfg.seed)
    model = resnet.resnet18(num_classes=10, stem=cfg.stem, width=cfg.width).to(device)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    kw = dict(lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), **kw)
        sched_opt = opt
    else:
        opt = SAM(model.parameters(), torch.optim.SGD, rho=cfg.rho, **kw)
        sched_opt = opt.base_optimizer
    sched = torch.optim.lr_scheduler.MultiStepLR(sched_opt, milestones=list(cfg.milestones), gamma=cfg.gamma)
    return model, opt, sched


def _loss(fwd, x, y, cfg: TrainConfig):
    if cfg.compile == "reduce-overhead":  # CUDA graphs: the previous call's outputs are no longer needed
        torch.compiler.cudagraph_mark_step_begin()
    with precision.autocast(x.device.type, cfg.precision):
        logits = fwd(x)
    return F.cross_entropy(logits.float(), y), logits


def train_step(model, fwd, opt, x, y, cfg: TrainConfig):
    """One SGD or SAM step; returns (summed loss, correct count) as device tensors (no host sync). Both are read
    off the first forward pass before anything else runs (with CUDA graphs a second call reuses its memory)."""
    if cfg.optimizer == "sam":
        enable_running_stats(model)
    loss, logits = _loss(fwd, x, y, cfg)
    out = loss.detach() * len(y), (logits.detach().argmax(1) == y).sum()
    if cfg.optimizer == "sgd":
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    else:
        loss.backward()
        opt.first_step(zero_grad=True)
        disable_running_stats(model)
        _loss(fwd, x, y, cfg)[0].backward()
        opt.second_step(zero_grad=True)
        enable_running_stats(model)
    return out


# --- metrics -------------------------------------------------------------------------------------

@torch.no_grad()
def accuracy(model, x_u8: torch.Tensor, y: torch.Tensor, cfg: TrainConfig) -> float:
    model.eval()
    correct = torch.zeros((), device=y.device, dtype=torch.long)
    for i in range(0, len(y), cfg.eval_batch):
        xb = to_input(x_u8[i:i + cfg.eval_batch], cfg.channels_last)
        with precision.autocast(xb.device.type, cfg.precision):
            correct += (model(xb).argmax(1) == y[i:i + cfg.eval_batch]).sum()
    return float(correct) / len(y)


def metrics(model, dev_data: dict, cfg: TrainConfig, per_class: tuple[int, ...] | None = None) -> dict:
    """Feature rank (un-augmented train set, fp32 features, fp64 Gram) and the coherence proxies on the first
    ``k`` training images of each class for each ``k`` in ``per_class`` (default ``cfg.coherence_per_class``)."""
    model.eval()
    x, y = dev_data["x_train"], dev_data["y_train"]
    t0 = time.perf_counter()
    batches = (to_input(x[i:i + cfg.eval_batch], cfg.channels_last) for i in range(0, len(x), cfg.eval_batch))
    fr = feature_rank.feature_rank(lambda b: model.features(b).float(), batches, cfg.thresholds)
    out = {"rank": {f"{t:g}": r for t, r in fr["rank"].items()}, "n_rank": fr["n"]}
    t1 = time.perf_counter()
    y_np = y.cpu().numpy()
    for k in dict.fromkeys(cfg.coherence_per_class if per_class is None else per_class):
        idx = torch.as_tensor(cifar.first_per_class(y_np, k), device=x.device)
        c = grad_coherence.coherence_proxy(model, to_input(x[idx], cfg.channels_last), y[idx])
        out[f"coherence_{10 * k}"] = c["proxy"]
        out[f"grad_sq_norm_max_{10 * k}"] = c["max_sq_norm"]
    out["rank_time_s"], out["coherence_time_s"] = t1 - t0, time.perf_counter() - t1
    return out


# --- checkpoints ---------------------------------------------------------------------------------

def _save_checkpoint(path: Path, state: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _load_checkpoint(path: Path, cfg: TrainConfig) -> dict | None:
    if not path.is_file():
        return None
    state = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain containers only
    if state.get("resume_key") != cfg.resume_key():
        raise ValueError(f"checkpoint {path} was written with different settings; delete it or pass resume=False "
                         f"(checkpoint: {state.get('resume_key')}, now: {cfg.resume_key()})")
    return state


# --- the run -------------------------------------------------------------------------------------

def train(cfg: TrainConfig, data: cifar.Cifar10 | None = None, *, device: str | None = None,
          out_dir: str | os.PathLike | None = "results/cifar10", checkpoint_dir: str | os.PathLike | None = None,
          resume: bool = True, progress: bool | None = None, max_steps: int | None = None,
          stop_after_s: float | None = None) -> dict:
    """Run the protocol; return ``{"config", "data", "history", "record_path", "complete", ...}``.

    ``out_dir=None`` writes no record; ``checkpoint_dir=None`` puts checkpoints in ``out_dir/checkpoints``
    (no checkpoints when both are None). ``max_steps`` stops after that many steps (tests).
    ``stop_after_s``: start no epoch that would, at the pace of the slowest so far, end later than this many
    seconds after the call began; checkpoint and return with ``complete=False`` and no record (the same call
    resumes). For machines lent for a limited time.
    """
    with precision.matmul_precision(cfg.precision):  # TF32 switches set for this run, restored afterwards
        return _train(cfg, data, device=device, out_dir=out_dir, checkpoint_dir=checkpoint_dir, resume=resume,
                      progress=progress, max_steps=max_steps, stop_after_s=stop_after_s)


def _train(cfg: TrainConfig, data: cifar.Cifar10 | None, *, device, out_dir, checkpoint_dir, resume, progress,
           max_steps, stop_after_s) -> dict:
    from tqdm import tqdm  # plain tqdm: stderr bars, off when not a terminal (no widget warnings in the book)

    from .repro import device as pick_device

    t_call = time.perf_counter()  # the time limit counts from here (data upload and model build included)
    dev = pick_device(device)
    cfg = resolve(cfg, dev)
    data = cifar.load() if data is None else data
    arrays = select(data, cfg)
    dev_data = {k: torch.as_tensor(v, device=dev) for k, v in arrays.items()}  # uint8 images stay uint8
    model, opt, sched = build(cfg, dev)
    fwd = compiled(model, cfg)
    if checkpoint_dir is None and out_dir is not None:
        checkpoint_dir = Path(out_dir) / "checkpoints"
    ckpt = Path(checkpoint_dir) / f"{cfg.run_id}.pt" if checkpoint_dir else None
    if stop_after_s is not None and ckpt is None:
        raise ValueError("stop_after_s needs a checkpoint folder to resume from (out_dir or checkpoint_dir)")
    slowest, complete = 0.0, True

    def save(epoch_done: int) -> None:
        _save_checkpoint(ckpt, {"resume_key": cfg.resume_key(), "epoch": epoch_done, "model": model.state_dict(),
                                "optimizer": opt.state_dict(), "scheduler": sched.state_dict(),
                                "history": history, "elapsed_s": elapsed})

    history, start, elapsed = [], 0, 0.0
    if resume and ckpt is not None and (state := _load_checkpoint(ckpt, cfg)) is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        history, start, elapsed = state["history"], state["epoch"], state["elapsed_s"]
    n = len(dev_data["y_train"])
    steps = 0
    if cfg.metrics_at_start and start == 0 and not history:
        t1 = time.perf_counter()
        row = {"epoch": 0, "lr": sched.get_last_lr()[0],
               "test_acc": accuracy(model, dev_data["x_test"], dev_data["y_test"], cfg), **metrics(model, dev_data, cfg)}
        history.append({**row, "metric_time_s": time.perf_counter() - t1})
    bar = tqdm(range(start, cfg.epochs), initial=start, total=cfg.epochs, desc=cfg.name,
               disable=None if progress is None else not progress, unit="epoch")
    for epoch in bar:
        t0 = time.perf_counter()
        model.train()
        gen = epoch_generator(cfg.seed, epoch, dev)
        perm = torch.randperm(n, device=dev, generator=gen)
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        lr, seen = sched.get_last_lr()[0], 0
        for i in range(0, n, cfg.batch_size):
            idx = perm[i:i + cfg.batch_size]
            xb = to_input(augment(dev_data["x_train"][idx], gen), cfg.channels_last)
            l, c = train_step(model, fwd, opt, xb, dev_data["y_train"][idx], cfg)
            loss_sum += l
            correct += c
            steps, seen = steps + 1, seen + len(idx)
            if max_steps is not None and steps >= max_steps:
                break
        train_loss = float(loss_sum) / seen  # the one host sync of the epoch
        if not math.isfinite(train_loss) or train_loss > DIVERGED_LOSS:
            raise TrainingDiverged(
                f"{cfg.name}: training loss {train_loss} at epoch {epoch + 1} (lr {lr:g}) is "
                f"{'not finite' if not math.isfinite(train_loss) else 'exploding'}; the run stopped. "
                f"Lower the learning rate, check the data, or resume from the last good checkpoint ({ckpt}).")
        sched.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        row = {"epoch": epoch + 1, "lr": lr, "train_loss": train_loss, "train_acc": float(correct) / seen,
               "epoch_time_s": time.perf_counter() - t0}
        t1 = time.perf_counter()
        row["test_acc"] = accuracy(model, dev_data["x_test"], dev_data["y_test"], cfg)
        if (epoch + 1) % cfg.metrics_every == 0 or epoch + 1 == cfg.epochs or max_steps is not None:
            last = epoch + 1 == cfg.epochs
            row.update(metrics(model, dev_data, cfg, (*cfg.coherence_per_class,
                                                       *(cfg.final_coherence_per_class if last else ()))))
        row["metric_time_s"] = time.perf_counter() - t1
        history.append(row)
        elapsed += time.perf_counter() - t0
        slowest = max(slowest, time.perf_counter() - t0)
        post = {"loss": f"{train_loss:.3f}", "test": f"{row['test_acc']:.3f}", "s/ep": f"{row['epoch_time_s']:.1f}"}
        if "rank" in row:
            post["rank99.9"] = row["rank"].get("0.999")
        bar.set_postfix(post)
        out_of_time = (stop_after_s is not None and epoch + 1 < cfg.epochs
                       and time.perf_counter() - t_call + slowest > stop_after_s)
        if ckpt is not None and ((epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs or out_of_time):
            save(epoch + 1)
        if out_of_time:
            complete = False
            break
        if max_steps is not None and steps >= max_steps:
            break
    bar.close()
    result = {"config": dataclasses.asdict(cfg), "data": data.info, "history": history, "model": model,
              "device": str(dev), "wall_time_s": elapsed, "record_path": None, "complete": complete,
              "checkpoint": None if ckpt is None else str(ckpt)}
    if out_dir is not None:
        result.update(write_records(cfg, data.info, dev, history, elapsed, complete, out_dir))
    return result


def write_records(cfg: TrainConfig, data_info: dict, dev: torch.device, history: list[dict], elapsed: float,
                  complete: bool, out_dir: str | os.PathLike, extra_settings: dict | None = None) -> dict:
    """Write a run's record (``<out>/<run>.json``, and remove its partial record) when ``complete``, else its
    partial record (:func:`partial_record_path`); return ``{"record_path": ...}`` or ``{"partial_record_path": ...}``.
    Call inside :func:`flatbias.precision.matmul_precision` (the record states the switches in force).
    ``extra_settings`` are added to the settings (the fused trainer names itself there)."""
    settings = {**dataclasses.asdict(cfg), "data": data_info, "device": str(dev), "protocol": cfg.protocol,
                "numerics": precision.numerics(cfg.precision, dev),
                "protocol_note": "paper 2 large_scale.py (spec B.9); metrics on un-augmented inputs (our choice)",
                **(extra_settings or {})}
    last = history[-1] if history else {}
    summary = {k: last.get(k) for k in ("test_acc", "rank", "coherence_100", "coherence_1000")}
    partial = partial_record_path(out_dir, cfg)
    if complete:
        path = records.write_record(Path(out_dir) / f"{cfg.name}.json", f"cifar10/{cfg.name}", cfg.scale, settings,
                                    {"final": summary, "history": history}, wall_time_s=elapsed)
        partial.unlink(missing_ok=True)
        return {"record_path": path}
    # what a machine that is taken back before the end still brings home; never read as a result
    return {"partial_record_path": records.write_record(
        partial, f"cifar10-partial/{cfg.name}", cfg.scale, settings,
        {"complete": False, "epochs_done": int(last.get("epoch", 0)), "last": summary, "history": history},
        wall_time_s=elapsed)}


def partial_record_path(out_dir: str | Path, cfg: TrainConfig) -> Path:
    """``<out>/<run>.partial.json``: the history of a run stopped at its time limit, replaced by the record when
    the run completes. Its name (``cifar10-partial/...``) keeps it out of the tables (:mod:`flatbias.cifar_results`)."""
    return Path(out_dir) / f"{cfg.name}.partial.json"


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m flatbias.cifar_train`` (also parsed by :mod:`flatbias.cifar_sweep`)."""
    p = Parser(prog="python -m flatbias.cifar_train", description=__doc__.split("\n\n")[0])
    d = TrainConfig()
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer)
    p.add_argument("--rho", type=float, default=d.rho)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--protocol", choices=("full", "reduced"), default="full",
                   help="full: the authors' 200 epochs, milestones 100 150; reduced: 30 epochs, milestones 15 23")
    p.add_argument("--epochs", type=int, default=None, help="overrides the protocol's")
    p.add_argument("--lr", type=float, default=d.lr)
    p.add_argument("--batch-size", type=int, default=d.batch_size)
    p.add_argument("--milestones", type=int, nargs="*", default=None, help="overrides the protocol's")
    p.add_argument("--stem", choices=resnet.STEMS, default=d.stem)
    p.add_argument("--width", type=int, default=d.width, help="channel width (64 = ResNet-18; smaller for CPU tests)")
    p.add_argument("--subset", type=int, default=None, help="train on this many images (first n/10 per class)")
    p.add_argument("--test-subset", type=int, default=None)
    p.add_argument("--metrics-every", type=int, default=d.metrics_every)
    p.add_argument("--coherence-per-class", type=int, nargs="+", default=list(d.coherence_per_class),
                   help="images per class for the coherence proxy (10: 100 images; add 100 for the authors' 1000)")
    p.add_argument("--coherence-1000", nargs="?", const="last", default=None, choices=("last", "every"),
                   help="also the authors' 1000-image proxy (100 per class): at the last epoch (default) or every "
                        "epoch that measures (the authors' code)")
    p.add_argument("--precision", choices=precision.PRECISIONS, default=d.precision,
                   help="tf32 (PyTorch's defaults: TF32 convolutions; default), fp32 (TF32 off), or bf16 autocast: "
                        "see flatbias.precision")
    p.add_argument("--compile", nargs="?", const="default", default=None, choices=COMPILE_MODES[1:],
                   help="torch.compile the model (optionally with a mode: reduce-overhead = CUDA graphs)")
    p.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every)
    p.add_argument("--data", default=None, help=f"CIFAR-10 location (default: ${cifar.ENV_DATA} or the search order)")
    p.add_argument("--download", action="store_true", help="download the official archive if none is found")
    p.add_argument("--device", default=None)
    p.add_argument("--out", default=str(records.repo_root() / "results" / "cifar10"))
    p.add_argument("--checkpoint-dir", default=None, help="checkpoints go here (default: OUT/checkpoints)")
    p.add_argument("--no-resume", action="store_true")
    p.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                   help="checkpoint and stop (exit code 3) before this many seconds have passed; rerun to resume")
    return p


def config_from_args(a: argparse.Namespace) -> TrainConfig:
    """The :class:`TrainConfig` of parsed command-line arguments."""
    d = TrainConfig()
    proto = {"epochs": d.epochs, "milestones": d.milestones, **(REDUCED if a.protocol == "reduced" else {})}
    return TrainConfig(
        optimizer=a.optimizer, rho=a.rho, seed=a.seed, epochs=proto["epochs"] if a.epochs is None else a.epochs, lr=a.lr,
        batch_size=a.batch_size, milestones=tuple(proto["milestones"] if a.milestones is None else a.milestones),
        stem=a.stem, width=a.width, subset=a.subset, test_subset=a.test_subset, metrics_every=a.metrics_every,
        coherence_per_class=tuple(a.coherence_per_class) + ((100,) if a.coherence_1000 == "every" else ()),
        final_coherence_per_class=(100,) if a.coherence_1000 == "last" else (),
        precision=a.precision, compile=a.compile, checkpoint_every=a.checkpoint_every)


def main(argv: list[str] | None = None) -> int:
    """The CLI; returns the exit code (0 done, :data:`EXIT_INCOMPLETE` stopped at the time limit,
    :data:`EXIT_BAD_ARGS` with a one-line error)."""
    try:
        a = parser().parse_args(argv)
        cfg = config_from_args(a)
        data = cifar.load(a.data, download_if_missing=a.download)
    except (ValueError, cifar.DataNotFoundError) as exc:  # ArgumentError is a ValueError
        return fail(exc)
    print(f"data: {data.layout} layout ({data.info['source_kind']}) from {data.source}", file=sys.stderr)
    try:
        res = train(cfg, data, device=a.device, out_dir=a.out, checkpoint_dir=a.checkpoint_dir,
                    resume=not a.no_resume, stop_after_s=a.time_limit,
                    progress=True)  # a bar line per epoch, also in a log file
    except (TrainingDiverged, ValueError) as exc:  # diverged, or a checkpoint of other settings
        return fail(exc)
    if not res["complete"]:
        print(f"stopped at epoch {res['history'][-1]['epoch']}/{cfg.epochs} (time limit {a.time_limit:g} s); "
              f"checkpoint {res['checkpoint']}: run the same command again to resume", file=sys.stderr)
        return EXIT_INCOMPLETE
    print(f"record: {res['record_path']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
