// f32 convolution micro-kernels for the implicit-GEMM paths: training (conv2d.cc, stride 1) and the
// runtime (shifted_conv.cc, any stride over phase planes).
//
// Both kernels compute one register tile of C (m <= MR rows, n <= NR columns); the B operand is
// not packed: it is read straight from a zero-padded copy of the image.
//
//   shifted (forward and data gradient), A packed k-major as f32-gemm packs it (pa[k*MR + i],
//   zero rows past m):
//     c[i*ldc + j] (+)= sum_{k < kc} pa[k*MR + i] * b[off[k] + j]
//   Row k of B is a window of the padded image shifted by off[k] (the tap's channel, kh, kw), so
//   the im2col matrix is never written: output pixels are laid out on the padded row pitch, and
//   the driver drops the few columns that fall on the padding.
//
//   strided (weight gradient): A is not packed either; the depth runs over `rows` x `cols`
//   (output rows x output columns):
//     c[i*ldc + j] (+)= sum_{r < rows, p < cols} a[i*lda + r*a_row + p]
//                                              * b[r*b_row + p*ldb + boff[j / 16] + j % 16]
//   a is dY (row i = output channel i, natural layout), b an HWC padded copy of the image: each
//   group of 16 columns is 16 consecutive channels of one tap (boff: one entry per started group).
//   Rows of a past m are not read.
//
// The shifted kernel reads B up to column NR - 1 of every row; the strided one up to the next
// multiple of 16: the driver keeps that memory allocated. Only the m x n corner of C is written;
// accumulate=0 overwrites C, 1 adds to it. Plain C declarations only: included by ISA-specific
// files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*f32_conv2d_shifted_ukernel_fn)(size_t m, size_t n, size_t kc, const float* pa,
                                              const float* b, const int32_t* off, float* c,
                                              size_t ldc, int accumulate);
typedef void (*f32_conv2d_strided_ukernel_fn)(size_t m, size_t n, size_t rows, size_t cols,
                                              const float* a, size_t lda, size_t a_row,
                                              const float* b, const int32_t* boff, size_t ldb,
                                              size_t b_row, float* c, size_t ldc, int accumulate);

void f32_conv2d_shifted_ukernel_4x16__scalar(size_t m, size_t n, size_t kc, const float* pa,
    const float* b, const int32_t* off, float* c, size_t ldc, int accumulate);
void f32_conv2d_strided_ukernel_4x16__scalar(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate);
void f32_conv2d_shifted_ukernel_6x16__avx2(size_t m, size_t n, size_t kc, const float* pa,
    const float* b, const int32_t* off, float* c, size_t ldc, int accumulate);
void f32_conv2d_strided_ukernel_6x16__avx2(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate);
void f32_conv2d_shifted_ukernel_8x48__avx512(size_t m, size_t n, size_t kc, const float* pa,
    const float* b, const int32_t* off, float* c, size_t ldc, int accumulate);
void f32_conv2d_strided_ukernel_8x48__avx512(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate);

}  // namespace eo
