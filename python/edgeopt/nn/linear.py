"""Linear, and the shape-only layers Identity and Flatten."""
from __future__ import annotations

import math

import numpy as np

from .._check import INT32_MAX, check_bool, check_dim, check_int
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Linear", "Identity", "Flatten"]


class Linear(Module):
    """x (*, in_features) -> (*, out_features); weight (out, in), bias (out,). Init as PyTorch."""

    _parametrizable = ("weight",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.in_features = check_int("Linear.in_features", in_features, 1, INT32_MAX)
        self.out_features = check_int("Linear.out_features", out_features, 1, INT32_MAX)
        self.weight = Parameter(np.empty((self.out_features, self.in_features), np.float32))
        if check_bool("Linear.bias", bias):
            self.bias = Parameter(np.empty((self.out_features,), np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1.0 / math.sqrt(self.in_features)
            init.uniform_(self.bias, -bound, bound)

    def forward(self, x):
        if isinstance(x, np.ndarray) and x.ndim < 2:
            raise ValueError(f"{self._short_name()}: expected an input of shape (N, {self.in_features}) "
                             f"or (*, {self.in_features}), got shape {x.shape}")
        x = self._check_input(x, None, self.in_features, axis=-1)
        lead = x.shape[:-1]
        x2 = x.reshape(-1, self.in_features)
        bias = None if self.bias is None else self.bias.data
        w = self._tensor("weight")
        y = F.linear(x2, w, bias)
        y = y.reshape(*lead, self.out_features)
        self._save_for_backward(y, x2, lead, w)
        return y

    def backward(self, dy):
        dy, (x2, lead, w) = self._saved_for_backward(dy)
        db = None if self.bias is None else self.bias.grad
        dw = self._grad_sink("weight", w)
        dx = F.linear_backward(np.reshape(dy, (-1, self.out_features)), x2, w, dw, db)
        self._grad_done("weight", dw)
        return dx.reshape(*lead, self.in_features)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class Identity(Module):
    """Returns its input; backward returns dy."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        self._save_for_backward(x)
        return x

    def backward(self, dy):
        dy, _ = self._saved_for_backward(dy)
        return dy


class Flatten(Module):
    """Flattens dims ``start_dim..end_dim`` into one (default: all but the batch). As PyTorch:
    negative dims count from the end, a dim outside [-ndim, ndim - 1] is an IndexError, and a
    0-d input flattens to shape (1,)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = check_int("Flatten.start_dim", start_dim)
        self.end_dim = check_int("Flatten.end_dim", end_dim)

    def forward(self, x):
        x = self._check_input(x, None)
        s = check_dim("Flatten.start_dim", self.start_dim, x.ndim)
        e = check_dim("Flatten.end_dim", self.end_dim, x.ndim)
        if s > e:
            raise ValueError(f"{self._short_name()}: start_dim {self.start_dim} comes after end_dim "
                             f"{self.end_dim} for an input of shape {x.shape}")
        y = x.reshape(*x.shape[:s], -1, *x.shape[e + 1:])
        self._save_for_backward(y, x.shape)
        return y

    def backward(self, dy):
        dy, (shape,) = self._saved_for_backward(dy)
        return np.reshape(dy, shape)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"
