#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

// 8 codes of b bits (b = 2: 2 bytes, b = 4: 4 bytes) from byte-aligned src (see convert_avx512.cc).
static inline __m256 lowbit8(const uint8_t* src, int b) {
  uint32_t w = 0;
  memcpy(&w, src, (size_t)b);
  const __m256i shifts = b == 4 ? _mm256_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28)
                                : _mm256_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14);
  const __m256i half = _mm256_set1_epi32(1 << (b - 1));
  __m256i v = _mm256_and_si256(_mm256_srlv_epi32(_mm256_set1_epi32((int)w), shifts), _mm256_set1_epi32((1 << b) - 1));
  v = _mm256_sub_epi32(_mm256_xor_si256(v, half), half);
  return _mm256_cvtepi32_ps(v);
}

static void lowbit_to_f32(const uint8_t* packed, int64_t first, float* dst, size_t n, int b) {
  const int64_t per_byte = 8 / b;
  size_t i = 0;
  for (; i < n && (first + (int64_t)i) % per_byte != 0; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, b);
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, lowbit8(packed + (first + (int64_t)i) / per_byte, b));
  for (; i < n; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, b);
}

// 8 binary codes are one byte: each lane tests its bit and picks +1 or -1.
void s1_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n) {
  size_t i = 0;
  for (; i < n && (first + (int64_t)i) % 8 != 0; ++i) dst[i] = binary_stream_code(packed, first + (int64_t)i);
  const __m256i lanes = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  const __m256 plus = _mm256_set1_ps(1.f), minus = _mm256_set1_ps(-1.f);
  for (; i + 8 <= n; i += 8) {
    const __m256i b = _mm256_set1_epi32(packed[(first + (int64_t)i) / 8]);
    const __m256i on = _mm256_cmpeq_epi32(_mm256_and_si256(b, lanes), lanes);
    _mm256_storeu_ps(dst + i, _mm256_blendv_ps(minus, plus, _mm256_castsi256_ps(on)));
  }
  for (; i < n; ++i) dst[i] = binary_stream_code(packed, first + (int64_t)i);
}

void s4_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n) { lowbit_to_f32(packed, first, dst, n, 4); }
void s2_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n) { lowbit_to_f32(packed, first, dst, n, 2); }

}  // namespace eo
