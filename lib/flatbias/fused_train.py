"""Several CIFAR-10 runs (SGD and SAM at each ρ, one or more seeds) trained in lockstep as one program.

Each run is exactly a :func:`flatbias.cifar_train.train` run: its own model (built by ``cifar_train.build`` from
its seed), data order and augmentation stream (seeded by (seed, epoch), so runs of one seed share them and the
batch is built once), SGD momentum buffers, learning-rate schedule (its own ``MultiStepLR``), SAM ascent with its
own gradient norm, and BatchNorm running statistics (updated by the first pass only, as SAM's
``disable_running_stats`` does). What is shared: one device-resident copy of the data, and every kernel launch.

How (chosen from what PyTorch documents to work; no GPU was lent to measure the alternatives):

* The N runs' parameters, buffers and momentum buffers are stacked along a leading run axis, and one forward pass
  is ``torch.func.vmap`` of ``torch.func.functional_call`` over that axis: a convolution with stacked weights
  becomes one grouped convolution (one wider convolution when the runs share a batch), so a launch-bound step
  launches its kernels once for all runs. The backward pass is ordinary autograd on the stacked leaves
  (``loss.sum()``: each run's gradient depends on its own loss only), the optimizer is written on the stacked
  tensors. This is the use that ``torch.func.stack_module_state`` was made for (pytorch/pytorch#92278).
* BatchNorm in training mode: PyTorch's "Patching Batch Norm" page (torch.func) explains that vmap refuses an
  in-place update of an *unbatched* running mean by a batched one, and its fixes all drop the running
  statistics. Here the running statistics are *stacked* buffers, batched like the input, so the in-place update
  is a batched-into-batched one, which vmap supports: each run's ``running_mean``, ``running_var`` and
  ``num_batches_tracked`` move exactly as ``nn.BatchNorm2d`` moves them (tested against separate runs, SAM's
  frozen second pass included, which still counts ``num_batches_tracked``).
* The stack and the batch are kept in the standard contiguous layout whatever ``channels_last`` says (here it
  changes no number): on the CPU, torch 2.13 corrupts the heap in channels_last convolutions of the tiny
  model (under vmap or not), and a 1x1 weight taken from a channels_last model would pick another kernel.
* SAM's second pass runs on the SAM runs only (kept first on the run axis, so they are a slice, not a copy);
  SGD runs take their step from the first pass.
* Not done: CUDA-graph capture of the fused step (static input buffers, ``torch.cuda.graph``). It cannot be tested
  without a GPU, and the augmentation's device generators would have to be registered with the graph; the
  fused step is written without host synchronisation so that it can be captured later. ``torch.compile`` is not
  used (``compile`` must be None): the lent H200 showed it failing the eager check.

Equivalence (tests/test_fused_train.py): one fused step equals the same step of N separate runs (weights,
BatchNorm buffers, SAM's ascent and its norm) to round-off in float32 and to 1e-12 in float64; so do two epochs of
the tiny protocol against ``cifar_train.train`` itself. The optimizer's arithmetic is PyTorch SGD's, operation by
operation (a learning rate, momentum or weight decay that differs between runs becomes a per-run factor).

Bookkeeping is ``cifar_train``'s, run by run: checkpoints in its format (``<checkpoint_dir>/<run_id>.pt``, so
either trainer resumes the other's), records in its schema (``<out>/<run>.json``; ``<run>.partial.json`` for a run
stopped at the time limit), written as each run ends, with ``settings.trainer = "fused_train"``. Metrics (test
accuracy, feature rank, coherence proxies) are computed run by run with ``cifar_train``'s own functions, on each
run's weights copied out of the stack: the same numbers a separate run records (not fused: they are a small part
of an epoch). A run that diverges (non-finite or exploding loss at an epoch's end) is stopped alone with
``cifar_train``'s message and no record; the others go on. Runs may differ in optimizer, ρ, seed, epochs, learning
rate schedule and metric settings; they must share the batch, the model and the data (:data:`SHARED`).

CLI: ``python -m flatbias.fused_train --seeds 42 --rhos 0.05 0.1 0.2 [cifar_train's other options]``.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import math
import os
import sys
import time
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.func import functional_call, vmap

from . import cifar, precision
from . import cifar_train as ct
from .sam import disable_running_stats, enable_running_stats

PROG = "python -m flatbias.fused_train"
# settings every run of one fused program shares (one batch schedule, one model structure, one data selection)
SHARED = ("batch_size", "stem", "width", "subset", "test_subset", "precision", "channels_last", "compile",
          "eval_batch", "thresholds")
DEFAULT_RHOS = (0.05, 0.1, 0.2)
TRAINER = {"trainer": "fused_train", "trainer_note": "trained in lockstep with other runs (flatbias.fused_train); "
                                                     "the same steps as a separate cifar_train run"}


def check_runs(cfgs) -> list[ct.TrainConfig]:
    """The runs as a list, after checking that they can share one program (clear errors naming ``cfgs``)."""
    if isinstance(cfgs, ct.TrainConfig):
        raise TypeError("cfgs must be a list of TrainConfig (one per run), got a single TrainConfig")
    cfgs = list(cfgs)
    if not cfgs:
        raise ValueError("cfgs: give at least one run")
    for c in cfgs:
        if not isinstance(c, ct.TrainConfig):
            raise TypeError(f"cfgs must hold flatbias.cifar_train.TrainConfig objects, got {type(c).__name__}")
    ids = [c.run_id for c in cfgs]
    if len(set(ids)) < len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})
        raise ValueError(f"cfgs: two runs with the same name {dup} would write the same checkpoint and record")
    for k in SHARED:
        vals = list(dict.fromkeys(repr(getattr(c, k)) for c in cfgs))
        if len(vals) > 1:
            raise ValueError(f"cfgs: all runs of one fused program must share {k}; got {', '.join(vals)}")
    if cfgs[0].compile is not None:
        raise ValueError(f"cfgs: the fused trainer runs eager (compile=None), got compile={cfgs[0].compile!r}")
    return cfgs


def _plain(t: torch.Tensor) -> torch.Tensor:
    """``t`` in the standard contiguous layout, strides of size-1 dimensions included: a 1x1 convolution's weight
    taken from a channels_last model is "contiguous" with other strides, and the CPU convolution then takes another
    path (other round-off; with channels_last tensors under vmap, torch 2.13 even corrupts the heap on the CPU)."""
    return t.clone(memory_format=torch.contiguous_format)


def _bc(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A per-run vector shaped to broadcast over a stacked tensor ``(runs, ...)``."""
    return v.view(-1, *([1] * (like.ndim - 1)))


