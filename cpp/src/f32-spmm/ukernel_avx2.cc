// AVX2 f32 SpMM: tiles of 8*V pixels (V ymm per output channel), vmaskmov for the pixel tail.
// 16 ymm registers: 1-row blocks V = 4 with two accumulator sets (8 chains + 4 x + 1 weight),
// 4-row blocks V = 2 (8 chains), 8-row blocks V = 1 (8 chains).
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-spmm/ukernels.h"

namespace eo {
namespace {

template <int BR, int BC, int V>
inline void tile(const __m256i* mask, size_t nbr, size_t cout, const float* x, size_t xs,
                 const float* w, const int32_t* col, const int32_t* rp, const float* bias,
                 float* y, size_t ys, __m256 vmin, __m256 vmax) {
  constexpr int S = BR == 1 ? 2 : 1;
  for (size_t r = 0; r < nbr; ++r) {
    __m256 acc[S][BR][V];
#pragma GCC unroll 8
    for (int i = 0; i < BR; ++i) {
      const __m256 b = _mm256_set1_ps(bias[r * BR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[0][i][v] = b;
        if (S == 2) acc[S - 1][i][v] = _mm256_setzero_ps();
      }
    }
    int32_t b = rp[r];
    const int32_t bend = rp[r + 1];
    if (S == 2 && BC == 1) {
      for (; b + 2 <= bend; b += 2) {
        const float* x0 = x + (size_t)col[b] * xs;
        const float* x1 = x + (size_t)col[b + 1] * xs;
        const __m256 w0 = _mm256_broadcast_ss(w + b), w1 = _mm256_broadcast_ss(w + b + 1);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) {
          acc[0][0][v] = _mm256_fmadd_ps(w0, _mm256_maskload_ps(x0 + 8 * v, mask[v]), acc[0][0][v]);
          acc[S - 1][0][v] =
              _mm256_fmadd_ps(w1, _mm256_maskload_ps(x1 + 8 * v, mask[v]), acc[S - 1][0][v]);
        }
      }
    }
    for (; b < bend; ++b) {
      const float* xb = x + (size_t)col[b] * xs;
      const float* wb = w + (size_t)b * (BR * BC);
#pragma GCC unroll 4
      for (int c = 0; c < BC; ++c) {
        __m256 xv[V];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) xv[v] = _mm256_maskload_ps(xb + c * xs + 8 * v, mask[v]);
#pragma GCC unroll 8
        for (int i = 0; i < BR; ++i) {
          const __m256 wv = _mm256_broadcast_ss(wb + c * BR + i);
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) acc[c % S][i][v] = _mm256_fmadd_ps(wv, xv[v], acc[c % S][i][v]);
        }
      }
    }
    const size_t rows = cout - r * BR < (size_t)BR ? cout - r * BR : (size_t)BR;
#pragma GCC unroll 8
    for (int i = 0; i < BR; ++i) {
      if ((size_t)i >= rows) break;
      float* yi = y + (r * BR + i) * ys;
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        __m256 a = acc[0][i][v];
        if (S == 2) a = _mm256_add_ps(a, acc[S - 1][i][v]);
        a = _mm256_min_ps(_mm256_max_ps(a, vmin), vmax);
        _mm256_maskstore_ps(yi + 8 * v, mask[v], a);
      }
    }
  }
}

template <int BR, int BC, int V>
void spmm(size_t mc, size_t nbr, size_t cout, const float* x, size_t xs, const float* w,
          const int32_t* col, const int32_t* rp, const float* bias, float* y, size_t ys,
          const struct f32_spmm_params* p) {
  const __m256 vmin = _mm256_set1_ps(p->min), vmax = _mm256_set1_ps(p->max);
  __m256i mask[V];
  for (int v = 0; v < V; ++v) mask[v] = _mm256_set1_epi32(-1);
  size_t p0 = 0;
  for (; p0 + 8 * V <= mc; p0 += 8 * V)
    tile<BR, BC, V>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  if (p0 == mc) return;
  const size_t rest = mc - p0;  // 1 .. 8V - 1 pixels
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (int v = 0; v < V; ++v) {
    const int n = rest > 8 * (size_t)v ? (int)(rest - 8 * v) : 0;
    mask[v] = _mm256_cmpgt_epi32(_mm256_set1_epi32(n), lane);
  }
  const size_t nv = (rest + 7) / 8;
  if (nv == 1) tile<BR, BC, 1>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  else if (V >= 2 && nv == 2) tile<BR, BC, (V >= 2 ? 2 : 1)>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  else tile<BR, BC, V>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
}

}  // namespace

void f32_spmm_ukernel_32x1x1__avx2(size_t mc, size_t nbr, size_t cout, const float* x,
                                   size_t x_stride, const float* w, const int32_t* col,
                                   const int32_t* row_ptr, const float* bias, float* y,
                                   size_t y_stride, const struct f32_spmm_params* p) {
  spmm<1, 1, 4>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_16x4x1__avx2(size_t mc, size_t nbr, size_t cout, const float* x,
                                   size_t x_stride, const float* w, const int32_t* col,
                                   const int32_t* row_ptr, const float* bias, float* y,
                                   size_t y_stride, const struct f32_spmm_params* p) {
  spmm<4, 1, 2>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_8x8x1__avx2(size_t mc, size_t nbr, size_t cout, const float* x,
                                  size_t x_stride, const float* w, const int32_t* col,
                                  const int32_t* row_ptr, const float* bias, float* y,
                                  size_t y_stride, const struct f32_spmm_params* p) {
  spmm<8, 1, 1>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}

}  // namespace eo
