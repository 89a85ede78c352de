// AVX-512 VNNI int8 GEMM: 8 x 32 tile (16 zmm accumulators) over two c4-packed panels, with A as
// rows (the GEMM) or as row pointers plus per-tap offsets (the implicit form, ukernels.h), and
// 8-bit (c4) or 4-bit (c4x2) panels. A 4-bit column block is widened into the caller's scratch
// once per call (the 8-bit form of 32 columns, never of the whole weights); with few rows (up to
// 16 in the GEMM, 64 in the implicit form), where the widening would cost as much as the tiles,
// 4-bit panels are read in place instead.
//
// vpdpbusd multiplies 4 u8 activations by 4 s8 weights per int32 lane and adds the four products
// to the lane without intermediate saturation (unlike the *s variant and pmaddubsw), so it is exact
// modulo 2^32. One k-group: 2 weight loads, 8 broadcasts of 4 activation bytes (folded into the
// instruction as {1to16} memory operands), 16 vpdpbusd: 16 independent chains cover its latency
// on both ports.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-gemm/requantize_avx512.h"
#include "qs8-gemm/ukernels.h"
#include "qs8-gemm/widen_avx512.h"

// GCC 12 flags the _mm512_undefined_*() pass-through inside the intrinsics once the 16-row tile
// inlines them (a known false positive).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

namespace eo {
namespace {

inline int32_t load_a4(const uint8_t* a) {
  int32_t v;
  __builtin_memcpy(&v, a, 4);
  return v;
}

// Zero-extended tail of a row: a[0 .. r), r < 4.
inline int32_t load_a_tail(const uint8_t* a, size_t r) {
  uint32_t v = 0;
  for (size_t t = 0; t < r; ++t) v |= (uint32_t)a[t] << (8 * t);
  return (int32_t)v;
}

// One k-group (4 k) of the R x 16P tile: rows ar[i] + off against the weight vectors bv.
template <int R, int P>
inline void dot(__m512i (&acc)[R][P], const uint8_t* const* ar, size_t off, const __m512i (&bv)[P]) {
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    const __m512i av = _mm512_set1_epi32(load_a4(ar[i] + off));
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, bv[q]);
  }
}

// The same for the last, partial k-group (r < 4 bytes of each row).
template <int R, int P>
inline void dot_tail(__m512i (&acc)[R][P], const uint8_t* const* ar, size_t off, size_t r,
                     const __m512i (&bv)[P]) {
#pragma GCC unroll 16
  for (int i = 0; i < R; ++i) {
    const __m512i av = _mm512_set1_epi32(load_a_tail(ar[i] + off, r));
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, bv[q]);
  }
}

template <int P>
inline void kgroup(__m512i (&acc)[8][P], const uint8_t* const* ar, size_t off, const int8_t* b,
                   size_t panel_stride) {
  __m512i bv[P];
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) bv[q] = _mm512_loadu_si512(b + q * panel_stride);
  dot(acc, ar, off, bv);
}

// Accumulators start at the bias term (adj), or at 0 for 16 * w weights (added after the shift).
template <int R, int P, bool X16>
inline void tile_init(__m512i (&acc)[R][P], const struct qs8_gemm_params* p, size_t j0) {
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const __m512i adj = X16 ? _mm512_setzero_si512() : _mm512_loadu_si512(p->adj + j0 + 16 * q);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i) acc[i][q] = adj;
  }
}

template <int R, int P, bool X16>
inline void tile_store(__m512i (&acc)[R][P], size_t mc, size_t nc, const struct qs8_gemm_params* p,
                       size_t j0, uint8_t* c, size_t ldc) {
  // Constant indices only (unrolled, rows past mc skipped): a runtime index into acc would force
  // the accumulators into memory for the whole k loop.
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    if (X16) {
      const __m512i adj = _mm512_loadu_si512(p->adj + j0 + 16 * q);
#pragma GCC unroll 16
      for (int i = 0; i < R; ++i) acc[i][q] = _mm512_add_epi32(_mm512_srai_epi32(acc[i][q], 4), adj);
    }
    const struct qs8_requant16 r = qs8_requant16_make(p->scale + j0 + 16 * q, p->out_zp, p->qmin, p->qmax);
    const __mmask16 mask = qs8_store_mask(nc - 16 * q);
#pragma GCC unroll 16
    for (int i = 0; i < R; ++i)
      if ((size_t)i < mc) qs8_requant16_store(&r, acc[i][q], c + i * ldc + 16 * q, mask);
  }
}

