"""Feature rank (streaming fp64 covariance) and the gradient-coherence proxy, against direct computations."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from flatbias import feature_rank as fr
from flatbias import grad_coherence as gc
from flatbias import resnet


def _sklearn_style_rank(X, thresholds):
    # what sklearn's PCA does: SVD of the centered data, explained_variance_ratio_, searchsorted + 1
    Xc = X - X.mean(0)
    s = np.linalg.svd(Xc, compute_uv=False)
    ratio = s**2 / (s**2).sum()
    cum = np.cumsum(ratio)
    return {t: int(np.searchsorted(cum, t) + 1) for t in thresholds}


def test_rank_from_eigenvalues_by_hand():
    ev = [5.0, 3.0, 1.0, 0.5, 0.5]  # shares 0.5, 0.8, 0.9, 0.95, 1.0
    assert fr.rank_from_eigenvalues(ev, (0.5, 0.8, 0.85, 0.9, 0.95, 0.999)) == {0.5: 1, 0.8: 2, 0.85: 3, 0.9: 3,
                                                                                 0.95: 4, 0.999: 5}
    assert fr.rank_from_eigenvalues([0, 0, 2.0], (0.999,)) == {0.999: 1}  # order does not matter
    with pytest.raises(ValueError, match="zero"):
        fr.rank_from_eigenvalues(np.zeros(4))
    with pytest.raises(ValueError, match="thresholds"):
        fr.rank_from_eigenvalues([1.0, 2.0], (1.5,))


def test_streaming_covariance_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(700, 24)) @ np.diag(np.geomspace(10, 1e-3, 24)) + 50.0  # large offset: centering matters
    acc = fr.GramAccumulator()
    for chunk in np.array_split(X, 7):
        acc.update(torch.as_tensor(chunk, dtype=torch.float32))
    X32 = X.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(acc.covariance().numpy(), np.cov(X32.T), rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(acc.eigenvalues(), np.sort(np.linalg.eigvalsh(np.cov(X32.T)))[::-1], rtol=1e-7,
                               atol=1e-11)
    thr = (0.9, 0.95, 0.99, 0.999)
    got = fr.rank_from_eigenvalues(acc.eigenvalues(), thr)
    assert got == _sklearn_style_rank(X32, thr)
    assert list(got.values()) == sorted(got.values())  # monotone in the threshold


def test_rank_of_low_rank_features():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(500, 3, generator=g, dtype=torch.float64) @ torch.randn(3, 64, generator=g, dtype=torch.float64)
    r = fr.rank_of_features(X + 7.0, (0.999999,))
    assert r == {0.999999: 3}


def test_feature_rank_of_a_model_equals_direct():
    torch.manual_seed(0)
    model = resnet.resnet18(width=4).eval()
    x = torch.randn(60, 3, 16, 16, dtype=torch.float32)
    with torch.no_grad():
        feats = model.features(x).double().numpy()
    out = fr.feature_rank(model.features, torch.split(x, 25))
    assert out["n"] == 60 and out["eigenvalues"].shape == (32,)
    assert out["rank"] == _sklearn_style_rank(feats, fr.THRESHOLDS) == fr.rank_by_svd(feats)
    assert fr.rank_by_svd(torch.as_tensor(feats)) == out["rank"]
    with pytest.raises(ValueError, match="non-finite"):
        fr.GramAccumulator().update(torch.tensor([[float("nan"), 1.0]]))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(3)
    model = resnet.resnet18(width=2).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
    g = torch.Generator().manual_seed(4)
    x = torch.randn(5, 3, 16, 16, generator=g, dtype=torch.float32)
    y = torch.randint(0, 10, (5,), generator=g)
    return model, x, y


def _loop_grads(model, x, y):
    rows = []
    for xi, yi in zip(x, y):
        model.zero_grad()
        F.cross_entropy(model(xi[None]), yi[None]).backward()
        rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]).double())
    model.zero_grad()
    return torch.stack(rows)


def test_per_sample_grads_and_gram_match_a_loop(tiny):
    model, x, y = tiny
    J = _loop_grads(model, x, y)
    ps = gc.per_sample_grads(model, x, y)
    flat = torch.cat([v.flatten(1) for v in ps.values()], 1).double()
    assert flat.shape == (5, resnet.n_params(model))
    torch.testing.assert_close(flat, J, rtol=1e-4, atol=1e-6)
    G_direct = J @ J.T
    for block in (None, 2):  # one block; uneven blocks (2, 2, 1)
        G = gc.gradient_gram(model, x, y, block=block)
        torch.testing.assert_close(G, G_direct, rtol=1e-4, atol=1e-6)
    lam = np.linalg.eigvalsh(G_direct.numpy())[-1]
    expected = lam / (G_direct.diagonal().max().item() + 1e-8)
    out = gc.coherence_proxy(model, x, y)
    assert out["proxy"] == pytest.approx(expected, rel=1e-5)
    G_loop = gc.gram_by_loop(model, x, y)  # the library's own single-sample-backward check
    torch.testing.assert_close(G_loop, G_direct, rtol=1e-10, atol=1e-12)
    assert gc.proxy_from_gram(G_loop) == pytest.approx(out["proxy"], rel=1e-5)
    assert 1 - 1e-9 <= out["proxy"] <= len(x)  # lambda_max >= every G_ii, and <= tr G <= n max G_ii
    assert not model.training


def test_proxy_extremes():
    g = torch.randn(6, dtype=torch.float64)
    same = torch.stack([g] * 5)
    sq = float(g @ g)
    assert gc.proxy_from_gram(same @ same.T) == pytest.approx(5 * sq / (sq + 1e-8), rel=1e-12)  # all equal: n
    ortho = torch.diag(torch.tensor([1.0, 4.0, 2.0], dtype=torch.float64))
    assert gc.proxy_from_gram(ortho) == pytest.approx(1.0, rel=1e-7)  # orthogonal: 1
    with pytest.raises(ValueError, match="non-finite"):
        gc.proxy_from_gram(torch.full((2, 2), float("nan")))


def test_eval_mode_is_required(tiny):
    model, x, y = tiny
    model.train()
    try:
        with pytest.raises(ValueError, match="eval mode"):
            gc.per_sample_grads(model, x, y)
    finally:
        model.eval()
    assert gc.auto_block(model, 1000, budget_bytes=2 * 4 * resnet.n_params(model) * 10) == 10


def test_proxy_retries_with_smaller_blocks_when_memory_runs_out(tiny, monkeypatch):
    model, x, y = tiny
    expected = gc.coherence_proxy(model, x, y, block=5)["proxy"]
    real, tried = gc.gradient_gram, []

    def tight(model, x, y, block=None, **kw):  # a GPU shared with other runs: blocks above 2 do not fit
        tried.append(block)
        if block > 2:
            raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(model, x, y, block=block, **kw)

    monkeypatch.setattr(gc, "gradient_gram", tight)
    out = gc.coherence_proxy(model, x, y, block=5)
    assert tried == [5, 2] and out["block"] == 2 and out["proxy"] == pytest.approx(expected, rel=1e-6)
    monkeypatch.setattr(gc, "gradient_gram", lambda *a, **k: (_ for _ in ()).throw(torch.OutOfMemoryError("no")))
    with pytest.raises(torch.OutOfMemoryError):
        gc.coherence_proxy(model, x, y, block=4)  # 4, 2, 1: then it gives up
