"""Scales, zero points and fixed-point multipliers: the scalar arithmetic of quantization.

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

__all__ = ["qparams", "zero_point", "quantize_multiplier", "qrange"]


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


def qrange(bits: int = 8, symmetric: bool = True) -> tuple[int, int]:
    """(Qmin, Qmax): [-(2^(bits-1) - 1), 2^(bits-1) - 1] symmetric (the negative end left out so
    the range is symmetric about Z = 0), [0, 2^bits - 1] asymmetric."""
    bits = _check_bits(bits)
    if check_bool("symmetric", symmetric):
        return -(2 ** (bits - 1) - 1), 2 ** (bits - 1) - 1
    return 0, 2 ** bits - 1


def qparams(xmin, xmax, bits: int = 8, symmetric: bool = True):
    """(scale, zero_point) for real values in [xmin, xmax].

    symmetric=True: signed Q in [-(2^(bits-1) - 1), 2^(bits-1) - 1], zero_point 0,
    scale = max(|xmin|, |xmax|) / Qmax. symmetric=False: unsigned Q in [0, 2^bits - 1], the range
    widened to include 0, scale = (xmax - xmin) / (2^bits - 1), zero_point = round(Qmax - xmax / scale).
    A degenerate range (all zeros) gives scale 1.0. Works elementwise on arrays (per channel)."""
    bits = _check_bits(bits)
    symmetric = check_bool("symmetric", symmetric)
    lo, hi = _reals("xmin", xmin), _reals("xmax", xmax)
    qmax = qrange(bits, symmetric)[1]
    if not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))):
        raise ValueError(f"xmin, xmax: expected finite values, got {xmin!r}, {xmax!r}")
    if np.any(lo > hi):
        raise ValueError(f"xmin, xmax: expected xmin <= xmax, got {xmin!r} > {xmax!r}")
    if symmetric:
        r = np.maximum(np.abs(lo), np.abs(hi))
        scale = np.where(r > 0, r / qmax, 1.0)
    else:
        lo, hi = np.minimum(lo, 0.0), np.maximum(hi, 0.0)
        with np.errstate(over="ignore"):
            width = hi - lo  # overflows to inf for ranges such as [-1e308, 1e308]: divide first there
        scale = np.where(hi > lo, np.where(np.isfinite(width), width / qmax, hi / qmax - lo / qmax), 1.0)
    if np.any(scale == 0.0):  # a range of a few subnormals: no positive float64 scale maps it
        raise ValueError(f"xmin, xmax: the range is too small to quantize (its scale underflows to 0), "
                         f"got {xmin!r}, {xmax!r}")
    zp = np.zeros_like(scale, dtype=np.int64) if symmetric else zero_point(lo, scale, bits)
    if scale.ndim == 0:
        return float(scale), int(zp)
    return scale, zp


def zero_point(xmin, scale, bits: int = 8):
    """Asymmetric Z for a range starting at xmin (<= 0) with a given scale: Z = Qmax - Rmax / S,
    written as Qmin - Rmin / S (equal when the range is not empty; a degenerate all-zero range
    then gets Z = 0), rounded and clamped to [0, Qmax]. Scalars give an int, arrays an int64 array.
    A scale other than qparams' (e.g. one raised to fit a multiplier) needs its own Z."""
    qmax = qrange(bits, False)[1]
    z = np.clip(np.round(-_reals("xmin", xmin) / _reals("scale", scale)), 0, qmax).astype(np.int64)
    return int(z) if z.ndim == 0 else z


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
