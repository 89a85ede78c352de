// AVX-512 int8 add and channel-scale micro-kernels, 16 elements per step, exact (ukernels.h).
//
// The fixed-point multiply R(v, m, s) needs 64-bit products: vpmuldq on the even and the odd int32
// lanes, add the rounding constant, arithmetic shift by 31 + s (vpsraq), and blend the low halves
// back together. Tails use masked loads and stores.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-elementwise/ukernels.h"

namespace eo {
namespace {

struct rq {
  __m512i mult, rnd;
  __m128i sh;
};

inline struct rq rq_init(int32_t mult, int32_t shift) {
  struct rq r;
  r.mult = _mm512_set1_epi64((int64_t)mult);
  r.rnd = _mm512_set1_epi64((int64_t)1 << (30 + shift));
  r.sh = _mm_cvtsi32_si128(31 + shift);
  return r;
}

// ((int64)x * mult + 2^(30+shift)) >> (31+shift) per int32 lane (the result fits int32 here).
inline __m512i rq_apply(const struct rq* r, __m512i x) {
  const __m512i pe = _mm512_sra_epi64(_mm512_add_epi64(_mm512_mul_epi32(x, r->mult), r->rnd), r->sh);
  const __m512i po = _mm512_sra_epi64(
      _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r->mult), r->rnd), r->sh);
  return _mm512_mask_blend_epi32((__mmask16)0xAAAA, pe, _mm512_slli_epi64(po, 32));
}

inline __mmask16 tail_mask(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

}  // namespace

void qs8_add_ukernel__avx512(size_t n, const uint8_t* a, const uint8_t* b,
                             const struct qs8_add_params* p, uint8_t* y) {
  const struct rq ra = rq_init(p->a_mult, p->a_shift), rb = rq_init(p->b_mult, p->b_shift);
  const struct rq ro = rq_init(p->out_mult, p->out_shift);
  const __m512i za = _mm512_set1_epi32(p->a_zp), zb = _mm512_set1_epi32(p->b_zp);
  const __m512i lo = _mm512_set1_epi32(p->qmin - p->out_zp), hi = _mm512_set1_epi32(p->qmax - p->out_zp);
  const __m512i zo = _mm512_set1_epi32(p->out_zp);
  for (size_t i = 0; i < n; i += 16) {
    const __mmask16 m = tail_mask(n - i);
    const __m512i va = _mm512_slli_epi32(
        _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, a + i)), za), 20);
    const __m512i vb = _mm512_slli_epi32(
        _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, b + i)), zb), 20);
    __m512i s = _mm512_add_epi32(rq_apply(&ra, va), rq_apply(&rb, vb));
    s = rq_apply(&ro, s);
    s = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(s, lo), hi), zo);
    _mm_mask_storeu_epi8(y + i, m, _mm512_cvtepi32_epi8(s));
  }
}

void qs8_channel_scale_ukernel__avx512(size_t npix, size_t C, const uint8_t* x, const int32_t* sc,
                                       const struct qs8_channel_scale_params* p, uint8_t* y) {
  const struct rq r = rq_init(p->mult, p->shift);
  const __m512i zx = _mm512_set1_epi32(p->x_zp);
  const __m512i lo = _mm512_set1_epi32(p->qmin - p->y_zp), hi = _mm512_set1_epi32(p->qmax - p->y_zp);
  const __m512i zy = _mm512_set1_epi32(p->y_zp);
  for (size_t px = 0; px < npix; ++px, x += C, y += C) {
    for (size_t c = 0; c < C; c += 16) {
      const __mmask16 m = tail_mask(C - c);
      const __m512i v = _mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, x + c)), zx);
      const __m512i s = _mm512_maskz_loadu_epi32(m, sc + c);
      __m512i q = rq_apply(&r, _mm512_mullo_epi32(v, s));
      q = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(q, lo), hi), zy);
      _mm_mask_storeu_epi8(y + c, m, _mm512_cvtepi32_epi8(q));
    }
  }
}

}  // namespace eo
