// AVX-512 direct binary conv (ukernels.h): per output row and block of 16 pixels (32 on 16-bit
// planes; two rows of at most 8 with B1_PLANES_32_ROWS2), Q output
// channels at a time, each (tap, word) vector loaded once and combined with Q broadcast weight
// words (embedded broadcasts); taps go through full adders three at a time (4 logic ops and 2
// counts per three taps and channel instead of 3 XORs and 3 counts; for 3x3, the three rows' sums
// through one more full adder at the end). A count is a 16-bit popcount
// and a vpdpwssd that adds it, times -2 (or -4 for a carry), to the channel's dot, which starts at
// its base: the count's weight, the accumulate and the dot's "base - 2 acc" are one step.
// Small-channel layers (resnet20's 16 and 32 channels) fill every lane, where the 64-bit GEMM path
// left half of each word empty and paid for an im2col: 16 channels as 16-bit words, 32 pixels per
// vector (B1_PLANES_16), which took resnet20's 16->16 conv at 32x32 from 7.5 to 4.8 us; rows of at
// most 8 pixels two per vector (B1_PLANES_32_ROWS2): its 64->64 conv at 8x8 from 5.6-6.1 to 3.0 us.
//
// The templates live here, internal to the b1-gemm AVX-512 files; each layout family's forms are
// instantiated in a file of their own (direct_planes32_avx512.cc, direct_stride2_avx512.cc,
// direct_small_avx512.cc), so that the build compiles them in parallel (one file took 70 s), and
// direct_avx512.cc dispatches to them and holds the binarizer.
#pragma once
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "b1-gemm/ukernels.h"

// GCC 12 flags the deliberately undefined pass-through operand inside the intrinsic headers
// (_mm512_undefined_*) when they are inlined into a target("...") function: a false positive.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#define EO_B1_DIRECT __attribute__((target("avx512vpopcntdq,avx512bitalg,avx512vnni,avx512vbmi,gfni")))

