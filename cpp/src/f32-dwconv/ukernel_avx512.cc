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

namespace {

// Lanes l < 16 with 0 <= start + l < n.
inline __mmask16 lanes_within(ptrdiff_t start, ptrdiff_t n) {
  const ptrdiff_t a = start < 0 ? -start : 0, b = n - start > 16 ? 16 : n - start;
  if (b <= a) return 0;
  return (__mmask16)(((1u << b) - 1) & ~((1u << a) - 1));
}

}  // namespace

void f32_dwconv_dgrad2__avx512(size_t channels, const float* dy, size_t dy_stride, const float* w,
                               float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p) {
  // out[2i] = even[i], out[2i + 1] = odd[i] (lo: pairs 0..7, hi: pairs 8..15)
  const __m512i ilo = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i ihi = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  const ptrdiff_t H = (ptrdiff_t)p->H, W = (ptrdiff_t)p->W, OH = (ptrdiff_t)p->OH, OW = (ptrdiff_t)p->OW;
  const ptrdiff_t KH = (ptrdiff_t)p->KH, KW = (ptrdiff_t)p->KW, ph = (ptrdiff_t)p->ph, pw = (ptrdiff_t)p->pw;
  const ptrdiff_t pairs = (W + 1) / 2;
  // Kernel columns by the parity b of the output columns they feed (kw ascending in each list);
  // column iw = 2j + b reads dy column j + e[kw].
  ptrdiff_t cols[2][8], e[8];
  size_t ncols[2] = {0, 0};
  for (ptrdiff_t kw = 0; kw < KW && kw < 8; ++kw) {
    const ptrdiff_t b = (kw + pw) % 2;
    e[kw] = (b + pw - kw) / 2;
    cols[b][ncols[b]++] = kw;
  }
  for (ptrdiff_t j0 = 0; j0 < pairs; j0 += 16) {
    __mmask16 m[8];
    for (ptrdiff_t kw = 0; kw < KW; ++kw) m[kw] = lanes_within(j0 + e[kw], OW);
    const ptrdiff_t iw0 = 2 * j0;
    const __mmask16 s0 = lanes_within(0, W - iw0), s1 = lanes_within(0, W - iw0 - 16);
    for (size_t c = 0; c < channels; ++c) {
      const float* d = dy + c * dy_stride + j0;
      const float* wc = w + c * KH * KW;
      float* out = dx + c * dx_stride + iw0;
      for (ptrdiff_t ih = 0; ih < H; ++ih) {
        __m512 acc[2] = {_mm512_setzero_ps(), _mm512_setzero_ps()};
        for (ptrdiff_t kh = (ih + ph) % 2; kh < KH; kh += 2) {
          const ptrdiff_t oh = (ih + ph - kh) / 2;
          if (oh < 0) break;  // kh ascending: oh only falls
          if (oh >= OH) continue;
          const float* row = d + oh * OW;
          const float* wr = wc + kh * KW;
          for (int b = 0; b < 2; ++b)
            for (size_t q = 0; q < ncols[b]; ++q) {
              const ptrdiff_t kw = cols[b][q];
              acc[b] = _mm512_fmadd_ps(_mm512_set1_ps(wr[kw]), _mm512_maskz_loadu_ps(m[kw], row + e[kw]), acc[b]);
            }
        }
        _mm512_mask_storeu_ps(out + ih * W, s0, _mm512_permutex2var_ps(acc[0], ilo, acc[1]));
        if (s1) _mm512_mask_storeu_ps(out + ih * W + 16, s1, _mm512_permutex2var_ps(acc[0], ihi, acc[1]));
      }
    }
  }
}

}  // namespace eo

