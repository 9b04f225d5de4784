"""Argument checks at flatbias's public boundary: shapes against each other, dtype, finiteness and ranges.

Every public function checks its arguments once, on entry; the numerical code after that trusts them (hot
loops and compiled kernels call private, unchecked helpers). A failed check raises
:class:`InvalidArgumentError`, a ``ValueError`` whose message names the argument, what was expected and
what came in::

    y must have shape (5,) to match X's 5 rows; got (5, 1)

A wrong type (a list where a tensor is expected, 2.5 where an integer is) is :class:`ArgumentTypeError`, which
is both an ``InvalidArgumentError`` and a ``TypeError``. Command-line entry points use :class:`CliParser`
and :func:`cli_errors`: one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import math
import numbers
import sys
from contextlib import contextmanager
from typing import Iterator

import numpy as np
import torch


class InvalidArgumentError(ValueError):
    """An argument has the wrong shape, dtype, value or range: the input is at fault."""


class ArgumentTypeError(InvalidArgumentError, TypeError):
    """An argument has the wrong type (a list where a tensor is expected, a float where an integer is)."""


def fmt_shape(shape) -> str:
    """(5,), (5, 1), (n, 3): entries may be ints or names."""
    items = [str(k) for k in shape]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _why(why: str) -> str:
    return f" {why}" if why else ""


# ---------------------------------------------------------------------------------------------- tensors
def tensor(name: str, x, ndim: int | None = None, layout: str = "", *, dtype: str | None = "float",
           finite: bool = True) -> torch.Tensor:
    """``x`` itself, checked: a torch.Tensor with ``ndim`` dimensions (``layout`` describes them, e.g.
    "(n, d)"), of dtype kind ``dtype`` ("float", "int", "real", "bool" or None) and with finite entries."""
    if not isinstance(x, torch.Tensor):
        raise ArgumentTypeError(f"{name} must be a torch.Tensor{_why(layout)}; got {type(x).__name__}")
    if ndim is not None and x.ndim != ndim:
        raise InvalidArgumentError(f"{name} must be a {ndim}-D tensor{_why(layout)}; "
                                   f"got shape {fmt_shape(x.shape)}")
    kind(name, x, dtype)
    if finite:
        check_finite(name, x)
    return x


def as_tensor(name: str, x, *, promote_floats: bool = True) -> torch.Tensor:
    """``x`` if it is a tensor, else ``torch.as_tensor(x)`` (dtype kept); non-numbers are a clear error.
    Python floats become float64 unless ``promote_floats=False`` (then torch's default dtype, as torch does)."""
    if isinstance(x, torch.Tensor):
        return x
    try:
        t = torch.as_tensor(x)
        if promote_floats and t.dtype == torch.float32 and not isinstance(x, np.ndarray):
            t = torch.as_tensor(x, dtype=torch.float64)  # Python floats keep their 53 bits
        return t
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ArgumentTypeError(f"{name} must be a tensor or an array of numbers; got {type(x).__name__} "
                                f"({exc})") from None


def array(name: str, x, ndim: int | None = None, layout: str = "", *, finite: bool = True) -> np.ndarray:
    """``x`` (array, tensor or nested list of numbers) as a C-contiguous float64 numpy array, checked like
    :func:`tensor` (real numbers, ``ndim`` dimensions, finite unless ``finite=False``)."""
    if isinstance(x, torch.Tensor):
        kind(name, x, "real")
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x)
    except ValueError as exc:  # ragged nested lists
        raise InvalidArgumentError(f"{name} must be a rectangular array{_why(layout)}; {exc}") from None
    if a.dtype.kind not in "iuf":  # not bool, complex, object or strings
        raise ArgumentTypeError(f"{name} must hold real numbers{_why(layout)}; got dtype {a.dtype}")
    a = np.asarray(a, dtype=np.float64, order="C")  # (ascontiguousarray would turn 0-D into 1-D)
    if ndim is not None and a.ndim != ndim:
        raise InvalidArgumentError(f"{name} must be a {ndim}-D array{_why(layout)}; "
                                   f"got shape {fmt_shape(a.shape)}")
    return check_finite(name, a) if finite else a


