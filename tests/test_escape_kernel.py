"""The heat-maps' escape kernel (simulate._escape_kernel) against its earlier form, which drew from numba's
np.random: the kernel now inlines the same stream (flatbias.mt19937), so every escape time must be the same."""

import numpy as np
import pytest
from numba import njit, prange

from flatbias import simulate


# ---- the earlier kernel, frozen (commit d3605b1), as the reference


@njit
def _floyd_ref(n, B, chosen, idx):
    m = 0
    for j in range(n - B, n):
        t = np.random.randint(0, j + 1)
        if chosen[t]:
            t = j
        chosen[t] = True
        idx[m] = t
        m += 1
    for q in range(B):
        chosen[idx[q]] = False


@njit(parallel=True)
def _escape_kernel_ref(k, a, d, B, scale, eta, reps, steps, method, noise_std, bernoulli, blowup, seed):
    C, n = k.shape
    D = scale.shape[1]
    out = np.empty(C * reps, dtype=np.int64)
    for row in prange(C * reps):
        np.random.seed(seed + row)
        c = row // reps
        dc, Bc = d[c], B[c]
        w = np.zeros(D)
        h = np.zeros(D)
        chosen = np.zeros(n, dtype=np.bool_)
        idx = np.empty(n, dtype=np.int64)
        norm0 = 0.0
        for j in range(dc):
            w[j] = np.random.random()
            norm0 += w[j] * w[j]
        norm = norm0
        res = steps + 1
        for t in range(steps):
            if bernoulli:
                m = 0
                for i in range(n):
                    if np.random.random() < Bc / n:
                        idx[m] = i
                        m += 1
            else:
                _floyd_ref(n, Bc, chosen, idx)
                m = Bc
            if method == 1:
                norm = 0.0
                for j in range(dc):
                    w[j] += noise_std * np.random.standard_normal()
                    norm += w[j] * w[j]
            for q in range(m):
                h[k[c, idx[q]]] += a[c, idx[q]] / Bc
            for q in range(m):
                ax = k[c, idx[q]]
                if h[ax] != 0.0:
                    old = w[ax]
                    w[ax] = old * (1.0 - eta * h[ax] * scale[c, ax])
                    norm += w[ax] * w[ax] - old * old
                    h[ax] = 0.0
            if t % 64 == 63:
                norm = 0.0
                for j in range(dc):
                    norm += w[j] * w[j]
            if norm >= blowup * norm0:
                res = t + 1
                break
        out[row] = res
    return out


@pytest.mark.parametrize("method,bernoulli", [(0, False), (0, True), (1, False), (1, True), (2, False)])
def test_escape_kernel_gives_the_earlier_kernels_escape_times(method, bernoulli):
    k, a, d, Bs, _ = simulate.authors_grid(24, [1, 3, 7, 12], [1, 2, 5, 11, 23])
    k, a, d, Bs = k.numpy(), a.numpy(), d.numpy(), Bs.numpy()
    scale = np.ones((k.shape[0], int(d.max())))
    if method == 2:
        scale += 0.3 * np.random.default_rng(0).random(scale.shape)
    args = (k, a, d, Bs, scale, 0.5, 3, 400, method, 0.7, bernoulli, simulate.BLOWUP, 2**33 + 17)
    new, ref = simulate._escape_kernel(*args), _escape_kernel_ref(*args)
    assert np.array_equal(new, ref)
    assert 1 < len(np.unique(new)) and (new <= 400).any() and (new == 401).any()  # both outcomes occur


def test_floyd_batches_are_np_random_s_floyd_subsets():
    @njit
    def ref(n, B, count, seed):
        np.random.seed(seed)
        out = np.empty((count, B), dtype=np.int64)
        chosen = np.zeros(n, dtype=np.bool_)
        idx = np.empty(n, dtype=np.int64)
        for r in range(count):
            _floyd_ref(n, B, chosen, idx)
            out[r] = idx[:B]
        return out

    for n, B in ((7, 3), (50, 49), (100, 1), (2, 2)):
        assert np.array_equal(simulate.floyd_batches(n, B, 300, seed=9), ref(n, B, 300, 9))


def test_serial_and_parallel_loops_give_the_same_rows():
    """The plain loop (one numba thread, as records run) and the prange loop give every row the same time."""
    k, a, d, Bs, _ = simulate.authors_grid(20, [2, 9], [1, 4, 19])
    k, a, d, Bs = k.numpy(), a.numpy(), d.numpy(), Bs.numpy()
    args = (k, a, d, Bs, np.ones((k.shape[0], int(d.max()))), 0.5, 4, 300, 0, 0.0, False, simulate.BLOWUP, 5)
    assert np.array_equal(simulate._escape_serial(*args), simulate._escape_parallel(*args))
