"""Observers: they watch the values a tensor takes (during calibration or quantization-aware
training) and turn them into quantization parameters with ``calculate_qparams()``, as in
torch.ao.quantization. Their element loops run in C++ (quant/quantize.py)."""
from __future__ import annotations

import numpy as np

from .. import _core
from .._check import check_bool, check_dim, check_int
from .qparams import _check_bits, qparams
from .quantize import _nonfinite, _rows

__all__ = ["MinMaxObserver"]


class MinMaxObserver:
    """Running min / max of the values it sees (per tensor, or per channel along `axis`);
    ``calculate_qparams()`` gives (scale, zero_point) by ``qparams``.

    >>> obs = MinMaxObserver(symmetric=False)
    >>> obs(x1); obs(x2)
    >>> scale, zp = obs.calculate_qparams()
    """

    def __init__(self, bits: int = 8, symmetric: bool = False, axis=None, name: str = "x"):
        self.bits = _check_bits(bits)
        self.symmetric = check_bool("symmetric", symmetric)
        self.axis = None if axis is None else check_int("axis", axis)
        self.name = str(name)
        self.min_val = None
        self.max_val = None

    def __call__(self, x) -> None:
        x = np.asarray(x)
        # an out-of-range axis is an IndexError, as in PyTorch's per-channel observers (never wrapped)
        axis = None if self.axis is None else check_dim("axis", self.axis, x.ndim)
        rows, axis, shape = _rows(self.name, x, axis)
        if rows.size == 0:
            return
        lo, hi, bad = _core.quant.quant_row_range(rows)
        if bad >= 0:
            raise _nonfinite(self.name, rows, bad, axis, shape)
        lo, hi = lo.astype(np.float64), hi.astype(np.float64)
        if axis is None:
            lo, hi = float(lo[0]), float(hi[0])
        self.min_val = lo if self.min_val is None else np.minimum(self.min_val, lo)
        self.max_val = hi if self.max_val is None else np.maximum(self.max_val, hi)

    observe = __call__

    def calculate_qparams(self):
        if self.min_val is None:
            raise RuntimeError(f"MinMaxObserver({self.name}): no values observed yet (empty calibration set?)")
        return qparams(self.min_val, self.max_val, self.bits, self.symmetric)

    def __repr__(self) -> str:
        return (f"MinMaxObserver(bits={self.bits}, symmetric={self.symmetric}, min={self.min_val}, "
                f"max={self.max_val})")
