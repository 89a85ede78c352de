#include <immintrin.h>
#include <stdint.h>

#include "f32-conv2d/ukernels.h"

namespace eo {
namespace {

// R x 16V rows x columns of the 8 x 48 tile. At R = 8, V = 3: 24 zmm accumulators + 3 B vectors +
// 1 broadcast of A, and 24 FMAs per 3 vector loads + 8 broadcasts keep both FMA ports busy. The
// 8-row panel matches Cout = 16/32/64 exactly (a 12-row tile wastes a third of its FMAs at 16).
// The A panel stride stays 8 whatever R is.
template <int R, int V>
inline void store_tile(__m512 (&acc)[R][V], size_t m, size_t n, float* c, size_t ldc,
                       int accumulate) {
  __mmask16 mask[V];
#pragma GCC unroll 3
  for (int v = 0; v < V; ++v) {
    const size_t left = n - 16 * v;  // n > 16 (V - 1)
    mask[v] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
  }
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    if ((size_t)i >= m) break;
    float* ci = c + i * ldc;
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) {
      if (accumulate) acc[i][v] = _mm512_add_ps(acc[i][v], _mm512_maskz_loadu_ps(mask[v], ci + 16 * v));
      _mm512_mask_storeu_ps(ci + 16 * v, mask[v], acc[i][v]);
    }
  }
}

template <int R, int V>
void shifted_tile(size_t m, size_t n, size_t kc, const float* pa, const float* b,
                  const int32_t* off, float* c, size_t ldc, int accumulate) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (size_t k = 0; k < kc; ++k, pa += 8) {
    const float* bk = b + off[k];
    __m512 bv[V];
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(bk + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(a, bv[v], acc[i][v]);
    }
  }
  store_tile<R, V>(acc, m, n, c, ldc, accumulate);
}

// Rows of a past m point at row m - 1: computed, never stored.
template <int R, int V>
void strided_tile(size_t m, size_t n, size_t rows, size_t cols, const float* a, size_t lda,
                  size_t a_row, const float* b, const int32_t* boff, size_t ldb, size_t b_row,
                  float* c, size_t ldc, int accumulate) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  const float* ar[R];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) ar[i] = a + ((size_t)i < m ? (size_t)i : m - 1) * lda;
  for (size_t r = 0; r < rows; ++r, b += b_row) {
    const float* bp[V];
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) bp[v] = b + boff[v];
    for (size_t p = 0; p < cols; ++p) {
      __m512 bv[V];
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) {
        bv[v] = _mm512_loadu_ps(bp[v]);
        bp[v] += ldb;
      }
#pragma GCC unroll 8
      for (int i = 0; i < R; ++i) {
        const __m512 av = _mm512_set1_ps(ar[i][p]);
#pragma GCC unroll 3
        for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(av, bv[v], acc[i][v]);
      }
    }
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) ar[i] += a_row;
  }
  store_tile<R, V>(acc, m, n, c, ldc, accumulate);
}

template <int R>
void shifted_rows(size_t m, size_t n, size_t kc, const float* pa, const float* b,
                  const int32_t* off, float* c, size_t ldc, int accumulate) {
  if (n > 32) shifted_tile<R, 3>(m, n, kc, pa, b, off, c, ldc, accumulate);
  else if (n > 16) shifted_tile<R, 2>(m, n, kc, pa, b, off, c, ldc, accumulate);
  else shifted_tile<R, 1>(m, n, kc, pa, b, off, c, ldc, accumulate);
}

template <int R>
void strided_rows(size_t m, size_t n, size_t rows, size_t cols, const float* a, size_t lda,
                  size_t a_row, const float* b, const int32_t* boff, size_t ldb, size_t b_row,
                  float* c, size_t ldc, int accumulate) {
  if (n > 32) strided_tile<R, 3>(m, n, rows, cols, a, lda, a_row, b, boff, ldb, b_row, c, ldc, accumulate);
  else if (n > 16) strided_tile<R, 2>(m, n, rows, cols, a, lda, a_row, b, boff, ldb, b_row, c, ldc, accumulate);
  else strided_tile<R, 1>(m, n, rows, cols, a, lda, a_row, b, boff, ldb, b_row, c, ldc, accumulate);
}

}  // namespace

void f32_conv2d_shifted_ukernel_8x48__avx512(size_t m, size_t n, size_t kc, const float* pa,
                                             const float* b, const int32_t* off, float* c,
                                             size_t ldc, int accumulate) {
  if (m > 4) shifted_rows<8>(m, n, kc, pa, b, off, c, ldc, accumulate);
  else shifted_rows<4>(m, n, kc, pa, b, off, c, ldc, accumulate);
}

void f32_conv2d_strided_ukernel_8x48__avx512(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate) {
  if (m > 4) strided_rows<8>(m, n, rows, cols, a, lda, a_row, b, boff, ldb, b_row, c, ldc, accumulate);
  else strided_rows<4>(m, n, rows, cols, a, lda, a_row, b, boff, ldb, b_row, c, ldc, accumulate);
}

}  // namespace eo
