// AVX-512 depthwise micro-kernel (ukernels.h): 16 outputs per zmm, two output vectors in flight
// (two independent FMA chains; out-of-order execution overlaps the next pair and channel).
//
// Per tap and vector: one mask (kmovw from the table), one zero-masked load, one FMA. With 3x3
// and 5x5 the tap count is a compile-time constant, so the broadcast weights stay in registers
// for the whole channel and the tap loop is unrolled; other kernel sizes take the generic loop.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-dwconv/ukernels.h"

// GCC 12 flags the _mm512_undefined_ps() pass-through inside _mm512_min_ps / _mm512_max_ps once
// they are inlined here (a known false positive of -Wmaybe-uninitialized).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"  // the same inside _mm512_reduce_add_ps

namespace eo {
namespace {

inline __m512 act16(__m512 v, int act, __m512 lo, __m512 hi) {
  if (act == F32_DWCONV_HARDSWISH) {
    const __m512 t = _mm512_max_ps(_mm512_setzero_ps(), _mm512_add_ps(v, _mm512_set1_ps(3.f)));
    return _mm512_mul_ps(_mm512_mul_ps(v, _mm512_min_ps(_mm512_set1_ps(6.f), t)),
                         _mm512_set1_ps(1.f / 6.f));
  }
  return _mm512_min_ps(hi, _mm512_max_ps(lo, v));  // operand order: NaN passes through
}

// T taps (0: p->ntaps at run time).
template <int T>
void channels_t(size_t channels, const float* src, size_t src_stride, const float* w,
                const float* bias, float* y, size_t y_stride, const struct f32_dwconv_params* p) {
  const size_t nt = T ? (size_t)T : p->ntaps, P = p->npix, nv = (P + 15) / 16;
  const __mmask16 tail = (P % 16) ? (__mmask16)((1u << (P % 16)) - 1) : (__mmask16)0xFFFF;
  const __m512 lo = _mm512_set1_ps(p->lo), hi = _mm512_set1_ps(p->hi);
  const ptrdiff_t* off = p->off;
  const int act = p->act;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* wc = w + c * nt;
    float* yc = y + c * y_stride;
    const __m512 b = _mm512_set1_ps(bias ? bias[c] : 0.f);
    __m512 wv[T ? T : 1];
    if (T) {
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) wv[t] = _mm512_set1_ps(wc[t]);
    }
    size_t v = 0;
    for (; v + 2 <= nv; v += 2) {
      const uint16_t* m0 = p->mask + v * nt;
      const uint16_t* m1 = m0 + nt;
      const float* sv = s + 16 * v;
      __m512 a0 = _mm512_setzero_ps(), a1 = _mm512_setzero_ps();
#pragma GCC unroll 32
      for (size_t t = 0; t < nt; ++t) {
        const __m512 wt = T ? wv[t] : _mm512_set1_ps(wc[t]);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0[t], sv + off[t]), wt, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1[t], sv + off[t] + 16), wt, a1);
      }
      _mm512_storeu_ps(yc + 16 * v, act16(_mm512_add_ps(a0, b), act, lo, hi));
      _mm512_mask_storeu_ps(yc + 16 * v + 16, v + 2 == nv ? tail : (__mmask16)0xFFFF,
                            act16(_mm512_add_ps(a1, b), act, lo, hi));
    }
    if (v < nv) {
      const uint16_t* m0 = p->mask + v * nt;
      const float* sv = s + 16 * v;
      __m512 a0 = _mm512_setzero_ps();
#pragma GCC unroll 32
      for (size_t t = 0; t < nt; ++t) {
        const __m512 wt = T ? wv[t] : _mm512_set1_ps(wc[t]);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0[t], sv + off[t]), wt, a0);
      }
      _mm512_mask_storeu_ps(yc + 16 * v, tail, act16(_mm512_add_ps(a0, b), act, lo, hi));
    }
  }
}

}  // namespace

void f32_dwconv_ukernel__avx512(size_t channels, const float* src, size_t src_stride,
                                const float* w, const float* bias, float* y, size_t y_stride,
                                const struct f32_dwconv_params* p) {
  if (p->ntaps == 9) channels_t<9>(channels, src, src_stride, w, bias, y, y_stride, p);
  else if (p->ntaps == 25) channels_t<25>(channels, src, src_stride, w, bias, y, y_stride, p);
  else channels_t<0>(channels, src, src_stride, w, bias, y, y_stride, p);
}

namespace {

// Weight gradient of taps [t0, t0 + TB): one accumulator per tap, dy loaded once per vector.
template <int TB>
void wgrad_taps(size_t t0, const float* s, const float* d, const struct f32_dwconv_params* p,
                float* lanes) {
  const size_t nt = p->ntaps, P = p->npix, nv = (P + 15) / 16;
  const __mmask16 tail = (P % 16) ? (__mmask16)((1u << (P % 16)) - 1) : (__mmask16)0xFFFF;
  ptrdiff_t off[TB];
  for (int i = 0; i < TB; ++i) off[i] = p->off[t0 + i];
  __m512 acc[TB];
#pragma GCC unroll 16
  for (int i = 0; i < TB; ++i) acc[i] = _mm512_loadu_ps(lanes + (t0 + i) * 16);
  for (size_t v = 0; v < nv; ++v) {
    const __m512 dv = _mm512_maskz_loadu_ps(v + 1 == nv ? tail : (__mmask16)0xFFFF, d + 16 * v);
    const uint16_t* m = p->mask + v * nt + t0;
    const float* sv = s + 16 * v;
#pragma GCC unroll 16
    for (int i = 0; i < TB; ++i) acc[i] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[i], sv + off[i]), dv, acc[i]);
  }