def _add(xs, ys, a):
    """``x + a * y`` for each pair (``a``: a number, or a per-run vector)."""
    if isinstance(a, float):
        return torch._foreach_add(xs, ys, alpha=a)
    return [x + _bc(a, x) * y for x, y in zip(xs, ys)]


def _add_(xs, ys, a) -> None:
    """``x += a * y`` in place for each pair."""
    if isinstance(a, float):
        torch._foreach_add_(xs, ys, alpha=a)
    else:
        for x, y in zip(xs, ys):
            x.add_(_bc(a, x) * y)


def _mul_(xs, a) -> None:
    if isinstance(a, float):
        torch._foreach_mul_(xs, a)
    else:
        for x in xs:
            x.mul_(_bc(a, x))


class FusedRuns:
    """The models, optimizers and schedulers of N runs (built by ``cifar_train.build``, the objects a separate
    run uses: their state dicts are the checkpoints) and their stacked copy, which :meth:`step` trains.

    :meth:`stack` copies the chosen runs' state into the stack (SAM runs first on the run axis); :meth:`unstack`
    copies it back into the run objects (before metrics, checkpoints, or a change of the set of runs)."""

    def __init__(self, cfgs, device: torch.device | str):
        self.cfgs = check_runs(cfgs)
        self.dev = torch.device(device)
        built = [ct.build(c, self.dev) for c in self.cfgs]
        self.models = [b[0] for b in built]
        self.opts = [b[1] for b in built]
        self.scheds = [b[2] for b in built]
        # the structure (functional_call fills it), in the contiguous layout of the stack
        self.base = copy.deepcopy(self.models[0]).to(memory_format=torch.contiguous_format).to("meta").train()
        self.active: list[int] = []  # run indices in the order of the run axis
        self.has_momentum = [False] * len(self.cfgs)
        self.keep_ascent = False  # tests: keep the last SAM ascent (weights and norm) in self.last_ascent
        self.last_ascent: dict | None = None
        self.stack()

    def _base_opt(self, i: int):
        return self.opts[i].base_optimizer if self.cfgs[i].optimizer == "sam" else self.opts[i]

    @torch.no_grad()
    def stack(self, runs=None) -> None:
        """Stack the state of ``runs`` (default all; SAM runs go first) from their objects."""
        runs = range(len(self.cfgs)) if runs is None else runs
        runs = list(dict.fromkeys(runs))
        self.active = [i for i in runs if self.cfgs[i].optimizer == "sam"] + [
            i for i in runs if self.cfgs[i].optimizer == "sgd"]
        self.k = sum(self.cfgs[i].optimizer == "sam" for i in self.active)
        if not self.active:
            self.params = self.buffers = self.moms = {}
            return
        named = [dict(self.models[i].named_parameters()) for i in self.active]
        bufs = [dict(self.models[i].named_buffers()) for i in self.active]
        self.params = {n: _plain(torch.stack([d[n].detach() for d in named])).requires_grad_() for n in named[0]}
        self.buffers = {n: _plain(torch.stack([d[n] for d in bufs])) for n in bufs[0]}
        self.moms = {}
        for n in named[0]:
            m = [self._base_opt(i).state.get(d[n], {}).get("momentum_buffer") for i, d in zip(self.active, named)]
            self.moms[n] = _plain(torch.stack([torch.zeros_like(d[n]) if b is None else b for b, d in zip(m, named)]))
        for i, d in zip(self.active, named):  # a run resumed after its first step has its momentum buffers
            self.has_momentum[i] = all(self._base_opt(i).state.get(p, {}).get("momentum_buffer") is not None
                                       for p in d.values())
        self.refresh()

    def refresh(self) -> None:
        """Read each run's learning rate (its scheduler's) and its other step settings."""
        dtype = next(iter(self.params.values())).dtype

        def per_run(vals):
            return float(vals[0]) if len(set(vals)) == 1 else torch.tensor(vals, dtype=dtype, device=self.dev)

        self.lr = per_run([self.scheds[i].get_last_lr()[0] for i in self.active])
        self.momentum = per_run([self.cfgs[i].momentum for i in self.active])
        self.weight_decay = per_run([self.cfgs[i].weight_decay for i in self.active])
        self.rho = torch.tensor([self.cfgs[i].rho for i in self.active[:self.k]], dtype=dtype, device=self.dev)

    @torch.no_grad()
    def unstack(self) -> None:
        """Copy the stacked state back into each active run's model and optimizer."""
        for j, i in enumerate(self.active):
            for n, p in self.models[i].named_parameters():
                p.copy_(self.params[n][j])
                if self.has_momentum[i] and self.cfgs[i].momentum != 0:
                    self._base_opt(i).state[p]["momentum_buffer"] = self.moms[n][j].clone()
            for n, b in self.models[i].named_buffers():
                b.copy_(self.buffers[n][j])

    def _forward(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    def _pass(self, params, buffers, x, y, shared: bool):
        """Per-run mean losses ``(runs,)`` and logits ``(runs, batch, classes)`` of one forward pass."""
        xd = None if shared else 0
        with precision.autocast(self.dev.type, self.cfgs[0].precision):
            logits = vmap(self._forward, in_dims=(0, 0, xd))(params, buffers, x)
        return vmap(F.cross_entropy, in_dims=(0, xd))(logits.float(), y), logits

    def step(self, x: torch.Tensor, y: torch.Tensor, shared: bool):
        """One SGD or SAM step of every active run on its batch: ``x`` ``(batch, 3, H, W)`` and ``y`` ``(batch,)``
        shared by all runs (``shared=True``), or stacked ``(runs, batch, ...)`` in the run-axis order. Returns
        (summed loss, correct count) per run as device tensors ``(runs,)`` (no host synchronisation). ``x`` is
        copied to the standard layout first, as the stack is (:func:`_plain`)."""
        x = _plain(x)
        names = list(self.params)
        ps = [self.params[n] for n in names]
        losses, logits = self._pass(self.params, self.buffers, x, y, shared)
        out = losses.detach() * y.shape[-1], (logits.detach().argmax(-1) == y).sum(-1)
        grads = list(torch.autograd.grad(losses.sum(), ps))
        k = self.k
        if k:
            with torch.no_grad():  # SAM's ascent, run by run: e = ρ g/(‖g‖ + 1e-12), ‖·‖ over all weights
                gk = [g[:k] for g in grads]
                norms = torch._foreach_norm([g[r] for r in range(k) for g in gk])
                norm = torch.linalg.vector_norm(torch.stack(norms).view(k, len(gk)), dim=1)
                scale = (norm + 1e-12).reciprocal() * self.rho  # as SAM's rho / (norm + 1e-12) computes it
                asc = {n: (p[:k] + g * _bc(scale, g)).requires_grad_() for n, p, g in zip(names, ps, gk)}
            if self.keep_ascent:
                self.last_ascent = {"norm": norm.clone(), "params": {n: v.detach().clone() for n, v in asc.items()}}
            xk, yk = (x, y) if shared else (x[:k], y[:k])
            disable_running_stats(self.base)  # the second pass leaves the running statistics where they are
            try:
                losses2, _ = self._pass(asc, {n: b[:k] for n, b in self.buffers.items()}, xk, yk, shared)
            finally:
                enable_running_stats(self.base)
            grads2 = torch.autograd.grad(losses2.sum(), [asc[n] for n in names])
            with torch.no_grad():
                torch._foreach_copy_(gk, list(grads2))  # the SAM runs step with the gradient at w + e
        with torch.no_grad():  # torch.optim.SGD (dampening 0, no Nesterov), every run with its own settings
            moms = [self.moms[n] for n in names]
            d = _add(grads, ps, self.weight_decay)
            _mul_(moms, self.momentum)  # a first step: 0 * momentum + d = d, SGD's clone of d
            torch._foreach_add_(moms, d)
            _add_(ps, moms, -self.lr)
        for i in self.active:
            self.has_momentum[i] = True
        return out


# --- the program ---------------------------------------------------------------------------------

def train(cfgs, data: cifar.Cifar10 | None = None, *, device: str | None = None,
          out_dir: str | os.PathLike | None = "results/cifar10", checkpoint_dir: str | os.PathLike | None = None,
          resume: bool = True, progress: bool | None = None, max_steps: int | None = None,
          stop_after_s: float | None = None) -> dict:
    """Train the runs ``cfgs`` in lockstep; return ``{"runs": [...], "device", "steps", "wall_time_s"}`` with one
    entry per run in the order given: ``cifar_train.train``'s result (config, data, history, model, record_path,
    complete, checkpoint, wall_time_s) plus ``status`` ('complete', 'stopped at the time limit ...' or
    'diverged: ...').

    The arguments mean what they mean for :func:`flatbias.cifar_train.train`; ``max_steps`` counts fused steps;
    ``stop_after_s`` applies to the whole program (no epoch starts that would, at the pace of the slowest fused
    epoch so far, end later; every unfinished run is checkpointed and gets its partial record)."""
    cfgs = check_runs(cfgs)
    with precision.matmul_precision(cfgs[0].precision):
        return _train(cfgs, data, device=device, out_dir=out_dir, checkpoint_dir=checkpoint_dir, resume=resume,
                      progress=progress, max_steps=max_steps, stop_after_s=stop_after_s)


def _train(cfgs, data, *, device, out_dir, checkpoint_dir, resume, progress, max_steps, stop_after_s) -> dict:
    from tqdm import tqdm

    from .repro import device as pick_device

    t_call = time.perf_counter()
    dev = pick_device(device)
    cfgs = check_runs([ct.resolve(c, dev) for c in cfgs])
    data = cifar.load() if data is None else data
    dev_data = {k: torch.as_tensor(v, device=dev) for k, v in ct.select(data, cfgs[0]).items()}
    fr = FusedRuns(cfgs, dev)
    if checkpoint_dir is None and out_dir is not None:
        checkpoint_dir = Path(out_dir) / "checkpoints"
    if stop_after_s is not None and checkpoint_dir is None:
        raise ValueError("stop_after_s needs a checkpoint folder to resume from (out_dir or checkpoint_dir)")
    runs = [{"config": dataclasses.asdict(c), "data": data.info, "history": [], "model": fr.models[i],
             "device": str(dev), "wall_time_s": 0.0, "record_path": None, "complete": False, "status": "not run",
             "checkpoint": None if checkpoint_dir is None else str(Path(checkpoint_dir) / f"{c.run_id}.pt"),
             "epoch": 0} for i, c in enumerate(cfgs)]
    for i, (c, r) in enumerate(zip(cfgs, runs)):
        if resume and r["checkpoint"] and (state := ct._load_checkpoint(Path(r["checkpoint"]), c)) is not None:
            fr.models[i].load_state_dict(state["model"])
            fr.opts[i].load_state_dict(state["optimizer"])
            fr.scheds[i].load_state_dict(state["scheduler"])
            r["history"], r["epoch"], r["wall_time_s"] = state["history"], state["epoch"], state["elapsed_s"]
    n, batch, cl = len(dev_data["y_train"]), cfgs[0].batch_size, cfgs[0].channels_last

    def save(i: int) -> None:
        r, opt = runs[i], fr.opts[i]
        ct._save_checkpoint(Path(r["checkpoint"]), {
            "resume_key": cfgs[i].resume_key(), "epoch": r["epoch"], "model": fr.models[i].state_dict(),
            "optimizer": opt.state_dict(), "scheduler": fr.scheds[i].state_dict(), "history": r["history"],
            "elapsed_s": r["wall_time_s"]})

    def finish(i: int, complete: bool, status: str) -> None:
        r = runs[i]
        r["complete"], r["status"] = complete, status
        if out_dir is not None and not status.startswith("diverged"):
            r.update(ct.write_records(cfgs[i], data.info, dev, r["history"], r["wall_time_s"], complete, out_dir,
                                      TRAINER))

    def measure(i: int, row: dict, last: bool) -> dict:
        c, model = cfgs[i], fr.models[i]
        t1 = time.perf_counter()
        row["test_acc"] = ct.accuracy(model, dev_data["x_test"], dev_data["y_test"], c)
        if row["epoch"] % c.metrics_every == 0 or last or max_steps is not None:
            row.update(ct.metrics(model, dev_data, c, (*c.coherence_per_class,
                                                        *(c.final_coherence_per_class if last else ()))))
        row["metric_time_s"] = time.perf_counter() - t1
        return row

    for i, (c, r) in enumerate(zip(cfgs, runs)):  # cifar_train's "epoch 0" row
        if c.metrics_at_start and r["epoch"] == 0 and not r["history"]:
            t1 = time.perf_counter()
            row = {"epoch": 0, "lr": fr.scheds[i].get_last_lr()[0],
                   "test_acc": ct.accuracy(fr.models[i], dev_data["x_test"], dev_data["y_test"], c),
                   **ct.metrics(fr.models[i], dev_data, c)}
            r["history"].append({**row, "metric_time_s": time.perf_counter() - t1})
    todo = [i for i, (c, r) in enumerate(zip(cfgs, runs)) if r["epoch"] < c.epochs]
    for i in set(range(len(cfgs))) - set(todo):  # resumed at its end: the record only
        finish(i, True, "complete")
    fr.stack(todo)
    steps, slowest = 0, 0.0
    total = max([cfgs[i].epochs - runs[i]["epoch"] for i in todo], default=0)
    bar = tqdm(total=total, desc=f"fused {len(todo)} runs", unit="epoch",
               disable=None if progress is None else not progress)
    while fr.active:
        t0 = time.perf_counter()
        act = list(fr.active)
        keys = [(cfgs[i].seed, runs[i]["epoch"]) for i in act]  # runs of one seed at one epoch share the batch
        gens = {k: ct.epoch_generator(k[0], k[1], dev) for k in dict.fromkeys(keys)}
        perms = {k: torch.randperm(n, device=dev, generator=g) for k, g in gens.items()}
        lrs = [fr.scheds[i].get_last_lr()[0] for i in act]
        fr.refresh()
        loss_sum = torch.zeros(len(act), device=dev)
        correct = torch.zeros(len(act), device=dev, dtype=torch.long)
        seen = 0
        for b in range(0, n, batch):
            idx = {k: perms[k][b:b + batch] for k in gens}
            xs = {k: ct.to_input(ct.augment(dev_data["x_train"][idx[k]], gens[k]), cl) for k in gens}
            ys = {k: dev_data["y_train"][idx[k]] for k in gens}
            if len(gens) == 1:
                (x,), (y,) = xs.values(), ys.values()
            else:
                x, y = torch.stack([xs[k] for k in keys]), torch.stack([ys[k] for k in keys])
            l, cnt = fr.step(x, y, shared=len(gens) == 1)
            loss_sum += l
            correct += cnt
            steps, seen = steps + 1, seen + y.shape[-1]
            if max_steps is not None and steps >= max_steps:
                break
        train_loss = (loss_sum.double() / seen).tolist()  # the one host sync of the epoch
        train_correct = correct.tolist()
        if dev.type == "cuda":
            torch.cuda.synchronize()
        train_s = time.perf_counter() - t0
        fr.unstack()
        ended: dict[int, tuple[bool, str]] = {}
        for j, i in enumerate(act):
            c, r, loss, epoch = cfgs[i], runs[i], train_loss[j], runs[i]["epoch"]
            if not math.isfinite(loss) or loss > ct.DIVERGED_LOSS:
                ended[i] = (False, f"diverged: {c.name}: training loss {loss} at epoch {epoch + 1} (lr {lrs[j]:g}) "
                                   f"is {'not finite' if not math.isfinite(loss) else 'exploding'}; the run stopped. "
                                   f"Lower the learning rate, check the data, or resume from the last good "
                                   f"checkpoint ({r['checkpoint']}).")
                continue
            with warnings.catch_warnings():  # the stack took the step, not the run's optimizer object
                warnings.filterwarnings("ignore", message=r"Detected call of `lr_scheduler.step\(\)` before")
                fr.scheds[i].step()
            row = {"epoch": epoch + 1, "lr": lrs[j], "train_loss": loss, "train_acc": train_correct[j] / seen,
                   "epoch_time_s": train_s}
            r["history"].append(measure(i, row, epoch + 1 == c.epochs))
            r["epoch"] = epoch + 1
            r["wall_time_s"] += train_s + row["metric_time_s"]
        slowest = max(slowest, time.perf_counter() - t0)
        out_of_time = stop_after_s is not None and time.perf_counter() - t_call + slowest > stop_after_s
        for i in act:
            c, r = cfgs[i], runs[i]
            if i in ended:
                continue
            done = r["epoch"] == c.epochs or (max_steps is not None and steps >= max_steps)
            stop = out_of_time and not done
            if r["checkpoint"] and (r["epoch"] % c.checkpoint_every == 0 or r["epoch"] == c.epochs or stop):
                save(i)
            if done:
                ended[i] = (True, "complete")
            elif stop:
                ended[i] = (False, f"stopped at the time limit (epoch {r['epoch']}/{c.epochs})")
        for i, (complete, status) in ended.items():
            finish(i, complete, status)
        bar.update(1)
        bar.set_postfix({"runs": len(act) - len(ended), "s/ep": f"{time.perf_counter() - t0:.1f}",
                         "loss": " ".join(f"{v:.3f}" for v in train_loss)})
        if ended:
            fr.stack([i for i in act if i not in ended])
    bar.close()
    for r in runs:
        r.pop("epoch")
    return {"runs": runs, "device": str(dev), "steps": steps, "wall_time_s": time.perf_counter() - t_call}


# --- benchmark -----------------------------------------------------------------------------------

def time_steps(cfgs, dev: torch.device | str, n_images: int, steps: int, warmup: int) -> dict:
    """Seconds per fused step of ``cfgs`` on random uint8 images resident on ``dev`` (augmentation included, one
    stream per seed), after ``warmup`` steps: what ``gpu_session`` and ``benchmarks/bench_fused.py`` measure."""
    dev = torch.device(dev)
    t_start = time.perf_counter()
    cfgs = check_runs([ct.resolve(c, dev) for c in cfgs])
    with precision.matmul_precision(cfgs[0].precision):
        fr = FusedRuns(cfgs, dev)
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.randint(0, 256, (n_images, 32, 32, 3), dtype=torch.uint8, device=dev, generator=g)
        y = torch.randint(0, 10, (n_images,), device=dev, generator=g)
        b = cfgs[0].batch_size
        seeds = list(dict.fromkeys(cfgs[i].seed for i in fr.active))
        gens = {s: ct.epoch_generator(s, 0, dev) for s in seeds}
        perms = {s: torch.randperm(n_images, device=dev, generator=gens[s]) for s in seeds}
        nb = max(1, n_images // b)
        acc = torch.zeros(len(fr.active), device=dev)

        def step(s):
            sl = slice((s % nb) * b, (s % nb + 1) * b)
            xs = {k: ct.to_input(ct.augment(x[perms[k][sl]], gens[k]), cfgs[0].channels_last) for k in seeds}
            ys = {k: y[perms[k][sl]] for k in seeds}
            if len(seeds) == 1:
                return fr.step(xs[seeds[0]], ys[seeds[0]], True)[0]
            order = [cfgs[i].seed for i in fr.active]
            return fr.step(torch.stack([xs[k] for k in order]), torch.stack([ys[k] for k in order]), False)[0]

        for s in range(warmup):
            acc += step(s)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        ready, ready_wall = time.perf_counter(), time.time()
        t0 = time.perf_counter()
        for s in range(steps):
            acc += step(warmup + s)
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)
        dt = (time.perf_counter() - t0) / steps
    if not bool(torch.isfinite(acc).all()):
        raise RuntimeError("non-finite loss in the timed fused steps")
    mem = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return {"step_s": dt, "n_runs": len(cfgs), "warmup_s": ready - t_start, "ready_wall": ready_wall, "steps": steps,
            "warmup": warmup, "max_memory_gib": mem}


# --- command line --------------------------------------------------------------------------------

def table_configs(seeds, rhos=DEFAULT_RHOS, sgd: bool = True, **kw) -> list[ct.TrainConfig]:
    """The runs of the paper's table for each seed: SAM at each ρ in ``rhos``, then SGD (``kw``: the other
    TrainConfig settings, shared)."""
    out = []
    for s in seeds:
        out += [ct.TrainConfig(optimizer="sam", rho=float(r), seed=int(s), **kw) for r in rhos]
        out += [ct.TrainConfig(optimizer="sgd", seed=int(s), **kw)] if sgd else []
    return out


def parser() -> argparse.ArgumentParser:
    """``cifar_train``'s command line, with ``--seeds``, ``--rhos`` and ``--no-sgd`` in place of ``--seed``,
    ``--rho`` and ``--optimizer``."""
    p = ct.parser()
    p.prog, p.description = PROG, __doc__.split("\n\n")[0]
    for a in p._actions:  # argparse has no public way to drop an option: hide them, and refuse them below
        if a.dest in ("optimizer", "rho", "seed"):
            a.help = argparse.SUPPRESS
    p.set_defaults(optimizer=None, rho=None, seed=None)
    p.add_argument("--seeds", type=int, nargs="+", default=[ct.AUTHORS_SEED], help="one program trains all")
    p.add_argument("--rhos", type=float, nargs="*", default=list(DEFAULT_RHOS),
                   help="SAM radii (default 0.05 0.1 0.2; none: no SAM run)")
    p.add_argument("--no-sgd", action="store_true", help="no SGD run")
    return p


def configs_from_args(a: argparse.Namespace) -> list[ct.TrainConfig]:
    """One :class:`~flatbias.cifar_train.TrainConfig` per run of parsed arguments."""
    given = [f"--{k}" for k in ("optimizer", "rho", "seed") if getattr(a, k) is not None]
    if given:
        raise ct.ArgumentError(f"{'/'.join(given)}: the fused trainer takes --seeds, --rhos and --no-sgd")
    if not a.rhos and a.no_sgd:
        raise ct.ArgumentError("no run: --rhos is empty and --no-sgd is given")
    d = ct.TrainConfig()
    out = []
    for s in a.seeds:
        for opt, rho in [*(("sam", r) for r in a.rhos), *([] if a.no_sgd else [("sgd", d.rho)])]:
            out.append(ct.config_from_args(argparse.Namespace(**{**vars(a), "optimizer": opt, "rho": rho,
                                                                  "seed": s})))
    return check_runs(out)


def main(argv: list[str] | None = None) -> int:
    """The CLI; 0 when every run has its record, :data:`~flatbias.cifar_train.EXIT_INCOMPLETE` when a run stopped
    at the time limit (rerun to resume), :data:`~flatbias.cifar_train.EXIT_BAD_ARGS` for a bad argument, missing
    data or a diverged run (one line each on stderr; the other runs still finish)."""
    try:
        a = parser().parse_args(argv)
        cfgs = configs_from_args(a)
        data = cifar.load(a.data, download_if_missing=a.download)
    except (ValueError, cifar.DataNotFoundError) as exc:
        return ct.fail(exc, PROG)
    print(f"data: {data.layout} layout ({data.info['source_kind']}) from {data.source}; {len(cfgs)} runs in "
          f"lockstep", file=sys.stderr)
    try:
        res = train(cfgs, data, device=a.device, out_dir=a.out, checkpoint_dir=a.checkpoint_dir,
                    resume=not a.no_resume, stop_after_s=a.time_limit, progress=True)
    except ValueError as exc:  # a checkpoint of other settings
        return ct.fail(exc, PROG)
    code = 0
    for r in res["runs"]:
        if r["status"].startswith("diverged"):
            code = ct.fail(r["status"], PROG)
        elif not r["complete"]:
            print(f"{r['status']}: checkpoint {r['checkpoint']}; run the same command again to resume",
                  file=sys.stderr)
            code = code or ct.EXIT_INCOMPLETE
        else:
            print(f"record: {r['record_path']}", file=sys.stderr)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