template <int P>  // P = 1 or 2 panels of 16 columns
inline void tile(size_t mc, size_t nc, size_t k, const uint8_t* a, size_t lda, const int8_t* pb,
                 size_t panel_stride, const struct qs8_gemm_params* p, size_t j0, uint8_t* c,
                 size_t ldc) {
  const uint8_t* ar[8];
  for (size_t i = 0; i < 8; ++i) ar[i] = a + (i < mc ? i : mc - 1) * lda;  // repeat the last row
  __m512i acc[8][P];
  tile_init<8, P, false>(acc, p, j0);
  const size_t kfull = k & ~(size_t)3;
  const int8_t* b = pb;
  size_t kk = 0;
  for (; kk < kfull; kk += 4, b += 64) kgroup(acc, ar, kk, b, panel_stride);
  if (kk < k) {
    __m512i bv[P];
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) bv[q] = _mm512_loadu_si512(b + q * panel_stride);
    dot_tail(acc, ar, kk, k - kk, bv);
  }
  tile_store<8, P, false>(acc, mc, nc, p, j0, c, ldc);
}

// The implicit-GEMM tile; Four: on 4-bit panels read in place as 16 * w (taps of kc % 8 == 0
// bytes, so a c4x2 chunk never straddles two taps).
template <int P, bool Four>
inline void itile(size_t mc, size_t nc, size_t ntaps, size_t kc, const uint8_t* const* rows,
                  const size_t* tap_off, const int8_t* pb, size_t panel_stride,
                  const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc) {
  __m512i acc[8][P];
  tile_init<8, P, Four>(acc, p, j0);
  const int8_t* b = pb;
  for (size_t t = 0; t < ntaps; ++t) {
    const uint8_t* ar[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) ar[i] = rows[i] + tap_off[t];
    if (Four) {
      __m512i lo[P], hi[P];
      for (size_t kk = 0; kk < kc; kk += 8, b += 64) {
#pragma GCC unroll 2
        for (int q = 0; q < P; ++q) qs8_nibbles_x16_avx512(_mm512_loadu_si512(b + q * panel_stride), &lo[q], &hi[q]);
        dot(acc, ar, kk, lo);
        dot(acc, ar, kk + 4, hi);
      }
    } else {
      for (size_t kk = 0; kk < kc; kk += 4, b += 64) kgroup(acc, ar, kk, b, panel_stride);
    }
  }
  tile_store<8, P, Four>(acc, mc, nc, p, j0, c, ldc);
}

// A tile on 4-bit panels read in place, unpacked to 16 * w in registers: for few rows, where
// widening a block into scratch would cost as much as the tile itself.
template <int R, int P>
inline void tile4(size_t mc, size_t nc, size_t k, const uint8_t* a, size_t lda, const int8_t* pb,
                  size_t panel_stride, const struct qs8_gemm_params* p, size_t j0, uint8_t* c,
                  size_t ldc) {
  const uint8_t* ar[R];
  for (size_t i = 0; i < R; ++i) ar[i] = a + (i < mc ? i : mc - 1) * lda;  // repeat the last row
  __m512i acc[R][P];
  tile_init<R, P, true>(acc, p, j0);
  const int8_t* b = pb;
  size_t kk = 0;
  __m512i lo[P], hi[P];
  for (; kk + 8 <= k; kk += 8, b += 64) {
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) qs8_nibbles_x16_avx512(_mm512_loadu_si512(b + q * panel_stride), &lo[q], &hi[q]);
    dot(acc, ar, kk, lo);
    dot(acc, ar, kk + 4, hi);
  }
  if (kk < k) {
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) qs8_nibbles_x16_avx512(_mm512_loadu_si512(b + q * panel_stride), &lo[q], &hi[q]);
    if (k - kk >= 4) {
      dot(acc, ar, kk, lo);
      if (k - kk > 4) dot_tail(acc, ar, kk + 4, k - kk - 4, hi);
    } else {
      dot_tail(acc, ar, kk, k - kk, lo);
    }
  }
  tile_store<R, P, true>(acc, mc, nc, p, j0, c, ldc);
}

// One 32-column block (j0) of every row, on c4 panels (8-bit weights, or 4-bit ones widened).
inline void gemm_block(size_t m, size_t nc, size_t k, const uint8_t* a, size_t lda,
                       const int8_t* b, size_t ps, const struct qs8_gemm_params* p, size_t j0,
                       uint8_t* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += 8) {
    const size_t mc = m - i0 < 8 ? m - i0 : 8;
    if (nc > 16) tile<2>(mc, nc, k, a + i0 * lda, lda, b, ps, p, j0, c + i0 * ldc, ldc);
    else tile<1>(mc, nc, k, a + i0 * lda, lda, b, ps, p, j0, c + i0 * ldc, ldc);
  }
}

