// AVX2 int8 SpMM: the AVX-512 kernel's scheme on 16-pixel ymm groups (see ukernel_avx512.cc):
// vpunpck{l,h}wd of two int16 activation rows, vpmaddwd by the broadcast weight pair, vpaddd.
// Lane j of the lo half holds pixel 8*(j/4) + j%4 of its group, the hi half 8*(j/4) + 4 + j%4;
// vperm2i128 puts them back in order before the requantized values are narrowed to bytes.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "qs8-gemm/requantize_avx2.h"
#include "qs8-spmm/ukernels.h"

namespace eo {
namespace {


// The low bytes of 8 int32 lanes, in order, as the low 64 bits.
inline __m128i narrow8(__m256i v) {
  const __m256i pick = _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                        0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
  const __m256i b = _mm256_shuffle_epi8(v, pick);
  return _mm256_castsi256_si128(_mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 1, 1, 1, 1, 1)));
}

inline void store_bytes(uint8_t* dst, __m128i v, size_t n) {  // n <= 8
  if (n >= 8) {
    _mm_storel_epi64((__m128i*)dst, v);
  } else if (n > 0) {
    uint8_t tmp[16];
    _mm_storeu_si128((__m128i*)tmp, v);
    memcpy(dst, tmp, n);
  }
}

template <int BR, int V>
inline void tile(size_t n, size_t nbr, size_t cout, const int16_t* x, size_t xs, const int32_t* w,
                 const int32_t* kidx, const int32_t* rp, const struct qs8_spmm_params* p,
                 uint8_t* y, size_t ys) {
  const __m256 vlo = _mm256_set1_ps((float)(p->qmin - p->out_zp));
  const __m256 vhi = _mm256_set1_ps((float)(p->qmax - p->out_zp));
  const __m256i vzp = _mm256_set1_epi32(p->out_zp);
  for (size_t r = 0; r < nbr; ++r) {
    __m256i lo[BR][V], hi[BR][V];
#pragma GCC unroll 4
    for (int i = 0; i < BR; ++i) {
      const __m256i a = _mm256_set1_epi32(p->adj[r * BR + i]);
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) lo[i][v] = hi[i][v] = a;
    }
    for (int32_t t = rp[r]; t < rp[r + 1]; ++t) {
      const int16_t* xa = x + (size_t)kidx[2 * t] * xs;
      const int16_t* xb = x + (size_t)kidx[2 * t + 1] * xs;
      __m256i ul[V], uh[V];
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m256i a = _mm256_loadu_si256((const __m256i*)(xa + 16 * v));
        const __m256i b = _mm256_loadu_si256((const __m256i*)(xb + 16 * v));
        ul[v] = _mm256_unpacklo_epi16(a, b);
        uh[v] = _mm256_unpackhi_epi16(a, b);
      }
#pragma GCC unroll 4
      for (int i = 0; i < BR; ++i) {
        const __m256i wv = _mm256_set1_epi32(w[(size_t)t * BR + i]);
#pragma GCC unroll 2
        for (int v = 0; v < V; ++v) {
          lo[i][v] = _mm256_add_epi32(lo[i][v], _mm256_madd_epi16(ul[v], wv));
          hi[i][v] = _mm256_add_epi32(hi[i][v], _mm256_madd_epi16(uh[v], wv));
        }
      }
    }
    const size_t rows = cout - r * BR < (size_t)BR ? cout - r * BR : (size_t)BR;
#pragma GCC unroll 4
    for (int i = 0; i < BR; ++i) {
      if ((size_t)i >= rows) break;
      const size_t o = r * BR + i;
      const __m256 scale = _mm256_set1_ps(p->scale[o]);
      uint8_t* yo = y + o * ys;
#pragma GCC unroll 2
      for (int v = 0; v < V; ++v) {
        const __m256i a = qs8_requant8(lo[i][v], scale, vlo, vhi, vzp);
        const __m256i b = qs8_requant8(hi[i][v], scale, vlo, vhi, vzp);
        const size_t q = 16 * (size_t)v;
        const size_t n0 = n > q ? n - q : 0, n1 = n > q + 8 ? n - q - 8 : 0;
        store_bytes(yo + q, narrow8(_mm256_permute2x128_si256(a, b, 0x20)), n0);
        store_bytes(yo + q + 8, narrow8(_mm256_permute2x128_si256(a, b, 0x31)), n1);
      }
    }
  }
}

template <int BR, int V>
void spmm(size_t mc, size_t nbr, size_t cout, const int16_t* x, size_t xs, const int32_t* w,
          const int32_t* kidx, const int32_t* rp, const struct qs8_spmm_params* p, uint8_t* y,
          size_t ys) {
  size_t p0 = 0;
  for (; p0 + 16 * V <= mc; p0 += 16 * V)
    tile<BR, V>(16 * V, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
  if (p0 == mc) return;
  if (mc - p0 <= 16) tile<BR, 1>(mc - p0, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
  else tile<BR, V>(mc - p0, nbr, cout, x + p0, xs, w, kidx, rp, p, y + p0, ys);
}

}  // namespace

void qs8_spmm_ukernel_32x1__avx2(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                 size_t x_stride, const int32_t* w, const int32_t* kidx,
                                 const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                 uint8_t* y, size_t y_stride) {
  spmm<1, 2>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}
void qs8_spmm_ukernel_16x4__avx2(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                 size_t x_stride, const int32_t* w, const int32_t* kidx,
                                 const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                 uint8_t* y, size_t y_stride) {
  spmm<4, 1>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}

}  // namespace eo
