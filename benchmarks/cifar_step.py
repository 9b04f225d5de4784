"""Time the CIFAR-10 / ResNet-18 training step: the fast pipeline vs a reference-style one, and the metrics.

fast       data resident on the device as uint8, crop + flip on the device in one gather, channels_last on CUDA,
           no host sync inside the step (flatbias.cifar_train), in each --precision and --compile variant
reference  a DataLoader over a Dataset doing per-image CPU transforms (pad, random crop, flip, ToTensor,
           Normalize), float32 with PyTorch's default TF32 convolutions, eager, as the authors' code with
           torchvision (loss.item() every step)
metrics    one epoch's measurements: test accuracy (10k images), feature rank over the un-augmented training set
           (50k) and the 100-image coherence proxy

All in one process, on the same model and data size. On a GPU it also reports the model FLOPs utilisation (MFU:
FLOPs counted with torch.utils.flop_counter, against the GPU's dense bf16 tensor-core peak, whatever the
variant's precision) and the epoch time each step time implies (391 steps).

    python benchmarks/cifar_step.py                                             # CPU: a few batches
    python benchmarks/cifar_step.py --precision fp32 bf16 --compile none default reduce-overhead \\
        --workers 8 --out results/cifar10/benchmark_h100.json                    # on a GPU
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from flatbias import cifar_train as ct
from flatbias import precision, records
from flatbias.gpu_session import PEAKS

PEAK_BF16 = {k: v["bf16"] for k, v in PEAKS.items()}  # dense, no sparsity; the first name contained in the GPU's wins
TRAIN_IMAGES, TEST_IMAGES = 50_000, 10_000


class ReferenceDataset(Dataset):
    """Per-image CPU transforms: RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor, Normalize."""

    def __init__(self, x: np.ndarray, y: np.ndarray):
        self.x, self.y = x, y
        self.mean = np.array(ct.MEAN, np.float32)[:, None, None]
        self.std = np.array(ct.STD, np.float32)[:, None, None]

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        img = np.pad(self.x[i], ((4, 4), (4, 4), (0, 0)))
        dy, dx = np.random.randint(0, 9, 2)
        img = img[dy:dy + 32, dx:dx + 32]
        if np.random.rand() < 0.5:
            img = img[:, ::-1]
        t = (img.transpose(2, 0, 1).astype(np.float32) / 255.0 - self.mean) / self.std
        return torch.from_numpy(np.ascontiguousarray(t)), int(self.y[i])


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def flops_per_image(cfg: ct.TrainConfig, dev: torch.device) -> float:
    """Model FLOPs of one training step per image (forward + backward; twice that for SAM)."""
    model, _, _ = ct.build(cfg, dev)
    x = torch.randn(8, 3, 32, 32, device=dev, dtype=torch.float32)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=dev)).backward()
    return fc.get_total_flops() / 8 * (2 if cfg.optimizer == "sam" else 1)


def time_fast(cfg, xd, yd, dev, batches, warmup):
    """Seconds per step of the fast pipeline (augmentation included), after ``warmup`` steps."""
    model, opt, _ = ct.build(cfg, dev)
    fwd = ct.compiled(model, cfg)
    gen = ct.epoch_generator(cfg.seed, 0, dev)
    perm = torch.randperm(len(yd), device=dev, generator=gen)
    nb = len(yd) // cfg.batch_size
    acc, t0 = torch.zeros((), device=dev), None
    with precision.matmul_precision(cfg.precision):
        for s in range(warmup + batches):
            if s == warmup:
                _sync(dev)
                t0 = time.perf_counter()
            idx = perm[(s % nb) * cfg.batch_size:(s % nb + 1) * cfg.batch_size]
            xb = ct.to_input(ct.augment(xd[idx], gen), cfg.channels_last)
            acc += ct.train_step(model, fwd, opt, xb, yd[idx], cfg)[0]
        _sync(dev)
    if not torch.isfinite(acc):
        raise RuntimeError(f"non-finite loss in the timed steps of {cfg}")
    return (time.perf_counter() - t0) / batches


def time_reference(cfg, x_u8, y, dev, batches, warmup, workers):
    """Seconds per step of a torchvision-style pipeline (see the module docstring)."""
    cfg = dataclasses.replace(cfg, precision="tf32", channels_last=False, compile=None)
    model, opt, _ = ct.build(cfg, dev)
    loader = DataLoader(ReferenceDataset(x_u8, y), batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                        pin_memory=dev.type == "cuda", drop_last=True, persistent_workers=workers > 0)
    it, t0 = iter(loader), None
    with precision.matmul_precision(cfg.precision):
        for s in range(warmup + batches):
            if s == warmup:
                _sync(dev)
                t0 = time.perf_counter()
            try:
                xb, yb = next(it)
            except StopIteration:
                it = iter(loader)
                xb, yb = next(it)
            loss, _ = ct.train_step(model, model, opt, xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True),
                                    cfg)
            float(loss)  # the reference loop logs loss.item() every step
        _sync(dev)
    return (time.perf_counter() - t0) / batches


def time_metrics(cfg, dev_data, dev) -> dict:
    """Seconds for one epoch's metrics (test accuracy, feature rank, 100-image coherence proxy)."""
    model, _, _ = ct.build(cfg, dev)
    with precision.matmul_precision(cfg.precision):
        _sync(dev)
        t0 = time.perf_counter()
        ct.accuracy(model, dev_data["x_test"], dev_data["y_test"], cfg)
        m = ct.metrics(model, dev_data, cfg)
        _sync(dev)
    return {"metric_s": time.perf_counter() - t0, "rank_s": m["rank_time_s"], "coherence_s": m["coherence_time_s"]}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None)
    p.add_argument("--batches", type=int, default=None, help="timed batches (default 3 on CPU, 100 on GPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed first steps (default 1 on CPU, 30 on GPU)")
    p.add_argument("--optimizer", choices=("sgd", "sam", "both"), default="both")
    p.add_argument("--precision", nargs="+", choices=precision.PRECISIONS, default=["fp32"])
    p.add_argument("--compile", nargs="+", choices=("none", *ct.COMPILE_MODES[1:]), default=["none"])
    p.add_argument("--stem", default="imagenet")
    p.add_argument("--width", type=int, default=64, help="channel width (64: the paper's ResNet-18)")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference pipeline")
    p.add_argument("--images", type=int, default=None, help="training images (default 50,000 on GPU)")
    p.add_argument("--no-metrics", action="store_true", help="skip timing the per-epoch metrics")
    p.add_argument("--out", default=None, help="write a result record (JSON) to this path")
    a = p.parse_args(argv)
    from flatbias.repro import device as pick_device

    dev = pick_device(a.device)
    gpu = dev.type == "cuda"
    batches = a.batches or (100 if gpu else 3)
    warmup = a.warmup if a.warmup is not None else (30 if gpu else 1)
    n = a.images or (TRAIN_IMAGES if gpu else 128 * (batches + warmup))
    rng = np.random.default_rng(0)  # random images: the step's cost does not depend on the pixels
    x, y = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)
    n_test = TEST_IMAGES if gpu else min(n, 1000)
    dev_data = {"x_train": torch.as_tensor(x, device=dev), "y_train": torch.as_tensor(y, device=dev),
                "x_test": torch.as_tensor(x[:n_test], device=dev), "y_test": torch.as_tensor(y[:n_test], device=dev)}
    hw = torch.cuda.get_device_name(dev) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    peak = next((v for k, v in PEAK_BF16.items() if k in hw), None) if gpu else None
    variants = [(pr, None if c == "none" else c) for pr in a.precision for c in a.compile]
    opts = ("sgd", "sam") if a.optimizer == "both" else (a.optimizer,)
    rows, t_all = [], time.perf_counter()
    with tqdm(total=len(opts) * (len(variants) + 1), desc="cifar step benchmark", unit="timing") as bar:
        for opt in opts:
            base = ct.resolve(ct.TrainConfig(optimizer=opt, rho=0.1, stem=a.stem, width=a.width), dev)
            fl = flops_per_image(base, dev)
            ref = time_reference(base, x, y, dev, batches, warmup, a.workers)
            bar.update()
            steps = -(-TRAIN_IMAGES // base.batch_size)
            for pr, comp in variants:
                cfg = dataclasses.replace(base, precision=pr, compile=comp)
                fast = time_fast(cfg, dev_data["x_train"], dev_data["y_train"], dev, batches, warmup)
                bar.update()
                row = {"optimizer": opt, "precision": pr, "compile": comp or "none", "fast_step_ms": 1e3 * fast,
                       "reference_step_ms": 1e3 * ref, "speedup": ref / fast, "fast_img_per_s": base.batch_size / fast,
                       "fast_epoch_s": steps * fast, "reference_epoch_s": steps * ref, "gflop_per_img": fl / 1e9,
                       "mfu_vs_bf16_peak": None if peak is None else fl * base.batch_size / fast / peak}
                rows.append(row)
                tqdm.write(f"{opt} {pr} compile={comp or 'none'}: {1e3 * fast:.2f} ms/step, epoch {steps * fast:.2f} s"
                           f" | reference {1e3 * ref:.1f} ms/step, epoch {steps * ref:.1f} s | {ref / fast:.1f}x"
                           + ("" if peak is None else f" | MFU {100 * row['mfu_vs_bf16_peak']:.1f}%"))
    met = None if a.no_metrics else time_metrics(ct.resolve(ct.TrainConfig(width=a.width), dev), dev_data, dev)
    if met:
        print(f"metrics of one epoch ({n_test} test, {n} train images): {met['metric_s']:.2f} s "
              f"(rank {met['rank_s']:.2f} s, coherence {met['coherence_s']:.2f} s)")
    settings = {"device": hw, "stem": a.stem, "width": a.width, "batch": 128, "timed_batches": batches,
                "warmup": warmup, "train_images": n, "test_images": n_test, "reference_workers": a.workers,
                "torch": torch.__version__, "peak_bf16_flops": peak}
    if a.out:
        path = records.write_record(a.out, "cifar10_step_benchmark", "full" if gpu and a.width == 64 else "smoke",
                                    settings, {"steps": rows, "metrics": met}, wall_time_s=time.perf_counter() - t_all)
        print(f"record: {path}")
    return rows, met


if __name__ == "__main__":
    main()
