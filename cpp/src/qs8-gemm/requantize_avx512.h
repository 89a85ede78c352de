// AVX-512 form of qs8_requantize (requantize.h) for 16 columns, shared by the VNNI and AMX
// kernels (both compiled with AVX-512BW/VL). Plain C-style static inline functions.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "qs8-gemm/ukernels.h"

namespace eo {

// Per-column constants of a 16-column panel, computed once per panel.
struct qs8_requant16 {
  __m512i mult_e, mult_o;   // multipliers of the even / odd columns in the low half of 64-bit lanes
  __m512i rnd_e, rnd_o;     // 2^(30 + shift)
  __m512i sh_e, sh_o;       // 31 + shift
  __m512i lo, hi, zp;       // clamp to [qmin - zp, qmax - zp], then add zp (cannot overflow)
};

static inline struct qs8_requant16 qs8_requant16_init(const struct qs8_gemm_params* p, size_t j0) {
  struct qs8_requant16 r;
  const __m512i m = _mm512_loadu_si512(p->multiplier + j0);
  const __m512i sh = _mm512_loadu_si512(p->shift + j0);
  const __m512i lo32 = _mm512_set1_epi64(0xFFFFFFFFll), one = _mm512_set1_epi64(1);
  const __m512i se = _mm512_and_si512(sh, lo32), so = _mm512_srli_epi64(sh, 32);
  r.mult_e = m;
  r.mult_o = _mm512_srli_epi64(m, 32);
  r.rnd_e = _mm512_sllv_epi64(one, _mm512_add_epi64(se, _mm512_set1_epi64(30)));
  r.rnd_o = _mm512_sllv_epi64(one, _mm512_add_epi64(so, _mm512_set1_epi64(30)));
  r.sh_e = _mm512_add_epi64(se, _mm512_set1_epi64(31));
  r.sh_o = _mm512_add_epi64(so, _mm512_set1_epi64(31));
  r.lo = _mm512_set1_epi32(p->qmin - p->out_zp);
  r.hi = _mm512_set1_epi32(p->qmax - p->out_zp);
  r.zp = _mm512_set1_epi32(p->out_zp);
  return r;
}

// Requantize 16 accumulators to 16 output bytes.
static inline __m128i qs8_requant16_bytes(const struct qs8_requant16* r, __m512i x) {
  __m512i pe = _mm512_add_epi64(_mm512_mul_epi32(x, r->mult_e), r->rnd_e);
  __m512i po = _mm512_add_epi64(_mm512_mul_epi32(_mm512_srli_epi64(x, 32), r->mult_o), r->rnd_o);
  pe = _mm512_srav_epi64(pe, r->sh_e);
  po = _mm512_srav_epi64(po, r->sh_o);
  __m512i y = _mm512_mask_blend_epi32((__mmask16)0xAAAA, pe, _mm512_slli_epi64(po, 32));
  y = _mm512_add_epi32(_mm512_min_epi32(_mm512_max_epi32(y, r->lo), r->hi), r->zp);
  return _mm512_cvtepi32_epi8(y);
}

// Requantize 16 accumulators and store the low bytes of the first nc (<= 16) to c.
static inline void qs8_requant16_store(const struct qs8_requant16* r, __m512i x, uint8_t* c,
                                       __mmask16 store_mask) {
  _mm_mask_storeu_epi8(c, store_mask, qs8_requant16_bytes(r, x));
}

static inline __mmask16 qs8_store_mask(size_t nc) {
  return nc >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << nc) - 1);
}

}  // namespace eo
