// AVX-512 direct binary conv (ukernels.h): per output row and block of 16 pixels, Q output
// channels at a time, each (tap, word) vector loaded once and combined with Q broadcast weight
// words (embedded broadcasts), then vpopcntd and vpaddd; taps go through full adders three at a
// time (8 vector ops per three taps and channel instead of 9). Small-channel layers (resnet20's 16
// and 32 channels) fill every lane, where the 64-bit GEMM path left half of each word empty and
// paid for an im2col.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "b1-gemm/ukernels.h"

// GCC 12 flags the deliberately undefined pass-through operand inside the intrinsic headers
// (_mm512_undefined_*) when they are inlined into a target("...") function: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define EO_VPOPCNT __attribute__((target("avx512vpopcntdq")))

namespace eo {
namespace {

enum Clamp { kNone, kLow, kBoth };  // which of out_min / out_max can clip

template <int Q, bool kBias, Clamp kClamp>
EO_VPOPCNT inline void block(const b1_direct_params* p, size_t o, size_t r, size_t s0,
                             __mmask16 m) {
  __m512i a1[Q], a2[Q];  // counts of weight 1 and (from the triples' carries) weight 2
#pragma GCC unroll 8
  for (int q = 0; q < Q; ++q) a1[q] = a2[q] = _mm512_setzero_si512();
  const uint32_t* wo = p->w + o * p->wstride;
  size_t t = 0;  // position in the weight sequence (ukernels.h)
  for (size_t i = 0; i < p->kh; ++i) {
    const uint32_t* row = p->plane + (r + i) * p->ldp + s0;
    size_t j = 0;
    for (; j + 3 <= p->kw; j += 3)
      for (size_t c = 0; c < p->nw; ++c, t += 4) {
        // Three taps a = x1^w1, b = x2^w2, c = x3^w3 through a full adder: sum = a^b^c and
        // carry = maj(a, b, c) = a ^ ((a^b) & (a^c)), with the x-only XORs shared by all Q
        // channels: 4 logic ops and 2 popcounts instead of 3 XORs and 3 popcounts.
        const uint32_t* px = row + c * p->plane_stride + j;
        const __m512i x1 = _mm512_loadu_si512(px), x2 = _mm512_loadu_si512(px + 1),
                      x3 = _mm512_loadu_si512(px + 2);
        const __m512i x12 = _mm512_xor_si512(x1, x2), x13 = _mm512_xor_si512(x1, x3),
                      x123 = _mm512_xor_si512(x12, x3);
#pragma GCC unroll 8
        for (int q = 0; q < Q; ++q) {
          const uint32_t* wq = wo + q * p->wstride + t;
          const __m512i ab = _mm512_xor_si512(x12, _mm512_set1_epi32((int)wq[1]));
          const __m512i t2 = _mm512_ternarylogic_epi32(ab, x13, _mm512_set1_epi32((int)wq[2]), 0x60);  // A & (B ^ C)
          const __m512i carry = _mm512_ternarylogic_epi32(t2, x1, _mm512_set1_epi32((int)wq[0]), 0x96);  // A ^ B ^ C
          const __m512i sum = _mm512_xor_si512(x123, _mm512_set1_epi32((int)wq[3]));
          a1[q] = _mm512_add_epi32(a1[q], _mm512_popcnt_epi32(sum));
          a2[q] = _mm512_add_epi32(a2[q], _mm512_popcnt_epi32(carry));
        }
      }
    for (; j < p->kw; ++j)
      for (size_t c = 0; c < p->nw; ++c, ++t) {
        const __m512i xv = _mm512_loadu_si512(row + c * p->plane_stride + j);
#pragma GCC unroll 8
        for (int q = 0; q < Q; ++q)
          a1[q] = _mm512_add_epi32(a1[q], _mm512_popcnt_epi32(_mm512_xor_si512(xv, _mm512_set1_epi32((int)wo[q * p->wstride + t]))));
      }
  }
  __m512i acc[Q];
#pragma GCC unroll 8
  for (int q = 0; q < Q; ++q) acc[q] = _mm512_add_epi32(a1[q], _mm512_slli_epi32(a2[q], 1));
  const size_t cls = (size_t)p->rowcls[r];
#pragma GCC unroll 8
  for (int q = 0; q < Q; ++q) {
    // dot = base - 2 acc in float: every term is an integer below 2^24, so the fused form is exact
    // and equals float(dot).
    const __m512 base = _mm512_loadu_ps(p->base + ((o + q) * p->ncls + cls) * p->ldb + s0);
    const __m512 dot = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(acc[q]), _mm512_set1_ps(2.f), base);
    // Explicit-rounding forms: never contracted into an FMA, so the same multiply then add as the
    // reference.
    __m512 v = _mm512_mul_round_ps(_mm512_set1_ps(p->alpha[o + q]), dot,
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    if (kBias)
      v = _mm512_add_round_ps(v, _mm512_set1_ps(p->bias[o + q]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    // max/min return the second operand on NaN and on equal zeros, as the reference's compares
    // do; an infinite bound never clips, so skipping it changes nothing.
    if (kClamp != kNone) v = _mm512_max_ps(_mm512_set1_ps(p->lo), v);
    if (kClamp == kBoth) v = _mm512_min_ps(_mm512_set1_ps(p->hi), v);
    _mm512_mask_storeu_ps(p->y + ((o + q) * p->oh + r) * p->ow + s0, m, v);
  }
}

template <bool kBias, Clamp kClamp>
EO_VPOPCNT void rows(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  for (size_t r = r0; r < r1; ++r)
    for (size_t s0 = 0; s0 < p->ow; s0 += 16) {
      const size_t n = p->ow - s0;
      const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
      size_t o = o0;
      for (; o + 8 <= o1; o += 8) block<8, kBias, kClamp>(p, o, r, s0, m);
      if (o + 4 <= o1) { block<4, kBias, kClamp>(p, o, r, s0, m); o += 4; }
      if (o + 2 <= o1) { block<2, kBias, kClamp>(p, o, r, s0, m); o += 2; }
      if (o < o1) block<1, kBias, kClamp>(p, o, r, s0, m);
    }
}

template <bool kBias>
EO_VPOPCNT void rows_clamp(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  const bool lo = p->lo > -__builtin_inff(), hi = p->hi < __builtin_inff();
  if (hi) rows<kBias, kBoth>(p, o0, o1, r0, r1);
  else if (lo) rows<kBias, kLow>(p, o0, o1, r0, r1);
  else rows<kBias, kNone>(p, o0, o1, r0, r1);
}

}  // namespace

EO_VPOPCNT void b1_direct_conv_rows__avx512vpopcntdq(const b1_direct_params* p, size_t o0, size_t o1,
                                                     size_t r0, size_t r1) {
  if (p->bias) rows_clamp<true>(p, o0, o1, r0, r1);
  else rows_clamp<false>(p, o0, o1, r0, r1);
}

void b1_binarize_planes__avx512(const float* x, size_t c, size_t h, size_t w, size_t r0, size_t r1,
                                uint32_t* plane, size_t plane_stride, size_t ldp, size_t pad_h,
                                size_t pad_w) {
  const __m512 zero = _mm512_setzero_ps();
  for (size_t c0 = 0; c0 < c; c0 += 32) {
    const size_t cn = c - c0 < 32 ? c - c0 : 32;
    uint32_t* pl = plane + (c0 / 32) * plane_stride;
    for (size_t r = r0; r < r1; ++r)
      for (size_t s0 = 0; s0 < w; s0 += 16) {
        const size_t n = w - s0;
        const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
        __m512i bits = _mm512_setzero_si512();
        for (size_t k = 0; k < cn; ++k) {
          const __m512 v = _mm512_maskz_loadu_ps(m, x + ((c0 + k) * h + r) * w + s0);
          // x >= 0 (ordered: NaN is -1, as in the reference); -0.0 >= 0 holds, so it is +1.
          const __mmask16 pos = _mm512_cmp_ps_mask(v, zero, _CMP_GE_OQ);
          bits = _mm512_mask_or_epi32(bits, pos, bits, _mm512_set1_epi32((int)(1u << k)));
        }
        _mm512_mask_storeu_epi32(pl + (r + pad_h) * ldp + pad_w + s0, m, bits);
      }
  }
}

}  // namespace eo
