// AVX-512 direct binary conv: the dispatch to each layout family's forms, and the binarizer
// (direct_avx512.h has the kernel).
#include "b1-gemm/direct_avx512.h"

namespace eo {

EO_B1_DIRECT void b1_direct_conv_rows__avx512vpopcntdq(const b1_direct_params* p, size_t o0, size_t o1,
                                                     size_t r0, size_t r1) {
  if (p->layout == B1_PLANES_32) b1_direct_rows_planes32__avx512(p, o0, o1, r0, r1);
  else if (p->layout == B1_PLANES_32_STRIDE2) b1_direct_rows_stride2__avx512(p, o0, o1, r0, r1);
  else b1_direct_rows_small__avx512(p, o0, o1, r0, r1);
}

namespace {

// Byte permutes around the 8x8 bit transposes of b1_binarize_planes: `gather` puts the 16-bit
// masks of channels 8g..8g+7 (one byte per 8 pixels: half h of each) into qword 2g + h, channel
// 8g + 7 - i at byte i (the affine step reverses rows); `scatter` moves byte b of qword 2g + h
// (pixel 8h + b, channels 8g..8g+7) to byte g of that pixel's word.
struct TransposeIndex {
  alignas(64) uint8_t gather[64], scatter[64];
  constexpr TransposeIndex() : gather(), scatter() {
    for (int g = 0; g < 4; ++g)
      for (int h = 0; h < 2; ++h)
        for (int i = 0; i < 8; ++i) {
          gather[8 * (2 * g + h) + i] = uint8_t(2 * (8 * g + 7 - i) + h);
          scatter[4 * (8 * h + i) + g] = uint8_t(8 * (2 * g + h) + i);
        }
  }
};
constexpr TransposeIndex kTranspose;

}  // namespace

EO_B1_DIRECT void b1_binarize_planes__avx512(const float* x, size_t c, size_t h, size_t w, size_t r0,
                                             size_t r1, uint32_t* plane, size_t plane_stride, size_t ldp,
                                             size_t pad_h, size_t pad_w, b1_plane_layout layout,
                                             size_t ldh, const float* threshold) {
  const __m512 zero = _mm512_setzero_ps();
  const __m512i gather = _mm512_load_si512(kTranspose.gather), scatter = _mm512_load_si512(kTranspose.scatter);
  // Unit rows: the affine step with the data as its matrix returns the data's transpose.
  const __m512i unit = _mm512_set1_epi64((long long)0x8040201008040201ull);
  for (size_t c0 = 0; c0 < c; c0 += 32) {
    const size_t cn = c - c0 < 32 ? c - c0 : 32;
    uint32_t* pl = plane + (c0 / 32) * plane_stride;
    alignas(64) uint16_t sign[32] = {};  // per channel, the 16 pixels' bits (channels past cn stay 0)
    for (size_t r = r0; r < r1; ++r)
      for (size_t s0 = 0; s0 < w; s0 += 16) {
        const size_t n = w - s0;
        const __mmask16 m = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
        // x >= t (ordered: NaN is -1, as in the reference); -0.0 >= 0 holds, so it is +1. The
        // masks go to memory, not through vector registers: no ALU work per channel but the compare.
#pragma GCC unroll 8
        for (size_t k = 0; k < cn; ++k) {
          const __m512 t = threshold ? _mm512_set1_ps(threshold[c0 + k]) : zero;
          sign[k] = _mm512_cmp_ps_mask(_mm512_maskz_loadu_ps(m, x + ((c0 + k) * h + r) * w + s0), t, _CMP_GE_OQ);
        }
        const __m512i blocks = _mm512_permutexvar_epi8(gather, _mm512_load_si512(sign));
        const __m512i words = _mm512_permutexvar_epi8(scatter, _mm512_gf2p8affine_epi64_epi8(unit, blocks, 0));
        put_words(pl, r + pad_h, ldp, pad_w, s0, layout, ldh, m, words);
      }
  }
}

}  // namespace eo
