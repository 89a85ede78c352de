#include <immintrin.h>
#include <stdint.h>

#include "packed-weights/ukernels.h"

namespace eo {

// vcvtph2ps (F16C) widens 8 halves per instruction, exactly.
void f16_to_f32__avx2(const uint16_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i a = _mm_loadu_si128((const __m128i*)(src + i));
    const __m128i b = _mm_loadu_si128((const __m128i*)(src + i + 8));
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(a));
    _mm256_storeu_ps(dst + i + 8, _mm256_cvtph_ps(b));
  }
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(src + i))));
  if (i < n) {
    uint16_t tmp[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    float out[8];
    for (size_t j = 0; i + j < n; ++j) tmp[j] = src[i + j];
    _mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)tmp)));
    for (size_t j = 0; i + j < n; ++j) dst[i + j] = out[j];
  }
}

void s8_to_f32__avx2(const int8_t* src, float* dst, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m128i q = _mm_loadl_epi64((const __m128i*)(src + i));
    _mm256_storeu_ps(dst + i, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)));
  }
  for (; i < n; ++i) dst[i] = (float)src[i];
}

}  // namespace eo
