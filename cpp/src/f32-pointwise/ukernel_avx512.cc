#include <immintrin.h>
#include <stddef.h>

#include "f32-pointwise/ukernels.h"

// GCC 12 reports the _mm512_undefined_ps() pass-through operand inside _mm512_min_ps /
// _mm512_max_ps as "may be used uninitialized" once the tile loops are unrolled: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace eo {
namespace {

// R x 16V tile (R = 8 or 4, V = 1..3). At R = 8, V = 3: 24 zmm accumulators + 3 X vectors + 1
// broadcast, 24 FMAs per 3 loads + 8 broadcasts; at V = 1 (4x4 planes: 16 columns) 8 FMAs per
// 9 loads, still ~90% of the FMA ports. The A panel stride stays 8 whatever R is.
template <int R, int V>
void tile(size_t m, size_t n, size_t kc, const float* pa, const float* x, size_t ldx,
          const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo,
          float hi) {
  __mmask16 mask[V];
#pragma GCC unroll 3
  for (int v = 0; v < V; ++v) {
    const size_t left = n - 16 * v;  // n > 16 (V - 1)
    mask[v] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
  }
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (size_t k = 0; k < kc; ++k, pa += 8, x += ldx) {
    __m512 xv[V];
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) xv[v] = _mm512_maskz_loadu_ps(mask[v], x + 16 * v);
#pragma GCC unroll 8
    for (int i = 0; i < R; ++i) {
      const __m512 a = _mm512_set1_ps(pa[i]);
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(a, xv[v], acc[i][v]);
    }
  }
  const __m512 vlo = _mm512_set1_ps(lo), vhi = _mm512_set1_ps(hi);
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    if ((size_t)i >= m) break;
    const __m512 b = _mm512_set1_ps(bias ? bias[i] : 0.f);
    const __m512 s = _mm512_set1_ps(scale ? scale[i] : 1.f);
    float* yi = y + i * ldy;
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) {
      __m512 t = scale ? _mm512_mul_ps(acc[i][v], s) : acc[i][v];
      t = _mm512_add_ps(t, b);
      if (res) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(mask[v], res + i * ldy + 16 * v));
      _mm512_mask_storeu_ps(yi + 16 * v, mask[v], _mm512_min_ps(vhi, _mm512_max_ps(vlo, t)));
    }
  }
}

template <int R>
void rows(size_t m, size_t n, size_t kc, const float* pa, const float* x, size_t ldx,
          const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo,
          float hi) {
  if (n > 32) tile<R, 3>(m, n, kc, pa, x, ldx, scale, bias, res, y, ldy, lo, hi);
  else if (n > 16) tile<R, 2>(m, n, kc, pa, x, ldx, scale, bias, res, y, ldy, lo, hi);
  else tile<R, 1>(m, n, kc, pa, x, ldx, scale, bias, res, y, ldy, lo, hi);
}

}  // namespace

void f32_pointwise_ukernel_8x48__avx512(size_t m, size_t n, size_t kc, const float* pa,
    const float* x, size_t ldx, const float* scale, const float* bias, const float* res, float* y,
    size_t ldy, float lo, float hi) {
  if (m > 4) rows<8>(m, n, kc, pa, x, ldx, scale, bias, res, y, ldy, lo, hi);
  else rows<4>(m, n, kc, pa, x, ldx, scale, bias, res, y, ldy, lo, hi);
}

}  // namespace eo
