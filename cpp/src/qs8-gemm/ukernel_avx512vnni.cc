// AVX-512 VNNI int8 GEMM: 8 x 32 tile (16 zmm accumulators) over two c4-packed panels, with A as
// rows (the GEMM) or as row pointers plus per-tap offsets (the implicit form, ukernels.h), and
// 8-bit (c4) or 4-bit (c4x2) panels; a 4-bit column block is widened into the caller's scratch
// once per call (the 8-bit form of 32 columns, never of the whole weights).
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

// The np (1 or 2) 4-bit panels at pb (c4x2) widened to c4 panels of int8 weights at out (stride
// out_stride), kpairs pairs of k-groups each, once per call and column block: a nibble u becomes
// (u ^ 8) - 8, its two's complement value.
inline void widen(const int8_t* pb, size_t panel_stride, size_t np, size_t kpairs, int8_t* out,
                  size_t out_stride) {
  const __m512i low = _mm512_set1_epi8(0x0F), eight = _mm512_set1_epi8(8);
  for (size_t q = 0; q < np; ++q)
    for (size_t h = 0; h < kpairs; ++h) {
      const __m512i v = _mm512_loadu_si512(pb + q * panel_stride + h * 64);
      const __m512i lo = _mm512_and_si512(v, low), hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      _mm512_storeu_si512(out + q * out_stride + h * 128, _mm512_sub_epi8(_mm512_xor_si512(lo, eight), eight));
      _mm512_storeu_si512(out + q * out_stride + h * 128 + 64, _mm512_sub_epi8(_mm512_xor_si512(hi, eight), eight));
    }
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
    const struct qs8_requant16 r = qs8_requant16_make(p->scale + j0 + 16 * q, p->out_zp, p->qmin, p->qmax);
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

}  // namespace

namespace {

// One 32-column block (j0) of every row (8-bit B: the packed panels, or 4-bit ones widened).
inline void gemm_block(size_t m, size_t nc, size_t k, const uint8_t* a, size_t lda,
                       const int8_t* b, size_t ps, const struct qs8_gemm_params* p, size_t j0,
                       uint8_t* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += 8) {
    const size_t mc = m - i0 < 8 ? m - i0 : 8;
    if (nc > 16) tile<2>(mc, nc, k, a + i0 * lda, lda, b, ps, p, j0, c + i0 * ldc, ldc);
    else tile<1>(mc, nc, k, a + i0 * lda, lda, b, ps, p, j0, c + i0 * ldc, ldc);
  }
}

inline void igemm_block(size_t m, size_t nc, size_t ntaps, size_t kc, const uint8_t* const* rows,
                        const size_t* tap_off, const int8_t* b, size_t ps,
                        const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc) {
  for (size_t i0 = 0; i0 < m; i0 += 8) {
    const size_t mc = m - i0 < 8 ? m - i0 : 8;
    if (nc > 16) itile<2>(mc, nc, ntaps, kc, rows + i0, tap_off, b, ps, p, j0, c + i0 * ldc, ldc);
    else itile<1>(mc, nc, ntaps, kc, rows + i0, tap_off, b, ps, p, j0, c + i0 * ldc, ldc);
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
    igemm_block(m, n - j0 < 32 ? n - j0 : 32, ntaps, kc, rows, tap_off, pb, panel_stride, p,
                       j0, c + j0, ldc);
}

void qs8_gemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                            size_t lda, const int8_t* pb, size_t panel_stride,
                                            const struct qs8_gemm_params* p, uint8_t* c,
                                            size_t ldc, int8_t* scratch) {
  const size_t kpairs = (k + 7) / 8, ps = kpairs * 128;
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    widen(pb, panel_stride, nc > 16 ? 2 : 1, kpairs, scratch, ps);
    gemm_block(m, nc, k, a, lda, scratch, ps, p, j0, c + j0, ldc);
  }
}

void qs8_igemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                             const uint8_t* const* rows, const size_t* tap_off,
                                             const int8_t* pb, size_t panel_stride,
                                             const struct qs8_gemm_params* p, uint8_t* c,
                                             size_t ldc, int8_t* scratch) {
  const size_t kpairs = (ntaps * kc + 7) / 8, ps = kpairs * 128;
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32;
    widen(pb, panel_stride, nc > 16 ? 2 : 1, kpairs, scratch, ps);
    igemm_block(m, nc, ntaps, kc, rows, tap_off, scratch, ps, p, j0, c + j0, ldc);
  }
}

}  // namespace eo
