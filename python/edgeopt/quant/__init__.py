"""Quantization: scales and zero points, observers, fixed-point multipliers.

Affine quantization (DESIGN.md): R = S (Q - Z) with

    S = (Rmax - Rmin) / (Qmax - Qmin),   Z = Qmax - Rmax / S   (rounded, clamped to [Qmin, Qmax])

Asymmetric uint8 (activations): Q in [0, 255] and the range always includes 0 (Rmin <= 0 <= Rmax),
so real 0 -- zero padding, ReLU's floor -- is exactly representable as Z. Symmetric int8
(weights): Z = 0, Q in [-127, 127], S = r / 127 with r = max(|Rmin|, |Rmax|); the survey writes the
same thing as the quantization multiplier s = 127 / r (q = round(s x) = round(x / S)).

``quantize_multiplier`` turns a real rescaling factor 0 <= m < 1 (e.g. S_in S_w / S_out) into the
Q31 multiplier and right shift of the int8 kernels' requantization (cpp/src/qs8-gemm/requantize.h):
m ~= multiplier * 2^-(31 + shift).
"""
from __future__ import annotations

import math

import numpy as np

from .._check import show_value, check_bool, check_dim, check_float, check_int

__all__ = ["qparams", "MinMaxObserver", "quantize_multiplier", "quantize_per_channel"]


def _check_bits(bits) -> int:
    return check_int("bits", bits, 2, 16)


def _reals(name: str, v, float64: bool = True) -> np.ndarray:
    """A number or an array of numbers, as float64 (or in its own dtype: no copy of a tensor)."""
    try:
        a = np.asarray(v)
    except ValueError:  # ragged nested lists
        a = None
    if a is None or a.dtype.kind not in "biuf":
        raise TypeError(f"{name}: expected a number or an array of numbers, got {show_value(v)} "
                        f"({type(v).__name__})")
    return a.astype(np.float64, copy=False) if float64 else a


def qparams(xmin, xmax, bits: int = 8, symmetric: bool = True):
    """(scale, zero_point) for real values in [xmin, xmax].

    symmetric=True: signed Q in [-(2^(bits-1) - 1), 2^(bits-1) - 1], zero_point 0,
    scale = max(|xmin|, |xmax|) / Qmax. symmetric=False: unsigned Q in [0, 2^bits - 1], the range
    widened to include 0, scale = (xmax - xmin) / (2^bits - 1), zero_point = round(Qmax - xmax / scale).
    A degenerate range (all zeros) gives scale 1.0. Works elementwise on arrays (per channel)."""
    bits = _check_bits(bits)
    symmetric = check_bool("symmetric", symmetric)
    lo, hi = _reals("xmin", xmin), _reals("xmax", xmax)
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"xmin, xmax: expected finite values, got {xmin!r}, {xmax!r}")
    if np.any(lo > hi):
        raise ValueError(f"xmin, xmax: expected xmin <= xmax, got {xmin!r} > {xmax!r}")
    if symmetric:
        qmax = 2 ** (bits - 1) - 1
        r = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(r > 0, r / qmax, 1.0)
    else:
        qmax = 2 ** bits - 1
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        with np.errstate(over="ignore"):
            width = hi - lo  # overflows to inf for ranges such as [-1e308, 1e308]: divide first there
        scale = np.where(hi > lo, np.where(np.isfinite(width), width / qmax, hi / qmax - lo / qmax), 1.0)
    if np.any(scale == 0.0):  # a range of a few subnormals: no positive float64 scale maps it
        raise ValueError(f"xmin, xmax: the range is too small to quantize (its scale underflows to 0), "
                         f"got {xmin!r}, {xmax!r}")
    if symmetric:
        zp = np.zeros_like(scale, dtype=np.int64)
    else:
        # Z = Qmax - Rmax / S, written as Qmin - Rmin / S (equal when the range is not empty; a
        # degenerate all-zero range then gets Z = 0)
        zp = np.clip(np.round(-lo / scale), 0, qmax).astype(np.int64)
    if scale.ndim == 0:
        return float(scale), int(zp)
    return scale, zp


