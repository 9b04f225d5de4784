"""One command for a GPU lent for a few minutes: check it, benchmark it, plan what fits, run it, keep small records.

    python -m flatbias.gpu_session --out "$OUT" --time-budget 540             # a bare GPU machine, one command
    python -m flatbias.gpu_session --out /tmp/session --time-budget 50 --tiny  # the same on a CPU (tiny protocol)

A lent session has about 15 minutes of device time (machine start included) and 10 minutes per command, and a
ResNet-18 checkpoint is too big to bring back, so every run must finish inside this one command. In order:

1. **environment**: torch, CUDA, cuDNN, the GPU's name, capability and memory, PyTorch's TF32 defaults as found,
   submitit, and the CIFAR-10 copy (path, layout, official archive or JPEG mirror, SHA-256 of an archive), decoded
   once into the cache that the runs read;
2. **micro-benchmark** (at most ``--bench-seconds``, in spawned processes that are stopped when their share is
   spent, whatever the machine's load): first the **fused step** of one seed's four runs (SAM at ρ 0.2, 0.1, 0.05
   and SGD trained in lockstep by :mod:`flatbias.fused_train`), then one epoch's metrics (test accuracy, rank,
   100- and 1000-image proxies), then the separate SAM and SGD steps (the fused/separate ratio), then fp32 vs TF32
   convolutions on a GPU. Step times become epoch times, MFU against the GPU's dense peak for the format;
3. **plan**, printed before anything starts: one fused program per seed (its four runs in lockstep), the seeds one
   after the other, the authors' first. The full protocol for as many seeds as fit in the time left, the metrics
   (rank, proxies) every epoch if that fits, else every 5, 10 or 20 epochs (test accuracy every epoch), with the
   1000-image proxy at the same epochs if it fits, else at the last; else the same for the reduced protocol; else
   nothing (a benchmark record only). The estimate (:func:`run_time`) is calibrated on the lent H200's records
   (:data:`EPOCH_OVER_STEPS`) and must fit :data:`SAFETY` times over;
4. **runs**: :func:`flatbias.fused_train.train` in this process, seed after seed, each program stopping
   (checkpointed, partial records written) before the budget is spent; each run's status is read from the records
   on disk (:func:`flatbias.cifar_sweep.on_disk`: complete iff its final record exists, stopped at the time limit
   iff only its partial record does);
5. **records** in ``--out``, small JSON only: one training record per finished run (``<run>.json``, the format of
   ``results/cifar10/``), the history of a run stopped at the time limit (``<run>.partial.json``, marked
   incomplete and never read as a result), ``gpu_benchmark.json`` (environment, benchmark, plan) and
   ``gpu_session.json`` (plan, status of every run, phase times, final metrics). Checkpoints stay in ``--work`` (a
   temporary folder, deleted at the end unless ``--keep-work``).

On a machine without CUDA (or with ``--tiny``) the protocol is tiny (width-4 ResNet-18 on 100 images, a few epochs),
so the whole chain can be tested on a CPU within a short budget (on a heavily loaded machine the benchmark may not
finish in its share, and the plan is then a benchmark record only).

Exit code: 0 when every planned run has its record, 3 when a planned run stopped at the time limit or nothing fitted,
1 when a run failed, 2 for a bad argument or a missing data set / package (one line on stderr).
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()  # before torch is imported: a time budget counts from the command's start

import dataclasses
import gc
import hashlib
import multiprocessing as mp
import os
import platform
import queue as _queue
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from . import cifar, precision, records
from . import cifar_train as ct
from . import fused_train as ft

PROG = "python -m flatbias.gpu_session"
# dense peak FLOP/s by format (no sparsity); the first key contained in the GPU's name wins
PEAKS = {"H100 PCIe": {"bf16": 756e12, "tf32": 378e12, "fp32": 51e12},
         "H100": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
         "H200": {"bf16": 989e12, "tf32": 494e12, "fp32": 67e12},
         "A100": {"bf16": 312e12, "tf32": 156e12, "fp32": 19.5e12}, "L40S": {"bf16": 362e12, "tf32": 183e12,
                                                                          "fp32": 91.6e12},
         "L4": {"bf16": 121e12, "tf32": 60e12, "fp32": 30e12}, "A10": {"bf16": 125e12, "tf32": 62.5e12,
                                                                       "fp32": 31.2e12}}
SEEDS = (ct.AUTHORS_SEED, 43, 44)
TABLE_MIX = (("sam", 0.2), ("sam", 0.1), ("sam", 0.05), ("sgd", None))  # the four runs of a seed
BIG_PROXY = ("every", "last", "none")
METRICS_EVERY = (1, 5, 10, 20)  # epochs between two measurements of rank and proxies, in the planner's order
# The lent H200 (records in results/cifar10/, torch 2.11, TF32): one SGD run 6.97 ms a step, one SAM run 14.3 ms;
# four processes sharing it 13.9-18.5 ms a step (5.5-7.2 s an epoch). Its 30-epoch SAM run then took 7.73 s an
# epoch on average where 391 x the benchmarked step gives 6.73 s (x 1.15): the benchmark's few steps run warmer
# than an epoch (allocator, clocks, the host's other runs). And its session, planned with a margin of 1.25 on the
# benchmark alone, ran out of time: the runs needed more than 1.26 x the estimate (their start included).
H200 = {"sgd_step_s": 6.97e-3, "sam_step_s": 14.3e-3, "four_processes_epoch_s": (5.5, 7.2),
        "sam_epoch_s_in_record": 7.73, "sam_epoch_s_benchmarked": 6.73}
EPOCH_OVER_STEPS = 1.15  # an epoch's training time over (steps per epoch x benchmarked step): the H200's ratio
SAFETY = 1.5  # a plan must fit SAFETY x its estimate: above the H200's 1.26, with room for a slower card


@dataclass
class Protocol:
    """A protocol as the session runs it: cifar_train arguments and what the planner needs to cost it."""

    name: str  # "full" | "reduced"
    argv: list[str]  # after --protocol <name>
    epochs: int
    n_train: int
    n_test: int
    batch: int = 128
    width: int = 64
    per_class: tuple[int, ...] = (10,)  # coherence proxy every epoch
    big_per_class: int | None = 100  # the 1000-image proxy (100 per class); None: not available
    subset: int | None = None  # the tiny protocol's training and test images (cifar_train's --subset)
    test_subset: int | None = None

    @property
    def steps_per_epoch(self) -> int:
        return -(-self.n_train // self.batch)

    def epochs_measured(self, every: int) -> int:
        """Epochs whose history row has rank and proxies with ``--metrics-every every`` (the last always has)."""
        return self.epochs // every + (self.epochs % every != 0)

    def big_proxy_args(self, mode: str) -> list[str]:
        if self.big_per_class is None or mode == "none":
            return []
        if self.big_per_class == 100:
            return ["--coherence-1000", mode]
        return ["--coherence-per-class", *map(str, self.per_class), str(self.big_per_class)] if mode == "every" else []


def protocols(tiny: bool, ds: cifar.Cifar10 | None = None) -> dict[str, Protocol]:
    """The authors' protocol and the reduced one; with ``tiny`` their CPU-sized stand-ins (same structure: the
    'full' one longer than the 'reduced' one) on up to 100 training and 100 test images (fewer if ``ds`` is
    smaller: the same number of each class)."""
    if not tiny:
        return {"full": Protocol("full", [], 200, 50_000, 10_000),
                "reduced": Protocol("reduced", [], ct.REDUCED["epochs"], 50_000, 10_000)}
    k_train = k_test = 10
    if ds is not None:
        k_train = min(10, int(np.bincount(ds.y_train, minlength=10).min()))
        k_test = min(10, int(np.bincount(ds.y_test, minlength=10).min()))
    if k_train < 2 or k_test < 1:
        raise ValueError("the tiny protocol needs at least 2 training and 1 test image of each class")
    n, n_test = 10 * k_train, 10 * k_test
    batch = max(10, n // 4)
    base = ["--width", "4", "--subset", str(n), "--test-subset", str(n_test), "--batch-size", str(batch),
            "--coherence-per-class", "1"]
    kw = dict(n_train=n, n_test=n_test, batch=batch, width=4, per_class=(1,), big_per_class=2, subset=n,
              test_subset=n_test)
    return {"full": Protocol("full", [*base, "--epochs", "4", "--milestones", "2", "3"], 4, **kw),
            "reduced": Protocol("reduced", [*base, "--epochs", "2", "--milestones", "1"], 2, **kw)}


def _say(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- 1. environment ------------------------------------------------------------------------------

def environment(data: str | None) -> tuple[dict, cifar.Cifar10]:
    """What this machine is, and the data set it carries (decoded into the cache the runs read)."""
    env = {"python": platform.python_version(), "platform": platform.platform(), "cpu_count": os.cpu_count(),
           "torch": torch.__version__, "cuda_available": torch.cuda.is_available(), "cuda": torch.version.cuda,
           "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
           "pytorch_tf32_defaults": {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
                                     "cuda_matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32},
           "gpus": []}
    for i in range(torch.cuda.device_count() if torch.cuda.is_available() else 0):
        p = torch.cuda.get_device_properties(i)
        env["gpus"].append({"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": p.total_memory / 2**30,
                            "multiprocessors": p.multi_processor_count})
    import submitit  # the sweep's job engine: a clear error here rather than after the benchmark

    env["submitit"] = submitit.__version__
    path = cifar.locate(data)
    t0 = time.perf_counter()
    ds = cifar.load(path)
    info = {**ds.info, "path": str(path), "load_s": time.perf_counter() - t0}
    if path.is_file():
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        info.update(sha256=h.hexdigest(), size_bytes=path.stat().st_size)
    env["data"] = info
    return env, ds


# --- 2. micro-benchmark --------------------------------------------------------------------------

def _sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize(dev)


def time_steps(cfg: ct.TrainConfig, dev: torch.device, n_images: int, steps: int, warmup: int,
               barrier=None) -> dict:
    """Seconds per training step of ``cfg`` on random uint8 images resident on ``dev`` (augmentation included),
    after ``warmup`` steps (compilation happens there); with ``barrier`` the timed steps start together with the
    other processes'."""
    cfg = ct.resolve(cfg, dev)
    t_start = time.perf_counter()
    with precision.matmul_precision(cfg.precision):
        model, opt, _ = ct.build(cfg, dev)
        fwd = ct.compiled(model, cfg)
        g = torch.Generator(device=dev).manual_seed(0)
        x = torch.randint(0, 256, (n_images, 32, 32, 3), dtype=torch.uint8, device=dev, generator=g)
        y = torch.randint(0, 10, (n_images,), device=dev, generator=g)
        gen = ct.epoch_generator(cfg.seed, 0, dev)
        nb = max(1, n_images // cfg.batch_size)
        perm = torch.randperm(n_images, device=dev, generator=gen)
        acc = torch.zeros((), device=dev)

        def step(s):
            idx = perm[(s % nb) * cfg.batch_size:(s % nb + 1) * cfg.batch_size]
            return ct.train_step(model, fwd, opt, ct.to_input(ct.augment(x[idx], gen), cfg.channels_last), y[idx],
                                 cfg)[0]

        for s in range(warmup):
            acc += step(s)
        _sync(dev)
        ready, ready_wall = time.perf_counter(), time.time()
        if barrier is not None:
            barrier.wait()
        t0 = time.perf_counter()
        for s in range(steps):
            acc += step(warmup + s)
        _sync(dev)
        dt = (time.perf_counter() - t0) / steps
    if not torch.isfinite(acc):
        raise RuntimeError(f"non-finite loss in the timed steps of {cfg.name}")
    mem = torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None
    return {"step_s": dt, "warmup_s": ready - t_start, "ready_wall": ready_wall, "steps": steps, "warmup": warmup,
            "max_memory_gib": mem}


def time_metrics(cfg: ct.TrainConfig, ds: cifar.Cifar10, proto: Protocol, dev: torch.device, report=None) -> dict:
    """Seconds for one epoch's metrics of ``proto``: test accuracy + rank + the small proxy (``metric_s``), then the
    big (1000-image) proxy (``big_proxy_s``); ``report(dict)`` is called after each part."""
    cfg = ct.resolve(cfg, dev)
    arrays = ct.select(ds, cfg)
    dev_data = {k: torch.as_tensor(v, device=dev) for k, v in arrays.items()}
    torch.manual_seed(cfg.seed)
    from . import resnet

    model = resnet.resnet18(num_classes=10, stem=cfg.stem, width=cfg.width).to(dev)
    if cfg.channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = {}
    with precision.matmul_precision(cfg.precision):
        _sync(dev)
        t0 = time.perf_counter()
        ct.accuracy(model, dev_data["x_test"], dev_data["y_test"], cfg)
        m = ct.metrics(model, dev_data, cfg, proto.per_class)
        _sync(dev)
        out.update(metric_s=time.perf_counter() - t0, rank_s=m["rank_time_s"], proxy_s=m["coherence_time_s"])
        if report is not None:
            report(dict(out))
        if proto.big_per_class:
            idx = torch.as_tensor(cifar.first_per_class(arrays["y_train"], proto.big_per_class), device=dev)
            t0 = time.perf_counter()
            from . import grad_coherence

            grad_coherence.coherence_proxy(model, ct.to_input(dev_data["x_train"][idx], cfg.channels_last),
                                           dev_data["y_train"][idx])
            _sync(dev)
            out["big_proxy_s"] = time.perf_counter() - t0
            if report is not None:
                report(dict(out))
    return out


def _worker(i: int, spec: dict, barrier, results) -> None:
    """A benchmark process (spawned): time its configurations one after the other (reporting each as it is done),
    then the metrics if asked; with a group of several processes, the timed steps start together (barrier)."""
    try:
        if spec.get("threads"):
            torch.set_num_threads(spec["threads"])
        dev = torch.device(spec["device"])
        if spec.get("flops"):
            results.put((i, "flops", {o: flops_per_image(ct.TrainConfig(optimizer=o, **spec["flops"]), dev)
                                      for o in ("sgd", "sam")}))
        for k, cfg in enumerate(spec["configs"]):
            try:
                if "runs" in cfg:  # the fused step of several runs (flatbias.fused_train)
                    t = ft.time_steps([ct.TrainConfig(**r) for r in cfg["runs"]], dev, spec["n_images"],
                                      spec["steps"], spec["warmup"])
                else:
                    t = time_steps(ct.TrainConfig(**cfg), dev, spec["n_images"], spec["steps"], spec["warmup"],
                                   barrier)
                t["ready_s"] = t.pop("ready_wall") - spec["t0"]  # since the process was started
            except Exception as exc:  # noqa: BLE001 - reported; the next configuration is still timed
                t = {"error": f"{type(exc).__name__}: {exc}"[:400]}
            results.put((i, k, {**cfg, **t}))
        if spec.get("metrics"):
            m = spec["metrics"]
            ds = cifar.load(m["data"])
            time_metrics(ct.TrainConfig(**m["cfg"]), ds, Protocol(**m["protocol"]), dev,
                         lambda out: results.put((i, "metrics", out)))
    except BaseException as exc:  # noqa: BLE001 - reported, never raised: the session goes on without it
        try:
            if barrier is not None:
                barrier.abort()
        except Exception:  # noqa: BLE001
            pass
        results.put((i, "error", {"error": f"{type(exc).__name__}: {exc}"[:400]}))


def run_group(specs: list[dict], timeout_s: float, on_result=None) -> list[dict]:
    """Run ``specs`` in as many spawned processes at once and collect what they report within ``timeout_s``
    (then they are stopped: the benchmark keeps to its budget whatever the machine's load). Returns one dict per
    process: ``{"results": [...], "metrics": {...}, "error": ...}`` (what arrived)."""
    from flatbias import gpu_session as me  # by its module name: a spawned child imports it, not __main__

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(len(specs), timeout=max(1.0, timeout_s)) if len(specs) > 1 else None
    results = ctx.Queue()
    t0 = time.perf_counter()
    procs = [ctx.Process(target=me._worker, args=(i, {**s, "t0": time.time()}, barrier, results), daemon=True)
             for i, s in enumerate(specs)]
    for p in procs:
        p.start()
    out = [{"results": [], "metrics": None, "flops": None, "error": None} for _ in specs]
    expected = [len(s["configs"]) + bool(s.get("flops")) + (
        0 if not s.get("metrics") else 1 + bool(s["metrics"]["protocol"]["big_per_class"])) for s in specs]
    got = [0] * len(specs)
    end = t0 + timeout_s
    while any(g < n and not o["error"] for g, n, o in zip(got, expected, out)) and time.perf_counter() < end:
        try:
            i, k, r = results.get(timeout=max(0.05, min(0.5, end - time.perf_counter())))
        except _queue.Empty:
            continue
        got[i] += 1
        if k in ("metrics", "flops"):
            out[i][k] = r
        elif k == "error":
            out[i]["error"] = r["error"]
        else:
            out[i]["results"].append(r)
        if on_result is not None and k != "error":
            on_result(i, k, r)
    for p in procs:
        if p.is_alive():
            p.terminate()
        p.join(5)
    results.close()
    del barrier, results  # their semaphores go now, not as a warning at exit
    gc.collect()
    for o, n, g in zip(out, expected, got):
        if not o["error"] and g < n:
            o["error"] = f"stopped after {timeout_s:.0f} s, the benchmark's budget"
    return out


def flops_per_image(cfg: ct.TrainConfig, dev: torch.device) -> float:
    """Model FLOPs of one training step per image (forward + backward; twice that for SAM)."""
    from torch.utils.flop_counter import FlopCounterMode

    from . import resnet

    model = resnet.resnet18(num_classes=10, stem=cfg.stem, width=cfg.width).to(dev)
    x = torch.randn(8, 3, 32, 32, device=dev, dtype=torch.float32)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=dev)).backward()
    return fc.get_total_flops() / 8 * (2 if cfg.optimizer == "sam" else 1)


