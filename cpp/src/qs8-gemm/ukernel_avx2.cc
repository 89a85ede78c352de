// AVX2 int8 GEMM, exact: 4 x 16 tile over the c4-packed panels.
//
// pmaddubsw (u8 x s8 -> s16 pairs) would be the fast AVX2 instruction, but its 16-bit sums
// saturate (255*127*2 > 32767), so results could differ from the reference. Instead the s8 weights
// are sign-extended to 16 bits in place: in each int32 lane (4 k values of one column), the even
// bytes k0, k2 become (b << 8) >> 8 and the odd bytes k1, k3 become b >> 8 (arithmetic); the u8
// activations are split the same way with zero extension. Two vpmaddwd per lane then give
// a0*b0 + a2*b2 and a1*b1 + a3*b3, each at most 2 * 255 * 128 in magnitude: exact in int32.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-gemm/requantize_avx2.h"
#include "qs8-gemm/ukernels.h"

namespace eo {
namespace {

// The 4 activations a[k..k+3] of one row as an int32, zero past the end of the row (k + 4 > kend).
inline int32_t load_a4(const uint8_t* a, size_t k, size_t kend) {
  if (k + 4 <= kend) {
    int32_t v;
    __builtin_memcpy(&v, a + k, 4);
    return v;
  }
  uint32_t v = 0;
  for (size_t t = 0; k + t < kend; ++t) v |= (uint32_t)a[k + t] << (8 * t);
  return (int32_t)v;
}


}  // namespace

void qs8_gemm_ukernel_4x16c4__avx2(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                   const int8_t* pb, size_t panel_stride,
                                   const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  const __m256i lo_byte = _mm256_set1_epi16(0x00FF);
  const __m256 vlo = _mm256_set1_ps((float)(p->qmin - p->out_zp));
  const __m256 vhi = _mm256_set1_ps((float)(p->qmax - p->out_zp));
  const __m256i vzp = _mm256_set1_epi32(p->out_zp);
  for (size_t j0 = 0; j0 < n; j0 += 16, pb += panel_stride) {
    const size_t nc = n - j0 < 16 ? n - j0 : 16;
    const __m256i adj0 = _mm256_loadu_si256((const __m256i*)(p->adj + j0));
    const __m256i adj1 = _mm256_loadu_si256((const __m256i*)(p->adj + j0 + 8));
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      // rows past m repeat the last row (computed, never stored): no reads outside A
      const uint8_t* ar[4];
      for (size_t i = 0; i < 4; ++i) ar[i] = a + (i0 + (i < mc ? i : mc - 1)) * lda;
      __m256i acc[4][2];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        acc[i][0] = adj0;
        acc[i][1] = adj1;
      }
      const int8_t* b = pb;
      for (size_t kk = 0; kk < k; kk += 4, b += 64) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i*)b);
        const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + 32));
        const __m256i b0e = _mm256_srai_epi16(_mm256_slli_epi16(b0, 8), 8);
        const __m256i b0o = _mm256_srai_epi16(b0, 8);
        const __m256i b1e = _mm256_srai_epi16(_mm256_slli_epi16(b1, 8), 8);
        const __m256i b1o = _mm256_srai_epi16(b1, 8);
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m256i av = _mm256_set1_epi32(load_a4(ar[i], kk, k));
          const __m256i ae = _mm256_and_si256(av, lo_byte), ao = _mm256_srli_epi16(av, 8);
          acc[i][0] = _mm256_add_epi32(acc[i][0], _mm256_add_epi32(_mm256_madd_epi16(ae, b0e),
                                                                    _mm256_madd_epi16(ao, b0o)));
          acc[i][1] = _mm256_add_epi32(acc[i][1], _mm256_add_epi32(_mm256_madd_epi16(ae, b1e),
                                                                    _mm256_madd_epi16(ao, b1o)));
        }
      }
      // Constant indices only (unrolled, rows past mc skipped): a runtime index into acc would
      // force the accumulators into memory for the whole k loop.
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) {
        if ((size_t)i >= mc) break;
        const __m256i y0 = qs8_requant8(acc[i][0], _mm256_loadu_ps(p->scale + j0), vlo, vhi, vzp);
        const __m256i y1 = qs8_requant8(acc[i][1], _mm256_loadu_ps(p->scale + j0 + 8), vlo, vhi, vzp);
        // 16 int32 in [-128, 255] -> their low bytes, in column order
        __m256i w = _mm256_permute4x64_epi64(_mm256_packs_epi32(y0, y1), 0xD8);
        w = _mm256_and_si256(w, lo_byte);
        const __m128i bytes =
            _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
        uint8_t* ci = c + (i0 + i) * ldc + j0;
        if (nc == 16) {
          _mm_storeu_si128((__m128i*)ci, bytes);
        } else {
          uint8_t tmp[16];
          _mm_storeu_si128((__m128i*)tmp, bytes);
          for (size_t j = 0; j < nc; ++j) ci[j] = tmp[j];
        }
      }
    }
  }
}

}  // namespace eo
