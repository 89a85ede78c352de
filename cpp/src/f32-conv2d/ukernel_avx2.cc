#include <immintrin.h>
#include <stdint.h>

#include "f32-conv2d/ukernels.h"

namespace eo {
namespace {

// Writes the m x n corner of a 6 x 16 accumulator tile (masked at the column edge).
inline void store_tile(__m256 acc[6][2], size_t m, size_t n, float* c, size_t ldc, int accumulate) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  const __m256i m0 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), lane);
  const __m256i m1 = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n - 8), lane);
  for (size_t i = 0; i < m; ++i) {
    float* ci = c + i * ldc;
    if (accumulate) {
      acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_maskload_ps(ci, m0));
      acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_maskload_ps(ci + 8, m1));
    }
    _mm256_maskstore_ps(ci, m0, acc[i][0]);
    _mm256_maskstore_ps(ci + 8, m1, acc[i][1]);
  }
}

}  // namespace

// 6 x 16 as the f32 GEMM's AVX2 kernel: 12 ymm accumulators + 2 for the B row + 1 broadcast.
void f32_conv2d_shifted_ukernel_6x16__avx2(size_t m, size_t n, size_t kc, const float* pa,
                                           const float* b, const int32_t* off, float* c,
                                           size_t ldc, int accumulate) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (size_t k = 0; k < kc; ++k, pa += 6) {
    const float* bk = b + off[k];
    const __m256 b0 = _mm256_loadu_ps(bk), b1 = _mm256_loadu_ps(bk + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256 a = _mm256_broadcast_ss(pa + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  store_tile(acc, m, n, c, ldc, accumulate);
}

// Rows of a past m point at row m - 1: computed, never stored.
void f32_conv2d_strided_ukernel_6x16__avx2(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  const float* ar[6];
  for (size_t i = 0; i < 6; ++i) ar[i] = a + (i < m ? i : m - 1) * lda;
  for (size_t r = 0; r < rows; ++r) {
    const float* bp = b + r * b_row + boff[0];
    for (size_t p = 0; p < cols; ++p, bp += ldb) {
      const __m256 b0 = _mm256_loadu_ps(bp), b1 = _mm256_loadu_ps(bp + 8);
#pragma GCC unroll 6
      for (int i = 0; i < 6; ++i) {
        const __m256 av = _mm256_broadcast_ss(ar[i] + p);
        acc[i][0] = _mm256_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_ps(av, b1, acc[i][1]);
      }
    }
    for (int i = 0; i < 6; ++i) ar[i] += a_row;
  }
  store_tile(acc, m, n, c, ldc, accumulate);
}

}  // namespace eo
