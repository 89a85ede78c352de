"""Weight initialisation, PyTorch's formulas, drawing from edgeopt's seeded generator.

Initialisers fill ``Parameter.data`` in place (the trailing ``_`` says so) and return the parameter.
"""
from __future__ import annotations

import math

import numpy as np

from .. import random as _random
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
    if nonlinearity in ("linear", "conv2d", "sigmoid"):
        return 1.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1 + a * a))
    raise ValueError(f"nonlinearity: unsupported {nonlinearity!r}")


def _fill(p: Parameter, values: np.ndarray) -> Parameter:
    p.data[...] = values
    return p


def uniform_(p: Parameter, a: float = 0.0, b: float = 1.0) -> Parameter:
    return _fill(p, _random.generator().uniform(a, b, size=p.shape))


def normal_(p: Parameter, mean: float = 0.0, std: float = 1.0) -> Parameter:
    return _fill(p, _random.generator().normal(mean, std, size=p.shape))


def constant_(p: Parameter, value: float) -> Parameter:
    p.data.fill(value)
    return p


def zeros_(p: Parameter) -> Parameter:
    return constant_(p, 0.0)


def ones_(p: Parameter) -> Parameter:
    return constant_(p, 1.0)


def kaiming_uniform_(p: Parameter, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Parameter:
    """U(-bound, bound), bound = gain * sqrt(3 / fan). Conv2d/Linear use a = sqrt(5), i.e.
    bound = 1 / sqrt(fan_in), as PyTorch does."""
    fan_in, fan_out = calculate_fan_in_and_fan_out(p.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    bound = _gain(nonlinearity, a) * math.sqrt(3.0 / fan)
    return uniform_(p, -bound, bound)


def kaiming_normal_(p: Parameter, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Parameter:
    fan_in, fan_out = calculate_fan_in_and_fan_out(p.shape)
    fan = fan_in if mode == "fan_in" else fan_out
    return normal_(p, 0.0, _gain(nonlinearity, a) / math.sqrt(fan))
