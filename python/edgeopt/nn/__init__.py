"""edgeopt.nn: layers with explicit forward/backward over the C++ kernels.

See :mod:`edgeopt.nn.module` for the gradient policy (parameter gradients accumulate into
``p.grad``; ``backward(dy)`` returns ``dx``).
"""
from . import functional, init, parametrize
from .activation import BinarySign, HardSigmoid, Hardsigmoid, HardSwish, Hardswish, ReLU, ReLU6, Sigmoid
from .container import ResidualBlock, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .module import Module, RemovableHandle, StateDictError, enable_grad, is_grad_enabled, no_grad
from .norm import BatchNorm2d
from .parameter import Parameter
from .pooling import AdaptiveAvgPool2d, AvgPool2d, GlobalAvgPool2d, MaxPool2d
from .squeeze_excite import SqueezeExcitation

__all__ = [
    "functional", "init", "parametrize", "Module", "Parameter", "RemovableHandle", "StateDictError",
    "no_grad", "enable_grad", "is_grad_enabled",
    "Conv2d", "Linear", "BatchNorm2d", "BinarySign", "ReLU", "ReLU6", "HardSwish", "Hardswish", "HardSigmoid",
    "Hardsigmoid", "Sigmoid", "MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "AdaptiveAvgPool2d",
    "Flatten", "Dropout", "Identity", "Sequential", "ResidualBlock", "SqueezeExcitation",
]
