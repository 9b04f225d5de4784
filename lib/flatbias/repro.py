"""Reproducibility: seeds, deterministic settings and device choice."""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from . import validate as vd


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (CPU and CUDA); return a fresh torch generator seeded with ``seed``.

    Prefer passing the returned generator to sampling calls over relying on the global state.
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
        raise vd.InvalidArgumentError(f"seed must be a non-negative int below 2**64, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def deterministic(enabled: bool = True) -> None:
    """Ask torch for deterministic kernels (bit-identical CPU runs; slower cuDNN choices on GPU)."""
    if not isinstance(enabled, bool):
        raise vd.ArgumentTypeError(f"enabled must be True or False; got {enabled!r}")
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    if torch.backends.cudnn.is_available():
        torch.backends.cudnn.benchmark = not enabled
        torch.backends.cudnn.deterministic = enabled


def device(prefer: str | None = None) -> torch.device:
    """The device to compute on: ``prefer`` if given, else CUDA when available, else CPU."""
    if prefer is not None:
        if not isinstance(prefer, (str, torch.device)):
            raise vd.ArgumentTypeError(
                f"prefer must be a device name such as 'cpu' or 'cuda:0', a torch.device or "
                f"None; got {type(prefer).__name__}")
        try:
            dev = torch.device(prefer)
        except RuntimeError as exc:
            raise vd.InvalidArgumentError(f"prefer = {prefer!r} is not a device: {exc}") from None
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {prefer!r} was asked for but no CUDA GPU is available; use 'cpu'")
        return dev
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