#pragma GCC unroll 16
  for (int i = 0; i < TB; ++i) _mm512_storeu_ps(lanes + (t0 + i) * 16, acc[i]);
}

}  // namespace

// Taps in blocks of up to 9 (3x3: one block; 5x5: 9 + 9 + 7): the block's accumulators and the
// dy vector stay in registers, and dy is read once per block.
void f32_dwconv_wgrad__avx512(size_t channels, const float* src, size_t src_stride, const float* dy,
                              size_t dy_stride, float* lanes, const struct f32_dwconv_params* p) {
  const size_t nt = p->ntaps;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* d = dy + c * dy_stride;
    float* dwc = lanes + c * nt * 16;
    for (size_t t0 = 0; t0 < nt; t0 += 9) {
      switch (nt - t0 < 9 ? nt - t0 : 9) {
        case 9: wgrad_taps<9>(t0, s, d, p, dwc); break;
        case 8: wgrad_taps<8>(t0, s, d, p, dwc); break;
        case 7: wgrad_taps<7>(t0, s, d, p, dwc); break;
        case 6: wgrad_taps<6>(t0, s, d, p, dwc); break;
        case 5: wgrad_taps<5>(t0, s, d, p, dwc); break;
        case 4: wgrad_taps<4>(t0, s, d, p, dwc); break;
        case 3: wgrad_taps<3>(t0, s, d, p, dwc); break;
        case 2: wgrad_taps<2>(t0, s, d, p, dwc); break;
        default: wgrad_taps<1>(t0, s, d, p, dwc); break;
      }
    }
  }
}

static inline __mmask16 lanes(size_t n) { return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << n) - 1); }

// 32 input floats per step: two (masked) loads, one permute per phase, two masked stores. Narrow
// rows one residue apart (x_stride = 2w, 2w dividing 32, w = 2 * pitch: the quarter planes of
// 4x4..16x16 inputs) are taken 32 / (2w) rows per step, so no lanes are wasted on short rows.
void f32_dwconv_split2__avx512(size_t rows, size_t w, const float* x, size_t x_stride, float* even,
                               float* odd, size_t pitch) {
  const __m512i ie = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i io = _mm512_add_epi32(ie, _mm512_set1_epi32(1));
  if (x_stride == 2 * w && w == 2 * pitch && w >= 2 && 32 % (2 * w) == 0) {
    const size_t rpc = 32 / (2 * w), half = w / 2;
    int32_t idx[16] = {0};
    for (size_t m = 0; m < 8; ++m) idx[m] = (int32_t)((m / half) * 2 * w + 2 * (m % half));
    const __m512i je = _mm512_loadu_si512(idx), jo = _mm512_add_epi32(je, _mm512_set1_epi32(1));
    for (size_t i = 0; i < rows; i += rpc, x += 32, even += 8, odd += 8) {
      const size_t nr = rows - i < rpc ? rows - i : rpc, span = (nr - 1) * 2 * w + w;
      const __m512 a = _mm512_maskz_loadu_ps(lanes(span), x);
      const __m512 b = _mm512_maskz_loadu_ps(span > 16 ? lanes(span - 16) : 0, x + 16);
      _mm512_mask_storeu_ps(even, lanes(nr * half), _mm512_permutex2var_ps(a, je, b));
      _mm512_mask_storeu_ps(odd, lanes(nr * half), _mm512_permutex2var_ps(a, jo, b));
    }
    return;
  }
  const size_t ne = (w + 1) / 2 < pitch ? (w + 1) / 2 : pitch, no = w / 2 < pitch ? w / 2 : pitch;
  const size_t nin = 2 * ne - 1 > 2 * no ? 2 * ne - 1 : 2 * no;  // floats read per row
  for (size_t i = 0; i < rows; ++i, x += x_stride, even += pitch, odd += pitch) {
    for (size_t k = 0; k < nin; k += 32) {
      const size_t left = nin - k;
      const __m512 a = _mm512_maskz_loadu_ps(lanes(left), x + k);
      const __m512 b = _mm512_maskz_loadu_ps(left > 16 ? lanes(left - 16) : 0, x + k + 16);
      const size_t le = ne - k / 2, lo = no > k / 2 ? no - k / 2 : 0;
      _mm512_mask_storeu_ps(even + k / 2, lanes(le), _mm512_permutex2var_ps(a, ie, b));
      _mm512_mask_storeu_ps(odd + k / 2, lanes(lo), _mm512_permutex2var_ps(a, io, b));
    }
  }
}

}  // namespace eo
