// AVX-512 VNNI int8 GEMM: 8 x 32 tile (16 zmm accumulators) over two c4-packed panels, with A as
// rows (the GEMM) or as row pointers plus per-tap offsets (the implicit form, ukernels.h), and
// 8-bit (c4) or 4-bit (c4x2, widened in registers: no 8-bit copy of the weights) panels.
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

// One k-group (4 k) of the 8 x 16P tile: rows ar[i] + off against the weight vectors bv.
template <int P>
inline void dot(__m512i (&acc)[8][P], const uint8_t* const* ar, size_t off, const __m512i (&bv)[P]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    const __m512i av = _mm512_set1_epi32(load_a4(ar[i] + off));
#pragma GCC unroll 2
    for (int q = 0; q < P; ++q) acc[i][q] = _mm512_dpbusd_epi32(acc[i][q], av, bv[q]);
  }
}

// The same for the last, partial k-group (r < 4 bytes of each row).
template <int P>
inline void dot_tail(__m512i (&acc)[8][P], const uint8_t* const* ar, size_t off, size_t r,
                     const __m512i (&bv)[P]) {
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
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

// A pair of 4-bit k-groups (c4x2, ukernels.h) as the bytes 16*w: lo = k-group 2h, hi = 2h+1.
template <int P>
inline void unpack_pair(const int8_t* b, size_t panel_stride, __m512i (&lo)[P], __m512i (&hi)[P]) {
  const __m512i high = _mm512_set1_epi8((char)0xF0);
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const __m512i v = _mm512_loadu_si512(b + q * panel_stride);
    lo[q] = _mm512_and_si512(_mm512_slli_epi16(v, 4), high);
    hi[q] = _mm512_and_si512(v, high);
  }
}

// 4-bit tiles accumulate sum a*16w from zero; the exact sum is that >> 4, plus adj.
template <int P>
inline void finish4(__m512i (&acc)[8][P], const struct qs8_gemm_params* p, size_t j0) {
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const __m512i adj = _mm512_loadu_si512(p->adj + j0 + 16 * q);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i][q] = _mm512_add_epi32(_mm512_srai_epi32(acc[i][q], 4), adj);
  }
}

template <int P>
inline void zero(__m512i (&acc)[8][P]) {
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q)
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i][q] = _mm512_setzero_si512();
}

template <int P>
inline void tile_init(__m512i (&acc)[8][P], const struct qs8_gemm_params* p, size_t j0) {
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const __m512i adj = _mm512_loadu_si512(p->adj + j0 + 16 * q);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i][q] = adj;
  }
}

template <int P>
inline void tile_store(__m512i (&acc)[8][P], size_t mc, size_t nc, const struct qs8_gemm_params* p,
                       size_t j0, uint8_t* c, size_t ldc) {
  // Constant indices only (unrolled, rows past mc skipped): a runtime index into acc would force
  // the accumulators into memory for the whole k loop.
#pragma GCC unroll 2
  for (int q = 0; q < P; ++q) {
    const struct qs8_requant16 r = qs8_requant16_init(p, j0 + 16 * q);
    const __mmask16 mask = qs8_store_mask(nc - 16 * q);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i)
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
  tile_init(acc, p, j0);
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
  tile_store(acc, mc, nc, p, j0, c, ldc);
}

template <int P>
inline void tile4(size_t mc, size_t nc, size_t k, const uint8_t* a, size_t lda, const int8_t* pb,
                  size_t panel_stride, const struct qs8_gemm_params* p, size_t j0, uint8_t* c,
                  size_t ldc) {
  const uint8_t* ar[8];
  for (size_t i = 0; i < 8; ++i) ar[i] = a + (i < mc ? i : mc - 1) * lda;  // repeat the last row
  __m512i acc[8][P], lo[P], hi[P];
  zero(acc);
  const size_t kfull = k & ~(size_t)3;
  const int8_t* b = pb;
  size_t kk = 0;
  for (; kk + 8 <= kfull; kk += 8, b += 64) {
    unpack_pair(b, panel_stride, lo, hi);
    dot(acc, ar, kk, lo);
    dot(acc, ar, kk + 4, hi);
  }
  if (kk < k) {  // up to 7 k left: one or two k-groups, the last possibly partial
    unpack_pair(b, panel_stride, lo, hi);
    if (kk + 4 <= k) dot(acc, ar, kk, lo);
    else dot_tail(acc, ar, kk, k - kk, lo);
    kk += 4;
    if (kk < k) {
      if (kk + 4 <= k) dot(acc, ar, kk, hi);
      else dot_tail(acc, ar, kk, k - kk, hi);
    }
  }
  finish4(acc, p, j0);
  tile_store(acc, mc, nc, p, j0, c, ldc);
}

