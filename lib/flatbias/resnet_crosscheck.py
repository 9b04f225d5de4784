"""Independent recomputations of the CIFAR-10 pipeline's measurements (chapter 17's guards).

Each measurement of a training run is recomputed on the same trained model and images by a route that shares no code
with the one the runs use: the feature rank from an SVD of the centred features held in memory (not the streaming
float64 covariance), the coherence proxy from one backward pass per image (not ``torch.func``'s per-sample
gradients), and one SAM step of the training loop against :func:`flatbias.sam.reference_step` (two plain
``autograd.grad`` passes and SGD written out), in float64. :func:`sam_float32_sensitivity` says why float64: in
float32 SAM's second gradient of this model moves visibly when the ascent is scaled by 1 + 1e-6.
"""

from __future__ import annotations

import copy

import torch

from . import cifar_train as ct
from . import feature_rank, grad_coherence
from .sam import reference_step


def metric_rows(runs: dict, x: torch.Tensor, y: torch.Tensor, proxy_idx: torch.Tensor) -> list[dict]:
    """Per trained run (``{label: train() result}``): its final rank at each threshold against an SVD of the same
    features of ``x``, and its final 10-image proxy against the proxy from single-sample backward passes on
    ``x[proxy_idx]``. Adds ``rank_equal`` and ``proxy_rel_diff``."""
    rows = []
    for lab, res in runs.items():
        model, last = res["model"].eval(), res["history"][-1]
        with torch.no_grad():
            feats = torch.cat([model.features(b) for b in torch.split(x, 100)])
        svd = feature_rank.rank_by_svd(feats)
        loop_proxy = grad_coherence.proxy_from_gram(grad_coherence.gram_by_loop(model, x[proxy_idx], y[proxy_idx]))
        rows.append({"model": lab,
                     **{f"rank {t:g} (run / SVD)": f"{last['rank'][f'{t:g}']} / {svd[t]}"
                        for t in feature_rank.THRESHOLDS},
                     "proxy, 10 imgs (run)": last["coherence_10"],
                     "proxy (backward loop)": loop_proxy,
                     "rank_equal": all(last["rank"][f"{t:g}"] == svd[t] for t in svd),
                     "proxy_rel_diff": abs(loop_proxy / last["coherence_10"] - 1)})
    return rows


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in model.parameters()])


def sam_step_difference(cfg, x: torch.Tensor, y: torch.Tensor) -> float:
    """‖step of the training loop − reference step‖ / ‖reference step‖ for one SAM step (``cfg`` resolved, SAM), in
    float64 on the CPU, from the same freshly built model."""
    model_a, opt_a, _ = ct.build(cfg, torch.device("cpu"))
    model_a.double()  # the optimizer keeps its parameters (converted in place)
    model_b = copy.deepcopy(model_a)
    w0 = _flat(model_a)
    xb = x.double()
    ct.train_step(model_a.train(), model_a, opt_a, xb, y, cfg)
    reference_step(model_b, xb, y, rho=cfg.rho, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    step_a, step_b = _flat(model_a) - w0, _flat(model_b) - w0
    return float((step_a - step_b).norm() / step_b.norm())


def sam_float32_sensitivity(cfg, x: torch.Tensor, y: torch.Tensor, rho: float = 0.2) -> float:
    """Relative change of SAM's second gradient (float32, at initialization) when the ascent e = ρ g/‖g‖ is scaled
    by 1 + 1e-6."""
    model = ct.build(cfg, torch.device("cpu"))[0].train()
    params = list(model.parameters())
    w = [p.detach().clone() for p in params]

    def grad_at(shift):
        with torch.no_grad():
            for p, wk, sk in zip(params, w, shift):
                p.copy_(wk + sk)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss, params)])

    g = grad_at([torch.zeros_like(t) for t in w])
    e = [(rho * gk / g.norm()).view_as(t) for gk, t in zip(torch.split(g, [t.numel() for t in w]), w)]
    g_e, g_e2 = grad_at(e), grad_at([ek * (1 + 1e-6) for ek in e])
    return float((g_e - g_e2).norm() / g_e.norm())
