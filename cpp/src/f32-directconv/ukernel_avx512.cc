#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-directconv/ukernels.h"

// GCC 12 reports the _mm512_undefined_ps() pass-through operand inside _mm512_min_ps /
// _mm512_max_ps as "may be used uninitialized" once the tile loops are unrolled: a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

namespace eo {
namespace {

// mask[v]: the columns of vector v below n (n > 16 (V - 1)).
template <int V>
inline void column_masks(size_t n, __mmask16 (&mask)[V]) {
#pragma GCC unroll 3
  for (int v = 0; v < V; ++v) {
    const size_t left = n - 16 * v;
    mask[v] = left >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << left) - 1);
  }
}

// acc[i][v] += pa[i] * xv[v]: R broadcasts, R x V FMAs.
template <int R, int V>
inline void fma_tile(__m512 (&acc)[R][V], const float* pa, const __m512 (&xv)[V]) {
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i) {
    const __m512 a = _mm512_set1_ps(pa[i]);
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(a, xv[v], acc[i][v]);
  }
}

// Taps in groups of three with consecutive shifts (the kw of a 3-wide kernel row) whose masks are
// the tile's column masks m0 / all ones / m2 for every vector: those run with the masks in
// registers and a plain load for the middle tap. Reloading a mask from the table for every load
// costs ~18 % of the FMA rate; with this, only the groups of a tile that reach past the top or
// bottom of the image do. Returns the bit set of such groups (0 when the tile is partial).
template <int V>
inline uint64_t register_mask_groups(size_t n, size_t taps, const int32_t* toff,
                                     const uint16_t* tmask, __mmask16 (&m0)[V], __mmask16 (&m2)[V]) {
  const size_t groups = taps % 3 == 0 && taps <= 192 ? taps / 3 : 0;
  if (!groups || n != 16 * V) return 0;
  for (int v = 0; v < V; ++v) {
    uint32_t a = 0, b = 0;
    for (size_t g = 0; g < groups; ++g) {
      a |= tmask[v * taps + 3 * g];
      b |= tmask[v * taps + 3 * g + 2];
    }
    m0[v] = (__mmask16)a;
    m2[v] = (__mmask16)b;
  }
  uint64_t fast = 0;
  for (size_t g = 0; g < groups; ++g) {
    bool ok = toff[3 * g + 1] == toff[3 * g] + 1 && toff[3 * g + 2] == toff[3 * g] + 2;
    for (int v = 0; v < V; ++v)
      ok = ok && tmask[v * taps + 3 * g] == m0[v] && tmask[v * taps + 3 * g + 1] == 0xFFFF &&
           tmask[v * taps + 3 * g + 2] == m2[v];
    if (ok) fast |= uint64_t(1) << g;
  }
  return fast;
}

// R x 16V tile (R = 8 or 4, V = 1..3). At R = 8, V = 3: 24 zmm accumulators + 3 X vectors + 1
// broadcast, 24 FMAs per 3 loads + 8 broadcasts; at V = 1 (4x4 planes: 16 columns) 8 FMAs per
// 9 loads, still ~90% of the FMA ports. The A panel stride stays 8 whatever R is. kTaps: shifts
// and masks from the tap table; otherwise one unshifted tap whose last vector is masked at n.
template <int R, int V, bool kTaps>
void tile(size_t m, size_t n, size_t channels, size_t taps, const float* pa, const float* x,
          size_t ldx, const int32_t* toff, const uint16_t* tmask, const float* scale,
          const float* bias, const float* res, float* y, size_t ldy, float lo, float hi) {
  __m512 acc[R][V];
#pragma GCC unroll 8
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 3
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  __m512 xv[V];
  if (!kTaps) {
    __mmask16 mask[V];
    column_masks<V>(n, mask);
    for (size_t c = 0; c < channels; ++c, x += ldx, pa += 8) {
#pragma GCC unroll 3
      for (int v = 0; v < V; ++v) xv[v] = _mm512_maskz_loadu_ps(mask[v], x + 16 * v);
      fma_tile<R, V>(acc, pa, xv);
    }
  } else {
    // Two passes over the channels, so that each loop keeps its own few registers: the groups
    // with register masks, then every other tap with its masks from the table.
    __mmask16 m0[V], m2[V];
    const uint64_t fast = register_mask_groups<V>(n, taps, toff, tmask, m0, m2);
    const size_t groups = taps / 3;
    if (fast) {
      const float* xc = x;
      const float* pc = pa;
      for (size_t c = 0; c < channels; ++c, xc += ldx, pc += 8 * taps)
        for (size_t g = 0; g < groups; ++g) {
          if (!((fast >> g) & 1)) continue;
          const float* xt = xc + toff[3 * g];
          const float* pt = pc + 24 * g;
#pragma GCC unroll 3
          for (int kw = 0; kw < 3; ++kw, pt += 8) {
#pragma GCC unroll 3
            for (int v = 0; v < V; ++v)
              xv[v] = kw == 1 ? _mm512_loadu_ps(xt + 1 + 16 * v)
                              : _mm512_maskz_loadu_ps(kw == 0 ? m0[v] : m2[v], xt + kw + 16 * v);
            fma_tile<R, V>(acc, pt, xv);
          }
        }
    }
    const uint64_t all = groups >= 64 ? ~uint64_t(0) : (uint64_t(1) << groups) - 1;
    if (!fast || fast != all || taps % 3) {
      for (size_t c = 0; c < channels; ++c, x += ldx, pa += 8 * taps)
        for (size_t t = 0; t < taps; ++t) {
          if (t / 3 < groups && ((fast >> (t / 3)) & 1)) continue;
#pragma GCC unroll 3
          for (int v = 0; v < V; ++v) xv[v] = _mm512_maskz_loadu_ps(tmask[v * taps + t], x + toff[t] + 16 * v);
          fma_tile<R, V>(acc, pa + 8 * t, xv);
        }
    }
  }
  // The masks are computed here, not kept in registers through the loops above (too few k regs).
  __mmask16 mask[V];
  column_masks<V>(n, mask);
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

template <int R, bool kTaps>
void rows(size_t m, size_t n, size_t channels, size_t taps, const float* pa, const float* x,
          size_t ldx, const int32_t* toff, const uint16_t* tmask, const float* scale,
          const float* bias, const float* res, float* y, size_t ldy, float lo, float hi) {
  if (n > 32) tile<R, 3, kTaps>(m, n, channels, taps, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
  else if (n > 16) tile<R, 2, kTaps>(m, n, channels, taps, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
  else tile<R, 1, kTaps>(m, n, channels, taps, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
}

}  // namespace

void f32_directconv_ukernel_8x48__avx512(size_t m, size_t n, size_t channels, size_t taps,
    const float* pa, const float* x, size_t ldx, const int32_t* toff, const uint16_t* tmask,
    const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo, float hi) {
  if (toff) {
    if (m > 4) rows<8, true>(m, n, channels, taps, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
    else rows<4, true>(m, n, channels, taps, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
  } else {
    if (m > 4) rows<8, false>(m, n, channels, 1, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
    else rows<4, false>(m, n, channels, 1, pa, x, ldx, toff, tmask, scale, bias, res, y, ldy, lo, hi);
  }
}

}  // namespace eo
