"""Argument checks for the public API: one place that decides what a valid int, number, shape,
array, dataset or model is, and words every error the same way:

    lr: expected a finite number > 0, got nan
    kernel_size: expected an int >= 1 or a pair of them, got 2.5 (float)

TypeError when the kind of value is wrong, ValueError when a value of the right kind is out of
range, IndexError for a dimension out of range (as PyTorch). ``bool`` is rejected where an int or
a number is expected (``True`` is not a size); numpy integer and floating scalars are accepted and
returned as Python ``int`` / ``float``, so what reaches the core is always a plain value.

Every helper costs O(1) in the size of any array it is given (it reads type, dtype and shape,
never the elements), so layers may call them on every forward. Content checks (NaN, label range)
belong to the code that already reads the data.
"""
from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["INT32_MAX", "show_value", "check_int", "check_float", "check_bool", "check_choice", "check_pair",
           "check_shape", "check_dim", "check_array", "check_callable", "check_instances",
           "check_path"]

# Sizes, strides and counts reach C++ as 32-bit ints: larger Python ints would make pybind11 fail
# with "incompatible function arguments", which names nothing. Check them here instead.
INT32_MAX = 2**31 - 1


def show_value(v) -> str:
    """The received value for a message: arrays by shape and dtype, long reprs cut short."""
    if isinstance(v, np.ndarray):
        return f"an array of shape {v.shape} and dtype {v.dtype}"
    r = repr(v)
    return r if len(r) <= 80 else r[:77] + "..."


def _type_error(name: str, expected: str, v) -> TypeError:
    return TypeError(f"{name}: expected {expected}, got {show_value(v)} ({type(v).__name__})")


def _value_error(name: str, expected: str, v) -> ValueError:
    return ValueError(f"{name}: expected {expected}, got {show_value(v)}")


def _bounds(lo, hi, lo_open: bool = False, hi_open: bool = False) -> str:
    """' >= 1', ' > 0', ' in [0, 1)', '' ..."""
    if lo is not None and hi is not None:
        return f" in {'(' if lo_open else '['}{lo}, {hi}{')' if hi_open else ']'}"
    if lo is not None:
        return f" {'>' if lo_open else '>='} {lo}"
    if hi is not None:
        return f" {'<' if hi_open else '<='} {hi}"
    return ""


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


def check_int(name: str, v, min: int | None = None, max: int | None = None) -> int:
    """An int (numpy integers too, not bool) in [min, max]; returns it as a Python int."""
    expected = "an int" + _bounds(min, max)
    if not _is_int(v):
        raise _type_error(name, expected, v)
    v = int(v)
    if (min is not None and v < min) or (max is not None and v > max):
        raise _value_error(name, expected, v)
    return v


def check_float(name: str, v, min: float | None = None, max: float | None = None, *,
                min_open: bool = False, max_open: bool = False, finite: bool = True) -> float:
    """A real number (int or float, numpy scalars too, not bool) in the interval, finite unless
    ``finite=False``; returns it as a Python float. NaN is never in an interval."""
    expected = ("a finite number" if finite else "a number") + _bounds(min, max, min_open, max_open)
    if not _is_number(v):
        raise _type_error(name, expected, v)
    f = float(v)
    bad = (math.isnan(f) or (finite and math.isinf(f))
           or (min is not None and (f <= min if min_open else f < min))
           or (max is not None and (f >= max if max_open else f > max)))
    if bad:
        raise _value_error(name, expected, v)
    return f


def check_bool(name: str, v) -> bool:
    """True or False (numpy bools too); 0 / 1 and other truthy objects are rejected."""
    if not isinstance(v, (bool, np.bool_)):
        raise _type_error(name, "a bool", v)
    return bool(v)


def check_choice(name: str, v, choices):
    """One of ``choices`` (strings, or None among them). A value of another type than every
    choice is a TypeError, an unknown one a ValueError."""
    names = [repr(c) for c in choices]
    expected = " or ".join(names) if len(names) <= 2 else "one of " + ", ".join(names)
    if not any(isinstance(v, type(c)) for c in choices):
        raise _type_error(name, expected, v)
    if v not in choices:
        raise _value_error(name, expected, v)
    return v


