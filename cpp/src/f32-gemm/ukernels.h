// f32 GEMM micro-kernels: one register tile of C from packed panels.
//
//   c[i*ldc + j] (+)= sum_{k < kc} pa[k*MR + i] * pb[k*NR + j]     i < m <= MR, j < n <= NR
//
// pa is an MR-row panel of A packed k-major, pb an NR-column panel of B packed k-major (the
// packers zero-pad partial panels). Only the m x n corner of C is read and written, so edge tiles
// need no bounce buffer; kernels skip the FMAs of rows past m where that pays (small Cout convs
// spend a third of their tiles on such rows otherwise). accumulate=0 overwrites C, 1 adds to it.
// Micro-kernels trust their inputs; the driver in gemm.cc handles blocking and threads.
// Plain C declarations only: this header is included by ISA-specific files.
#pragma once
#include <stddef.h>

namespace eo {

typedef void (*f32_gemm_ukernel_fn)(size_t m, size_t n, size_t kc, const float* pa,
                                    const float* pb, float* c, size_t ldc, int accumulate);

// Packing's transpose: dst[k*w + r] = src[r*ld + k] for r < rows, k < kc, and 0 for rows <= r < w.
// It packs row-major A (rows of A, w = MR) and transposed B (columns of B, w = NR), where each
// packed value would otherwise be one scalar store (3-4 cycles per value: as long as the
// micro-kernel's FMAs when the panel is used once, as in a pointwise conv's weight gradient).
// Every ISA writes the same bytes.
typedef void (*f32_interleave_fn)(size_t rows, size_t kc, const float* src, size_t ld, size_t w,
                                  float* dst);

void f32_interleave__scalar(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst);
void f32_interleave__avx2(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst);
void f32_interleave__avx512(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst);

void f32_gemm_ukernel_4x8__scalar(size_t m, size_t n, size_t kc, const float* pa, const float* pb,
                                  float* c, size_t ldc, int accumulate);
void f32_gemm_ukernel_6x16__avx2(size_t m, size_t n, size_t kc, const float* pa, const float* pb,
                                 float* c, size_t ldc, int accumulate);
void f32_gemm_ukernel_12x32__avx512(size_t m, size_t n, size_t kc, const float* pa,
                                    const float* pb, float* c, size_t ldc, int accumulate);

}  // namespace eo
