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

// 8 x 8 blocks transposed in registers (in-lane unpacks and shuffles, then 128-bit lane swaps);
// the k tail and partial row blocks go through the scalar form of the same copy.
void f32_interleave__avx2(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst) {
  const size_t kfull = kc & ~(size_t)7;
  for (size_t r0 = 0; r0 < w; r0 += 8) {
    const size_t nr = w - r0 < 8 ? w - r0 : 8;
    if (nr < 8 || r0 + 8 > rows) {  // a partial block: plain copy (zeros past rows)
      for (size_t r = r0; r < r0 + nr; ++r)
        for (size_t k = 0; k < kc; ++k) dst[k * w + r] = r < rows ? src[r * ld + k] : 0.f;
      continue;
    }
    for (size_t k0 = 0; k0 < kfull; k0 += 8) {
      __m256 v[8], t[8], u[8];
      for (int i = 0; i < 8; ++i) v[i] = _mm256_loadu_ps(src + (r0 + i) * ld + k0);
      for (int i = 0; i < 4; ++i) {
        t[2 * i] = _mm256_unpacklo_ps(v[2 * i], v[2 * i + 1]);      // a0 b0 a1 b1 | a4 b4 a5 b5
        t[2 * i + 1] = _mm256_unpackhi_ps(v[2 * i], v[2 * i + 1]);  // a2 b2 a3 b3 | a6 b6 a7 b7
      }
      for (int h = 0; h < 2; ++h) {  // rows 4h..4h+3
        u[4 * h] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0x44);      // column 0 | 4
        u[4 * h + 1] = _mm256_shuffle_ps(t[4 * h], t[4 * h + 2], 0xEE);  // column 1 | 5
        u[4 * h + 2] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0x44);  // 2 | 6
        u[4 * h + 3] = _mm256_shuffle_ps(t[4 * h + 1], t[4 * h + 3], 0xEE);  // 3 | 7
      }
      for (int e = 0; e < 4; ++e) {
        _mm256_storeu_ps(dst + (k0 + e) * w + r0, _mm256_permute2f128_ps(u[e], u[4 + e], 0x20));
        _mm256_storeu_ps(dst + (k0 + 4 + e) * w + r0, _mm256_permute2f128_ps(u[e], u[4 + e], 0x31));
      }
    }
    for (size_t r = r0; r < r0 + 8; ++r)
      for (size_t k = kfull; k < kc; ++k) dst[k * w + r] = src[r * ld + k];
  }
}

}  // namespace eo

