"""numba's ``np.random`` stream (MT19937, NumPy's legacy seeding) written out, so that compiled kernels inline it.

Inside a numba kernel every ``np.random.randint`` or ``np.random.random`` is a call into numba's C helper on a
thread-local state (~15 ns per bounded integer on the machines this book was timed on). The functions below keep
the generator in two small arrays the kernel owns (``state``: 624 words, ``pos``: the next word) and inline into
the kernel's loops. They reproduce numba's numbers exactly (tested draw for draw against ``np.random`` in a numba
function), so a kernel can switch to them without changing a single result:

- :func:`seed` = ``np.random.seed(s)`` (the seed taken modulo 2³², Matsumoto and Nishimura's ``init_genrand``);
- :func:`next32` = one tempered 32-bit output;
- :func:`randint` = ``np.random.randint(0, n)`` (NumPy's masked rejection: the low ⌈log₂ n⌉ bits, redrawn while
  ≥ n; no draw at all for n = 1);
- :func:`random` = ``np.random.random()`` (53 bits from two outputs, NumPy's ``rk_double``);
- :func:`standard_normal` = ``np.random.standard_normal()`` (the polar Box-Muller pair, the second kept for the
  next call in ``cache``, as numba keeps it in its state).
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir as llvm_ir
from numba import njit, types
from numba.extending import intrinsic

N, M = 624, 397
_UPPER, _LOWER, _MATRIX_A = np.uint32(0x80000000), np.uint32(0x7FFFFFFF), np.uint32(0x9908B0DF)


def new_state() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Empty generator storage (state words, position, normal cache), to be filled by :func:`seed`."""
    return np.zeros(N, dtype=np.uint32), np.full(1, N, dtype=np.int64), np.zeros(2)


@njit(cache=True, nogil=True, inline="always")
def seed(state, pos, cache, s):  # pragma: no cover - compiled
    """``np.random.seed(s)``: Knuth's multiplier recurrence from s mod 2³²; no normal kept."""
    cache[0] = 0.0
    state[0] = np.uint32(s & 0xFFFFFFFF)
    for i in range(1, N):
        prev = np.uint64(state[i - 1])
        state[i] = np.uint32((np.uint64(1812433253) * (prev ^ (prev >> np.uint64(30))) + np.uint64(i))
                             & np.uint64(0xFFFFFFFF))
    pos[0] = N


@njit(cache=True, nogil=True)
def _twist(state):  # pragma: no cover - compiled
    """The next 624 words of the recurrence (called once per 624 outputs)."""
    for i in range(N - M):
        y = (state[i] & _UPPER) | (state[i + 1] & _LOWER)
        state[i] = state[i + M] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))
    for i in range(N - M, N - 1):
        y = (state[i] & _UPPER) | (state[i + 1] & _LOWER)
        state[i] = state[i + M - N] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))
    y = (state[N - 1] & _UPPER) | (state[0] & _LOWER)
    state[N - 1] = state[M - 1] ^ (y >> np.uint32(1)) ^ (_MATRIX_A * (y & np.uint32(1)))


@njit(cache=True, nogil=True, inline="always")
def next32(state, pos):  # pragma: no cover - compiled
    """The next tempered 32-bit output, as a uint32."""
    if pos[0] >= N:
        _twist(state)
        pos[0] = 0
    y = state[pos[0]]
    pos[0] += 1
    y ^= y >> np.uint32(11)
    y ^= (y << np.uint32(7)) & np.uint32(0x9D2C5680)
    y ^= (y << np.uint32(15)) & np.uint32(0xEFC60000)
    y ^= y >> np.uint32(18)
    return y


@intrinsic
def _leading_zeros(typingctx, v):  # pragma: no cover - compiled
    """The leading zero bits of an int64 (llvm.ctlz; v > 0)."""
    def codegen(context, builder, signature, args):
        i64 = llvm_ir.IntType(64)
        fn = builder.module.declare_intrinsic("llvm.ctlz", [i64], llvm_ir.FunctionType(i64, [i64, llvm_ir.IntType(1)]))
        return builder.call(fn, [args[0], llvm_ir.Constant(llvm_ir.IntType(1), 1)])
    return types.int64(types.int64), codegen


@njit(cache=True, nogil=True, inline="always")
def randint(state, pos, n):  # pragma: no cover - compiled
    """``np.random.randint(0, n)`` for 1 ≤ n ≤ 2³²: uniform on {0, …, n − 1}."""
    if n == 1:
        return 0
    bits = 64 - _leading_zeros(np.int64(n - 1))  # the bit length of n − 1
    mask = np.uint32(0xFFFFFFFF) >> np.uint32(32 - bits)
    while True:
        r = np.int64(next32(state, pos) & mask)
        if r < n:
            return r


@njit(cache=True, nogil=True, inline="always")
def random(state, pos):  # pragma: no cover - compiled
    """``np.random.random()``: a double in [0, 1) from 27 + 26 bits of two outputs."""
    a = next32(state, pos) >> np.uint32(5)
    b = next32(state, pos) >> np.uint32(6)
    return (np.float64(a) * 67108864.0 + np.float64(b)) / 9007199254740992.0


@njit(cache=True, nogil=True, inline="always")
def standard_normal(state, pos, cache):  # pragma: no cover - compiled
    """``np.random.standard_normal()``: cache = [a normal is kept, its value]."""
    if cache[0] != 0.0:
        cache[0] = 0.0
        return 0.0 + 1.0 * cache[1]
    while True:
        x1 = 2.0 * random(state, pos) - 1.0
        x2 = 2.0 * random(state, pos) - 1.0
        r2 = x1 * x1 + x2 * x2
        if r2 < 1.0 and r2 != 0.0:
            break
    f = math.sqrt(-2.0 * math.log(r2) / r2)
    cache[0], cache[1] = 1.0, f * x1
    return 0.0 + 1.0 * (f * x2)
