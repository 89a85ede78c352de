// The element loops of quantization (edgeopt.quant is their one caller; calibration, the int8
// lowering and the ONNX QDQ export all go through it):
//
//   range       lo[r] = min_j x[r, j],  hi[r] = max_j x[r, j]         per row (channel) or per tensor
//   quantize    q[r, j] = clamp(rint(x[r, j] / scale[r]) + zp[r], qmin, qmax)
//   dequantize  x[r, j] = (float) (scale[r] * (q[r, j] - zp[r]))
//   histogram   counts[b] += #{x : lo + b w <= x < lo + (b + 1) w}, w = (hi - lo) / nbins, x = hi in the
//               last bin, values outside [lo, hi] not counted
//   fake quantize (training; float32 arithmetic, see below)
//               y[r, j] = scale[r] * (clamp(rint(x[r, j] * inv[r]) + zp[r], qmin, qmax) - zp[r]),
//               inv[r] = 1 / scale[r] in float32 (a product, cheaper per step than the int8
//               runtime's quotient; they differ only within an ulp of a rounding tie); backward
//               dx = dy where the unclamped x * inv + zp lies in [qmin - 1/2, qmax + 1/2], else 0
//               (straight-through with clipping)
//
// x is a rows x cols row-major float32 array (rows = 1 for per-tensor). Division, rounding and the
// dequantized product are in double: x / scale is exactly numpy's float64 `x / scale`, and rint
// rounds half to even like `np.round` (the default rounding mode), so results match the formulas
// in quant/__init__.py bit for bit. The scans return the flat index of the first NaN / +-Inf
// (and then leave their outputs unspecified) or -1; callers name the tensor in their error.
//
// Plain loops, one memory pass each: these run at calibration and compile time, never per
// inference, so there is no SIMD variant (the loops are also their own reference; tests compare
// them with numpy). Rows are split over threads; results do not depend on the split.
#pragma once
#include <cstdint>

namespace eo::quant {

// x: (rows, cols)  lo, hi: (rows,)
int64_t row_range(const float* x, int64_t rows, int64_t cols, float* lo, float* hi);

// x: (rows, cols)  scale, zp: (rows,)  q: (rows, cols) of int8 / uint8 / int32, saturated to [qmin, qmax]
int64_t quantize_rows_s8(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         int32_t qmin, int32_t qmax, int8_t* q);
int64_t quantize_rows_u8(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         int32_t qmin, int32_t qmax, uint8_t* q);
int64_t quantize_rows_s32(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                          int32_t qmin, int32_t qmax, int32_t* q);

// q: (rows, cols) int8 / uint8 / int32  scale, zp: (rows,)  x: (rows, cols)
void dequantize_rows_s8(const int8_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp, float* x);
void dequantize_rows_u8(const uint8_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp, float* x);
void dequantize_rows_s32(const int32_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         float* x);

// Fake quantization runs every training step over every quantized activation, so unlike the loops
// above it is float32, vectorizable (rounding by the 1.5 * 2^23 trick after clamping) and split
// within rows. x, y, dy, dx: (rows, cols)  scale: (rows,) float32 > 0  zp: (rows,)
int64_t fake_quantize_rows(const float* x, int64_t rows, int64_t cols, const float* scale, const int32_t* zp,
                           int32_t qmin, int32_t qmax, float* y);
void fake_quantize_backward_rows(const float* x, const float* dy, int64_t rows, int64_t cols, const float* scale,
                                 const int32_t* zp, int32_t qmin, int32_t qmax, float* dx);

// x: (n,)  counts: (nbins,) accumulated (+=); lo < hi finite, nbins >= 1.
int64_t histogram(const float* x, int64_t n, double lo, double hi, int64_t nbins, int64_t* counts);

}  // namespace eo::quant
