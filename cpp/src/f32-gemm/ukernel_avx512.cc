#include <immintrin.h>
#include <stdint.h>

#include "f32-gemm/ukernels.h"

namespace eo {
namespace {

// R x 32 rows of the 12 x 32 tile (R = 4, 8 or 12): 2R zmm accumulators + 2 for the B row + 1
// broadcast of A fit the 32 zmm registers; at R = 12, 24 FMAs per 2 loads keep both FMA ports busy.
// The panel stride stays 12 whatever R is (the packed layout does not change at the edge).
template <int R>
inline void tile_rows(size_t m, size_t n, size_t kc, const float* pa, const float* pb, float* c,
                      size_t ldc, int accumulate) {
  __m512 acc[R][2];
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (size_t k = 0; k < kc; ++k, pa += 12, pb += 32) {
    const __m512 b0 = _mm512_loadu_ps(pb), b1 = _mm512_loadu_ps(pb + 16);
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
      acc[i][0] = _mm512_fmadd_ps(a, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(a, b1, acc[i][1]);
    }
  }
  if (m == R && n == 32) {
#pragma GCC unroll 12
    for (int i = 0; i < R; ++i) {
      float* ci = c + i * ldc;
      if (accumulate) {
        acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_loadu_ps(ci));
        acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_loadu_ps(ci + 16));
      }
      _mm512_storeu_ps(ci, acc[i][0]);
      _mm512_storeu_ps(ci + 16, acc[i][1]);
    }
    return;
  }
  const __mmask16 k0 = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
  const __mmask16 k1 = n >= 32 ? (__mmask16)0xFFFF : n <= 16 ? (__mmask16)0 : (__mmask16)((1u << (n - 16)) - 1);
#pragma GCC unroll 12
  for (int i = 0; i < R; ++i) {
    if ((size_t)i >= m) break;
    float* ci = c + i * ldc;
    if (accumulate) {
      acc[i][0] = _mm512_add_ps(acc[i][0], _mm512_maskz_loadu_ps(k0, ci));
      acc[i][1] = _mm512_add_ps(acc[i][1], _mm512_maskz_loadu_ps(k1, ci + 16));
    }
    _mm512_mask_storeu_ps(ci, k0, acc[i][0]);
    _mm512_mask_storeu_ps(ci + 16, k1, acc[i][1]);
  }
}

}  // namespace

void f32_gemm_ukernel_12x32__avx512(size_t m, size_t n, size_t kc, const float* pa,
                                    const float* pb, float* c, size_t ldc, int accumulate) {
  if (m > 8) tile_rows<12>(m, n, kc, pa, pb, c, ldc, accumulate);
  else if (m > 4) tile_rows<8>(m, n, kc, pa, pb, c, ldc, accumulate);
  else tile_rows<4>(m, n, kc, pa, pb, c, ldc, accumulate);
}

}  // namespace eo
