"""Adam and AdamW (PyTorch's update rules, bias-corrected moments)."""
from __future__ import annotations

import numpy as np

from .. import _core
from ..nn.functional import _acc
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * m_hat / (sqrt(v_hat) + eps).
    ``weight_decay`` is L2 (added to g) unless ``decoupled`` (AdamW: p *= 1 - lr * weight_decay)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        betas = group["betas"]
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"betas: expected two numbers in [0, 1), got {betas!r}")
        if group["eps"] < 0:
            raise ValueError(f"eps: expected a non-negative number, got {group['eps']!r}")

    def _update(self, p, group, state) -> bool:
        if "step" not in state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        b1, b2 = group["betas"]
        step = int(state["step"]) + 1
        ok = _core.adam_step(_acc(p.data), _acc(p.grad), _acc(state["exp_avg"]), _acc(state["exp_avg_sq"]), step,
                             float(group["lr"]), float(b1), float(b2), float(group["eps"]),
                             float(group["weight_decay"]), bool(group["decoupled"]))
        if ok:
            state["step"] = step
        return ok


class AdamW(Adam):
    """Adam with decoupled weight decay (default 1e-2), as torch.optim.AdamW."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(params, lr, betas, eps, weight_decay, decoupled=True)
