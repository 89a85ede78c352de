"""Learning-rate schedules with PyTorch's semantics.

A schedule reads each group's ``initial_lr`` (set from ``lr`` on first use) and, at every
``step()``, writes ``lr = f(epoch)`` into the optimizer's groups. Construction performs the first
step (epoch 0), as in PyTorch: call ``optimizer.step()`` then ``scheduler.step()`` each epoch (or
iteration). Every schedule is a closed form of its epoch, so schedules compose, e.g.
``LinearWarmup(opt, 5, after=CosineAnnealingLR(opt, T_max=95))``.
"""
from __future__ import annotations

import bisect
import math

from .._check import check_bool, check_callable, check_float, check_int
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearWarmup", "LambdaLR"]


class LRScheduler:
    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"optimizer: expected an edgeopt Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        last_epoch = check_int("last_epoch", last_epoch, -1)
        for i, g in enumerate(optimizer.param_groups):
            if last_epoch == -1:
                g.setdefault("initial_lr", g["lr"])
            elif "initial_lr" not in g:
                raise KeyError(f"param group {i} has no 'initial_lr' (needed when resuming with last_epoch)")
        self.base_lrs = [g["initial_lr"] for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr = [g["lr"] for g in optimizer.param_groups]
        self.step()

    def lr_at(self, epoch: int) -> list[float]:
        """The learning rate of every group at ``epoch``."""
        raise NotImplementedError

    def step(self) -> None:
        self.last_epoch += 1
        lrs = self.lr_at(self.last_epoch)
        for g, lr in zip(self.optimizer.param_groups, lrs):
            g["lr"] = lr
        self._last_lr = list(lrs)

    def get_last_lr(self) -> list[float]:
        return list(self._last_lr)

    def state_dict(self) -> dict:
        out = {}
        for k, v in self.__dict__.items():
            if k == "optimizer" or callable(v):
                continue
            out[k] = v.state_dict() if isinstance(v, LRScheduler) else v
        return out

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            if isinstance(getattr(self, k, None), LRScheduler):
                getattr(self, k).load_state_dict(v)
            else:
                setattr(self, k, v)


class StepLR(LRScheduler):
    """lr = base * gamma ** (epoch // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        self.step_size = check_int("step_size", step_size, 1)
        self.gamma = check_float("gamma", gamma, 0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.gamma ** (epoch // self.step_size) for b in self.base_lrs]


class MultiStepLR(LRScheduler):
    """lr = base * gamma ** (number of milestones <= epoch)."""

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        if isinstance(milestones, (str, bytes)) or not hasattr(milestones, "__iter__"):
            raise TypeError(f"milestones: expected a list of epochs (ints >= 0), got {milestones!r}")
        self.milestones = sorted(check_int(f"milestones[{i}]", m, 0) for i, m in enumerate(milestones))
        self.gamma = check_float("gamma", gamma, 0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.gamma ** bisect.bisect_right(self.milestones, epoch) for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """lr = eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        self.T_max = check_int("T_max", T_max, 1)
        self.eta_min = check_float("eta_min", eta_min, 0.0)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        c = (1 + math.cos(math.pi * (epoch / self.T_max))) / 2  # phase rounded as fit always did
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]


class LambdaLR(LRScheduler):
    """lr = base * lr_lambda(epoch)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        self.lr_lambda = check_callable("lr_lambda", lr_lambda)
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        return [b * self.lr_lambda(epoch) for b in self.base_lrs]


class LinearWarmup(LRScheduler):
    """Ramp the factor linearly from ``start_factor`` (default 1/warmup_steps) to 1 over
    ``warmup_steps`` epochs, then hand over to ``after`` (another schedule on the same optimizer,
    started at its epoch 0) or hold the base lr. Equals PyTorch's
    ``SequentialLR([LinearLR(opt, start_factor, 1.0, warmup_steps), after], [warmup_steps])``.

    ``inclusive=True`` reaches the base lr on the last warmup epoch instead of after it: factors
    1/w, 2/w, ..., w/w for w = warmup_steps (train.fit's warmup); start_factor is then fixed."""

    def __init__(self, optimizer, warmup_steps: int, start_factor: float | None = None,
                 after: LRScheduler | None = None, last_epoch: int = -1, inclusive: bool = False):
        self.warmup_steps = check_int("warmup_steps", warmup_steps, 1)
        self.inclusive = check_bool("inclusive", inclusive)
        if inclusive and start_factor is not None:
            raise ValueError(f"start_factor: inclusive=True ramps from 1/warmup_steps, got {start_factor!r}")
        if after is not None and not isinstance(after, LRScheduler):
            raise TypeError(f"after: expected None or an LRScheduler, got {type(after).__name__}")
        if after is not None and after.optimizer is not optimizer:
            raise ValueError("after: expected a schedule on the same optimizer, got one on another optimizer")
        self.start_factor = (1.0 / warmup_steps if start_factor is None
                             else check_float("start_factor", start_factor, 0.0, 1.0, min_open=True))
        self.after = after
        super().__init__(optimizer, last_epoch)

    def lr_at(self, epoch):
        w = self.warmup_steps
        if epoch < w and self.inclusive:
            return [b * (epoch + 1) / w for b in self.base_lrs]
        if epoch < w:
            f = self.start_factor + (1.0 - self.start_factor) * epoch / w
            return [b * f for b in self.base_lrs]
        if self.after is None:
            return list(self.base_lrs)
        return self.after.lr_at(epoch - w)

    def step(self) -> None:
        super().step()
        if self.after is not None and self.last_epoch >= self.warmup_steps:
            self.after.last_epoch = self.last_epoch - self.warmup_steps
            self.after._last_lr = list(self._last_lr)
