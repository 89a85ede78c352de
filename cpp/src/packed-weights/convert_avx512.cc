#include <immintrin.h>
#include <stdint.h>

#include "packed-weights/ukernels.h"

namespace eo {

void f16_to_f32__avx512(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(src + i))));
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    const __m256i h = _mm256_maskz_loadu_epi16(m, src + i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(h));
  }
}

void s8_to_f32__avx512(const int8_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i q = _mm_loadu_si128((const __m128i*)(src + i));
    _mm512_storeu_ps(dst + i, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
  }
  if (i < n) {
    const __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    const __m128i q = _mm_maskz_loadu_epi8(m, src + i);
    _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)));
  }
}

}  // namespace eo
