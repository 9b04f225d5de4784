"""Time one training step of the CIFAR-10 / ResNet-18 protocol: the fast pipeline vs a reference-style one.

fast       data resident on the device as uint8, crop + flip on the device in one gather, bf16 autocast and
           channels_last on CUDA, no host sync inside the step (flatbias.cifar_train)
reference  a DataLoader over a Dataset doing per-image CPU transforms (pad, random crop, flip, ToTensor,
           Normalize), fp32, as the authors' code does with torchvision

Both run in the same process on the same model and data. On a GPU it also reports the model FLOPs utilisation
(MFU, counted with torch.utils.flop_counter against the GPU's dense bf16 peak) and the epoch time it implies.

    python benchmarks/cifar_step.py                      # CPU: a few batches
    python benchmarks/cifar_step.py --batches 100 --optimizer sam --workers 8    # on a GPU
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode

from flatbias import cifar_train as ct

PEAK_BF16 = {"H100": 989e12, "H200": 989e12, "A100": 312e12, "L4": 121e12, "A10": 125e12}  # dense, no sparsity
TRAIN_IMAGES = 50_000


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
    x = torch.randn(8, 3, 32, 32, device=dev)
    with FlopCounterMode(display=False) as fc:
        torch.nn.functional.cross_entropy(model(x), torch.zeros(8, dtype=torch.long, device=dev)).backward()
    return fc.get_total_flops() / 8 * (2 if cfg.optimizer == "sam" else 1)


def time_fast(cfg, x_u8, y, dev, batches, warmup):
    model, opt, _ = ct.build(cfg, dev)
    fwd = torch.compile(model) if cfg.compile else model
    xd, yd = torch.as_tensor(x_u8, device=dev), torch.as_tensor(y, device=dev)
    gen = ct.epoch_generator(cfg.seed, 0, dev)
    perm = torch.randperm(len(yd), device=dev, generator=gen)
    nb = len(yd) // cfg.batch_size
    acc = torch.zeros((), device=dev)
    t0 = None
    for s in range(warmup + batches):
        if s == warmup:
            _sync(dev)
            t0 = time.perf_counter()
        idx = perm[(s % nb) * cfg.batch_size:(s % nb + 1) * cfg.batch_size]
        loss, _ = ct.train_step(model, fwd, opt, ct.to_input(ct.augment(xd[idx], gen), cfg.channels_last), yd[idx], cfg)
        acc += loss
    _sync(dev)
    assert torch.isfinite(acc)
    return (time.perf_counter() - t0) / batches


def time_reference(cfg, x_u8, y, dev, batches, warmup, workers):
    cfg = ct.TrainConfig(**{**cfg.__dict__, "amp": False, "channels_last": False, "compile": False})
    model, opt, _ = ct.build(cfg, dev)
    loader = DataLoader(ReferenceDataset(x_u8, y), batch_size=cfg.batch_size, shuffle=True, num_workers=workers,
                        pin_memory=dev.type == "cuda", drop_last=True, persistent_workers=workers > 0)
    it, t0 = iter(loader), None
    for s in range(warmup + batches):
        if s == warmup:
            _sync(dev)
            t0 = time.perf_counter()
        try:
            xb, yb = next(it)
        except StopIteration:
            it = iter(loader)
            xb, yb = next(it)
        loss, _ = ct.train_step(model, model, opt, xb.to(dev, non_blocking=True), yb.to(dev, non_blocking=True), cfg)
        float(loss)  # the reference loop logs loss.item() every step
    _sync(dev)
    return (time.perf_counter() - t0) / batches


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None)
    p.add_argument("--batches", type=int, default=None, help="timed batches (default 3 on CPU, 100 on GPU)")
    p.add_argument("--warmup", type=int, default=None)
    p.add_argument("--optimizer", choices=("sgd", "sam", "both"), default="both")
    p.add_argument("--stem", default="imagenet")
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the reference pipeline")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--real-data", action="store_true", help="use CIFAR-10 (default: random uint8 images)")
    a = p.parse_args(argv)
    from flatbias.repro import device as pick_device

    dev = pick_device(a.device)
    gpu = dev.type == "cuda"
    batches = a.batches or (100 if gpu else 3)
    warmup = a.warmup if a.warmup is not None else (20 if gpu else 1)
    if a.real_data:
        from flatbias import cifar

        d = cifar.load()
        x, y = d.x_train, d.y_train
    else:
        rng = np.random.default_rng(0)
        n = TRAIN_IMAGES if gpu else 128 * (batches + warmup)
        x, y = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).astype(np.int64)
    torch.set_float32_matmul_precision("high")
    hw = torch.cuda.get_device_name(dev) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    peak = next((v for k, v in PEAK_BF16.items() if k in hw), None) if gpu else None
    out = []
    for opt in (("sgd", "sam") if a.optimizer == "both" else (a.optimizer,)):
        cfg = ct.resolve(ct.TrainConfig(optimizer=opt, rho=0.1, stem=a.stem, compile=a.compile), dev)
        fl = flops_per_image(cfg, dev)
        fast = time_fast(cfg, x, y, dev, batches, warmup)
        ref = time_reference(cfg, x, y, dev, batches, warmup, a.workers)
        steps = -(-TRAIN_IMAGES // cfg.batch_size)
        row = {"device": hw, "optimizer": opt, "stem": a.stem, "batch": cfg.batch_size, "timed_batches": batches,
               "fast_step_ms": 1e3 * fast, "reference_step_ms": 1e3 * ref, "speedup": ref / fast,
               "fast_img_per_s": cfg.batch_size / fast, "reference_img_per_s": cfg.batch_size / ref,
               "fast_epoch_s": steps * fast, "reference_epoch_s": steps * ref, "gflop_per_img": fl / 1e9,
               "mfu_fast": None if peak is None else fl * cfg.batch_size / fast / peak}
        out.append(row)
        print(f"{opt}: fast {1e3 * fast:.1f} ms/step ({row['fast_img_per_s']:.0f} img/s, epoch {row['fast_epoch_s']:.1f} s)"
              f" | reference {1e3 * ref:.1f} ms/step (epoch {row['reference_epoch_s']:.1f} s) | speedup {ref / fast:.2f}x"
              + ("" if peak is None else f" | MFU {100 * row['mfu_fast']:.1f}%") + f" | {fl / 1e9:.3f} GFLOP/img")
    print(json.dumps(out, indent=1))
    return out


if __name__ == "__main__":
    main()
