#include <immintrin.h>
#include <stdint.h>

#include "f32-gemm/ukernels.h"

namespace eo {

// 6 x 16: 12 ymm accumulators + 2 for the B row + 1 broadcast of A fit the 16 ymm registers.
// Edge columns use masked loads/stores; edge rows are computed but not stored.
void f32_gemm_ukernel_6x16__avx2(size_t m, size_t n, size_t kc, const float* pa, const float* pb,
                                 float* c, size_t ldc, int accumulate) {
  __m256 acc[6][2];
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (size_t k = 0; k < kc; ++k, pa += 6, pb += 16) {
    const __m256 b0 = _mm256_loadu_ps(pb), b1 = _mm256_loadu_ps(pb + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256 a = _mm256_broadcast_ss(pa + i);
      acc[i][0] = _mm256_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  if (m == 6 && n == 16) {
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        acc[i][0] = _mm256_add_ps(acc[i][0], _mm256_loadu_ps(ci));
        acc[i][1] = _mm256_add_ps(acc[i][1], _mm256_loadu_ps(ci + 8));
      }
      _mm256_storeu_ps(ci, acc[i][0]);
      _mm256_storeu_ps(ci + 8, acc[i][1]);
    }
    return;
  }
  // Lane j of the mask is set when j < n (per half).
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

}  // namespace eo