def peak_flops(gpu_name: str | None, fmt: str) -> float | None:
    """The GPU's dense peak for convolutions in ``fmt`` ('fp32', 'tf32', 'bf16'), if the GPU is in :data:`PEAKS`."""
    if not gpu_name:
        return None
    key = next((k for k in PEAKS if k in gpu_name), None)
    return PEAKS[key][fmt] if key else None


def benchmark(ds: cifar.Cifar10, protos: dict[str, Protocol], dev: torch.device, prec: str, budget_s: float,
              gpu_name: str | None) -> dict:
    """Step and metric times of the session's protocol (module docstring), in spawned processes stopped when
    ``budget_s`` is spent: (1) one process: the fused step of one seed's four runs (:func:`fused_train.time_steps`,
    what the plan needs), then one run's metrics of one epoch; (2) one process: SAM and SGD alone (the
    fused/separate ratio), in the runs' format, then on a GPU in the other formats (fp32 vs TF32)."""
    t_start = time.perf_counter()
    left = lambda: budget_s - (time.perf_counter() - t_start)  # noqa: E731
    gpu = dev.type == "cuda"
    proto = protos["full"]
    steps, warmup = (40, 15) if gpu else (2, 1)
    n_images = 50_000 if gpu else proto.batch * (steps + warmup)
    base = dict(width=proto.width, batch_size=proto.batch)
    spe = proto.steps_per_epoch
    flops: dict[str, float] = {}  # FLOPs per image of a step, counted by the first benchmark process
    res: dict = {"device": str(dev), "gpu": gpu_name, "timed_steps": steps, "warmup_steps": warmup,
                 "steps_per_epoch": {k: p.steps_per_epoch for k, p in protos.items()}, "precision": prec,
                 "gflop_per_image": None, "fused": None, "one_process": [], "metrics": None,
                 "fused_speedup": None, "budget_s": budget_s, "h200_reference": H200, "notes": []}
    if not gpu:
        res["notes"].append("CPU: TF32 does not exist, only the runs' format is timed")
    table = [dict(optimizer=o, **({"rho": r} if r else {}), precision=prec, **base) for o, r in TABLE_MIX]

    def row(r):
        if "error" in r:
            return r
        img_s = proto.batch / r["step_s"]  # images a second, each run
        peak = peak_flops(gpu_name, r["precision"])
        work = sum(flops.get(t["optimizer"], 0.0) for t in r["runs"]) if "runs" in r else flops.get(r["optimizer"])
        return {**r, "epoch_s": spe * r["step_s"], "img_per_s": img_s,
                "mfu": None if peak is None or not work else work * img_s / peak}

    def show(i, k, r):
        if k == "flops":
            flops.update(r)
            res["gflop_per_image"] = {o: f / 1e9 for o, f in r.items()}
        elif k == "metrics":
            _say(f"  metrics of one epoch, one run: {r['metric_s']:.2f} s" + (
                f", 1000-image proxy {r['big_proxy_s']:.2f} s" if "big_proxy_s" in r else ""))
        elif "error" in r:
            _say(f"  {r['optimizer']} {r['precision']}: {r['error']}")
        else:
            rr = row(r)
            what = f"fused step of {len(r['runs'])} runs" if "runs" in r else f"{r['optimizer']} alone"
            _say(f"  {what} ({r['precision']}): {1e3 * r['step_s']:.2f} ms/step = {rr['epoch_s']:.2f} s/epoch "
                 f"(ready after {r['ready_s']:.1f} s)"
                 + ("" if rr["mfu"] is None else f", MFU {100 * rr['mfu']:.1f} %"))

    formats = tuple(dict.fromkeys((prec, "tf32", "fp32"))) if gpu else (prec,)
    fused = dict(optimizer="fused", precision=prec, runs=table)
    metrics = dict(data=ds.source, cfg=dict(precision=prec, subset=proto.subset, test_subset=proto.test_subset,
                                             rho=0.1, **base), protocol=dataclasses.asdict(proto))
    (g1,) = run_group([dict(configs=[fused], device=str(dev), n_images=n_images, steps=steps, warmup=warmup,
                            metrics=metrics, flops=base)], max(5.0, 0.6 * left()), show)
    res["fused"] = next((row(r) for r in g1["results"]), {"error": g1["error"] or "no result"})
    res["metrics"] = g1["metrics"]
    if g1["error"]:
        _say(f"  fused step and metrics: {g1['error']}")
        res["notes"].append(f"fused step and metrics: {g1['error']}")
    alone = [dict(optimizer=o, precision=f, rho=0.1, **base) for f in formats for o in ("sam", "sgd")]
    if left() > 2:
        (g2,) = run_group([dict(configs=alone, device=str(dev), n_images=n_images, steps=steps, warmup=warmup)],
                          max(2.0, left()), show)
        res["one_process"] = [row(r) for r in g2["results"]]
        if g2["error"]:
            res["notes"].append(f"separate runs: {g2['error']}")
    one = {r["optimizer"]: r["step_s"] for r in res["one_process"] if "error" not in r and r["precision"] == prec}
    if "step_s" in res["fused"] and {"sam", "sgd"} <= set(one):
        separate = sum(one[o] for o, _ in TABLE_MIX)  # the four runs one after the other
        res["fused_speedup"] = {"separate_step_s": separate, "fused_step_s": res["fused"]["step_s"],
                                "ratio": separate / res["fused"]["step_s"]}
        _say(f"  fused / separate: the four runs' step {1e3 * res['fused']['step_s']:.2f} ms fused, "
             f"{1e3 * separate:.2f} ms one after the other: x{res['fused_speedup']['ratio']:.2f}")
    res["wall_s"] = time.perf_counter() - t_start
    return res


