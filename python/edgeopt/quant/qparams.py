"""Scales, zero points and requantization factors: the scalar arithmetic of quantization.

Affine quantization (DESIGN.md): R = S (Q - Z) with

    S = (Rmax - Rmin) / (Qmax - Qmin),   Z = Qmax - Rmax / S   (rounded, clamped to [Qmin, Qmax])

Asymmetric uint8 (activations): Q in [0, 255] and the range always includes 0 (Rmin <= 0 <= Rmax),
so real 0 -- zero padding, ReLU's floor -- is exactly representable as Z. Symmetric int8
(weights): Z = 0, Q in [-127, 127], S = r / 127 with r = max(|Rmin|, |Rmax|); the survey writes the
same thing as the quantization multiplier s = 127 / r (q = round(s x) = round(x / S)).

The int8 kernels requantize in float32 (cpp/src/qs8-gemm/requantize.h): y = rint(float(acc) * m) +
Z_out. ``requant_scale`` and ``average_scale`` give the factor m, ``add_scales`` the constants of
the integer add, each evaluated in float32 in one fixed order, the order onnxruntime's x86-64
QLinearConv, QGemm, QLinearGlobalAveragePool and QLinearAdd use, so an exported QDQ model and the
Engine compute the same bytes there.
"""
from __future__ import annotations

import numpy as np

from .._check import show_value, check_bool, check_int

__all__ = ["qparams", "zero_point", "requant_scale", "average_scale", "add_scales", "fma32", "qrange"]


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
    qparams uses it; it is public for a scale chosen some other way."""
    qmax = qrange(bits, False)[1]
    z = np.clip(np.round(-_reals("xmin", xmin) / _reals("scale", scale)), 0, qmax).astype(np.int64)
    return int(z) if z.ndim == 0 else z


def _f32_scale(name: str, v) -> np.ndarray:
    with np.errstate(over="ignore"):   # beyond float32: inf, refused below
        a = _reals(name, v).astype(np.float32)
    if not np.all(np.isfinite(a)) or np.any(a <= 0):
        raise ValueError(f"{name}: expected finite scales > 0, got {show_value(v)}")
    return a


def _f32_factor(name: str, m) -> np.ndarray:
    if not np.all(np.isfinite(m)) or np.any(m <= 0):
        raise ValueError(f"{name}: the requantization factor is {show_value(m)}: the scales are out of "
                         "float32 range")
    return m


def requant_scale(s_in, s_w, s_out) -> np.ndarray:
    """float32 (s_in * s_w) / s_out, in that order: the factor that takes an int32 accumulator at
    scale s_in * s_w (per output channel when s_w is an array) to the output grid s_out."""
    s_in, s_w, s_out = _f32_scale("s_in", s_in), _f32_scale("s_w", s_w), _f32_scale("s_out", s_out)
    with np.errstate(over="ignore", under="ignore"):
        m = (s_in * s_w) / s_out
    return _f32_factor("s_in * s_w / s_out", m)


def average_scale(s_in, s_out, count) -> np.ndarray:
    """float32 s_in / (s_out * count): an average pool's factor for a sum of `count` inputs."""
    c = _reals("count", count)
    if np.any(c < 1) or np.any(c != np.round(c)):
        raise ValueError(f"count: expected whole numbers >= 1, got {show_value(count)}")
    s_in, s_out = _f32_scale("s_in", s_in), _f32_scale("s_out", s_out)
    with np.errstate(over="ignore", under="ignore"):
        m = s_in / (s_out * c.astype(np.float32))
    return _f32_factor("s_in / (s_out * count)", m)


def fma32(a, b, c) -> np.ndarray:
    """float32 fma(a, b, c), one rounding, for small integers a (|a| < 2^24) and float32 b, c
    (arrays broadcast): a * b is exact in float64; the float64 sum s = a b + c and its exact error
    e (TwoSum) decide the float32 result, which differs from rounding s only when s lies exactly
    halfway between two floats and e != 0."""
    x = np.asarray(a, np.float64) * np.asarray(b, np.float32).astype(np.float64)
    y = np.broadcast_to(np.asarray(c, np.float32).astype(np.float64), x.shape)
    s = x + y
    bb = s - x
    e = (x - (s - bb)) + (y - bb)                     # s + e == x + y exactly
    with np.errstate(over="ignore"):
        r = s.astype(np.float32)
    d = s - r.astype(np.float64)
    other = np.nextafter(r, np.where(d > 0, np.float32(np.inf), np.float32(-np.inf))).astype(np.float32)
    tie = (d != 0) & (2 * s == r.astype(np.float64) + other.astype(np.float64)) & (e != 0)
    toward = np.sign(e) == np.sign(other.astype(np.float64) - s)  # the true value lies past the tie
    return np.where(tie & toward, other, r)


def add_scales(s_a, z_a, s_b, z_b, s_y, z_y):
    """float32 (r_a, r_b, offset) of the integer add y = rint(fma(a, r_a, fma(b, r_b, offset))):
    r_a = s_a / s_y, r_b = s_b / s_y, offset = z_y - fma(r_a, z_a, r_b z_b), the constant as
    onnxruntime's x86-64 QLinearAdd computes it (its compiler contracts that expression)."""
    s_a, s_b, s_y = _f32_scale("s_a", s_a), _f32_scale("s_b", s_b), _f32_scale("s_y", s_y)
    with np.errstate(over="ignore", under="ignore"):
        r_a, r_b = s_a / s_y, s_b / s_y
    for name, z in (("z_a", z_a), ("z_b", z_b), ("z_y", z_y)):
        check_int(name, z, 0, 255)
    r_a, r_b = _f32_factor("s_a / s_y", r_a), _f32_factor("s_b / s_y", r_b)
    with np.errstate(over="ignore", invalid="ignore"):
        off = np.float32(z_y) - fma32(z_a, r_a, r_b * np.float32(z_b))[()]
    if not np.isfinite(off):
        raise ValueError(f"offset: z_y - (r_a z_a + r_b z_b) is {off}: the scales are out of float32 range")
    return np.float32(r_a), np.float32(r_b), np.float32(off)