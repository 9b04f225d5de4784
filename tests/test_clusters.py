import itertools
import math

import numpy as np
import pytest

from flatbias import clusters


def stirling2(m, k):
    return sum((-1) ** i * math.comb(k, i) * (k - i) ** m for i in range(k + 1)) // math.factorial(k)


@pytest.mark.parametrize("m,k", [(1, 1), (4, 2), (6, 3), (7, 7), (10, 4)])
def test_partitions_are_all_distinct_and_complete(m, k):
    labs = clusters.partitions(m, k)
    assert len(labs) == stirling2(m, k)
    assert all(len(set(row)) == k for row in labs.tolist())
    canon = {tuple(row) for row in labs.tolist()}
    assert len(canon) == len(labs)


def brute_force(x, k):
    """Every labelling in k^m (not only restricted growth strings), with a plain loop."""
    best = np.inf
    for lab in itertools.product(range(k), repeat=len(x)):
        lab = np.array(lab)
        if len(set(lab.tolist())) != k:
            continue
        w = sum(((x[lab == g] - x[lab == g].mean(0)) ** 2).sum() for g in range(k))
        best = min(best, w)
    return best / ((x - x.mean(0)) ** 2).sum()


@pytest.mark.parametrize("k", [1, 2, 3])
def test_unexplained_matches_brute_force(k):
    x = np.random.default_rng(k).normal(size=(7, 3))
    u, lab = clusters.unexplained(x, k)
    assert u == pytest.approx(brute_force(x, k), rel=1e-12, abs=1e-15)
    w = sum(((x[lab == g] - x[lab == g].mean(0)) ** 2).sum() for g in range(k))
    assert u == pytest.approx(w / ((x - x.mean(0)) ** 2).sum(), rel=1e-12)


def test_planted_groups_are_found():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 3)) * 5
    truth = np.array([0, 0, 1, 2, 2, 2, 1, 0, 1, 2])
    x = centers[truth] + 1e-4 * rng.normal(size=(10, 3))
    u3, lab = clusters.unexplained(x, 3)
    assert u3 < 1e-8
    same = lab[:, None] == lab[None]
    assert np.array_equal(same, truth[:, None] == truth[None])
    assert clusters.unexplained(x, 2)[0] > 1e-3
    assert clusters.count_groups(x, 1e-3) == 3
    assert clusters.count_groups(x, 1e-8) == 10
    assert clusters.unexplained(x[:1].repeat(10, 0), 2)[0] == 0.0
    assert clusters.unexplained(x, 10)[0] == 0.0


def test_bad_arguments():
    with pytest.raises(ValueError):
        clusters.partitions(3, 4)
    with pytest.raises(ValueError):
        clusters.unexplained(np.ones(3), 1)
