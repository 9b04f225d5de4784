"""flatbias.mt19937 against numba's own np.random: the same numbers, draw for draw."""

import numpy as np
import pytest
from numba import njit

from flatbias import mt19937 as mt


@njit
def _ours(s, ns, K):
    state, pos, cache = np.zeros(624, dtype=np.uint32), np.full(1, 624, dtype=np.int64), np.zeros(2)
    mt.seed(state, pos, cache, s)
    out = np.empty((len(ns), K), dtype=np.int64)
    dbl = np.empty((3, K))
    for q in range(K):  # interleaved, as a kernel draws them (an odd count of normals between seeds)
        for a in range(len(ns)):
            out[a, q] = mt.randint(state, pos, ns[a])
        dbl[0, q] = mt.random(state, pos)
        dbl[1, q] = mt.standard_normal(state, pos, cache)
        if q % 3 == 0:
            dbl[2, q] = mt.standard_normal(state, pos, cache)
        if q == K // 2:  # reseeding drops a kept normal
            mt.seed(state, pos, cache, s + 1)
    return out, dbl


@njit
def _numba(s, ns, K):
    np.random.seed(s)
    out = np.empty((len(ns), K), dtype=np.int64)
    dbl = np.empty((3, K))
    for q in range(K):
        for a in range(len(ns)):
            out[a, q] = np.random.randint(0, ns[a])
        dbl[0, q] = np.random.random()
        dbl[1, q] = np.random.standard_normal()
        if q % 3 == 0:
            dbl[2, q] = np.random.standard_normal()
        if q == K // 2:
            np.random.seed(s + 1)
    return out, dbl


@pytest.mark.parametrize("s", [0, 1, 12345, 2**31 + 11, 2**32 + 7, 2**40 - 3])
def test_the_stream_equals_numbas_np_random(s):
    ns = np.array([1, 2, 3, 7, 8, 9, 50, 100, 1000, 2**31 + 5, 2**32])
    a, x = _ours(s, ns, 700)  # 700 × 13 words: several twists of the 624-word state
    b, y = _numba(s, ns, 700)
    x[2][np.arange(700) % 3 != 0] = y[2][np.arange(700) % 3 != 0] = 0.0  # (unset entries)
    assert np.array_equal(a, b) and np.array_equal(x.view(np.int64), y.view(np.int64))
    assert (a[0] == 0).all() and all(((a[k] >= 0) & (a[k] < ns[k])).all() for k in range(len(ns)))


def test_a_wrong_tempering_constant_is_seen():
    """The comparison above fails for a generator that differs in one constant."""
    @njit
    def tempered_wrong(s, K):
        state, pos, cache = np.zeros(624, dtype=np.uint32), np.full(1, 624, dtype=np.int64), np.zeros(2)
        mt.seed(state, pos, cache, s)
        out = np.empty(K, dtype=np.int64)
        for q in range(K):
            y = mt.next32(state, pos)
            out[q] = np.int64(y ^ np.uint32(1))
        return out

    ours = tempered_wrong(5, 50)
    theirs = _numba(5, np.array([2**32]), 50)[0][0]
    assert not np.array_equal(ours, theirs)
