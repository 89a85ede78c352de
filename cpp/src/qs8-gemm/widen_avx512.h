// AVX-512 widening of 4-bit weight panels (c4x2, ukernels.h) into 8-bit c4 panels, shared by the
// VNNI and AMX 4-bit kernels (both compiled with AVX-512BW). Static inline, plain C style.
#pragma once
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

namespace eo {

// The two k-groups of a 64-byte c4x2 chunk as 16 * w (w in [-8, 7], so 16 * w is a byte): the
// high nibble masked in place, the low one shifted up first; no sign extension needed. Products
// on such weights sum to 16 times the true sum, exact while 16 * 255 * 8 * K < 2^31
// (K <= kQs8MaxX16K); the kernels shift the accumulators back by 4 at the end.
static const size_t kQs8MaxX16K = 65536;

static inline void qs8_nibbles_x16_avx512(__m512i v, __m512i* lo, __m512i* hi) {
  const __m512i top = _mm512_set1_epi8((char)0xF0);
  *hi = _mm512_and_si512(v, top);
  *lo = _mm512_and_si512(_mm512_slli_epi16(v, 4), top);
}

// The np 4-bit panels at pb (stride panel_stride) widened to c4 panels at out (stride
// out_stride), kpairs pairs of k-groups each: as int8 weights (a nibble u becomes (u ^ 8) - 8, its
// two's complement value) or, x16, as 16 * w (half the operations; the AMX kernel uses it, while
// on the VNNI path it measured 1-2 % slower on resnet20's 3x3 layers, cause not found).
static inline void qs8_widen4_avx512(const int8_t* pb, size_t panel_stride, size_t np,
                                     size_t kpairs, int8_t* out, size_t out_stride, bool x16) {
  const __m512i low = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  for (size_t q = 0; q < np; ++q)
    for (size_t h = 0; h < kpairs; ++h) {
      const __m512i v = _mm512_loadu_si512(pb + q * panel_stride + h * 64);
      __m512i lo, hi;
      if (x16) {
        qs8_nibbles_x16_avx512(v, &lo, &hi);
      } else {
        lo = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(v, low), eight), eight);
        hi = _mm512_sub_epi8(_mm512_xor_si512(_mm512_and_si512(_mm512_srli_epi16(v, 4), low), eight), eight);
      }
      _mm512_storeu_si512(out + q * out_stride + h * 128, lo);
      _mm512_storeu_si512(out + q * out_stride + h * 128 + 64, hi);
    }
}

}  // namespace eo
