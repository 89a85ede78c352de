// AVX-512 f32 SpMM: tiles of 16*V pixels (V zmm per output channel), masked loads/stores for the
// pixel tail. Accumulator chains: 1-row blocks use V = 4 and two accumulator sets (even / odd
// nonzeros) = 8 chains; 4-row blocks V = 2 (8 chains); 8-row blocks V = 2 (16 chains, 19 zmm live).
// Per nonzero weight: one broadcast (folded into the FMA as {1to16}), V loads of x, V FMAs.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-spmm/ukernels.h"

namespace eo {
namespace {

template <int BR, int BC, int V>
inline void tile(const __mmask16* mask, size_t nbr, size_t cout, const float* x, size_t xs,
                 const float* w, const int32_t* col, const int32_t* rp, const float* bias,
                 float* y, size_t ys, __m512 vmin, __m512 vmax) {
  constexpr int S = BR == 1 ? 2 : 1;
  for (size_t r = 0; r < nbr; ++r) {
    __m512 acc[S][BR][V];
#pragma GCC unroll 8
    for (int i = 0; i < BR; ++i) {
      const __m512 b = _mm512_set1_ps(bias[r * BR + i]);
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        acc[0][i][v] = b;
        if (S == 2) acc[S - 1][i][v] = _mm512_setzero_ps();
      }
    }
    int32_t b = rp[r];
    const int32_t bend = rp[r + 1];
    if (S == 2 && BC == 1) {
      for (; b + 2 <= bend; b += 2) {
        const float* x0 = x + (size_t)col[b] * xs;
        const float* x1 = x + (size_t)col[b + 1] * xs;
        const __m512 w0 = _mm512_set1_ps(w[b]), w1 = _mm512_set1_ps(w[b + 1]);
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) {
          acc[0][0][v] = _mm512_fmadd_ps(w0, _mm512_maskz_loadu_ps(mask[v], x0 + 16 * v), acc[0][0][v]);
          acc[S - 1][0][v] =
              _mm512_fmadd_ps(w1, _mm512_maskz_loadu_ps(mask[v], x1 + 16 * v), acc[S - 1][0][v]);
        }
      }
    }
    for (; b < bend; ++b) {
      const float* xb = x + (size_t)col[b] * xs;
      const float* wb = w + (size_t)b * (BR * BC);
#pragma GCC unroll 4
      for (int c = 0; c < BC; ++c) {
        __m512 xv[V];
#pragma GCC unroll 4
        for (int v = 0; v < V; ++v) xv[v] = _mm512_maskz_loadu_ps(mask[v], xb + c * xs + 16 * v);
#pragma GCC unroll 8
        for (int i = 0; i < BR; ++i) {
          const __m512 wv = _mm512_set1_ps(wb[c * BR + i]);
#pragma GCC unroll 4
          for (int v = 0; v < V; ++v) acc[c % S][i][v] = _mm512_fmadd_ps(wv, xv[v], acc[c % S][i][v]);
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
        __m512 a = acc[0][i][v];
        if (S == 2) a = _mm512_add_ps(a, acc[S - 1][i][v]);
        a = _mm512_min_ps(_mm512_max_ps(a, vmin), vmax);
        _mm512_mask_storeu_ps(yi + 16 * v, mask[v], a);
      }
    }
  }
}

template <int BR, int BC, int V>
void spmm(size_t mc, size_t nbr, size_t cout, const float* x, size_t xs, const float* w,
          const int32_t* col, const int32_t* rp, const float* bias, float* y, size_t ys,
          const struct f32_spmm_params* p) {
  const __m512 vmin = _mm512_set1_ps(p->min), vmax = _mm512_set1_ps(p->max);
  __mmask16 mask[V];
  for (int v = 0; v < V; ++v) mask[v] = 0xFFFF;
  size_t p0 = 0;
  for (; p0 + 16 * V <= mc; p0 += 16 * V)
    tile<BR, BC, V>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  if (p0 == mc) return;
  const size_t rest = mc - p0;  // 1 .. 16V - 1 pixels: ceil(rest / 16) vectors, the last one masked
  for (int v = 0; v < V; ++v) {
    const size_t n = rest > 16 * (size_t)v ? rest - 16 * v : 0;
    mask[v] = n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1);
  }
  const size_t nv = (rest + 15) / 16;
  if (nv == 1) tile<BR, BC, 1>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  else if (V >= 2 && nv == 2) tile<BR, BC, (V >= 2 ? 2 : 1)>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
  else tile<BR, BC, V>(mask, nbr, cout, x + p0, xs, w, col, rp, bias, y + p0, ys, vmin, vmax);
}

}  // namespace

void f32_spmm_ukernel_64x1x1__avx512(size_t mc, size_t nbr, size_t cout, const float* x,
                                     size_t x_stride, const float* w, const int32_t* col,
                                     const int32_t* row_ptr, const float* bias, float* y,
                                     size_t y_stride, const struct f32_spmm_params* p) {
  spmm<1, 1, 4>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_32x4x1__avx512(size_t mc, size_t nbr, size_t cout, const float* x,
                                     size_t x_stride, const float* w, const int32_t* col,
                                     const int32_t* row_ptr, const float* bias, float* y,
                                     size_t y_stride, const struct f32_spmm_params* p) {
  spmm<4, 1, 2>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_32x8x1__avx512(size_t mc, size_t nbr, size_t cout, const float* x,
                                     size_t x_stride, const float* w, const int32_t* col,
                                     const int32_t* row_ptr, const float* bias, float* y,
                                     size_t y_stride, const struct f32_spmm_params* p) {
  spmm<8, 1, 2>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}

}  // namespace eo
