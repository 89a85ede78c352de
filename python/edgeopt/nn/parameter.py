"""Parameter: a trainable float32 array together with its gradient accumulator."""
from __future__ import annotations

import numpy as np

__all__ = ["Parameter"]


class Parameter:
    """A trainable array: ``.data`` and ``.grad`` are C-contiguous float32 arrays of one shape.

    Kernels accumulate into ``.grad`` (``+=``); ``zero_grad`` (on a Module or an optimizer) clears it.
    ``requires_grad = False`` freezes the parameter: optimizers skip it.
    """

    __slots__ = ("_data", "grad", "requires_grad")

    def __init__(self, data, requires_grad: bool = True):
        self._data = _as_f32(data, "data")
        self.grad = np.zeros_like(self._data)
        self.requires_grad = bool(requires_grad)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value) -> None:
        value = _as_f32(value, "data")
        if value.shape != self._data.shape:
            self.grad = np.zeros_like(value)
        self._data = value

    @property
    def shape(self) -> tuple:
        return self._data.shape

    @property
    def size(self) -> int:
        return self._data.size

    @property
    def ndim(self) -> int:
        return self._data.ndim

    @property
    def dtype(self):
        return self._data.dtype

    def numpy(self) -> np.ndarray:
        """A copy of the values."""
        return self._data.copy()

    def zero_grad(self) -> None:
        self.grad.fill(0.0)

    def __array__(self, dtype=None, copy=None):
        if dtype is None or np.dtype(dtype) == self._data.dtype:
            return self._data.copy() if copy else self._data
        return self._data.astype(dtype)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype=float32)"


def _as_f32(value, name: str) -> np.ndarray:
    if isinstance(value, Parameter):
        value = value.data
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiub":
        raise TypeError(f"Parameter {name}: expected a numeric array, got dtype {arr.dtype}")
    arr = np.asarray(arr, dtype=np.float32, order="C")  # a 0-d value stays 0-d
    # Kernels write into parameters (optimizer steps): never keep a read-only view.
    return arr if arr.flags.writeable else arr.copy()
