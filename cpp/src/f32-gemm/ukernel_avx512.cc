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

namespace {

// r[i] (row i of a 16 x 16 block) becomes column i: four stages of in-lane unpacks and lane shuffles.
inline void transpose16(__m512 (&r)[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);      // per 128-bit lane: a0 b0 a1 b1
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);  //                   a2 b2 a3 b3
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {  // per 128-bit lane L: rows 4i..4i+3 of column 4L + e in r[4i + e]
    const __m512d lo0 = _mm512_castps_pd(t[4 * i]), lo1 = _mm512_castps_pd(t[4 * i + 2]);
    const __m512d hi0 = _mm512_castps_pd(t[4 * i + 1]), hi1 = _mm512_castps_pd(t[4 * i + 3]);
    r[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(lo0, lo1));
    r[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(lo0, lo1));
    r[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(hi0, hi1));
    r[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(hi0, hi1));
  }
  __m512 o[16];
#pragma GCC unroll 4
  for (int e = 0; e < 4; ++e) {  // a 4 x 4 transpose of 128-bit lanes
    const __m512 a = _mm512_shuffle_f32x4(r[e], r[4 + e], 0x44), b = _mm512_shuffle_f32x4(r[e], r[4 + e], 0xEE);
    const __m512 c = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0x44), d = _mm512_shuffle_f32x4(r[8 + e], r[12 + e], 0xEE);
    o[e] = _mm512_shuffle_f32x4(a, c, 0x88);
    o[4 + e] = _mm512_shuffle_f32x4(a, c, 0xDD);
    o[8 + e] = _mm512_shuffle_f32x4(b, d, 0x88);
    o[12 + e] = _mm512_shuffle_f32x4(b, d, 0xDD);
  }
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) r[i] = o[i];
}

inline __mmask16 first(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

}  // namespace

// 8 rows x 32 k at a time, as one 16 x 16 transpose whose rows 8..15 are the same 8 rows 16 k
// further on: column c then holds k0 + c in its low half and k0 + 16 + c in its high half. Only 8
// rows are read at once because rows are often 4 KB apart (a conv's planes) and 16 lines in one
// L1 set thrash its 8 ways (measured 2.7x slower).
void f32_interleave__avx512(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst) {
  for (size_t r0 = 0; r0 < w; r0 += 8) {
    const size_t nw = w - r0 < 8 ? w - r0 : 8;
    const __mmask8 wmask = (__mmask8)((1u << nw) - 1);
    for (size_t k0 = 0; k0 < kc; k0 += 32) {
      const size_t n0 = kc - k0 < 16 ? kc - k0 : 16, n1 = kc - k0 > 16 ? (kc - k0 - 16 < 16 ? kc - k0 - 16 : 16) : 0;
      const __mmask16 m0 = first(n0), m1 = first(n1);
      __m512 v[16];
#pragma GCC unroll 8
      for (size_t i = 0; i < 8; ++i) {
        const bool live = r0 + i < rows;
        const float* row = src + (r0 + i) * ld + k0;
        v[i] = live ? _mm512_maskz_loadu_ps(m0, row) : _mm512_setzero_ps();
        v[8 + i] = live ? _mm512_maskz_loadu_ps(m1, row + 16) : _mm512_setzero_ps();
      }
      transpose16(v);
      float* d = dst + k0 * w + r0;
      if (n0 == 16 && n1 == 16 && nw == 8) {
#pragma GCC unroll 16
        for (size_t c = 0; c < 16; ++c) {
          _mm256_storeu_ps(d + c * w, _mm512_castps512_ps256(v[c]));
          _mm256_storeu_ps(d + (16 + c) * w, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[c]), 1)));
        }
      } else {
        for (size_t c = 0; c < n0; ++c) _mm256_mask_storeu_ps(d + c * w, wmask, _mm512_castps512_ps256(v[c]));
        for (size_t c = 0; c < n1; ++c)
          _mm256_mask_storeu_ps(d + (16 + c) * w, wmask, _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v[c]), 1)));
      }
    }
  }
}

}  // namespace eo

