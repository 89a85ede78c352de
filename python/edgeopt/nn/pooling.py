"""Pooling: MaxPool2d, AvgPool2d, GlobalAvgPool2d (and AdaptiveAvgPool2d(1), its PyTorch name)."""
from __future__ import annotations

from .._check import check_bool, check_pair
from . import functional as F
from .module import Module

__all__ = ["MaxPool2d", "AvgPool2d", "GlobalAvgPool2d", "AdaptiveAvgPool2d"]


class _Pool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        name = type(self).__name__
        self.kernel_size, self.stride, self.padding = F._window(kernel_size, stride, padding, f"{name}.")
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(f"{name}.padding: expected at most half the kernel size, "
                             f"got padding={self.padding} for kernel_size={self.kernel_size}")

    def _check(self, x):
        x = self._check_input(x, 4)
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        if x.shape[2] + 2 * ph < kh or x.shape[3] + 2 * pw < kw:
            raise ValueError(f"{self._short_name()}: input of spatial size {x.shape[2:]} is smaller "
                             f"than the (padded) kernel")
        return x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool2d(_Pool2d):
    """Max over kernel windows (padding counts as -inf); stride defaults to kernel_size."""

    def forward(self, x):
        x = self._check(x)
        y, argmax = F.max_pool2d(x, self.kernel_size, self.stride, self.padding, return_indices=True)
        self._save_for_backward(y, argmax, x.shape)
        return y

    def backward(self, dy):
        dy, (argmax, x_shape) = self._saved_for_backward(dy)
        return F.max_pool2d_backward(dy, argmax, x_shape)


class AvgPool2d(_Pool2d):
    """Mean over kernel windows; ``count_include_pad`` as PyTorch (padding zeros are counted)."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad: bool = True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = check_bool("AvgPool2d.count_include_pad", count_include_pad)

    def forward(self, x):
        x = self._check(x)
        y = F.avg_pool2d(x, self.kernel_size, self.stride, self.padding, self.count_include_pad)
        self._save_for_backward(y, x.shape)
        return y

    def backward(self, dy):
        dy, (x_shape,) = self._saved_for_backward(dy)
        return F.avg_pool2d_backward(dy, x_shape, self.kernel_size, self.stride, self.padding,
                                     self.count_include_pad)

    def extra_repr(self) -> str:
        s = super().extra_repr()
        return s if self.count_include_pad else s + ", count_include_pad=False"


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C, 1, 1): the mean over each channel's plane."""

    def forward(self, x):
        x = self._check_input(x, 4)
        y = F.global_avg_pool2d(x)
        self._save_for_backward(y, x.shape)
        return y

    def backward(self, dy):
        dy, (x_shape,) = self._saved_for_backward(dy)
        return F.global_avg_pool2d_backward(dy, x_shape)


class AdaptiveAvgPool2d(GlobalAvgPool2d):
    """PyTorch's name for global average pooling; only ``output_size`` 1 (or (1, 1)) is supported."""

    def __init__(self, output_size=1):
        super().__init__()
        if check_pair("AdaptiveAvgPool2d.output_size", output_size, 1) != (1, 1):
            raise ValueError(f"AdaptiveAvgPool2d: only output_size=1 is supported, got {output_size!r}")
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"
