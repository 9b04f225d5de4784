"""Sharpness-aware minimization (SAM; Foret et al., ICLR 2021) with the usual semantics.

One step on a minibatch B, as in paper 2's code (davda54's ``sam.py``, ``adaptive=False``):

1. gradient g = ∇L_B(w) at w, with BatchNorm updating its running statistics;
2. ascent w ← w + e, e = ρ g / (‖g‖₂ + 1e-12) (‖·‖ over all parameters);
3. gradient at w + e with BatchNorm's running statistics frozen (:func:`disable_running_stats`);
4. restore w and take the base optimizer's step (SGD with momentum and weight decay: weight decay enters
   only here, never the ascent).

With ρ = 0 this is exactly the base optimizer (tested). The step has no host synchronisation: the norm
stays a device tensor.
"""

from __future__ import annotations

from typing import Callable

import torch
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
        """w ← w + ρ g/(‖g‖ + 1e-12), remembering w."""
        norm = self.grad_norm()
        for group in self.param_groups:
            ps = [p for p in group["params"] if p.grad is not None]
            if not ps:
                continue
            scale = group["rho"] / (norm + 1e-12)
            e = torch._foreach_mul([p.grad for p in ps], scale)
            for p, e_p in zip(ps, e):
                self.state[p]["e_w"] = e_p
            torch._foreach_add_(ps, e)
        if zero_grad:
            self.zero_grad(set_to_none=True)

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        """Restore w and take the base optimizer's step with the gradient taken at w + e."""
        for group in self.param_groups:
            ps = [p for p in group["params"] if "e_w" in self.state[p]]
            if ps:
                torch._foreach_sub_(ps, [self.state[p].pop("e_w") for p in ps])
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
