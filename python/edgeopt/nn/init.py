"""Weight initialisation, PyTorch's formulas, drawing from edgeopt's seeded generator.

Initialisers fill ``Parameter.data`` in place (the trailing ``_`` says so) and return the parameter.
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
from .._check import check_choice, check_float
from .parameter import Parameter

__all__ = ["calculate_fan_in_and_fan_out", "uniform_", "constant_", "zeros_", "ones_",
           "kaiming_uniform_", "kaiming_normal_", "normal_"]


def calculate_fan_in_and_fan_out(shape) -> tuple[int, int]:
    """For a (out, in, *kernel) weight: fan_in = in * prod(kernel), fan_out = out * prod(kernel)."""
    if len(shape) < 2:
        raise ValueError(f"fan in/out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _gain(nonlinearity: str, a: float) -> float:
    nonlinearity = check_choice("nonlinearity", nonlinearity,
                                ("linear", "conv2d", "sigmoid", "relu", "leaky_relu"))
    a = check_float("a", a)
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    return 1.0


def _fan(p: Parameter, mode: str) -> int:
    fan_in, fan_out = calculate_fan_in_and_fan_out(_param(p).shape)
    return fan_in if check_choice("mode", mode, ("fan_in", "fan_out")) == "fan_in" else fan_out


def _param(p) -> Parameter:
    if not isinstance(p, Parameter):
        raise TypeError(f"p: expected an edgeopt.nn.Parameter, got {type(p).__name__}")
    return p


def _fill(p: Parameter, values: np.ndarray) -> Parameter:
    p.data[...] = values
    return p


def uniform_(p: Parameter, a: float = 0.0, b: float = 1.0) -> Parameter:
    a, b = check_float("a", a), check_float("b", b)
    if a > b:
        raise ValueError(f"a, b: expected a <= b, got a={a}, b={b}")
    return _fill(_param(p), _random.generator().uniform(a, b, size=p.shape))


def normal_(p: Parameter, mean: float = 0.0, std: float = 1.0) -> Parameter:
    mean, std = check_float("mean", mean), check_float("std", std, 0.0)
    return _fill(_param(p), _random.generator().normal(mean, std, size=p.shape))


def constant_(p: Parameter, value: float) -> Parameter:
    _param(p).data.fill(check_float("value", value, finite=False))
    return p


def zeros_(p: Parameter) -> Parameter:
    return constant_(p, 0.0)


def ones_(p: Parameter) -> Parameter:
    return constant_(p, 1.0)


def kaiming_uniform_(p: Parameter, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Parameter:
    """U(-bound, bound), bound = gain * sqrt(3 / fan). Conv2d/Linear use a = sqrt(5), i.e.
    bound = 1 / sqrt(fan_in), as PyTorch does."""
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / _fan(p, mode))
    return uniform_(p, -bound, bound)


def kaiming_normal_(p: Parameter, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Parameter:
    return normal_(p, 0.0, _gain(nonlinearity, a) / math.sqrt(_fan(p, mode)))