namespace eo {
namespace {

enum Clamp { kNone, kLow, kBoth };  // which of out_min / out_max can clip

// acc + k * popcount(v) per 32-bit lane, k in both 16-bit halves of `k2`: the popcounts of the two
// halves (at most 16 each) times k, summed into the lane.
EO_B1_DIRECT inline __m512i add_count(__m512i acc, __m512i v, __m512i k2) {
  return _mm512_dpwssd_epi32(acc, _mm512_popcnt_epi16(v), k2);
}

// A carry's count: 32-bit lanes add it times -4 (k4) to the dot; 16-bit lanes add it to their
// carry count (B1_PLANES_16).
template <bool k16>
EO_B1_DIRECT inline __m512i add_carry(__m512i acc, __m512i v, __m512i k4) {
  return k16 ? _mm512_add_epi16(acc, _mm512_popcnt_epi16(v)) : add_count(acc, v, k4);
}

inline __m512i bcast(const uint32_t* w) { return _mm512_set1_epi32((int)*w); }

// The words of up to 16 pixels (lanes m) of one row, from interior column s0 (even), into padded
// row `prow` of a plane laid out as `layout` (ukernels.h), whose interior starts at column pad_w:
// the binarizer's store, and a conv's that writes its reader's planes.
EO_B1_DIRECT inline void put_words(uint32_t* plane, size_t prow, size_t ldp, size_t pad_w, size_t s0,
                                   b1_plane_layout layout, size_t ldh, __mmask16 m, __m512i words) {
  if (layout == B1_PLANES_16) {  // channels 16..31 are empty: keep each word's low half
    _mm256_mask_storeu_epi16(reinterpret_cast<uint16_t*>(plane) + prow * ldp + pad_w + s0, m,
                             _mm512_cvtepi32_epi16(words));
    return;
  }
  uint32_t* dst = plane + prow * ldp;
  if (layout != B1_PLANES_32_STRIDE2) {
    _mm512_mask_storeu_epi32(dst + pad_w + s0, m, words);
    return;
  }
  // Column stride 2: the pixels of each parity packed into their half of the row. s0 is even, so
  // lane k lands in half (pad_w + k) % 2.
  for (size_t k0 = 0; k0 < 2; ++k0) {
    const __mmask16 lanes = m & (__mmask16)(k0 ? 0xAAAA : 0x5555);
    const size_t pc = pad_w + s0 + k0;  // the padded column of lane k0
    _mm512_mask_storeu_epi32(dst + (pc % 2) * ldh + pc / 2, (__mmask16)((1u << __builtin_popcount(lanes)) - 1),
                             _mm512_maskz_compress_epi32(lanes, words));
  }
}

// Output channel oq's bits into the pixel words (bit oq % 32 where dot >= dmin[oq]): 16 pixels,
// or 32 on 16-bit planes (16-bit dots; words[1] holds pixels 16-31).
template <bool k16>
EO_B1_DIRECT inline void put_bits(const b1_direct_params* p, size_t oq, __m512i dot, __m512i* words) {
  const __m512i bit = _mm512_set1_epi32((int)(1u << (oq % 32)));
  if constexpr (k16) {
    // |dot| <= 144 here, so the clamp to 16 bits keeps every threshold's meaning
    const int32_t d = p->dmin[oq] < -32768 ? -32768 : p->dmin[oq] > 32767 ? 32767 : p->dmin[oq];
    const __mmask32 k = _mm512_cmpge_epi16_mask(dot, _mm512_set1_epi16((short)d));
    words[0] = _mm512_mask_or_epi32(words[0], (__mmask16)k, words[0], bit);
    words[1] = _mm512_mask_or_epi32(words[1], (__mmask16)(k >> 16), words[1], bit);
  } else {
    words[0] = _mm512_mask_or_epi32(words[0], _mm512_cmpge_epi32_mask(dot, _mm512_set1_epi32(p->dmin[oq])), words[0],
                                    bit);
  }
}

// The epilogue of 16 output pixels of channel oq (mask m): y = clamp(alpha dot + bias + residual).
// packed: the masked lanes are contiguous in y and the residual from `at` on (two rows narrower
// than 8 pixels, B1_PLANES_32_ROWS2).
template <bool kBias, bool kRes, Clamp kClamp>
EO_B1_DIRECT inline void store_dots(const b1_direct_params* p, size_t oq, __m512i dot, size_t at, __mmask16 m,
                                    bool packed = false) {
  // Explicit-rounding forms: never contracted into an FMA, so the same multiply then adds as the
  // reference; float(dot) is exact (|dot| < 2^24).
  __m512 v = _mm512_mul_round_ps(_mm512_set1_ps(p->alpha[oq]), _mm512_cvtepi32_ps(dot),
                                 _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (kBias)
    v = _mm512_add_round_ps(v, _mm512_set1_ps(p->bias[oq]), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  if (kRes) {  // a fused skip connection
    const __m512 res = packed ? _mm512_maskz_expandloadu_ps(m, p->residual + at) : _mm512_maskz_loadu_ps(m, p->residual + at);
    v = _mm512_add_round_ps(v, res, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  }
  // max/min return the second operand on NaN and on equal zeros, as the reference's compares
  // do; an infinite bound never clips, so skipping it changes nothing.
  if (kClamp != kNone) v = _mm512_max_ps(_mm512_set1_ps(p->lo), v);
  if (kClamp == kBoth) v = _mm512_min_ps(_mm512_set1_ps(p->hi), v);
  if (packed)
    _mm512_mask_storeu_ps(p->y + at, (__mmask16)((1u << __builtin_popcount(m)) - 1), _mm512_maskz_compress_ps(m, v));
  else
    _mm512_mask_storeu_ps(p->y + at, m, v);
}

// kFixed: 0, or the words per pixel of a 3x3 kernel known at compile time (1 or 2): the tap
// loops then unroll whole, and the dots stay in place instead of being copied between registers
// at every loop turn (GCC's code for the runtime loops spent a register move per count).
// kL: the plane layout. Stride 1's tap offsets stay constants: read from a table, the 32->32
// layer at 16x16 took 3-4 % longer. B1_PLANES_16 (kFixed 1) puts 32 pixels in a vector: its
// 16-bit lanes count the carries into their own accumulators (popcounts added per lane; a
// vpdpwssd would add two pixels) and form the dot once at the end. B1_PLANES_32_ROWS2 (kFixed 1
// or 2) loads each tap's vector as two 8-pixel halves, rows r + i and r + 1 + i.
template <int Q, int kFixed, b1_plane_layout kL, bool kBias, bool kRes, Clamp kClamp, bool kBits>
EO_B1_DIRECT inline void block(const b1_direct_params* p, size_t o, size_t r, size_t s0, uint32_t m,
                               __m512i* words) {
  constexpr bool k16 = kL == B1_PLANES_16, k2 = kL == B1_PLANES_32_ROWS2;
  static_assert(!k16 || kFixed == 1, "16-bit planes: 3x3, one word per pixel");
  static_assert(!k2 || kFixed, "two rows per vector: 3x3, at most two words per pixel");
  const auto load = [ldp = p->ldp](const uint32_t* at) {
    if constexpr (k2)
      return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(at))),
                                _mm256_loadu_si256(reinterpret_cast<const __m256i*>(at + ldp)), 1);
    else
      return _mm512_loadu_si512(at);
  };
  const size_t kh = kFixed ? 3 : p->kh, kw = kFixed ? 3 : p->kw, nw = kFixed ? kFixed : p->nw;
  // Pointers stepped per channel rather than indexed: GCC multiplied out every channel's offsets.
  const size_t bstep = p->ncls * p->ldb, ystep = p->oh * p->ow;
  const size_t bat = (o * p->ncls + (size_t)p->rowcls[r]) * p->ldb + s0;
  const int32_t* bq = p->base + bat;
  __m512i dot[Q];  // 16-bit planes: the carry counts
#pragma GCC unroll 8
  for (int q = 0; q < Q; ++q, bq += bstep) dot[q] = k16 ? _mm512_setzero_si512() : _mm512_loadu_si512(bq);
  const __m512i minus2 = _mm512_set1_epi16(-2), minus4 = _mm512_set1_epi16(-4);
  const uint32_t* wg = p->w + (o / 8) * p->wstride * 8 + o % 8;  // word t of channel o + q: wg[8 t + q]
  size_t t = 0;  // position in the weight sequence (ukernels.h)
  // The 3x3 form counts each row's carry as it goes but keeps the rows' sums x1^x2^x3 (x-only)
  // for a second full adder across the rows at the end: 2 counts instead of 3.
  __m512i xs[kFixed ? 3 : 1][kFixed ? kFixed : 1];
  // Plane word of tap j (ukernels.h): stride 2 keeps the odd padded columns from word ldh.
  const auto col = [ldh = p->ldh](size_t j) { return kL == B1_PLANES_32_STRIDE2 ? (j % 2) * ldh + j / 2 : j; };
#pragma GCC unroll 3
  for (size_t i = 0; i < kh; ++i) {
    const uint32_t* row = p->plane + ((kL == B1_PLANES_32_STRIDE2 ? 2 : 1) * r + i) * p->ldp + s0;
    size_t j = 0;
    for (; j + 3 <= kw; j += 3)
#pragma GCC unroll 2
      for (size_t c = 0; c < nw; ++c, t += 4) {
        // Three taps a = x1^w1, b = x2^w2, c = x3^w3 through a full adder: sum = a^b^c and
        // carry = maj(a, b, c) = a ^ ((a^b) & (a^c)), with the x-only XORs shared by all Q
        // channels.
        __m512i x1, x2, x3;
        if constexpr (k16) {
          const uint16_t* px = reinterpret_cast<const uint16_t*>(p->plane) + (r + i) * p->ldp + s0;
          x1 = _mm512_loadu_si512(px), x2 = _mm512_loadu_si512(px + 1), x3 = _mm512_loadu_si512(px + 2);
        } else {
          const uint32_t* px = row + c * p->plane_stride;
          x1 = load(px + col(j)), x2 = load(px + col(j + 1)), x3 = load(px + col(j + 2));
        }
        const __m512i x12 = _mm512_xor_si512(x1, x2), x13 = _mm512_xor_si512(x1, x3),
                      x123 = _mm512_xor_si512(x12, x3);
        const uint32_t* wt = wg + 8 * t;
#pragma GCC unroll 8
        for (int q = 0; q < Q; ++q) {
          const __m512i ab = _mm512_xor_si512(x12, bcast(wt + 8 + q));
          const __m512i t2 = _mm512_ternarylogic_epi32(ab, x13, bcast(wt + 16 + q), 0x60);  // A & (B ^ C)
          const __m512i carry = _mm512_ternarylogic_epi32(t2, x1, bcast(wt + q), 0x96);     // A ^ B ^ C
          if (!kFixed) dot[q] = add_count(dot[q], _mm512_xor_si512(x123, bcast(wt + 24 + q)), minus2);
          dot[q] = add_carry<k16>(dot[q], carry, minus4);
        }
        if (kFixed) xs[i][c] = x123;
      }
    for (; j < kw; ++j)
      for (size_t c = 0; c < nw; ++c, ++t) {
        const __m512i xv = _mm512_loadu_si512(row + c * p->plane_stride + col(j));
#pragma GCC unroll 8
        for (int q = 0; q < Q; ++q)
          dot[q] = add_count(dot[q], _mm512_xor_si512(xv, bcast(wg + 8 * t + q)), minus2);
      }
  }
  if (kFixed)
#pragma GCC unroll 2
    for (size_t c = 0; c < nw; ++c) {
      // Rows' sums s_i = x_i ^ w_i (x_i = xs[i][c]) through a full adder, as the taps above:
      // s0^s1^s2 counts once, maj(s0, s1, s2) twice; the weight parts are the extra words.
      const __m512i x01 = _mm512_xor_si512(xs[0][c], xs[1][c]), x02 = _mm512_xor_si512(xs[0][c], xs[2][c]),
                    x012 = _mm512_xor_si512(x01, xs[2][c]);
      const uint32_t *w0 = wg + 8 * (4 * c + 3), *we = wg + 8 * (12 * nw + 3 * c);
#pragma GCC unroll 8
      for (int q = 0; q < Q; ++q) {
        const __m512i ab = _mm512_xor_si512(x01, bcast(we + q));
        const __m512i t2 = _mm512_ternarylogic_epi32(ab, x02, bcast(we + 8 + q), 0x60);     // A & (B ^ C)
        const __m512i carry = _mm512_ternarylogic_epi32(t2, xs[0][c], bcast(w0 + q), 0x96);  // A ^ B ^ C
        const __m512i sum = _mm512_xor_si512(x012, bcast(we + 16 + q));
        if constexpr (k16) {
          // dot = base - 2 (sums + 2 carries), per 16-bit lane
          const __m512i c2 = add_carry<k16>(dot[q], carry, minus4);
          const __m512i u = _mm512_add_epi16(_mm512_add_epi16(c2, c2), _mm512_popcnt_epi16(sum));
          const __m512i base = _mm512_loadu_si512(p->base16 + bat + q * bstep);
          dot[q] = _mm512_sub_epi16(_mm512_sub_epi16(base, u), u);
        } else {
          dot[q] = add_count(dot[q], sum, minus2);
          dot[q] = add_count(dot[q], carry, minus4);
        }
      }
    }
  if constexpr (kBits) {
#pragma GCC unroll 8
    for (int q = 0; q < Q; ++q) put_bits<k16>(p, o + q, dot[q], words);
    return;
  }
  const size_t at = (o * p->oh + r) * p->ow + s0;
#pragma GCC unroll 8
  for (int q = 0; q < Q; ++q) {
    if constexpr (k16) {  // pixels s0..s0+15, then s0+16..s0+31
      store_dots<kBias, kRes, kClamp>(p, o + q, _mm512_cvtepi16_epi32(_mm512_castsi512_si256(dot[q])),
                                      at + q * ystep, (__mmask16)m);
      if (m >> 16)
        store_dots<kBias, kRes, kClamp>(p, o + q, _mm512_cvtepi16_epi32(_mm512_extracti64x4_epi64(dot[q], 1)),
                                        at + q * ystep + 16, (__mmask16)(m >> 16));
    } else {  // two rows per vector: packed unless they are 8 pixels wide
      store_dots<kBias, kRes, kClamp>(p, o + q, dot[q], at + q * ystep, (__mmask16)m, k2 && p->ow < 8);
    }
  }
}

// Output channels [o0, o1) of one block of pixels: 8 at a time, then 4, 2, 1.
template <int kFixed, b1_plane_layout kL, bool kBias, bool kRes, Clamp kClamp, bool kBits>
EO_B1_DIRECT inline void channel_blocks(const b1_direct_params* p, size_t o0, size_t o1, size_t r, size_t s0,
                                        uint32_t m, __m512i* words) {
  size_t o = o0;
  for (; o + 8 <= o1; o += 8) block<8, kFixed, kL, kBias, kRes, kClamp, kBits>(p, o, r, s0, m, words);
  if (o + 4 <= o1) { block<4, kFixed, kL, kBias, kRes, kClamp, kBits>(p, o, r, s0, m, words); o += 4; }
  if (o + 2 <= o1) { block<2, kFixed, kL, kBias, kRes, kClamp, kBits>(p, o, r, s0, m, words); o += 2; }
  if (o < o1) block<1, kFixed, kL, kBias, kRes, kClamp, kBits>(p, o, r, s0, m, words);
}

// Output channels [o0, o1) of one block of pixels. Writing planes (kBits), each group of 32
// channels (o0 a multiple of 32) fills one vector of pixel words, stored once: two rows of 8
// (B1_PLANES_32_ROWS2), or 32 pixels as two vectors (B1_PLANES_16).
template <int kFixed, b1_plane_layout kL, bool kBias, bool kRes, Clamp kClamp, bool kBits>
EO_B1_DIRECT inline void channels(const b1_direct_params* p, size_t o0, size_t o1, size_t r, size_t s0, uint32_t m) {
  if constexpr (!kBits) {
    channel_blocks<kFixed, kL, kBias, kRes, kClamp, false>(p, o0, o1, r, s0, m, nullptr);
  } else {
    for (size_t g = o0; g < o1; g += 32) {
      __m512i words[2] = {_mm512_setzero_si512(), _mm512_setzero_si512()};
      channel_blocks<kFixed, kL, kBias, kRes, kClamp, true>(p, g, g + 32 < o1 ? g + 32 : o1, r, s0, m, words);
      uint32_t* plane = p->out_plane + (g / 32) * p->out_plane_stride;
      const auto put = [&](size_t row, size_t s, __mmask16 lanes, __m512i w) {
        put_words(plane, row + p->out_pad_h, p->out_ldp, p->out_pad_w, s, p->out_layout, p->out_ldh, lanes, w);
      };
      if constexpr (kL == B1_PLANES_32_ROWS2) {
        put(r, 0, (__mmask16)(m & 0xFF), words[0]);
        if (m >> 8) put(r + 1, 0, (__mmask16)((m >> 8) & 0xFF), _mm512_alignr_epi32(words[0], words[0], 8));
      } else {
        put(r, s0, (__mmask16)m, words[0]);
        if (kL == B1_PLANES_16 && (m >> 16)) put(r, s0 + 16, (__mmask16)(m >> 16), words[1]);
      }
    }
  }
}

template <int kFixed, b1_plane_layout kL, bool kBias, bool kRes, Clamp kClamp, bool kBits = false>
EO_B1_DIRECT void rows(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  constexpr size_t kLanes = kL == B1_PLANES_16 ? 32 : 16;
  if constexpr (kL == B1_PLANES_32_ROWS2) {
    const uint32_t row = (1u << p->ow) - 1;
    for (size_t r = r0; r < r1; r += 2)
      channels<kFixed, kL, kBias, kRes, kClamp, kBits>(p, o0, o1, r, 0, r + 1 < r1 ? row | row << 8 : row);
    return;
  }
  for (size_t r = r0; r < r1; ++r)
    for (size_t s0 = 0; s0 < p->ow; s0 += kLanes) {
      const size_t n = p->ow - s0;
      const uint32_t m = n >= kLanes ? uint32_t(~0ull >> (64 - kLanes)) : (1u << n) - 1;
      channels<kFixed, kL, kBias, kRes, kClamp, kBits>(p, o0, o1, r, s0, m);
    }
}

// Every layout but B1_PLANES_32 always clamps at both bounds (an infinite one clips nothing): a
// third of the code for the layers that are few in a network.
template <int kFixed, b1_plane_layout kL, bool kBias, bool kRes>
EO_B1_DIRECT void rows_clamp(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  const bool lo = p->lo > -__builtin_inff(), hi = p->hi < __builtin_inff();
  if (kL != B1_PLANES_32 || hi) rows<kFixed, kL, kBias, kRes, kBoth>(p, o0, o1, r0, r1);
  else if (lo) rows<kFixed, kL, kBias, kRes, kLow>(p, o0, o1, r0, r1);
  else rows<kFixed, kL, kBias, kRes, kNone>(p, o0, o1, r0, r1);
}

// The epilogue's adds are compile-time choices: a residual test per block measured 2-3 % slower
// (benchmarks/README.md, thirteenth session).
template <int kFixed, b1_plane_layout kL>
EO_B1_DIRECT void rows_epilogue(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  if (p->bias && p->residual) rows_clamp<kFixed, kL, true, true>(p, o0, o1, r0, r1);
  else if (p->bias) rows_clamp<kFixed, kL, true, false>(p, o0, o1, r0, r1);
  else if (p->residual) rows_clamp<kFixed, kL, false, true>(p, o0, o1, r0, r1);
  else rows_clamp<kFixed, kL, false, false>(p, o0, o1, r0, r1);
}

// Writing the reader's planes, the epilogue is a compare whatever the bias and clamp (dmin holds
// them).
template <int kFixed, b1_plane_layout kL>
EO_B1_DIRECT void rows_out(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  if (p->out_plane) rows<kFixed, kL, false, false, kNone, true>(p, o0, o1, r0, r1);
  else rows_epilogue<kFixed, kL>(p, o0, o1, r0, r1);
}

template <b1_plane_layout kL>
EO_B1_DIRECT void rows_shape(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  // The 3x3 forms are the layers whose weights carry the rows' sum words: the rule of
  // b1_direct_sum3_words (ukernels.h), spelled out so GCC's code for the kernels stays as measured.
  const bool k3x3 = p->kh == 3 && p->kw == 3;
  if (k3x3 && p->nw == 1) rows_out<1, kL>(p, o0, o1, r0, r1);
  else if (k3x3 && p->nw == 2) rows_out<2, kL>(p, o0, o1, r0, r1);
  else rows_out<0, kL>(p, o0, o1, r0, r1);
}

}  // namespace

// The forms of each layout family (ukernels.h's b1_direct_conv_rows__avx512vpopcntdq contract).
EO_B1_DIRECT void b1_direct_rows_planes32__avx512(const b1_direct_params* p, size_t o0, size_t o1, size_t r0,
                                                  size_t r1);  // B1_PLANES_32
EO_B1_DIRECT void b1_direct_rows_stride2__avx512(const b1_direct_params* p, size_t o0, size_t o1, size_t r0,
                                                 size_t r1);  // B1_PLANES_32_STRIDE2
EO_B1_DIRECT void b1_direct_rows_small__avx512(const b1_direct_params* p, size_t o0, size_t o1, size_t r0,
                                               size_t r1);  // B1_PLANES_16, B1_PLANES_32_ROWS2

}  // namespace eo
