"""Conv2d: 2-d convolution with groups (depthwise when groups == in_channels)."""
from __future__ import annotations

import math

import numpy as np

from .._check import INT32_MAX, check_bool, check_int, check_pair
from . import functional as F
from . import init
from .module import Module
from .parameter import Parameter

__all__ = ["Conv2d"]


class Conv2d(Module):
    """x (N, Cin, H, W) -> (N, Cout, OH, OW); weight (Cout, Cin/groups, KH, KW), bias (Cout,).

    Initialised as PyTorch: kaiming-uniform with a = sqrt(5) (bound 1/sqrt(fan_in)) for the weight,
    U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for the bias.
    """

    _parametrizable = ("weight",)

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 groups: int = 1, bias: bool = True):
        super().__init__()
        in_channels = check_int("Conv2d.in_channels", in_channels, 1, INT32_MAX)
        out_channels = check_int("Conv2d.out_channels", out_channels, 1, INT32_MAX)
        groups = check_int("Conv2d.groups", groups, 1, INT32_MAX)
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"Conv2d.groups: in_channels ({in_channels}) and out_channels ({out_channels}) "
                             f"must both be divisible by groups, got groups={groups}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = check_pair("Conv2d.kernel_size", kernel_size, 1)
        self.stride = check_pair("Conv2d.stride", stride, 1)
        self.padding = check_pair("Conv2d.padding", padding, 0)
        kh, kw = self.kernel_size
        self.weight = Parameter(np.empty((out_channels, in_channels // groups, kh, kw), np.float32))
        if check_bool("Conv2d.bias", bias):
            self.bias = Parameter(np.empty((out_channels,), np.float32))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init.calculate_fan_in_and_fan_out(self.weight.shape)
            bound = 1.0 / math.sqrt(fan_in)
            init.uniform_(self.bias, -bound, bound)

    def output_shape(self, x_shape) -> tuple:
        n, _, h, w = x_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return n, self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1

    def forward(self, x):
        x = self._check_input(x, 4, self.in_channels)
        _, _, oh, ow = self.output_shape(x.shape)
        if oh <= 0 or ow <= 0:
            raise ValueError(f"{self._short_name()}: input of spatial size {x.shape[2:]} is smaller "
                             f"than the (padded) kernel")
        bias = None if self.bias is None else self.bias.data
        w = self._tensor("weight")
        y = F.conv2d(x, w, bias, self.stride, self.padding, self.groups)
        self._save_for_backward(y, x, w)
        return y

    def backward(self, dy):
        dy, (x, w) = self._saved_for_backward(dy)
        db = None if self.bias is None else self.bias.grad
        dw = self._grad_sink("weight", w)
        dx = F.conv2d_backward(dy, x, w, dw, db, self.stride, self.padding, self.groups)
        self._grad_done("weight", dw)
        return dx

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        return s
