"""SGD with momentum, dampening, Nesterov and L2 weight decay (PyTorch's update rule)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._check import check_bool, check_float
from ..nn.functional import _acc
from .optimizer import Optimizer

__all__ = ["SGD"]


class SGD(Optimizer):
    """g = grad + weight_decay * p; buf = momentum * buf + (1 - dampening) * g (buf = g on the first
    step); p -= lr * (g + momentum * buf if nesterov else buf). Momentum defaults to 0.9 (DESIGN)."""

    def __init__(self, params, lr: float, momentum: float = 0.9, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                                      weight_decay=weight_decay))

    def _validate(self, group: dict) -> None:
        super()._validate(group)
        group["momentum"] = check_float("momentum", group["momentum"], 0.0)
        group["dampening"] = check_float("dampening", group["dampening"])
        group["nesterov"] = check_bool("nesterov", group["nesterov"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, p, group, state) -> bool:
        buf = state.get("momentum_buffer")
        first = buf is None
        if first:
            buf = np.zeros_like(p.data)
        ok = _core.optim.sgd_step(_acc(p.data), _acc(p.grad), _acc(buf), float(group["lr"]), float(group["momentum"]),
                            float(group["dampening"]), bool(group["nesterov"]),
                            float(group["weight_decay"]), first)
        if ok:
            state["momentum_buffer"] = buf
        return ok