# --- 3. plan -------------------------------------------------------------------------------------

@dataclass
class Plan:
    protocol: str | None  # None: nothing fits
    seeds: tuple[int, ...] = ()
    big_proxy: str = "none"
    metrics_every: int = 1
    estimate_s: float = 0.0  # predicted wall time of all runs
    per_seed_s: float = 0.0
    time_left_s: float = 0.0
    safety: float = SAFETY
    trainer: str = "fused_train"  # one fused program per seed (flatbias.fused_train), seeds one after the other
    considered: list = field(default_factory=list)

    @property
    def runs(self) -> int:
        return len(TABLE_MIX) * len(self.seeds)


def run_time(bench: dict, proto: Protocol, big: str, metrics_every: int = 1) -> float:
    """Predicted seconds of one seed's fused program of ``proto``: its start (the benchmark process's, model
    build and warm-up included), then every epoch: the fused steps (x :data:`EPOCH_OVER_STEPS`, the H200's ratio
    of a real epoch to its benchmark) and each run's test accuracy; every ``metrics_every`` epochs (and at the
    last) each run's rank and small proxy; the 1000-image proxy at those epochs (``big="every"``) or the last."""
    fused, m = bench.get("fused") or {}, bench.get("metrics")
    if "step_s" not in fused or not m:
        raise LookupError("the benchmark did not time the fused step and the metrics within its budget")
    n = len(TABLE_MIX)
    rank_proxy = m.get("rank_s", 0.0) + m.get("proxy_s", 0.0)
    acc = max(0.0, m["metric_s"] - rank_proxy)  # test accuracy: every epoch
    measured = proto.epochs_measured(metrics_every)
    t = fused["ready_s"] + proto.epochs * (proto.steps_per_epoch * fused["step_s"] * EPOCH_OVER_STEPS + n * acc)
    t += measured * n * rank_proxy
    if big != "none" and "big_proxy_s" in m:
        t += (measured if big == "every" else 1) * n * m["big_proxy_s"]
    return t