def check_pair(name: str, v, min: int = 0, max: int = INT32_MAX) -> tuple[int, int]:
    """``3 -> (3, 3)``; an ``(h, w)`` tuple or list of two ints stays; each in [min, max]."""
    expected = "an int" + _bounds(min, max) + " or a pair of them"
    if _is_int(v):
        items = (v, v)
    elif isinstance(v, (tuple, list)) and len(v) == 2 and all(_is_int(e) for e in v):
        items = v
    else:
        raise _type_error(name, expected, v)
    if not all(min <= e <= max for e in items):
        raise _value_error(name, expected, v)
    return int(items[0]), int(items[1])


def check_shape(name: str, v, ndim: int | None = None, min: int = 1, max: int = INT32_MAX) -> tuple:
    """A shape: a tuple or list of ``ndim`` ints (any length if None), each in [min, max].
    A float such as 8.7 is a TypeError, never truncated."""
    rank = f"{ndim} ints" if ndim is not None else "ints"
    expected = f"a tuple of {rank}" + _bounds(min, max)
    if not isinstance(v, (tuple, list)) or not all(_is_int(d) for d in v):
        raise _type_error(name, expected, v)
    if (ndim is not None and len(v) != ndim) or not all(min <= d <= max for d in v):
        raise _value_error(name, expected, v)
    return tuple(int(d) for d in v)


def check_dim(name: str, dim, ndim: int) -> int:
    """A dimension index of a ``ndim``-d array, wrapped to [0, ndim) as PyTorch does: in
    [-ndim, ndim - 1] (a 0-d array counts as 1-d), IndexError otherwise."""
    n = ndim if ndim > 0 else 1
    if not _is_int(dim):
        raise _type_error(name, "an int", dim)
    dim = int(dim)
    if not -n <= dim < n:
        raise IndexError(f"{name}: expected a dimension in [{-n}, {n - 1}] for a {ndim}-d input, "
                         f"got {dim}")
    return dim % n


_KINDS = {"iu": "an integer", "biuf": "a numeric", "f": "a floating-point"}


def check_array(name: str, a, dtype=None, ndim=None) -> np.ndarray:
    """A numpy array of ``dtype`` (a dtype, or a kind string of _KINDS such as 'iu') with
    ``ndim`` dimensions (an int or a tuple of allowed ranks). Returns it unchanged."""
    if dtype is None:
        want, ok = "a", True
    elif isinstance(dtype, str):
        want = _KINDS[dtype]
        ok = isinstance(a, np.ndarray) and a.dtype.kind in dtype
    else:
        want = f"a {np.dtype(dtype)}"
        ok = isinstance(a, np.ndarray) and a.dtype == dtype
    if not isinstance(a, np.ndarray):
        raise _type_error(name, f"{want} numpy array", a)
    if not ok:
        raise TypeError(f"{name}: expected {want} numpy array, got dtype {a.dtype}")
    if ndim is not None:
        ranks = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if a.ndim not in ranks:
            want_rank = " or ".join(f"{r}-d" for r in ranks)
            raise ValueError(f"{name}: expected a {want_rank} array, got shape {a.shape}")
    return a


def check_callable(name: str, v):
    if not callable(v):
        raise _type_error(name, "a callable", v)
    return v


def check_instances(name: str, v, cls, expected: str) -> tuple:
    """An iterable of `cls` instances (not a single one, not a string) as a tuple; a bad item is
    named by its index: ``callbacks[1]: expected an edgeopt.train.Callback, got 5 (int)``."""
    if isinstance(v, (cls, str, bytes)) or not hasattr(v, "__iter__"):
        raise _type_error(name, f"an iterable of {expected} objects", v)
    items = tuple(v)
    for i, item in enumerate(items):
        if not isinstance(item, cls):
            raise _type_error(f"{name}[{i}]", f"an {expected}", item)
    return items


def check_path(name: str, v) -> str:
    """A file system path: str or os.PathLike (bytes paths are not used anywhere in edgeopt)."""
    if not isinstance(v, (str, os.PathLike)):
        raise _type_error(name, "a path (str or os.PathLike)", v)
    path = os.fspath(v)
    if not isinstance(path, str) or not path:
        raise _value_error(name, "a non-empty str path", v)
    return path
