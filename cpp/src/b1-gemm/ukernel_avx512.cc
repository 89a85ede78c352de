// AVX-512 binary GEMM with VPOPCNTDQ: 4 rows x 16 columns (2 panels, 8 zmm accumulators of 64-bit
// counts). Per 64-bit word step: 2 panel loads, 4 broadcasts, 8 x (vpxorq, vpopcntq, vpaddq);
// vpopcntq issues once per cycle, so this runs at about 512 binary multiply-adds per cycle.
// VPOPCNTDQ is not part of the avx512 file flags (not every AVX-512 CPU has it: Skylake-SP lacks
// it), so the functions that use it enable it themselves; the dispatch table only selects this
// kernel when the CPU reports it.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "b1-gemm/ukernels.h"

// GCC 12 flags the deliberately undefined pass-through operand inside the intrinsic headers when
// they are inlined into a target("...") function: a false positive (as in direct_avx512.h).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define EO_VPOPCNT __attribute__((target("avx512vpopcntdq")))

namespace eo {
namespace {

template <int P>  // P panels of 8 columns
EO_VPOPCNT inline void tile(size_t mc, size_t nc, size_t kw, const uint64_t* a, size_t lda,
                            const uint64_t* b, int32_t* c, size_t ldc) {
  const uint64_t* ar[4];
  for (size_t i = 0; i < 4; ++i) ar[i] = a + (i < mc ? i : mc - 1) * lda;
  __m512i acc[4][P];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i)
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[i][q] = _mm512_setzero_si512();
  for (size_t w = 0; w < kw; ++w) {
    __m512i bv[P];
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) bv[q] = _mm512_loadu_si512(b + q * kw * 8 + w * 8);
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) {
      const __m512i av = _mm512_set1_epi64((long long)ar[i][w]);
#pragma GCC unroll 2
      for (int q = 0; q < P; ++q)
        acc[i][q] = _mm512_add_epi64(acc[i][q], _mm512_popcnt_epi64(_mm512_xor_si512(av, bv[q])));
    }
  }
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    if ((size_t)i >= mc) break;
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) {
      const size_t n = nc > 8 * (size_t)q ? nc - 8 * q : 0;
      const __mmask8 mask = n >= 8 ? (__mmask8)0xFF : (__mmask8)((1u << n) - 1);
      _mm256_mask_storeu_epi32(c + i * ldc + 8 * q, mask, _mm512_cvtepi64_epi32(acc[i][q]));
    }
  }
}

}  // namespace

EO_VPOPCNT void b1_gemm_ukernel_4x16__avx512vpopcntdq(size_t m, size_t n, size_t kw,
                                                      const uint64_t* a, size_t lda,
                                                      const uint64_t* b, int32_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 16, b += 2 * kw * 8) {
    const size_t nc = n - j0 < 16 ? n - j0 : 16;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      if (nc > 8) tile<2>(mc, nc, kw, a + i0 * lda, lda, b, c + i0 * ldc + j0, ldc);
      else tile<1>(mc, nc, kw, a + i0 * lda, lda, b, c + i0 * ldc + j0, ldc);
    }
  }
}

}  // namespace eo