template <bool Four>  // b: c4 panels, or (Four) c4x2 ones read in place
inline void igemm_block(size_t m, size_t nc, size_t ntaps, size_t kc, const uint8_t* const* rows,
                        const size_t* tap_off, const int8_t* b, size_t ps,
                        const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += 8) {
    const size_t mc = m - i0 < 8 ? m - i0 : 8;
    if (nc > 16) itile<2, Four>(mc, nc, ntaps, kc, rows + i0, tap_off, b, ps, p, j0, c + i0 * ldc, ldc);
    else itile<1, Four>(mc, nc, ntaps, kc, rows + i0, tap_off, b, ps, p, j0, c + i0 * ldc, ldc);
  }
}

// Up to 16 rows on 4-bit panels, read in place: 8 x 32 tiles up to 8 rows, 16 x 16 ones above
// (each unpacked weight vector then serves all 16 rows).
inline void gemm4_in_place(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                           const int8_t* pb, size_t ps, const struct qs8_gemm_params* p, uint8_t* c,
                           size_t ldc) {
  if (m <= 8) {
    for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * ps) {
      const size_t nc = n - j0 < 32 ? n - j0 : 32;
      if (nc > 16) tile4<8, 2>(m, nc, k, a, lda, pb, ps, p, j0, c + j0, ldc);
      else tile4<8, 1>(m, nc, k, a, lda, pb, ps, p, j0, c + j0, ldc);
    }
  } else {
    for (size_t j0 = 0; j0 < n; j0 += 16, pb += ps)
      tile4<16, 1>(m, n - j0 < 16 ? n - j0 : 16, k, a, lda, pb, ps, p, j0, c + j0, ldc);
  }
}

}  // namespace

void qs8_gemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                         size_t lda, const int8_t* pb, size_t panel_stride,
                                         const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride)
    gemm_block(m, n - j0 < 32 ? n - j0 : 32, k, a, lda, pb, panel_stride, p, j0, c + j0, ldc);
}

void qs8_igemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                          const uint8_t* const* rows, const size_t* tap_off,
                                          const int8_t* pb, size_t panel_stride,
                                          const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride)
    igemm_block<false>(m, n - j0 < 32 ? n - j0 : 32, ntaps, kc, rows, tap_off, pb, panel_stride, p,
                       j0, c + j0, ldc);
}

void qs8_gemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                            size_t lda, const int8_t* pb, size_t panel_stride,
                                            const struct qs8_gemm_params* p, uint8_t* c,
                                            size_t ldc, int8_t* scratch) {
  if (m <= 16 && k <= kQs8MaxX16K) return gemm4_in_place(m, n, k, a, lda, pb, panel_stride, p, c, ldc);
  const size_t kpairs = (k + 7) / 8, ps = kpairs * 128;
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    qs8_widen4_avx512(pb, panel_stride, nc > 16 ? 2 : 1, kpairs, scratch, ps, false);
    gemm_block(m, nc, k, a, lda, scratch, ps, p, j0, c + j0, ldc);
  }
}

void qs8_igemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                             const uint8_t* const* rows, const size_t* tap_off,
                                             const int8_t* pb, size_t panel_stride,
                                             const struct qs8_gemm_params* p, uint8_t* c,
                                             size_t ldc, int8_t* scratch) {
  const size_t kpairs = (ntaps * kc + 7) / 8, ps = kpairs * 128;
  // Up to 64 rows the panels are read in place: measured 1-2 % faster than widening the block
  // (resnet20's 8x8 layers at batch 1: 32 or 64 rows per call), unlike the plain GEMM's 1x1
  // layers, where it was level from 17 to 64 rows.
  const bool in_place = m <= 64 && kc % 8 == 0 && ntaps * kc <= kQs8MaxX16K;
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    if (in_place) {
      igemm_block<true>(m, nc, ntaps, kc, rows, tap_off, pb, panel_stride, p, j0, c + j0, ldc);
      continue;
    }
    qs8_widen4_avx512(pb, panel_stride, nc > 16 ? 2 : 1, kpairs, scratch, ps, false);
    igemm_block<false>(m, nc, ntaps, kc, rows, tap_off, scratch, ps, p, j0, c + j0, ldc);
  }
}

}  // namespace eo
