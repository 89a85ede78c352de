"""Adam and AdamW (PyTorch's update rules, bias-corrected moments)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._check import check_bool, check_float
from ..nn.functional import _acc
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= lr * m_hat / (sqrt(v_hat) + eps).
    ``weight_decay`` is L2 (added to g) unless ``decoupled`` (AdamW: p *= 1 - lr * weight_decay)."""

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                      decoupled=decoupled))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        betas = group["betas"]
        if not (isinstance(betas, (tuple, list)) and len(betas) == 2):
            raise TypeError(f"betas: expected a pair of numbers in [0, 1), got {betas!r} ({type(betas).__name__})")
        group["betas"] = tuple(check_float(f"betas[{i}]", b, 0.0, 1.0, max_open=True) for i, b in enumerate(betas))
        group["eps"] = check_float("eps", group["eps"], 0.0)
        group["decoupled"] = check_bool("decoupled", group["decoupled"])

    def _update(self, p, group, state) -> bool:
        if "step" not in state:
            state.update(step=0, exp_avg=np.zeros_like(p.data), exp_avg_sq=np.zeros_like(p.data))
        b1, b2 = group["betas"]
        step = int(state["step"]) + 1
        ok = _core.optim.adam_step(_acc(p.data), _acc(p.grad), _acc(state["exp_avg"]), _acc(state["exp_avg_sq"]), step,
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
