#include <immintrin.h>
#include <stdint.h>
#include <string.h>

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

// 16 codes of b bits (b = 2: 4 bytes, b = 4: 8 bytes) from byte-aligned src: each lane shifts its
// 32-bit word right by its code's offset, masks, and sign-extends by (v ^ half) - half.
static inline __m512 lowbit16(const uint8_t* src, int b) {
  __m512i words, shifts;
  if (b == 4) {
    uint32_t w[2];
    memcpy(w, src, 8);
    words = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_set1_epi32((int)w[0])), _mm256_set1_epi32((int)w[1]), 1);
    shifts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 4, 8, 12, 16, 20, 24, 28);
  } else {
    uint32_t w;
    memcpy(&w, src, 4);
    words = _mm512_set1_epi32((int)w);
    shifts = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  }
  const __m512i half = _mm512_set1_epi32(1 << (b - 1));
  __m512i v = _mm512_and_si512(_mm512_srlv_epi32(words, shifts), _mm512_set1_epi32((1 << b) - 1));
  v = _mm512_sub_epi32(_mm512_xor_si512(v, half), half);
  return _mm512_cvtepi32_ps(v);
}

// 64 4-bit codes from 32 bytes: the nibbles split into two byte vectors, interleaved back into
// code order (unpack works within 128-bit lanes, hence the lane permutes), sign-extended as bytes,
// then widened 16 at a time: about a third of lowbit16's instructions per code.
static inline void s4_64(const uint8_t* src, float* dst) {
  const __m256i b = _mm256_loadu_si256((const __m256i*)src);
  const __m256i m = _mm256_set1_epi8(0x0f), h = _mm256_set1_epi8(8);
  const __m256i lo = _mm256_and_si256(b, m), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m);
  const __m256i a = _mm256_unpacklo_epi8(lo, hi), c = _mm256_unpackhi_epi8(lo, hi);
  __m256i q0 = _mm256_permute2x128_si256(a, c, 0x20), q1 = _mm256_permute2x128_si256(a, c, 0x31);
  q0 = _mm256_sub_epi8(_mm256_xor_si256(q0, h), h);
  q1 = _mm256_sub_epi8(_mm256_xor_si256(q1, h), h);
  _mm512_storeu_ps(dst, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q0))));
  _mm512_storeu_ps(dst + 16, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q0, 1))));
  _mm512_storeu_ps(dst + 32, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q1))));
  _mm512_storeu_ps(dst + 48, _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q1, 1))));
}

static void lowbit_to_f32(const uint8_t* packed, int64_t first, float* dst, size_t n, int b) {
  const int64_t per_byte = 8 / b;
  size_t i = 0;
  for (; i < n && (first + (int64_t)i) % per_byte != 0; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, b);
  if (b == 4)
    for (; i + 64 <= n; i += 64) s4_64(packed + (first + (int64_t)i) / 2, dst + i);
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(dst + i, lowbit16(packed + (first + (int64_t)i) / per_byte, b));
  for (; i < n; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, b);
}

// 16 binary codes are 16 bits: a mask that picks +1 or -1 per lane.
void s1_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n) {
  size_t i = 0;
  for (; i < n && (first + (int64_t)i) % 8 != 0; ++i) dst[i] = binary_stream_code(packed, first + (int64_t)i);
  const __m512 plus = _mm512_set1_ps(1.f), minus = _mm512_set1_ps(-1.f);
  for (; i + 16 <= n; i += 16) {
    uint16_t bits;
    memcpy(&bits, packed + (first + (int64_t)i) / 8, 2);
    _mm512_storeu_ps(dst + i, _mm512_mask_blend_ps((__mmask16)bits, minus, plus));
  }
  for (; i < n; ++i) dst[i] = binary_stream_code(packed, first + (int64_t)i);
}

void s4_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n) { lowbit_to_f32(packed, first, dst, n, 4); }
void s2_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n) { lowbit_to_f32(packed, first, dst, n, 2); }

}  // namespace eo
