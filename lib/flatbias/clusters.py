"""How tightly the neurons of a two-layer network gather into groups (chapter 09, paper 1's Figures 2–3).

Paper 1 reports that beyond its theorem (n > d data points) label-noise SGD makes "the neurons ... collapse
into clusters". The book measures that with an exact k-means score of the neuron weight vectors
θ_1 … θ_m ∈ R^d:

    U_k(Θ) = min over partitions of {1..m} into k non-empty groups of Σ_j ‖θ_j − c_g(j)‖²  /  Σ_j ‖θ_j − θ̄‖²,

the share of the neurons' spread that k groups leave unexplained (c_g: the mean of group g). U_k = 0 exactly
when the neurons sit on at most k distinct points; for m random points it is of order 1/k. m is small (10), so
the minimum is taken over *every* partition (Stirling number S(m, k) ≤ 42 525 for m = 10): no k-means
heuristic, no local minima.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=64)
def partitions(m: int, k: int) -> np.ndarray:
    """Every partition of m items into exactly k non-empty groups, as labels (S(m, k), m) in 0..k-1.

    Restricted growth strings: item 0 has label 0 and each item's label is at most one more than the largest
    label before it, so each partition appears exactly once."""
    if not (isinstance(m, (int, np.integer)) and isinstance(k, (int, np.integer))) or m < 1 or not 1 <= k <= m:
        raise ValueError(f"need integers 1 <= k <= m; got m = {m!r}, k = {k!r}")
    out = []

    def grow(prefix: list, top: int):
        left = m - len(prefix)
        if left == 0:
            if top == k - 1:
                out.append(list(prefix))
            return
        if (k - 1 - top) > left:  # not enough items left to open the missing groups
            return
        for lab in range(min(top + 1, k - 1) + 1):
            prefix.append(lab)
            grow(prefix, max(top, lab))
            prefix.pop()

    grow([0], 0)
    arr = np.array(out, dtype=np.int64)
    arr.setflags(write=False)
    return arr


def within_ss(points, labels) -> np.ndarray:
    """Within-group sum of squares of ``points`` (m, d) for each labelling in ``labels`` (P, m)."""
    x = np.asarray(points, dtype=np.float64)
    labels = np.asarray(labels)
    k = int(labels.max()) + 1
    onehot = (labels[..., None] == np.arange(k)).astype(np.float64)  # (P, m, k)
    counts = onehot.sum(1)  # (P, k)
    sums = np.einsum("pmk,md->pkd", onehot, x)
    between = np.where(counts > 0, (sums**2).sum(-1) / np.maximum(counts, 1), 0.0).sum(-1)
    return (x**2).sum() - between


def unexplained(points, k: int) -> tuple[float, np.ndarray]:
    """U_k of the points (m, d) and the best partition's labels (m,). U_k = 0 when k >= m or all coincide."""
    x = np.asarray(points, dtype=np.float64)
    if x.ndim != 2 or not np.all(np.isfinite(x)):
        raise ValueError(f"points must be a finite (m, d) array; got shape {x.shape}")
    m = x.shape[0]
    total = float(((x - x.mean(0)) ** 2).sum())
    if k >= m or total == 0.0:
        return 0.0, np.arange(m) if k >= m else np.zeros(m, dtype=np.int64)
    labs = partitions(m, k)
    w = within_ss(x, labs)
    best = int(np.argmin(w))
    return max(float(w[best]), 0.0) / total, labs[best].copy()


def count_groups(points, tol: float) -> int:
    """Number of groups of points joined by links of length <= ``tol`` × the largest norm (single linkage)."""
    x = np.asarray(points, dtype=np.float64)
    m = x.shape[0]
    scale = float(np.linalg.norm(x, axis=1).max()) or 1.0
    dist = np.linalg.norm(x[:, None] - x[None], axis=-1)
    parent = list(range(m))

    def root(a):
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for a, b in zip(*np.nonzero(dist <= tol * scale)):
        parent[root(a)] = root(b)
    return len({root(a) for a in range(m)})
