// AVX-512 int8 add and channel-scale micro-kernels, 16 elements per step, exact (ukernels.h):
// the same float32 operations as the scalar kernels, vfmadd for fmaf, cvtps2dq (half to even)
// for the rounding. Tails use masked loads and stores.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-elementwise/ukernels.h"
#include "qs8-gemm/requantize_avx512.h"

namespace eo {
namespace {

inline __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

inline __m512 bytes_ps(__mmask16 m, const uint8_t* p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)));
}

}  // namespace

void qs8_add_ukernel__avx512(size_t n, const uint8_t* a, const uint8_t* b,
                             const struct qs8_add_params* p, uint8_t* y) {
  const __m512 ra = _mm512_set1_ps(p->a_scale), rb = _mm512_set1_ps(p->b_scale);
  const __m512 off = _mm512_set1_ps(p->offset);
  const __m512 lo = _mm512_set1_ps((float)p->qmin), hi = _mm512_set1_ps((float)p->qmax);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    __m512 v = _mm512_fmadd_ps(bytes_ps(m, a + i), ra, _mm512_fmadd_ps(bytes_ps(m, b + i), rb, off));
    v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(v)));
  }
}

void qs8_channel_scale_ukernel__avx512(size_t npix, size_t C, const uint8_t* x, const int32_t* sc,
                                       const struct qs8_channel_scale_params* p, uint8_t* y) {
  // requantize.h's qs8_requantize_zp_in_float: the explicit-rounding forms cannot be contracted
  // into an fma
  constexpr int kRound = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  const __m512i zx = _mm512_set1_epi32(p->x_zp);
  const __m512 scale = _mm512_set1_ps(p->scale), zy = _mm512_set1_ps((float)p->y_zp);
  const __m512 lo = _mm512_set1_ps((float)p->qmin), hi = _mm512_set1_ps((float)p->qmax);
  for (size_t px = 0; px < npix; ++px, x += C, y += C) {
    for (size_t c = 0; c < C; c += 16) {
      const __mmask16 m = tail_mask(C - c);
      const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x + c)), zx);
      const __m512i s = _mm512_maskz_loadu_epi32(m, sc + c);
      __m512 f = _mm512_mul_round_ps(_mm512_cvtepi32_ps(_mm512_mullo_epi32(v, s)), scale, kRound);
      f = _mm512_min_ps(_mm512_max_ps(_mm512_add_round_ps(f, zy, kRound), lo), hi);
      _mm_mask_storeu_epi8(y + c, m, _mm512_cvtepi32_epi8(_mm512_cvtps_epi32(f)));
    }
  }
}

}  // namespace eo
