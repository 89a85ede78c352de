"""Elementwise activations. Each accepts any rank; ``inplace`` is accepted for PyTorch
signature compatibility and ignored (outputs are always new arrays)."""
from __future__ import annotations

from .._check import check_bool
from . import functional as F
from .module import Module

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
    in place of the activation before each binarized conv."""
    _fwd, _bwd = staticmethod(F.binary_sign), staticmethod(F.binary_sign_backward)


# PyTorch's spellings.
Hardswish = HardSwish
Hardsigmoid = HardSigmoid