def kind(name: str, x, dtype: str | None) -> None:
    """The dtype kind of a tensor: "float" (floating point), "int" (integer), "real" (integer or floating,
    not bool or complex), "bool", or None (anything)."""
    if dtype is None or (dtype == "float" and x.is_floating_point()):  # the common case first
        return
    fl, cx, bo = x.is_floating_point(), x.is_complex(), x.dtype == torch.bool
    ok = {"float": fl, "int": not (fl or cx or bo), "real": not (cx or bo), "bool": bo}[dtype]
    if not ok:
        want = {"float": "a floating-point", "int": "an integer", "bool": "a boolean",
                "real": "a real (integer or floating-point)"}[dtype]
        raise ArgumentTypeError(f"{name} must be {want} tensor; got dtype {x.dtype}")


def _finite_sum(x: torch.Tensor) -> bool:
    """A cheap first test: the sum of finite numbers is finite unless it overflows (then the caller checks
    every entry); one NaN or inf makes it NaN or inf. One reduction instead of isfinite + all."""
    try:
        s = (x.detach() if x.requires_grad else x).sum().item()
    except RuntimeError:  # inside torch.func.vmap the values are not available: only shapes are checked
        return True
    return s - s == 0  # False for NaN and ±inf (also complex)


def check_finite(name: str, x):
    """``x`` unchanged if every entry is finite (integer and bool tensors always are); else a clear error."""
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            bad = ~np.isfinite(x)
            first = tuple(int(i) for i in np.argwhere(bad)[0])
            raise InvalidArgumentError(f"{name} must be finite; it contains NaN or inf ({int(bad.sum())} of "
                                       f"{x.size} entries, first at index {first}: {x[first]})")
        return x
    if (x.is_floating_point() or x.is_complex()) and not _finite_sum(x) and not bool(torch.isfinite(x).all()):
        bad = ~torch.isfinite(x)
        first = tuple(int(i) for i in bad.nonzero()[0])
        raise InvalidArgumentError(f"{name} must be finite; it contains NaN or inf ({int(bad.sum())} of "
                                   f"{x.numel()} entries, first at index {first}: {x[first].item()})")
    return x


def shape(name: str, x, expected: tuple, why: str = ""):
    """``x`` unchanged if its shape is ``expected`` (str entries are names that match any size)."""
    got = tuple(x.shape)
    if len(got) != len(expected) or any(not isinstance(e, str) and g != e for g, e in zip(got, expected)):
        raise InvalidArgumentError(f"{name} must have shape {fmt_shape(expected)}{_why(why)}; "
                                   f"got {fmt_shape(got)}")
    return x


def same_kind(**named: torch.Tensor) -> None:
    """All tensors share one dtype and one device: ``same_kind(θ=theta, X=X)``."""
    (n0, t0), *rest = named.items()
    for n1, t1 in rest:
        if t1.dtype != t0.dtype:
            raise InvalidArgumentError(f"{n1} must have the dtype of {n0} ({t0.dtype}); got {t1.dtype}")
        if t1.device != t0.device:
            raise InvalidArgumentError(f"{n1} must be on the device of {n0} ({t0.device}); got {t1.device}")


# ---------------------------------------------------------------------------------------------- scalars
def _scalar(name: str, v, what):
    """``v`` as a Python number (0-D tensors and arrays unpacked); ``what()`` describes it for the error."""
    if type(v) is float or type(v) is int:  # the common case, fast
        return v
    if isinstance(v, (torch.Tensor, np.ndarray)) and v.ndim == 0:
        v = v.item()
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real):
        raise ArgumentTypeError(f"{name} must be {what()}; got {v!r} ({type(v).__name__})")
    return v


def _interval(lo, hi, lo_open: bool, hi_open: bool, allow_inf: bool) -> str:
    if lo is not None and hi is not None:
        return f"a number in {'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
    num = "a number" if allow_inf else "a finite number"
    if lo is not None:
        return f"{num} {'>' if lo_open else '≥'} {lo:g}"
    if hi is not None:
        return f"{num} {'<' if hi_open else '≤'} {hi:g}"
    return num


