"""Gradient-coherence proxy of paper 2's CIFAR-10 experiment: λ_max(G) / max_i ‖g_i‖².

G_ij = ⟨g_i, g_j⟩ is the Gram matrix of per-sample cross-entropy gradients g_i with respect to **all**
parameters (convolutions, BatchNorm affine, fc), in eval mode, signed (no absolute value), as in the
authors' ``large_scale.py``. Since λ_max(G) ≥ G_ii for every i (Rayleigh quotient at e_i) and
λ_max(G) ≤ tr G ≤ n max_i G_ii, the proxy lies in [1, n] (1: one gradient dominates or all are orthogonal;
n: all gradients equal). When every per-sample gradient is zero (G = 0) the proxy is 0/0, undefined:
:class:`UndefinedProxyError`, not the 0 that the authors' eps would return.

Per-sample gradients come from ``torch.func`` (``vmap(grad)``). For many samples of a large model, G is built
block by block so that at most two blocks of per-sample gradients are held (1000 samples of ResNet-18 would be
45 GB at once); each off-diagonal block pair costs a recomputation. :func:`gram_by_loop` builds the same G from
one ordinary backward pass per sample, as an independent check (chapter 17 runs it on the real model).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, vmap

from . import validate as vd


class UndefinedProxyError(vd.InvalidArgumentError):
    """The proxy λ_max(G) / max_i G_ii is 0/0: every per-sample gradient is zero (G = 0)."""


def _check_batch(model, x, y) -> None:
    if not isinstance(model, nn.Module):
        raise vd.ArgumentTypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    vd.tensor("x", x, layout="(n, ...) inputs")
    if x.ndim < 1 or len(x) == 0:
        raise vd.InvalidArgumentError(
            f"x must hold at least one input, shape (n, ...); got {vd.fmt_shape(x.shape)}")
    vd.tensor("y", y, 1, "(n,) class labels", dtype="int")
    vd.shape("y", y, (len(x),), f"to match x's {len(x)} inputs")
    if bool((y < 0).any()):
        raise vd.InvalidArgumentError(
            f"y must hold class indices ≥ 0; got values such as {y[y < 0][:3].tolist()}")
    dev = next((p.device for p in model.parameters()), x.device)
    if x.device != dev or y.device != dev:
        raise vd.InvalidArgumentError(
            f"x and y must be on the model's device {dev}; got {x.device} and {y.device}")


def _chunk(chunk_size):
    return None if chunk_size is None else vd.integer("chunk_size", chunk_size, 1)


def per_sample_grads(model: nn.Module, x: torch.Tensor, y: torch.Tensor, chunk_size: int | None = None) -> dict:
    """``{name: (n, *shape)}`` per-sample gradients of the cross-entropy of each (x_i, y_i), model in eval mode."""
    _check_batch(model, x, y)
    chunk_size = _chunk(chunk_size)
    if model.training:
        raise vd.InvalidArgumentError(
            "per-sample gradients are taken in eval mode (BatchNorm running statistics); "
            "call model.eval()")
    return _per_sample_grads(model, x, y, chunk_size)


def _per_sample_grads(model, x, y, chunk_size):
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, xi, yi):
        return F.cross_entropy(functional_call(model, (p, buffers), (xi[None],)), yi[None])

    return vmap(grad(loss), in_dims=(None, 0, 0), chunk_size=chunk_size)(params, x, y)


def _block_gram(a: dict, b: dict) -> torch.Tensor:
    g = None
    for k in a:  # parameter by parameter (no flat n x P copy), summed over parameters in float64
        term = (a[k].flatten(1).float() @ b[k].flatten(1).float().T).double()
        g = term if g is None else g + term
    return g


def gradient_gram(model: nn.Module, x: torch.Tensor, y: torch.Tensor, block: int | None = None,
                  chunk_size: int | None = None, progress: bool | None = False) -> torch.Tensor:
    """G = [⟨g_i, g_j⟩] (on the model's device), computed in blocks of ``block`` samples: float32 products per
    parameter tensor, summed over tensors in float64."""
    from tqdm import tqdm  # plain tqdm: stderr bars, off when not a terminal (no widget warnings in the book)

    _check_batch(model, x, y)
    chunk_size = _chunk(chunk_size)
    if model.training:
        raise vd.InvalidArgumentError(
            "per-sample gradients are taken in eval mode (BatchNorm running statistics); "
            "call model.eval()")
    n = len(x)
    block = n if block is None else vd.integer("block", block, 1)
    starts = list(range(0, n, block))
    G = torch.empty(n, n, dtype=torch.float64, device=x.device)
    pairs = len(starts) * (len(starts) + 1) // 2
    with tqdm(total=pairs, desc="gradient Gram", disable=None if progress is None else not progress,
              leave=False) as bar:
        for bi, i in enumerate(starts):
            gi = _per_sample_grads(model, x[i:i + block], y[i:i + block], chunk_size)
            G[i:i + block, i:i + block] = _block_gram(gi, gi)
            bar.update()
            for j in starts[bi + 1:]:
                gj = _per_sample_grads(model, x[j:j + block], y[j:j + block], chunk_size)
                G[i:i + block, j:j + block] = gij = _block_gram(gi, gj)
                G[j:j + block, i:i + block] = gij.T
                del gj
                bar.update()
            del gi
    return G


def proxy_from_gram(G: torch.Tensor, eps: float = 1e-8) -> float:
    """λ_max(G) / (max_i G_ii + eps), the authors' scalar (their eps).

    G = 0 (every per-sample gradient zero, max_i G_ii = 0) is :class:`UndefinedProxyError`: the proxy is 0/0
    there, and the eps would only hide it as a 0 outside its range [1, n]."""
    vd.tensor("G", G, 2, "(n, n)", dtype="real", finite=False)
    vd.shape("G", G, (G.shape[0], G.shape[0]), "(a square Gram matrix)")
    if G.shape[0] == 0:
        raise vd.InvalidArgumentError("G must be at least 1 × 1; got (0, 0)")
    eps = vd.nonnegative("eps", eps)
    G = G.double()
    if not torch.isfinite(G).all():
        raise vd.InvalidArgumentError("non-finite gradient Gram matrix: the model diverged")
    top = float(G.diagonal().max())
    if top <= 0:
        raise UndefinedProxyError(
            f"G has no positive diagonal entry (max_i G_ii = {top:g}, n = {G.shape[0]}): every per-sample "
            "gradient is zero, so the proxy λ_max(G) / max_i ‖g_i‖² is 0/0, undefined; expected a Gram matrix "
            "of per-sample gradients with at least one nonzero gradient")
    lam = float(torch.linalg.eigvalsh(0.5 * (G + G.T))[-1])
    return lam / (top + eps)


def auto_block(model: nn.Module, n: int, budget_bytes: float | None = None) -> int:
    """Largest block size whose two blocks of float32 per-sample gradients fit ``budget_bytes``
    (default: half the free GPU memory on CUDA, 1 GB on the CPU)."""
    if not isinstance(model, nn.Module):
        raise vd.ArgumentTypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    n = vd.integer("n", n, 1)
    budget_bytes = None if budget_bytes is None else vd.positive("budget_bytes", budget_bytes)
    p = sum(t.numel() for t in model.parameters())
    if p == 0:
        raise vd.InvalidArgumentError("model has no parameters: there are no gradients to take")
    if budget_bytes is None:
        dev = next(model.parameters()).device
        budget_bytes = torch.cuda.mem_get_info(dev)[0] / 2 if dev.type == "cuda" else 1e9
    return int(max(1, min(n, budget_bytes // (2 * 4 * p))))


def coherence_proxy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, block: int | None = None,
                    chunk_size: int | None = None) -> dict:
    """The proxy and its ingredients for inputs ``x`` (already normalized, on the model's device)."""
    _check_batch(model, x, y)
    chunk_size = _chunk(chunk_size)
    block = None if block is None else vd.integer("block", block, 1)
    was_training = model.training
    model.eval()
    try:
        block = auto_block(model, len(x)) if block is None else block
        while True:  # several runs may share the GPU: on out-of-memory, halve the block and try again
            try:
                G = gradient_gram(model, x, y, block=block, chunk_size=chunk_size)
                break
            except torch.OutOfMemoryError:
                if block == 1:
                    raise
                block = max(1, block // 2)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
    finally:
        model.train(was_training)
    sq = G.diagonal()
    return {"proxy": proxy_from_gram(G), "lambda_max": float(torch.linalg.eigvalsh(G)[-1]),
            "max_sq_norm": float(sq.max()), "mean_sq_norm": float(sq.mean()), "n": len(x), "block": block}


def gram_by_loop(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """G from one ``loss.backward()`` per sample (eval mode, all parameters), in float64: slow, memory n x P, and
    independent of ``torch.func``: the check of :func:`gradient_gram` on a few samples."""
    was_training = model.training
    model.eval()
    rows = []
    try:
        for xi, yi in zip(x, y):
            model.zero_grad(set_to_none=True)
            F.cross_entropy(model(xi[None]), yi[None]).backward()
            rows.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    finally:
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    n = len(rows)
    G = torch.empty(n, n, dtype=torch.float64, device=x.device)
    for i in range(n):
        for j in range(i, n):
            G[i, j] = G[j, i] = torch.dot(rows[i].double(), rows[j].double())
    return G
