// f32 pointwise (1x1, stride 1) convolution micro-kernels for inference, with the fused epilogue.
//
//   y[i*ldy + j] = min(max((sum_{k < kc} pa[k*MR + i] * x[k*ldx + j]) * scale[i] + bias[i]
//                          (+ res[i*ldy + j]), lo), hi)              i < m <= MR, j < n <= NR
//
// At batch 1 a 1x1 conv is Y (Cout x HW) = W (Cout x Cin) X (Cin x HW) with X the NCHW image
// itself: row k of X is channel k, HW contiguous floats. So B needs no packing: the kernel loads
// NR contiguous columns of each channel straight from the image (the last vector masked, so
// nothing past column n is read), broadcasts the weights of an MR-row panel packed k-major over
// the whole depth (pa[k*MR + i], zero rows past m; f16-gemm/packed_weights.h with kc = K), keeps
// the tile in registers for all of K and applies scale / bias / residual / clamp on the way out.
// Against the packed GEMM this saves packing X on every call, the store + reload of the separate
// epilogue pass, and the padding FMAs of a 32-column tile on 4x4 planes (16 columns).
// scale, bias (indexed by tile row), res (layout of y) may be null: 1, 0, nothing. Multiply and
// add are rounded separately, as in runtime/epilogue_ukernels.h. Plain C declarations only.
#pragma once
#include <stddef.h>

namespace eo {

typedef void (*f32_pointwise_ukernel_fn)(size_t m, size_t n, size_t kc, const float* pa,
                                         const float* x, size_t ldx, const float* scale,
                                         const float* bias, const float* res, float* y, size_t ldy,
                                         float lo, float hi);

// Reference (tests) and the AVX-512 kernel (8 rows x up to 48 columns).
void f32_pointwise_ukernel_4x16__scalar(size_t m, size_t n, size_t kc, const float* pa,
    const float* x, size_t ldx, const float* scale, const float* bias, const float* res, float* y,
    size_t ldy, float lo, float hi);
void f32_pointwise_ukernel_8x48__avx512(size_t m, size_t n, size_t kc, const float* pa,
    const float* x, size_t ldx, const float* scale, const float* bias, const float* res, float* y,
    size_t ldy, float lo, float hi);

}  // namespace eo
