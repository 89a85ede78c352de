// The AVX-512 depthwise loop over one block of up to 16 channels (ukernels.h), shared by the plain
// AVX-512 kernel (every block) and the VNNI kernel (the channels past its last whole 64-block).
//
// Per tap: 16 input bytes zero-extended to int32, one vpmaddwd with 16 int32-stored weights =
// exact x * w (the zero point is folded into adj), one add. The block's requantization constants
// are computed once and its weights (ntaps x 64 bytes) stay in L1 while the pixels stream past;
// a partial block uses masked loads and stores (never touches bytes past the block). Plain C-style
// static inline: included by ISA-specific files only.
#pragma once
#include <immintrin.h>
#include <stdint.h>

#include "qs8-conv2d/ukernels.h"
#include "qs8-gemm/requantize_avx512.h"

namespace eo {

// The requantization constants of 16 depthwise channels, from the given per-channel factors
// (plain, or the VNNI kernel's permuted ones).
static inline struct qs8_requant16 qs8_dwconv_requant16(const struct qs8_dwconv_params* p,
                                                        const float* scale) {
  return qs8_requant16_make(scale, p->out_zp, p->qmin, p->qmax);
}

static inline void qs8_dwconv16_avx512(size_t c0, size_t nc, size_t npix, size_t ntaps,
                                       const uint8_t* const* taps,
                                       const struct qs8_dwconv_params* p, uint8_t* y,
                                       size_t y_stride) {
  const __mmask16 mask = qs8_store_mask(nc);
  const struct qs8_requant16 r = qs8_dwconv_requant16(p, p->scale + c0);
  const __m512i adj = _mm512_loadu_si512(p->adj + c0);
  const int32_t* w = p->w + c0;
  const uint8_t* const* tp = taps;
  uint8_t* yp = y + c0;
  for (size_t px = 0; px < npix; ++px, tp += ntaps, yp += y_stride) {
    __m512i acc0 = adj, acc1 = _mm512_setzero_si512();
    size_t t = 0;
    for (; t + 2 <= ntaps; t += 2) {  // two chains to overlap the vpmaddwd latency
      const __m512i x0 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, tp[t] + c0));
      const __m512i x1 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, tp[t + 1] + c0));
      acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(x0, _mm512_loadu_si512(w + t * p->cstride)));
      acc1 = _mm512_add_epi32(acc1, _mm512_madd_epi16(x1, _mm512_loadu_si512(w + (t + 1) * p->cstride)));
    }
    if (t < ntaps) {
      const __m512i x0 = _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(mask, tp[t] + c0));
      acc0 = _mm512_add_epi32(acc0, _mm512_madd_epi16(x0, _mm512_loadu_si512(w + t * p->cstride)));
    }
    qs8_requant16_store(&r, _mm512_add_epi32(acc0, acc1), yp, mask);
  }
}

}  // namespace eo