def number(name: str, v, lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
           hi_open: bool = False, allow_inf: bool = False, why: str = "") -> float:
    """``v`` as a float, checked: a real number (0-dim tensors and numpy scalars too), not NaN, finite unless
    ``allow_inf``, in the interval given by ``lo``/``hi`` (closed unless ``lo_open``/``hi_open``)."""
    def desc():
        return _interval(lo, hi, lo_open, hi_open, allow_inf)

    x = float(_scalar(name, v, desc))
    bad = (math.isnan(x) or (math.isinf(x) and not allow_inf)
           or (lo is not None and (x <= lo if lo_open else x < lo))
           or (hi is not None and (x >= hi if hi_open else x > hi)))
    if bad:
        raise InvalidArgumentError(f"{name} must be {desc()}{_why(why)}; got {v!r}")
    return x


def positive(name: str, v, why: str = "") -> float:
    """A finite number > 0 (step sizes, radii, tolerances)."""
    return number(name, v, 0.0, lo_open=True, why=why)


def nonnegative(name: str, v, why: str = "") -> float:
    """A finite number ≥ 0 (noise levels, ρ/α)."""
    return number(name, v, 0.0, why=why)


def probability(name: str, v, *, lo_open: bool = False, hi_open: bool = False, why: str = "") -> float:
    """A number in [0, 1] (ends open on request)."""
    return number(name, v, 0.0, 1.0, lo_open=lo_open, hi_open=hi_open, why=why)


def integer(name: str, v, lo: int | None = None, hi: int | None = None, why: str = "") -> int:
    """``v`` as an int, checked: an integer (or an integral float such as 2.0; not a bool), lo ≤ v ≤ hi."""
    def rng():
        return (f" with {lo} ≤ {name} ≤ {hi}" if lo is not None and hi is not None
                else f" ≥ {lo}" if lo is not None else f" ≤ {hi}" if hi is not None else "")

    x = _scalar(name, v, lambda: f"an integer{rng()}")
    if not isinstance(x, numbers.Integral):
        if not (math.isfinite(x) and float(x).is_integer()):
            raise ArgumentTypeError(f"{name} must be an integer{rng()}; got {v!r}")
    x = int(x)
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise InvalidArgumentError(f"{name} must be an integer{rng()}{_why(why)}; got {v!r}")
    return x


def batch_size(B, n: int, name: str = "B", why: str = "(the number of samples)") -> int:
    """A batch size: an integer with 1 ≤ B ≤ n."""
    x = _scalar(name, B, lambda: f"an integer with 1 ≤ B ≤ n = {n}")
    if not isinstance(x, numbers.Integral) and not (math.isfinite(x) and float(x).is_integer()):
        raise ArgumentTypeError(f"the batch size {name} must be an integer with 1 ≤ B ≤ n = {n}; got {B!r}")
    if not 1 <= int(x) <= n:
        raise InvalidArgumentError(f"the batch size {name} must satisfy 1 ≤ B ≤ n = {n}{_why(why)}; "
                                   f"got {B!r}")
    return int(x)


def choice(name: str, v, choices):
    """``v`` unchanged if it is one of ``choices``."""
    if not any(isinstance(v, type(c)) and v == c for c in choices):
        raise InvalidArgumentError(f"unknown {name} {v!r}; use one of {', '.join(map(repr, choices))}")
    return v


def generator(name: str, g, optional: bool = True):
    """A ``torch.Generator`` (or None when ``optional``)."""
    if (g is None and not optional) or (g is not None and not isinstance(g, torch.Generator)):
        raise ArgumentTypeError(f"{name} must be a torch.Generator{' or None' if optional else ''}; "
                                f"got {type(g).__name__}")
    return g


def dtype(name: str, dt) -> torch.dtype:
    """A floating-point torch dtype."""
    if not isinstance(dt, torch.dtype) or not dt.is_floating_point:
        raise ArgumentTypeError(f"{name} must be a floating-point torch.dtype such as torch.float64; "
                                f"got {dt!r}")
    return dt


# ---------------------------------------------------------------------------------------------- command lines
class CliParser(argparse.ArgumentParser):
    """argparse, but a bad argument prints one line on stderr (no usage block) and exits with status 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


@contextmanager
def cli_errors(prog: str) -> Iterator[None]:
    """Turn a bad input (``ValueError``, including :class:`InvalidArgumentError`) or missing data
    (``OSError``) into one line on stderr and exit status 2, without a traceback."""
    try:
        yield
    except (ValueError, OSError) as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        print(f"{prog}: error: {text}", file=sys.stderr)
        raise SystemExit(2) from None
