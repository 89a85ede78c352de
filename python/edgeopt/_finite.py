"""Bad values found before they do harm, and errors that name where they are.

Deploy checks every weight, bias and BatchNorm statistic of a traced model (edgeopt.graph.trace) and
the calibration data; ``fit`` checks its train and val data up front and the loss, gradients,
weights and BatchNorm statistics around every step (train/guard.py). The scans run in C++, one
pass with the GIL released (cpp/src/data/validate.h); this module only turns what they find into
messages such as "layer1.0.conv1.weight contains NaN at index (3, 0, 1, 2)".
"""
from __future__ import annotations

import numpy as np

from . import _core

__all__ = ["first_nonfinite", "find_nonfinite", "value_name", "check_finite", "check_data"]


def first_nonfinite(arrays):
    """(position in `arrays`, flat index) of the first NaN / +-Inf over float32 C-contiguous
    arrays, or None when all are finite."""
    return _core.data.data_first_nonfinite(arrays)


def value_name(v) -> str:
    v = float(v)
    if np.isnan(v):
        return "NaN"
    if np.isinf(v):
        return "inf" if v > 0 else "-inf"
    return repr(v)


def _at(shape, flat: int) -> str:
    return str(tuple(int(i) for i in np.unravel_index(flat, shape))) if len(shape) else "()"


def find_nonfinite(named):
    """(name, value in words, index) of the first NaN / +-Inf over (name, float32 C-contiguous
    array) pairs, e.g. ("conv1.weight", "NaN", "(3, 0, 1, 2)"), or None when all are finite."""
    bad = first_nonfinite([a for _, a in named])
    if bad is None:
        return None
    name, a = named[bad[0]]
    return name, value_name(a.flat[bad[1]]), _at(a.shape, bad[1])


def check_finite(named, suffix: str = "") -> None:
    """Raise ValueError "<name> contains NaN at index (...)<suffix>" for the first non-finite
    value of the (name, array) pairs; arrays of other dtypes than float32 are converted."""
    found = find_nonfinite([(n, np.ascontiguousarray(a, dtype=np.float32)) for n, a in named])
    if found is not None:
        name, value, at = found
        raise ValueError(f"{name} contains {value} at index {at}{suffix}")


def check_data(name: str, x, y=None, num_classes: int | None = None, suffix: str = "") -> None:
    """Raise ValueError naming `name` ("train", "val", "calib"), the sample and the value for the
    first sample with a non-finite value in float images `x` or a label of `y` outside
    [0, num_classes). Integer images (uint8) need no finiteness check."""
    x = np.asarray(x)
    bad_x = None
    if x.dtype.kind == "f" and x.size:
        # What training sees is float32: a float64 value beyond its range is bad too.
        with np.errstate(over="ignore"):
            x32 = np.ascontiguousarray(x, dtype=np.float32)
        found = first_nonfinite([x32])
        if found is not None:
            per = max(1, x32.size // max(1, len(x32)))
            bad_x = (found[1] // per, found[1] % per)
    bad_y = -1
    if y is not None and num_classes is not None:
        bad_y = int(_core.data.data_first_bad_label(np.asarray(y), int(num_classes)))
    if bad_x is not None and (bad_y < 0 or bad_x[0] <= bad_y):
        i, j = bad_x
        v = x[i].flat[j]
        what = "a non-finite value" if not np.isfinite(v) else "a value beyond the float32 range"
        raise ValueError(f"{name}: sample {i} contains {what} ({value_name(v)}) at index "
                         f"{_at(x.shape[1:], j)}{suffix}")
    if bad_y >= 0:
        raise ValueError(f"{name}: sample {bad_y} has label {int(np.asarray(y)[bad_y])}, outside "
                         f"[0, {int(num_classes)}) (the model has {int(num_classes)} classes){suffix}")