class MinMaxObserver:
    """Running min / max of the values it sees (per tensor, or per channel along `axis`);
    ``calculate_qparams()`` gives (scale, zero_point) by ``qparams``.

    >>> obs = MinMaxObserver(symmetric=False)
    >>> obs(x1); obs(x2)
    >>> scale, zp = obs.calculate_qparams()
    """

    def __init__(self, bits: int = 8, symmetric: bool = False, axis=None):
        self.bits = _check_bits(bits)
        self.symmetric = check_bool("symmetric", symmetric)
        self.axis = None if axis is None else check_int("axis", axis)
        self.min_val = None
        self.max_val = None

    def __call__(self, x) -> None:
        x = _reals("x", x, float64=False)
        # an out-of-range axis is an IndexError, as in PyTorch's per-channel observers (never wrapped)
        axis = None if self.axis is None else check_dim("axis", self.axis, x.ndim)
        if x.size == 0:
            return
        if axis is None:
            lo, hi = float(np.min(x)), float(np.max(x))
        else:
            red = tuple(d for d in range(x.ndim) if d != axis)
            lo, hi = np.min(x, axis=red).astype(np.float64), np.max(x, axis=red).astype(np.float64)
        if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
            raise ValueError("MinMaxObserver: the observed tensor holds NaN or Inf")
        self.min_val = lo if self.min_val is None else np.minimum(self.min_val, lo)
        self.max_val = hi if self.max_val is None else np.maximum(self.max_val, hi)

    observe = __call__

    def calculate_qparams(self):
        if self.min_val is None:
            raise RuntimeError("MinMaxObserver: no values observed yet")
        return qparams(self.min_val, self.max_val, self.bits, self.symmetric)

    def __repr__(self) -> str:
        return (f"MinMaxObserver(bits={self.bits}, symmetric={self.symmetric}, min={self.min_val}, "
                f"max={self.max_val})")


def quantize_multiplier(m: float):
    """(multiplier, shift) with multiplier in [2^30, 2^31) (or smaller when shift saturates at 31)
    and shift in [0, 31] such that m ~= multiplier * 2^-(31 + shift). Needs 0 <= m and m not rounding
    to 1 in Q31 (m < 1 - 2^-32)."""
    m = check_float("m", m, 0.0, 1.0, max_open=True)
    if m == 0.0:
        return 0, 0
    mant, exp = math.frexp(m)           # m = mant * 2^exp, mant in [0.5, 1), exp <= 0
    shift = -exp
    mult = int(round(mant * (1 << 31)))
    if mult == (1 << 31):                # mant rounded up to 1.0
        mult, shift = 1 << 30, shift - 1
    if shift > 31:                       # tiny factor: fewer significant bits
        mult, shift = int(round(m * 2.0 ** 62)), 31
    if shift < 0:
        raise ValueError(f"m: {m!r} rounds to 1.0, which the requantization cannot represent")
    return mult, shift


def quantize_per_channel(w, axis: int = 0, bits: int = 8):
    """Symmetric per-channel quantization of weights: scale[c] = max|w_c| / Qmax (1 for an
    all-zero channel), q = clip(round(w / scale), -Qmax, Qmax). Returns (q int8, scale float64)."""
    bits = _check_bits(bits)
    if bits > 8:
        raise ValueError(f"bits: int8 storage holds at most 8 bits, got {bits}")
    w = _reals("w", w)
    axis = check_dim("axis", axis, w.ndim)
    wa = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
    qmax = 2 ** (bits - 1) - 1
    scale, _ = qparams(wa.min(axis=1) if wa.size else np.zeros(len(wa)),
                       wa.max(axis=1) if wa.size else np.zeros(len(wa)), bits, True)
    scale = np.atleast_1d(scale)
    q = np.clip(np.round(wa / scale[:, None]), -qmax, qmax).astype(np.int8)
    q = np.moveaxis(q.reshape(np.moveaxis(w, axis, 0).shape), 0, axis)
    return np.ascontiguousarray(q), scale
