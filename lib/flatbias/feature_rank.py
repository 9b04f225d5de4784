"""Feature rank: how many principal directions explain a share of the variance of penultimate features.

Paper 2 (its code, ``large_scale.py``) fits ``sklearn.decomposition.PCA`` to the 512-d penultimate features of
the training set and reports ``rank = searchsorted(cumsum(explained_variance_ratio), thr) + 1`` for
thr ∈ {0.90, 0.95, 0.99, 0.999} (the table uses 0.999). We compute the same numbers from the eigenvalues of the
covariance (per-feature centering), accumulated in float64 batch by batch (:class:`GramAccumulator`), so the
N x 512 feature matrix is never held: memory is O(512²) whatever N is. :func:`rank_by_svd` is sklearn's route
(an SVD of the centered feature matrix held in memory), kept as an independent check of the streaming one.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch

from . import validate as vd

THRESHOLDS = (0.90, 0.95, 0.99, 0.999)


def _thresholds(thresholds) -> list[float]:
    if isinstance(thresholds, (str, bytes)) or not isinstance(thresholds, Iterable):
        raise vd.ArgumentTypeError(f"thresholds must be a sequence of numbers in (0, 1]; got {thresholds!r}")
    out = [vd.probability("thresholds entry", t, lo_open=True) for t in thresholds]
    if not out:
        raise vd.InvalidArgumentError(
            "thresholds must hold at least one share in (0, 1]; got an empty sequence")
    return out


def rank_from_eigenvalues(eigenvalues, thresholds=THRESHOLDS) -> dict[float, int]:
    """Smallest k whose top-k eigenvalues explain at least ``thr`` of the total (sklearn's PCA convention)."""
    thresholds = _thresholds(thresholds)
    ev = vd.array("eigenvalues", eigenvalues, 1, "(one per principal direction)", finite=False)
    ev = np.sort(np.clip(ev, 0.0, None))[::-1]
    total = ev.sum()
    if not np.isfinite(total) or total <= 0:
        raise vd.InvalidArgumentError("features have zero (or non-finite) variance: the rank is undefined; "
                                      "check that the model is not dead/diverged and that N >= 2")
    cum = np.cumsum(ev / total)
    return {thr: int(min(np.searchsorted(cum, thr) + 1, len(ev))) for thr in thresholds}


class GramAccumulator:
    """Streaming covariance of feature rows in float64: ``update(F)`` per batch, then :meth:`eigenvalues`.

    Rows are shifted by the first batch's mean before accumulating (sums of (f - K) and (f - K)(f - K)ᵀ), which
    avoids the cancellation of the textbook E[ffᵀ] - μμᵀ.
    """

    def __init__(self):
        self.n = 0
        self.shift = self.s1 = self.s2 = None

    @torch.no_grad()
    def update(self, features: torch.Tensor) -> None:
        """Add a batch of feature rows (batch, dim); every batch has the dim of the first."""
        vd.tensor("features", features, 2, "(batch, dim)", dtype="real", finite=False)
        if self.shift is not None and features.shape[1] != self.shift.shape[0]:
            raise vd.InvalidArgumentError(
                f"features must have {self.shift.shape[0]} columns like the first batch; "
                f"got shape {vd.fmt_shape(features.shape)}")
        f = features.detach().to(torch.float64)
        if not torch.isfinite(f).all():
            raise vd.InvalidArgumentError("non-finite features: the model diverged or the input is broken")
        if self.shift is None:
            self.shift = f.mean(0)
            self.s1 = torch.zeros_like(self.shift)
            self.s2 = torch.zeros(f.shape[1], f.shape[1], dtype=torch.float64, device=f.device)
        d = f - self.shift
        self.s1 += d.sum(0)
        self.s2 += d.T @ d
        self.n += f.shape[0]

    def covariance(self) -> torch.Tensor:
        if self.n < 2:
            raise vd.InvalidArgumentError(f"need at least 2 feature rows for a covariance, got {self.n}")
        return (self.s2 - torch.outer(self.s1, self.s1) / self.n) / (self.n - 1)

    def eigenvalues(self) -> np.ndarray:
        """Covariance eigenvalues, descending (= sklearn PCA's ``explained_variance_``)."""
        return torch.linalg.eigvalsh(self.covariance()).flip(0).cpu().numpy()


def rank_of_features(features: torch.Tensor, thresholds=THRESHOLDS) -> dict[float, int]:
    """Rank from a feature matrix held in memory (streams it in chunks through :class:`GramAccumulator`)."""
    vd.tensor("features", features, 2, "(N, dim)", dtype="real", finite=False)
    thresholds = _thresholds(thresholds)
    acc = GramAccumulator()
    for chunk in torch.split(features, 4096):
        acc.update(chunk)
    return rank_from_eigenvalues(acc.eigenvalues(), thresholds)


@torch.no_grad()
def feature_rank(features_fn, batches: Iterable[torch.Tensor], thresholds=THRESHOLDS) -> dict:
    """Rank of ``features_fn(batch)`` over all batches (call with the model in eval mode).

    Returns ``{"rank": {thr: k}, "eigenvalues": descending covariance eigenvalues, "n": rows}``.
    """
    if not callable(features_fn):
        raise vd.ArgumentTypeError(
            f"features_fn must be callable (batch -> features); got {type(features_fn).__name__}")
    thresholds = _thresholds(thresholds)
    acc = GramAccumulator()
    for b in batches:
        acc.update(features_fn(b))
    ev = acc.eigenvalues()
    return {"rank": rank_from_eigenvalues(ev, thresholds), "eigenvalues": ev, "n": acc.n}


def rank_by_svd(features, thresholds=THRESHOLDS) -> dict[float, int]:
    """The rank as sklearn's PCA computes it: singular values of the centered ``(N, d)`` feature matrix (float64,
    all in memory), ``explained_variance_ratio_ = s² / Σ s²``, then ``searchsorted(cumsum, thr) + 1``.

    Shares no code with :class:`GramAccumulator` / :func:`rank_from_eigenvalues`: chapter 17 and the tests compare
    the two on the same features."""
    X = np.asarray(features.detach().cpu() if isinstance(features, torch.Tensor) else features, dtype=np.float64)
    s = np.linalg.svd(X - X.mean(0), compute_uv=False)
    cum = np.cumsum(s ** 2 / (s ** 2).sum())
    return {float(t): int(min(np.searchsorted(cum, t) + 1, len(s))) for t in thresholds}
