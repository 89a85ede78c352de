// int8 sparse x dense micro-kernels: sparse s8 weights times u8 activations (NCHW), requantized to
// 8 bits per output channel exactly like qs8-gemm (qs8-gemm/requantize.h).
//
//   acc[o][p] = adj[o] + sum_{k : W[o][k] != 0} W[o][k] * x[k][p]        (exact int32, mod 2^32)
//   y[o][p]   = qs8_requantize(acc[o][p], scale[o], out_zp, qmin, qmax)
//
// adj[o] = bias[o] - a_zero_point * sum_k W[o][k] folds the activation zero point into the bias,
// so the inner loop multiplies raw activations (see qs8-gemm/ukernels.h).
//
// Pairs: the nonzeros of a block row are walked two at a time. Pair t reads input channels
// kidx[2t] and kidx[2t+1] (an odd one out is paired with itself and a zero weight) and holds, for
// each of the BR output channels of the block row, the two weights as int16 halves of one int32:
// w[t*BR + i] = (W[o][ka] & 0xFFFF) | (W[o][kb] << 16). The activations come widened to int16
// (x[k*x_stride + p] = u8 value, rows zero-padded to a multiple of 32 pixels so kernels load whole
// vectors), and interleaving rows ka and kb (punpcklwd / punpckhwd) gives lanes (x_ka, x_kb) that
// one pmaddwd multiplies by the weight pair: two multiply-adds per 32-bit lane, each product at
// most 255 * 128 in magnitude, exact. Unpacking works within 128-bit lanes, so the accumulators
// hold pixels in a fixed shuffled order that the store undoes.
//
// Block rows cover BR consecutive output channels (BR = 1: unstructured, 4: 4x1 blocks); rows past
// `cout` are computed on zero weights and never stored. mc pixels of y rows (stride y_stride) are
// written. Plain C declarations only: included by ISA-specific files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct qs8_spmm_params {
  const int32_t* adj;         // per output channel (padded to whole block rows)
  const float* scale;         // per output channel: the float32 requantization factors
  int32_t out_zp, qmin, qmax;
};

typedef void (*qs8_spmm_ukernel_fn)(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                    size_t x_stride, const int32_t* w, const int32_t* kidx,
                                    const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                    uint8_t* y, size_t y_stride);

#define EO_QS8_SPMM_DECL(name)                                                                 \
  void name(size_t mc, size_t nbr, size_t cout, const int16_t* x, size_t x_stride,            \
            const int32_t* w, const int32_t* kidx, const int32_t* row_ptr,                    \
            const struct qs8_spmm_params* p, uint8_t* y, size_t y_stride);

// <pixels per tile>x<block rows>
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_8x1__scalar)
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_8x4__scalar)
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_32x1__avx2)
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_16x4__avx2)
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_64x1__avx512)
EO_QS8_SPMM_DECL(qs8_spmm_ukernel_32x4__avx512)

}  // namespace eo
