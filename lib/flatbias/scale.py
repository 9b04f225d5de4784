"""Which scale a run uses: ``smoke`` (CPU, minutes for the whole book) or ``full`` (the papers' sizes).

The scale comes from, in order: an explicit argument (a notebook's ``parameters`` cell, so
papermill works), the ``BOOK_SCALE`` environment variable, and otherwise ``full`` when a CUDA GPU
is present and ``smoke`` when it is not.
"""

from __future__ import annotations

import os
from typing import TypeVar

SCALES = ("smoke", "full")
ENV_VAR = "BOOK_SCALE"

T = TypeVar("T")


class UnknownScaleError(ValueError):
    """Raised for a scale name that is not one of :data:`SCALES`."""


def _check(name: str, source: str) -> str:
    value = name.strip().lower()
    if value not in SCALES:
        raise UnknownScaleError(
            f"unknown scale {name!r} (from {source}); valid scales are {', '.join(SCALES)}. "
            f"Set {ENV_VAR}=smoke for a quick CPU run or {ENV_VAR}=full for the papers' sizes."
        )
    return value


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        return False
    return bool(torch.cuda.is_available())


def get_scale(scale: str | None = None) -> str:
    """Resolve the scale in force: argument, then ``$BOOK_SCALE``, then GPU → full, CPU → smoke."""
    if scale is not None:
        return _check(scale, "argument")
    env = os.environ.get(ENV_VAR)
    if env is not None and env.strip():
        return _check(env, f"${ENV_VAR}")
    return "full" if _cuda_available() else "smoke"


def pick(scale: str, *, smoke: T, full: T) -> T:
    """Choose a setting by scale: ``pick(scale, smoke=5, full=100)``."""
    return {"smoke": smoke, "full": full}[_check(scale, "pick()")]
