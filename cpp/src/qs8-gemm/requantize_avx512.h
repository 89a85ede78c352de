// AVX-512 form of qs8_requantize (requantize.h) for 16 columns, shared by the VNNI and AMX
// kernels (both compiled with AVX-512BW/VL) and the depthwise kernels. Plain C-style static
// inline functions.
#pragma once
#include <immintrin.h>
#include <stdint.h>

namespace eo {

// Requantization constants of 16 lanes (columns or channels).
struct qs8_requant16 {
  __m512 scale;
  __m512 lo, hi;   // clamp to [qmin - zp, qmax - zp] before rounding
  __m512i zp;
};

static inline struct qs8_requant16 qs8_requant16_set1(float scale, int32_t out_zp, int32_t qmin,
                                                      int32_t qmax) {
  struct qs8_requant16 r;
  r.scale = _mm512_set1_ps(scale);
  r.lo = _mm512_set1_ps((float)(qmin - out_zp));
  r.hi = _mm512_set1_ps((float)(qmax - out_zp));
  r.zp = _mm512_set1_epi32(out_zp);
  return r;
}

// Per-column factors scale[0 .. 16).
static inline struct qs8_requant16 qs8_requant16_make(const float* scale, int32_t out_zp,
                                                      int32_t qmin, int32_t qmax) {
  struct qs8_requant16 r = qs8_requant16_set1(0.0f, out_zp, qmin, qmax);
  r.scale = _mm512_loadu_ps(scale);
  return r;
}

// Requantize 16 accumulators to 16 int32 values in [qmin, qmax] (cvtps2dq rounds half to even
// under the default MXCSR, like the scalar form).
static inline __m512i qs8_requant16_ints(const struct qs8_requant16* r, __m512i x) {
  __m512 v = _mm512_mul_ps(_mm512_cvtepi32_ps(x), r->scale);
  v = _mm512_min_ps(_mm512_max_ps(v, r->lo), r->hi);
  return _mm512_add_epi32(_mm512_cvtps_epi32(v), r->zp);
}

static inline __m128i qs8_requant16_bytes(const struct qs8_requant16* r, __m512i x) {
  return _mm512_cvtepi32_epi8(qs8_requant16_ints(r, x));
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
