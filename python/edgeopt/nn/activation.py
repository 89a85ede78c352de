"""Elementwise activations. Each accepts any rank (BinarySign with per-channel thresholds: (N, C,
H, W)); ``inplace`` is accepted for PyTorch signature compatibility and ignored (outputs are always
new arrays)."""
from __future__ import annotations

import numpy as np

from .._check import check_bool, check_int
from . import functional as F
from .module import Module
from .parameter import Parameter

__all__ = ["ReLU", "ReLU6", "HardSwish", "Hardswish", "HardSigmoid", "Hardsigmoid", "Sigmoid", "BinarySign"]


_FUSED = object()  # what a fused activation saves for backward


class _Elementwise(Module):
    # Subclasses set: _fwd(x) -> y, _bwd(dy, saved) -> dx, and whether backward needs y or x.
    _needs_output = False

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.inplace = check_bool(f"{type(self).__name__}.inplace", inplace)

    def forward(self, x):
        x = self._check_input(x, None)
        y = type(self)._fwd(x)
        self._save_for_backward(y, y if self._needs_output else x)
        return y

    def backward(self, dy):
        dy, (saved,) = self._saved_for_backward(dy)
        if saved is _FUSED:
            return dy  # the BatchNorm before it applied the derivative
        return type(self)._bwd(dy, saved)

    def _mark_fused(self, y) -> None:
        """Record a forward that the preceding BatchNorm2d ran fused (nn/container.py): backward
        then passes dy through."""
        self._save_for_backward(y, _FUSED)


class ReLU(_Elementwise):
    """max(x, 0)."""
    _fwd, _bwd, _needs_output = staticmethod(F.relu), staticmethod(F.relu_backward), True


class ReLU6(_Elementwise):
    """min(max(x, 0), 6)."""
    _fwd, _bwd = staticmethod(F.relu6), staticmethod(F.relu6_backward)


class HardSwish(_Elementwise):
    """x * relu6(x + 3) / 6 (MobileNetV3)."""
    _fwd, _bwd = staticmethod(F.hardswish), staticmethod(F.hardswish_backward)


class HardSigmoid(_Elementwise):
    """relu6(x + 3) / 6."""
    _fwd, _bwd = staticmethod(F.hardsigmoid), staticmethod(F.hardsigmoid_backward)


class Sigmoid(_Elementwise):
    """1 / (1 + exp(-x))."""
    _fwd, _bwd, _needs_output = staticmethod(F.sigmoid), staticmethod(F.sigmoid_backward), True


class BinarySign(_Elementwise):
    """Binary activation: +1 where x >= 0, else -1; backward is the clipped straight-through
    estimator (dy where |x| <= 1). A binary-weight conv reading it deploys as the runtime's
    XNOR-popcount conv (scheme 'binary'); quant.prepare_qat(..., binary_activations=True) puts it
    in place of the activation before each binarized conv.

    num_channels: a learnable threshold per channel of an (N, C, H, W) input (ReActNet's RSign):
    +1 where x >= threshold[c]. Its first training forward sets it to each channel's mean over
    that batch, so the signs of a non-negative input (after a ReLU, where a plain sign is always
    +1) carry information from the start; then it trains with the gradient -sum(dy) over the
    straight-through window |x - threshold| <= 1. prepare_qat(binary_activations='all') uses it."""
    _fwd, _bwd = staticmethod(F.binary_sign), staticmethod(F.binary_sign_backward)

    def __init__(self, num_channels: int | None = None, inplace: bool = False):
        super().__init__(inplace)
        if num_channels is None:
            self.threshold = None
            return
        c = check_int("BinarySign.num_channels", num_channels, 1)
        self.threshold = Parameter(np.zeros(c, np.float32))
        self.register_buffer("threshold_initialized", np.zeros((), np.int64))

    def extra_repr(self) -> str:
        return "" if self.threshold is None else f"{self.threshold.shape[0]}"

    def forward(self, x):
        if self.threshold is None:
            return super().forward(x)
        t = self.threshold.data
        x = self._check_input(x, 4, t.shape[0])
        if self.training and not self.threshold_initialized:
            t[...] = x.mean(axis=(0, 2, 3), dtype=np.float64)
            self.threshold_initialized[...] = 1
        y = F.binary_sign(x, t)
        self._save_for_backward(y, x, t.copy())
        return y

    def backward(self, dy):
        if self.threshold is None:
            return super().backward(dy)
        dy, (x, t) = self._saved_for_backward(dy)
        dx = F.binary_sign_backward(dy, x, t)
        self.threshold.grad -= dx.sum(axis=(0, 2, 3))
        return dx


# PyTorch's spellings.
Hardswish = HardSwish
Hardsigmoid = HardSigmoid
