// AVX2 binary GEMM: 4 rows x 8 columns (one panel = 2 ymm of 4 words). AVX2 has no vector
// popcount, so each byte of a XOR b is counted with two 16-entry nibble lookups (vpshufb) and the
// byte counts are summed into 64-bit lanes with vpsadbw: 9 ops per 256 bits, about twice the bits
// per cycle of scalar popcnt on one port.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "b1-gemm/ukernels.h"

namespace eo {
namespace {

inline __m256i popcount_bytes_sum64(__m256i x, __m256i lut, __m256i nib) {
  const __m256i lo = _mm256_and_si256(x, nib);
  const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(x, 4), nib);
  const __m256i cnt = _mm256_add_epi8(_mm256_shuffle_epi8(lut, lo), _mm256_shuffle_epi8(lut, hi));
  return _mm256_sad_epu8(cnt, _mm256_setzero_si256());
}

// 4 int64 counts -> 4 int32 in the low half.
inline __m128i narrow(__m256i v) {
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 2, 4, 6, 0, 0, 0, 0)));
}

inline void store_row(int32_t* c, __m256i v0, __m256i v1, size_t nc) {
  int32_t tmp[8];
  _mm_storeu_si128((__m128i*)tmp, narrow(v0));
  _mm_storeu_si128((__m128i*)(tmp + 4), narrow(v1));
  for (size_t j = 0; j < nc; ++j) c[j] = tmp[j];
}

}  // namespace

void b1_gemm_ukernel_4x8__avx2(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                               const uint64_t* b, int32_t* c, size_t ldc) {
  const __m256i lut = _mm256_setr_epi8(0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4,
                                       0, 1, 1, 2, 1, 2, 2, 3, 1, 2, 2, 3, 2, 3, 3, 4);
  const __m256i nib = _mm256_set1_epi8(0x0F);
  for (size_t j0 = 0; j0 < n; j0 += 8, b += kw * 8) {
    const size_t nc = n - j0 < 8 ? n - j0 : 8;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      const uint64_t* ar[4];
      for (size_t i = 0; i < 4; ++i) ar[i] = a + (i0 + (i < mc ? i : mc - 1)) * lda;
      __m256i acc[4][2];
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_si256();
      for (size_t w = 0; w < kw; ++w) {
        const __m256i b0 = _mm256_loadu_si256((const __m256i*)(b + w * 8));
        const __m256i b1 = _mm256_loadu_si256((const __m256i*)(b + w * 8 + 4));
#pragma GCC unroll 4
        for (int i = 0; i < 4; ++i) {
          const __m256i av = _mm256_set1_epi64x((long long)ar[i][w]);
          acc[i][0] = _mm256_add_epi64(acc[i][0], popcount_bytes_sum64(_mm256_xor_si256(av, b0), lut, nib));
          acc[i][1] = _mm256_add_epi64(acc[i][1], popcount_bytes_sum64(_mm256_xor_si256(av, b1), lut, nib));
        }
      }
#pragma GCC unroll 4
      for (int i = 0; i < 4; ++i)
        if ((size_t)i < mc) store_row(c + (i0 + i) * ldc + j0, acc[i][0], acc[i][1], nc);
    }
  }
}

}  // namespace eo
