// AVX-512 int8 SpMM: tiles of 32*V pixels. One zmm holds 32 int16 activations of a row; per
// weight pair, vpunpcklwd / vpunpckhwd of rows ka, kb give 2 x 16 lanes (x_ka, x_kb) that
// vpmaddwd multiplies by the broadcast weight pair of each of the BR output channels (and vpaddd
// accumulates: a 1-cycle chain, so no extra accumulator sets are needed). Accumulator lane j of
// the "lo" half holds pixel 8*(j/4) + j%4 of its 32-pixel group, the "hi" half pixel
// 8*(j/4) + 4 + j%4; the store permutes them back (vpermt2d) after requantizing.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "qs8-gemm/requantize_avx512.h"
#include "qs8-spmm/ukernels.h"

namespace eo {
namespace {


template <int BR, int V>
inline void tile(size_t n, size_t nbr, size_t cout, const int16_t* x, size_t xs, const int32_t* w,
                 const int32_t* kidx, const int32_t* rp, const struct qs8_spmm_params* p,
                 uint8_t* y, size_t ys) {
  // Output pixel q of a 32-pixel group from the lo (index < 16) and hi (index >= 16) halves.
  const __m512i perm0 = _mm512_setr_epi32(0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21, 22, 23);
  const __m512i perm1 = _mm512_setr_epi32(8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15, 28, 29, 30, 31);
  for (size_t r = 0; r < nbr; ++r) {
    __m512i lo[BR][V], hi[BR][V];
#pragma GCC unroll 4
    for (int i = 0; i < BR; ++i) {
      const __m512i a = _mm512_set1_epi32(p->adj[r * BR + i]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) lo[i][v] = hi[i][v] = a;
    }
    for (int32_t t = rp[r]; t < rp[r + 1]; ++t) {
      const int16_t* xa = x + (size_t)kidx[2 * t] * xs;
      const int16_t* xb = x + (size_t)kidx[2 * t + 1] * xs;
      __m512i ul[V], uh[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m512i a = _mm512_loadu_si512(xa + 32 * v), b = _mm512_loadu_si512(xb + 32 * v);
        ul[v] = _mm512_unpacklo_epi16(a, b);
        uh[v] = _mm512_unpackhi_epi16(a, b);
      }
#pragma GCC unroll 4
      for (int i = 0; i < BR; ++i) {
        const __m512i wv = _mm512_set1_epi32(w[(size_t)t * BR + i]);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) {
          lo[i][v] = _mm512_add_epi32(lo[i][v], _mm512_madd_epi16(ul[v], wv));
          hi[i][v] = _mm512_add_epi32(hi[i][v], _mm512_madd_epi16(uh[v], wv));
        }
      }
    }
    const size_t rows = cout - r * BR < (size_t)BR ? cout - r * BR : (size_t)BR;
#pragma GCC unroll 4
    for (int i = 0; i < BR; ++i) {
      if ((size_t)i >= rows) break;
      const size_t o = r * BR + i;
      const struct qs8_requant16 rq = qs8_requant16_set1(p->scale[o], p->out_zp, p->qmin, p->qmax);
      uint8_t* yo = y + o * ys;
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m512i a = qs8_requant16_ints(&rq, lo[i][v]);
        const __m512i b = qs8_requant16_ints(&rq, hi[i][v]);
        const size_t q = 32 * (size_t)v;  // first pixel of this group
        const size_t n0 = n > q ? n - q : 0, n1 = n > q + 16 ? n - q - 16 : 0;
        const __mmask16 m0 = n0 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n0) - 1);
        const __mmask16 m1 = n1 >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n1) - 1);
        _mm_mask_storeu_epi8(yo + q, m0, _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(a, perm0, b)));
        _mm_mask_storeu_epi8(yo + q + 16, m1, _mm512_cvtepi32_epi8(_mm512_permutex2var_epi32(a, perm1, b)));
      }
    }
  }
}

// Whole tiles, then one tile with the remaining pixels (x rows are padded to whole 32-pixel groups).
template <int BR, int V>
void spmm(size_t mc, size_t nbr, size_t cout, const int16_t* x, size_t xs, const int32_t* w,
          const int32_t* kidx, const int32_t* rp, const struct qs8_spmm_params* p, uint8_t* y,
          size_t ys) {
  size_t p0 = 0;
  for (; p0 + 32 * V <= mc; p0 += 32 * V)
    tile<BR, V>(32 * V, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
  if (p0 == mc) return;
  if (mc - p0 <= 32) tile<BR, 1>(mc - p0, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
  else tile<BR, V>(mc - p0, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
}

}  // namespace

void qs8_spmm_ukernel_64x1__avx512(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                   size_t x_stride, const int32_t* w, const int32_t* kidx,
                                   const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                   uint8_t* y, size_t y_stride) {
  spmm<1, 2>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}
void qs8_spmm_ukernel_32x4__avx512(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                   size_t x_stride, const int32_t* w, const int32_t* kidx,
                                   const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                   uint8_t* y, size_t y_stride) {
  spmm<4, 1>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}

}  // namespace eo