template <int P>
inline void itile(size_t mc, size_t nc, size_t ntaps, size_t kc, const uint8_t* const* rows,
                  const size_t* tap_off, const int8_t* pb, size_t panel_stride,
                  const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc) {
  __m512i acc[8][P];
  tile_init(acc, p, j0);
  const int8_t* b = pb;
  for (size_t t = 0; t < ntaps; ++t) {
    const uint8_t* ar[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) ar[i] = rows[i] + tap_off[t];
    for (size_t kk = 0; kk < kc; kk += 4, b += 64) kgroup(acc, ar, kk, b, panel_stride);
  }
  tile_store(acc, mc, nc, p, j0, c, ldc);
}

template <int P>
inline void itile4(size_t mc, size_t nc, size_t ntaps, size_t kc, const uint8_t* const* rows,
                   const size_t* tap_off, const int8_t* pb, size_t panel_stride,
                   const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc) {
  __m512i acc[8][P], lo[P], hi[P];
  zero(acc);
  const int8_t* b = pb;
  bool odd = false;  // the next k-group is the high half of the pair in lo / hi
  for (size_t t = 0; t < ntaps; ++t) {
    const uint8_t* ar[8];
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) ar[i] = rows[i] + tap_off[t];
    for (size_t kk = 0; kk < kc; kk += 4, odd = !odd) {
      if (!odd) {
        unpack_pair(b, panel_stride, lo, hi);
        b += 64;
        dot(acc, ar, kk, lo);
      } else {
        dot(acc, ar, kk, hi);
      }
    }
  }
  finish4(acc, p, j0);
  tile_store(acc, mc, nc, p, j0, c, ldc);
}

}  // namespace

void qs8_gemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                         size_t lda, const int8_t* pb, size_t panel_stride,
                                         const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    for (size_t i0 = 0; i0 < m; i0 += 8) {
      const size_t mc = m - i0 < 8 ? m - i0 : 8;
      if (nc > 16)
        tile<2>(mc, nc, k, a + i0 * lda, lda, pb, panel_stride, p, j0, c + i0 * ldc + j0, ldc);
      else
        tile<1>(mc, nc, k, a + i0 * lda, lda, pb, panel_stride, p, j0, c + i0 * ldc + j0, ldc);
    }
  }
}

void qs8_igemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                          const uint8_t* const* rows, const size_t* tap_off,
                                          const int8_t* pb, size_t panel_stride,
                                          const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    if (nc > 16) itile<2>(m, nc, ntaps, kc, rows, tap_off, pb, panel_stride, p, j0, c + j0, ldc);
    else itile<1>(m, nc, ntaps, kc, rows, tap_off, pb, panel_stride, p, j0, c + j0, ldc);
  }
}

void qs8_gemm_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                           size_t lda, const int8_t* pb, size_t panel_stride,
                                           const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    for (size_t i0 = 0; i0 < m; i0 += 8) {
      const size_t mc = m - i0 < 8 ? m - i0 : 8;
      if (nc > 16)
        tile4<2>(mc, nc, k, a + i0 * lda, lda, pb, panel_stride, p, j0, c + i0 * ldc + j0, ldc);
      else
        tile4<1>(mc, nc, k, a + i0 * lda, lda, pb, panel_stride, p, j0, c + i0 * ldc + j0, ldc);
    }
  }
}

void qs8_igemm_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                            const uint8_t* const* rows, const size_t* tap_off,
                                            const int8_t* pb, size_t panel_stride,
                                            const struct qs8_gemm_params* p, uint8_t* c,
                                            size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    if (nc > 16) itile4<2>(m, nc, ntaps, kc, rows, tap_off, pb, panel_stride, p, j0, c + j0, ldc);
    else itile4<1>(m, nc, ntaps, kc, rows, tap_off, pb, panel_stride, p, j0, c + j0, ldc);
  }
}

}  // namespace eo
