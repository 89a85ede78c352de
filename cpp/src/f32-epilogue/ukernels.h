// Micro-kernels of the runtime's fused epilogue (epilogue.h) for the activations that are a clamp
// (none, relu, relu6): a tile of GEMM / conv accumulators to the output, in one pass.
//
//   y[r*ldy + j] = min(max((acc[r*lda + j] * scale[r] + bias[r]) (+ res[r*ldy + j]), lo), hi)
//
// for r < rows, j < n; scale, bias, res may be null (1, 0, nothing). Multiply and add are rounded
// separately (no FMA), as in the scalar epilogue, so every path gives the same bits. max/min are
// ordered so that NaN passes through. Plain C declarations only: included by ISA-specific files.
#pragma once
#include <stddef.h>

namespace eo {

typedef void (*f32_epilogue_minmax_fn)(size_t rows, size_t n, const float* acc, size_t lda,
                                       const float* scale, const float* bias, const float* res,
                                       float* y, size_t ldy, float lo, float hi);

void f32_epilogue_minmax__scalar(size_t rows, size_t n, const float* acc, size_t lda,
                                 const float* scale, const float* bias, const float* res, float* y,
                                 size_t ldy, float lo, float hi);
void f32_epilogue_minmax__avx512(size_t rows, size_t n, const float* acc, size_t lda,
                                 const float* scale, const float* bias, const float* res, float* y,
                                 size_t ldy, float lo, float hi);

}  // namespace eo
