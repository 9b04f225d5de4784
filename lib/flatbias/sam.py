"""Sharpness-aware minimization (SAM; Foret et al., ICLR 2021) with the usual semantics.

One step on a minibatch B, as in paper 2's code (davda54's ``sam.py``, ``adaptive=False``):

1. gradient g = ∇L_B(w) at w, with BatchNorm updating its running statistics;
2. ascent w ← w + e, e = ρ g / (‖g‖₂ + 1e-12) (‖·‖ over all parameters);
3. gradient at w + e with BatchNorm's running statistics frozen (:func:`disable_running_stats`);
4. restore w and take the base optimizer's step (SGD with momentum and weight decay: weight decay enters
   only here, never the ascent).

Step 4 copies the saved w back, as davda54's SAM and the authors' copy of it do (``p.data = old_p``), rather
than computing (w + e) − e, which differs from w by up to an ulp per step. So SAM with ρ = 0 is exactly the base
optimizer, bit for bit (tested). The step has no host synchronisation: the norm stays a device tensor.

:func:`reference_step` is a plain, loop-by-loop version of the same step (no ``torch._foreach``, no optimizer
object), which the tests and chapter 17 use as an independent check of :class:`SAM` on the real model.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


class SAM(torch.optim.Optimizer):
    """``SAM(params, torch.optim.SGD, rho=0.05, lr=0.1, momentum=0.9, weight_decay=5e-4)``."""

    def __init__(self, params, base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05, **kwargs):
        if not rho >= 0.0:
            raise ValueError(f"rho must be >= 0, got {rho}")
        super().__init__(params, dict(rho=rho, **kwargs))
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups  # one set of groups: schedulers act on both
        self.defaults.update(self.base_optimizer.defaults)

    def _grads(self):
        return [p for g in self.param_groups for p in g["params"] if p.grad is not None]

    @torch.no_grad()
    def grad_norm(self) -> torch.Tensor:
        ps = self._grads()
        if not ps:
            raise RuntimeError("SAM.first_step: no gradients; call loss.backward() first")
        return torch.linalg.vector_norm(torch.stack(torch._foreach_norm([p.grad for p in ps])))

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        """Save w, then w ← w + ρ g/(‖g‖ + 1e-12)."""
        norm = self.grad_norm()
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            saved = []
            for p in ps:  # one buffer per weight, reused from step to step (no allocation per step)
                st = self.state[p]
                if "old_p" not in st:
                    st["old_p"] = torch.empty_like(p)
                saved.append(st["old_p"])
                st["ascended"] = True
            torch._foreach_copy_(saved, ps)
            scale = group["rho"] / (norm + 1e-12)
            torch._foreach_add_(ps, torch._foreach_mul([p.grad for p in ps], scale))
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore the saved w exactly and take the base optimizer's step with the gradient taken at w + e."""
        for group in self.param_groups:
            ps = [p for p in group["params"] if self.state[p].pop("ascended", False)]
            if ps:
                torch._foreach_copy_(ps, [self.state[p]["old_p"] for p in ps])
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad(set_to_none=True)

    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """Full SAM step with a closure that zeroes nothing and does forward + backward, returning the loss."""
        if closure is None:
            raise RuntimeError("SAM.step needs a closure (forward + backward); or call first_step/second_step")
        closure = torch.enable_grad()(closure)
        self.first_step(zero_grad=True)
        closure()
        self.second_step()

    def state_dict(self):
        return {"base": self.base_optimizer.state_dict(), "rho": [g["rho"] for g in self.param_groups]}

    def load_state_dict(self, state_dict):
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.param_groups = self.base_optimizer.param_groups
        for g, rho in zip(self.param_groups, state_dict["rho"]):
            g["rho"] = rho


def disable_running_stats(model: nn.Module) -> None:
    """Freeze BatchNorm running statistics (momentum 0) for SAM's second forward pass."""
    for m in model.modules():
        if isinstance(m, _BatchNorm) and not hasattr(m, "backup_momentum"):
            m.backup_momentum = m.momentum
            m.momentum = 0.0


def enable_running_stats(model: nn.Module) -> None:
    """Undo :func:`disable_running_stats`."""
    for m in model.modules():
        if isinstance(m, _BatchNorm) and hasattr(m, "backup_momentum"):
            m.momentum = m.backup_momentum
            del m.backup_momentum


@torch.no_grad()
def _bn_momenta(model: nn.Module, value: float | None = None) -> list:
    bns = [m for m in model.modules() if isinstance(m, _BatchNorm)]
    old = [m.momentum for m in bns]
    if value is not None:
        for m in bns:
            m.momentum = value
    return old


def reference_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, rho: float, lr: float, momentum: float = 0.0,
                   weight_decay: float = 0.0, buffers: dict | None = None) -> dict:
    """One SAM step of ``model`` (in place, train mode) written out plainly: two ``torch.autograd.grad`` passes,
    a Python loop over the weights, SGD with momentum and weight decay by hand (PyTorch's convention: the first
    momentum buffer is the gradient itself). ``buffers`` holds the momentum buffers between calls (pass the
    returned dict back in); returns it.

    The same step as :class:`SAM` with ``torch.optim.SGD`` and the BatchNorm handling of
    :func:`disable_running_stats`, computed without sharing any of their code: an independent check."""
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = {} if buffers is None else buffers
    model.train()
    g = torch.autograd.grad(F.cross_entropy(model(x), y), params)  # BatchNorm statistics move here
    norm = torch.sqrt(sum((gi.double() ** 2).sum() for gi in g)).to(g[0].dtype)
    saved = [p.detach().clone() for p in params]
    with torch.no_grad():
        for p, gi in zip(params, g):
            p.add_(rho * gi / (norm + 1e-12))
    old = _bn_momenta(model, 0.0)  # the second pass leaves the running statistics alone
    try:
        g_adv = torch.autograd.grad(F.cross_entropy(model(x), y), params)
    finally:
        for m, mom in zip([m for m in model.modules() if isinstance(m, _BatchNorm)], old):
            m.momentum = mom
    with torch.no_grad():
        for i, (p, w, ga) in enumerate(zip(params, saved, g_adv)):
            p.copy_(w)
            d = ga + weight_decay * w
            if momentum:
                buffers[i] = d.clone() if i not in buffers else buffers[i].mul(momentum).add(d)
                d = buffers[i]
            p.sub_(lr * d)
    return buffers
