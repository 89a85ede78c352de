"""Tensors to integers and back: the one implementation every quantizing path calls (the int8-weight
and int8-full lowerings, the ONNX QDQ export, observers), so they agree by construction.

    q = clamp(round(x / S) + Z, Qmin, Qmax)       round half to even, as np.round
    x = S (q - Z)

per tensor (``axis=None``) or per channel along ``axis``. The element loops run in C++
(cpp/src/f32-quantize, one pass, GIL released); the division is in float64, so a float32 scale
quantizes exactly as the runtime that stores it will dequantize. Non-finite values raise a
ValueError naming the tensor (``name``).
"""
from __future__ import annotations

import numpy as np

from .. import _core
from .._check import check_array, check_dim, check_int
from .._finite import value_name
from .qparams import _check_bits, qrange

__all__ = ["quantize", "dequantize", "weight_scales", "quantize_per_channel", "quantize_bias",
           "quantize_weight_bias", "histogram", "BIAS_LIMIT"]

BIAS_LIMIT = 2 ** 30  # |quantized bias| bound: int32 with room for the accumulated products


def _rows(name: str, x, axis, dtype=np.float32):
    """x as a (rows, cols) array of `dtype` (None: its own) with the channel axis first (rows = 1
    per tensor), the axis, and how to put the result back in x's shape."""
    x = check_array(name, x, "biuf")
    x32 = np.ascontiguousarray(x, dtype=dtype)
    if axis is None:
        return x32.reshape(1, -1), None, x32.shape
    axis = check_dim("axis", axis, x32.ndim)
    moved = np.moveaxis(x32, axis, 0)
    return np.ascontiguousarray(moved).reshape(moved.shape[0], -1), axis, moved.shape


def _back(r: np.ndarray, axis, shape) -> np.ndarray:
    out = r.reshape(shape)
    return out if axis is None else np.ascontiguousarray(np.moveaxis(out, 0, axis))


def _per_row(name: str, v, rows: int, dtype) -> np.ndarray:
    a = np.asarray(v, dtype=dtype)
    if a.ndim == 0:
        a = np.full(rows, a, dtype=dtype)
    if a.shape != (rows,):
        raise ValueError(f"{name}: expected a scalar or {rows} values (one per channel), got shape {a.shape}")
    return np.ascontiguousarray(a)


def _nonfinite(name: str, rows: np.ndarray, bad: int, axis, shape):
    """The ValueError for the first non-finite value, at flat index `bad` of `rows`, named by its
    index in the caller's tensor."""
    if axis is None:
        where = list(np.unravel_index(int(bad), shape))
    else:
        r, j = divmod(int(bad), rows.shape[1])
        where = list(np.unravel_index(j, shape[1:]))
        where.insert(axis, r)
    return ValueError(f"{name} contains {value_name(rows.flat[bad])} at index "
                      f"{tuple(int(i) for i in where)}: it cannot be quantized")


def quantize(x, scale, zero_point=0, bits: int = 8, symmetric: bool = True, axis=None,
             name: str = "x") -> np.ndarray:
    """q = clamp(round(x / scale) + zero_point, Qmin, Qmax) with (Qmin, Qmax) = qrange(bits,
    symmetric), stored as int8 when symmetric, uint8 when not. x is a float32 tensor (or one whose
    values float32 holds); scale / zero_point: scalars, or one per channel along ``axis``."""
    bits = _check_bits(bits)
    if bits > 8:
        raise ValueError(f"bits: int8 / uint8 storage holds at most 8 bits, got {bits}")
    rows, axis, shape = _rows(name, x, axis)
    n = rows.shape[0]
    dtype = "int8" if symmetric else "uint8"
    qmin, qmax = qrange(bits, symmetric)
    s = _per_row("scale", scale, n, np.float64)
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"scale: expected finite values > 0, got {scale!r}")
    z = _per_row("zero_point", zero_point, n, np.int64)
    if np.any((z < qmin) | (z > qmax)):
        raise ValueError(f"zero_point: expected values in [{qmin}, {qmax}], got {zero_point!r}")
    q, bad = _core.quant.quant_quantize_rows(rows, s, z.astype(np.int32), qmin, qmax, dtype)
    if bad >= 0:
        raise _nonfinite(name, rows, bad, axis, shape)
    return _back(q, axis, shape)


def dequantize(q, scale, zero_point=0, axis=None) -> np.ndarray:
    """x = float32(scale * (q - zero_point)), per tensor or per channel along ``axis``."""
    q = check_array("q", q)
    if q.dtype not in (np.int8, np.uint8, np.int32):
        raise TypeError(f"q: expected an int8, uint8 or int32 array, got dtype {q.dtype}")
    rows, axis, shape = _rows("q", q, axis, dtype=None)
    n = rows.shape[0]
    s = _per_row("scale", scale, n, np.float64)
    z = _per_row("zero_point", zero_point, n, np.int32)
    return _back(_core.quant.quant_dequantize_rows(rows, s, z), axis, shape)


