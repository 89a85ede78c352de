// f32 direct convolution micro-kernels for inference (stride 1, "same" width), fused epilogue.
//
//   y[i*ldy + j] = min(max(acc[i][j] * scale[i] + bias[i] (+ res[i*ldy + j]), lo), hi)
//   acc[i][j]    = sum_{c < channels} sum_{t < taps} pa[(c*taps + t)*MR + i] * X(c, j, t)
//                                                               i < m <= MR, j < n <= NR
//
// At batch 1 a stride-1 conv whose output rows are as wide as its input (KW = 2 pw + 1: 1x1/p0,
// 3x3/p1, 5x5/p2, ...) reads, for output pixel j = oh*W + ow and tap t = (kh, kw), the input pixel
// j + toff[t] of each channel, toff[t] = (kh - ph)*W + (kw - pw): a tap is a plain shift of the
// NCHW image. Taps that fall outside the image (top/bottom rows, left/right columns) are masked
// off per 16-column vector: bit l of tmask[u*taps + t] says whether column 16u + l reads tap t
// (tmask starts at the tile's first vector). So the kernel reads the image in place (no padded
// copy, no im2col, no junk columns) and the whole depth stays in registers, then the epilogue is
// applied on the way out:
//   X(c, j, t) = x[c*ldx + j + toff[t]] where the mask bit is set, else 0.
// A 1x1 conv passes taps = 1 and toff = tmask = null: X(c, j, 0) = x[c*ldx + j] for j < n.
// The weights are an MR-row panel packed k-major over the whole depth (k = c*taps + t, zero rows
// past m; packed-weights/packed_weights.h with kc = K). scale, bias (indexed by tile row) and res (layout
// of y) may be null: 1, 0, nothing. The compiler may fuse the scale multiply and the bias add into
// one FMA (one rounding fewer than the scalar reference). Plain C declarations only: included by
// ISA-specific files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*f32_directconv_ukernel_fn)(size_t m, size_t n, size_t channels, size_t taps,
                                          const float* pa, const float* x, size_t ldx,
                                          const int32_t* toff, const uint16_t* tmask,
                                          const float* scale, const float* bias, const float* res,
                                          float* y, size_t ldy, float lo, float hi);

// Reference (tests; its panels are 4 rows wide) and the AVX-512 kernel (8 rows x up to 48 columns).
void f32_directconv_ukernel_4x16__scalar(size_t m, size_t n, size_t channels, size_t taps,
    const float* pa, const float* x, size_t ldx, const int32_t* toff, const uint16_t* tmask,
    const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo, float hi);
void f32_directconv_ukernel_8x48__avx512(size_t m, size_t n, size_t channels, size_t taps,
    const float* pa, const float* x, size_t ldx, const int32_t* toff, const uint16_t* tmask,
    const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo, float hi);

}  // namespace eo