def make_plan(bench: dict, protos: dict[str, Protocol], seeds: tuple[int, ...], time_left_s: float,
              big: str = "every", safety: float = SAFETY) -> Plan:
    """The most the time left allows, every estimate multiplied by ``safety``: the full protocol for as many seeds
    as fit (at least one), with the metrics every epoch if that fits, else every 5, 10, 20 epochs
    (:data:`METRICS_EVERY`), the big proxy at those epochs if it fits, else at the last; else the same for the
    reduced protocol."""
    considered = []
    try:
        run_time(bench, protos["reduced"], "none")
    except LookupError as exc:
        return Plan(None, time_left_s=time_left_s, safety=safety, considered=[{"error": str(exc)}])
    if big == "every" and "big_proxy_s" not in bench["metrics"]:  # not measured in time: keep it to the last epoch
        big = "last"
    for name in ("full", "reduced"):
        for every in METRICS_EVERY:
            for b in dict.fromkeys([big, "last"] if big == "every" else [big]):
                per_seed = run_time(bench, protos[name], b, every)
                k = min(len(seeds), int(time_left_s // (safety * per_seed))) if per_seed > 0 else len(seeds)
                considered.append({"protocol": name, "big_proxy": b, "metrics_every": every, "per_seed_s": per_seed,
                                   "seeds_that_fit": k})
                if k >= 1:
                    return Plan(name, tuple(seeds[:k]), b, every, k * per_seed, per_seed, time_left_s, safety,
                                considered=considered)
    return Plan(None, time_left_s=time_left_s, safety=safety, considered=considered)


def describe(plan: Plan, protos: dict[str, Protocol], prec: str, bench: dict | None = None) -> str:
    if plan.protocol is None and plan.considered and "error" in plan.considered[0]:
        return f"PLAN: no runs: {plan.considered[0]['error']}; benchmark record only"
    if plan.protocol is None:
        best = min(plan.considered, key=lambda c: c["per_seed_s"])
        return (f"PLAN: no run fits in the {plan.time_left_s:.0f} s left (the cheapest, {best['protocol']} protocol "
                f"with metrics every {best['metrics_every']} epochs, needs ~{best['per_seed_s']:.0f} s x "
                f"{plan.safety:g} for one seed's fused program): benchmark record only")
    p = protos[plan.protocol]
    speed = (bench or {}).get("fused_speedup")
    return (f"PLAN: {plan.protocol} protocol ({p.epochs} epochs), seeds {list(plan.seeds)}: {plan.runs} runs, one "
            f"fused program per seed (flatbias.fused_train: SAM rho 0.2/0.1/0.05 + SGD in lockstep), seed after "
            f"seed; precision {prec}; rank and proxies every {plan.metrics_every} epoch(s), test accuracy every "
            f"epoch; 1000-image proxy: {plan.big_proxy}; estimated {plan.estimate_s:.0f} s (x{plan.safety:g} "
            f"margin) of {plan.time_left_s:.0f} s left"
            + (f"; fused step x{speed['ratio']:.2f} the speed of the four runs one after the other" if speed else ""))


# --- the session ---------------------------------------------------------------------------------

def session(out: Path, time_budget: float, data: str | None = None, tiny: bool | None = None,
            seeds: tuple[int, ...] = SEEDS, prec: str = precision.DEFAULT, big: str = "every",
            bench_seconds: float | None = None, work: Path | None = None, keep_work: bool = False,
            reserve_s: float | None = None, device: str | None = None, started: float | None = None) -> int:
    """Run the whole session (module docstring); return the exit code. The budget counts from ``started`` (a
    ``time.perf_counter()``; default now; the command line passes its own start, before torch was imported)."""
    t0 = time.perf_counter() if started is None else started
    deadline = t0 + time_budget
    reserve_s = max(10.0, 0.05 * time_budget) if reserve_s is None else reserve_s
    out.mkdir(parents=True, exist_ok=True)
    phases: dict[str, float] = {}
    _say(f"GPU session: budget {time_budget:.0f} s, records into {out}")
    env, ds = environment(data)
    work = Path(tempfile.mkdtemp(prefix="flatbias-gpu-session-")) if work is None else work
    try:
        return _session(out, t0, deadline, reserve_s, phases, env, ds, work, tiny, seeds, prec, big, bench_seconds,
                        device)
    finally:
        if not keep_work:
            shutil.rmtree(work, ignore_errors=True)


def seed_configs(plan: Plan, proto: Protocol, seed: int, prec: str) -> list[ct.TrainConfig]:
    """The four runs of one seed's fused program, as ``python -m flatbias.fused_train`` would parse them."""
    argv = ["--seeds", str(seed), "--rhos", *(f"{r:g}" for o, r in TABLE_MIX if o == "sam"),
            *([] if any(o == "sgd" for o, _ in TABLE_MIX) else ["--no-sgd"]), "--protocol", plan.protocol,
            *proto.argv, "--precision", prec, "--metrics-every", str(plan.metrics_every),
            *proto.big_proxy_args(plan.big_proxy)]
    return ft.configs_from_args(ft.parser().parse_args(argv))


def run_seed(cfgs: list[ct.TrainConfig], ds: cifar.Cifar10, out: Path, work: Path, limit: float,
             device: torch.device) -> dict[str, str]:
    """Train one seed's fused program, stopping before ``limit`` seconds; each run's status as its records on disk
    say (:func:`flatbias.cifar_sweep.on_disk`), else why it has none (diverged, failed, not started)."""
    from . import cifar_sweep as sw

    said: dict[str, str] = {}
    try:
        res = ft.train(cfgs, ds, device=str(device), out_dir=out, checkpoint_dir=work / "checkpoints",
                       stop_after_s=max(0.0, limit), progress=False)
        said = {c.name: r["status"] for c, r in zip(cfgs, res["runs"])}
    except Exception as exc:  # noqa: BLE001 - reported in the session record; the next seed may still run
        said = {c.name: " ".join(f"failed ({type(exc).__name__}: {exc})".split())[:300] for c in cfgs}
    status = {}
    for c in cfgs:
        why = said.get(c.name, "")
        status[c.name] = sw.on_disk(out, c.name) or (
            f"failed ({why})" if why.startswith("diverged") else why if why.startswith("failed") else sw.NOT_STARTED)
    return status


def _session(out, t0, deadline, reserve_s, phases, env, ds, work, tiny, seeds, prec, big, bench_seconds,
             device) -> int:
    from . import cifar_sweep as sw

    left = lambda: deadline - reserve_s - time.perf_counter()  # noqa: E731 - the work must end by then
    time_budget = deadline - t0
    dev = torch.device(device) if device else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    tiny = dev.type != "cuda" if tiny is None else tiny
    protos = protocols(tiny, ds)
    gpu_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else None
    phases["environment_s"] = time.perf_counter() - t0
    d = env["data"]
    _say(f"checkpoints (not brought back) go to {work}")
    _say(f"environment: torch {env['torch']}, CUDA {env['cuda']}, {gpu_name or 'no GPU'}; PyTorch's defaults: cuDNN "
         f"TF32 {env['pytorch_tf32_defaults']['cudnn_allow_tf32']}; data {d['source_kind']} ({d['layout']}) at "
         f"{d['path']}, {d['n_train']}/{d['n_test']} images, loaded in {d['load_s']:.1f} s; protocol "
         f"{'tiny (CPU stand-in)' if tiny else 'the paper’s'}")

    bench_seconds = (90.0 if dev.type == "cuda" else 15.0) if bench_seconds is None else bench_seconds
    t1 = time.perf_counter()
    _say(f"micro-benchmark (at most {bench_seconds:.0f} s): the fused step of a seed's four runs, the metrics, "
         f"SAM and SGD alone" + (", fp32 vs TF32" if dev.type == "cuda" else " (a CPU: no TF32)"))
    bench = benchmark(ds, protos, dev, prec, min(bench_seconds, max(5.0, left() / 2)), gpu_name)
    phases["benchmark_s"] = time.perf_counter() - t1

    plan = make_plan(bench, protos, tuple(seeds), left(), big)
    _say(describe(plan, protos, prec, bench))
    settings = {"time_budget_s": time_budget, "tiny": tiny, "precision": prec, "seeds": list(seeds), "big_proxy": big,
                "trainer": "fused_train", "safety": SAFETY, "epoch_over_steps": EPOCH_OVER_STEPS,
                "environment": env}
    records.write_record(out / "gpu_benchmark.json", "cifar10_gpu_benchmark", "smoke" if tiny else "full", settings,
                         {"benchmark": bench, "plan": dataclasses.asdict(plan)}, wall_time_s=time.perf_counter() - t0)

    status: dict[str, str] = {}
    if plan.protocol is not None:
        t2 = time.perf_counter()
        proto = protos[plan.protocol]
        for k, seed in enumerate(plan.seeds):
            cfgs = seed_configs(plan, proto, seed, prec)
            limit = left() - 2.0  # the records of its runs are written within it
            if k and limit < plan.per_seed_s:  # a later seed that cannot finish: leave the time unused
                status.update({c.name: sw.NOT_STARTED for c in cfgs})
                continue
            _say(f"seed {seed}: {len(cfgs)} runs in one fused program, done within {limit:.0f} s")
            status.update(run_seed(cfgs, ds, out, work, limit, dev))
        phases["runs_s"] = time.perf_counter() - t2
        for name, s in status.items():
            _say(f"  {name}: {s}")
    code = sw.exit_code(status) if status else ct.EXIT_INCOMPLETE
    finals = {}
    for name in status:
        if (out / f"{name}.json").is_file():
            fin = records.read_record(out / f"{name}.json")["metrics"]["final"]
            finals[name] = {"test_acc": fin["test_acc"], "rank_99.9": fin["rank"]["0.999"],
                            **{k: fin[k] for k in ("coherence_100", "coherence_1000") if fin.get(k) is not None}}
    phases["total_s"] = time.perf_counter() - t0
    records.write_record(out / "gpu_session.json", "cifar10_gpu_session", "smoke" if tiny else "full", settings,
                         {"plan": dataclasses.asdict(plan), "status": status, "exit_code": code, "phases": phases,
                          "final": finals}, wall_time_s=phases["total_s"])
    _say(f"done in {time.perf_counter() - t0:.0f} s of {time_budget:.0f} s; exit code {code}; records: "
         + ", ".join(sorted(p.name for p in out.glob("*.json"))))
    return code


def parser() -> ct.Parser:
    p = ct.Parser(prog=PROG, description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="the folder the device tool brings back: small JSON records only")
    p.add_argument("--time-budget", type=float, required=True, metavar="SECONDS",
                   help="the whole command must end within this (benchmark, runs and records included)")
    p.add_argument("--data", default=None, help="CIFAR-10 (default: $FLATBIAS_CIFAR10, then the search order)")
    p.add_argument("--tiny", action="store_true", default=None,
                   help="the tiny CPU-sized protocol (default on a machine without CUDA)")
    p.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS), help="in order of priority (default 42 43 44)")
    p.add_argument("--precision", choices=precision.PRECISIONS, default=precision.DEFAULT,
                   help="of the runs (default tf32: PyTorch's defaults, as the authors' code most likely ran)")
    p.add_argument("--coherence-1000", choices=BIG_PROXY, default="every",
                   help="the authors' 1000-image proxy: every epoch (if it fits, else at the last), last, none")
    p.add_argument("--bench-seconds", type=float, default=None,
                   help="benchmark budget (default 90 on a GPU, 15 on a CPU)")
    p.add_argument("--reserve", type=float, default=None, metavar="SECONDS",
                   help="kept free at the end, to write the records and exit (default 5 %% of the budget, at "
                        "least 10 s)")
    p.add_argument("--work", default=None, help="checkpoints (default: a temporary folder, deleted)")
    p.add_argument("--keep-work", action="store_true")
    p.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        a = parser().parse_args(argv)
        if not a.time_budget > 0:
            raise ValueError(f"--time-budget must be > 0 seconds, got {a.time_budget:g}")
        if a.bench_seconds is not None and not a.bench_seconds > 0:
            raise ValueError("--bench-seconds must be > 0")
        if a.device is not None:
            try:
                kind = torch.device(a.device).type
            except RuntimeError:
                raise ValueError(f"--device {a.device!r} is not a device (cpu, cuda, cuda:1)") from None
            if kind == "cuda" and not torch.cuda.is_available():
                raise ValueError(f"--device {a.device}: no CUDA GPU here")
        out = Path(a.out)
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file, not a folder")
    except ValueError as exc:
        return ct.fail(exc, PROG)
    try:
        return session(out, a.time_budget, a.data, a.tiny, tuple(a.seeds), a.precision, a.coherence_1000,
                       a.bench_seconds, Path(a.work) if a.work else None, a.keep_work, a.reserve, a.device,
                       started=STARTED if argv is None else None)
    except (cifar.DataNotFoundError, ImportError) as exc:  # no data set, no submitit: say so in one line
        return ct.fail(exc, PROG)


if __name__ == "__main__":
    raise SystemExit(main())