def weight_scales(w, axis: int = 0, bits: int = 8, bias=None, input_scale=None, name: str = "w",
                  dtype=np.float64) -> np.ndarray:
    """Symmetric per-channel scales of a weight: max|w_c| / Qmax (1 for an all-zero channel). With
    a bias and the input's scale, a channel's scale is raised where round(bias / (input_scale *
    scale)) would exceed BIAS_LIMIT (tiny input scales): there the products sum to far less than
    the bias, so coarser weights cost nothing the int32 bias could have kept. Computed in float64
    and returned in ``dtype`` (float32 where the scale is stored as float32)."""
    rows, axis, shape = _rows(name, w, axis)
    lo, hi, bad = _core.quant.quant_row_range(rows) if rows.size else (np.zeros(len(rows)),) * 2 + (-1,)
    if bad >= 0:
        raise _nonfinite(name, rows, bad, axis, shape)
    qmax = qrange(bits, True)[1]
    amax = np.maximum(np.abs(lo.astype(np.float64)), np.abs(hi.astype(np.float64)))
    scale = np.where(amax > 0, amax / qmax, 1.0)
    if bias is not None:
        b = np.abs(np.asarray(bias, dtype=np.float64))
        scale = np.maximum(scale, b / (float(input_scale) * BIAS_LIMIT))
    return scale.astype(dtype)


def quantize_per_channel(w, axis: int = 0, bits: int = 8, bias=None, input_scale=None, name: str = "w",
                         dtype=np.float64, rounding=None):
    """Symmetric per-channel quantization of a weight: (q int8, scale in ``dtype``) with
    q = clamp(round(w / scale), -Qmax, Qmax) and the scales of weight_scales; ``rounding``
    (axis 0 only): None (nearest), or fn(w, scale, bits) -> codes on that grid
    (GPTQRounding.layer)."""
    bits = _check_bits(bits)
    if bits > 8:
        raise ValueError(f"bits: int8 storage holds at most 8 bits, got {bits}")
    scale = weight_scales(w, axis, bits, bias, input_scale, name, dtype)
    if rounding is not None:
        return rounding(w, scale, bits), scale
    return quantize(w, scale.astype(np.float64), 0, bits, True, axis, name), scale


def quantize_bias(b, scale, name: str = "bias") -> np.ndarray:
    """int32 bias of an integer product: round(b / scale) per output channel, where scale =
    input scale x weight scale (so the bias adds to the int32 accumulator directly). Per-channel
    arithmetic like qparams, in float64 (a bias may be float64: folding BatchNorm computes it so),
    saturated to the int32 range."""
    b = check_array(name, b, "biuf", ndim=1).astype(np.float64)
    s = _per_row("scale", scale, len(b), np.float64)
    if not np.all(np.isfinite(b)):
        i = int(np.flatnonzero(~np.isfinite(b))[0])
        raise ValueError(f"{name} contains {value_name(b[i])} at index ({i},): it cannot be quantized")
    if not np.all(np.isfinite(s) & (s > 0)):
        raise ValueError(f"scale: expected finite values > 0, got {scale!r}")
    return np.clip(np.round(b / s), -(2 ** 31 - 1), 2 ** 31 - 1).astype(np.int32)


def quantize_weight_bias(w, b, input_scale, bits: int = 8, name: str = "layer", rounding=None):
    """A conv / linear layer as the integer kernels run it, and as a QDQ graph states it for
    onnxruntime's: w (output channels on axis 0) symmetric per channel with float32 scales s_w, the
    codes round(w / s_w) taken with the float32 scale; b (or None) int32 at the float32 product
    float32(input_scale) * s_w, the bias scale a QDQ graph holds. Returns (q int8, s_w float32,
    bias int32 or None, bias scale float32 or None); errors name f"{name}.weight" / f"{name}.bias".
    ``rounding``: None (nearest), or fn(w, s_w, bits) -> codes on the same grid (GPTQRounding.layer).
    The Engine's int8 lowering calls this, and the ONNX export stores what it returned."""
    bits = _check_bits(bits)
    if bits > 8:
        raise ValueError(f"bits: int8 storage holds at most 8 bits, got {bits}")
    s_w = weight_scales(w, 0, bits, bias=b, input_scale=input_scale, name=f"{name}.weight", dtype=np.float32)
    bq = bs = None
    if b is not None:
        bs = (np.float32(input_scale) * s_w).astype(np.float32)
        bq = quantize_bias(b, bs, name=f"{name}.bias")
        big = np.abs(bq.astype(np.int64)) > BIAS_LIMIT
        if big.any():  # the float32 scales rounded below weight_scales' bound: one step up there
            s_w = np.where(big, np.nextafter(s_w, np.float32(np.inf)), s_w).astype(np.float32)
            bs = (np.float32(input_scale) * s_w).astype(np.float32)
            bq = quantize_bias(b, bs, name=f"{name}.bias")
    if rounding is None:
        q = quantize(w, s_w.astype(np.float64), 0, bits, True, 0, f"{name}.weight")
    else:
        q = rounding(w, s_w, bits)
    return q, s_w, bq, bs


def histogram(x, bins: int = 2048, range=None, name: str = "x"):
    """(counts int64 (bins,), edges float64 (bins + 1,)) of x over ``range`` (default: its min and
    max), as np.histogram: the last bin includes its right edge, values outside are not counted."""
    bins = check_int("bins", bins, 1, 1 << 24)
    rows, _, shape = _rows(name, x, None)
    if range is None:
        lo, hi, bad = _core.quant.quant_row_range(rows) if rows.size else (np.zeros(1), np.zeros(1), -1)
        if bad >= 0:
            raise _nonfinite(name, rows, bad, None, shape)
        lo, hi = float(lo[0]), float(hi[0])
    else:
        lo, hi = (float(v) for v in range)
    if not lo < hi:  # a constant tensor: one bin of width 1 around it, as numpy does
        lo, hi = lo - 0.5, hi + 0.5
    counts = np.zeros(bins, np.int64)
    bad = _core.quant.quant_histogram(rows.reshape(-1), lo, hi, counts)
    if bad >= 0:
        raise _nonfinite(name, rows, bad, None, shape)
    return counts, np.linspace(lo, hi, bins + 1)
