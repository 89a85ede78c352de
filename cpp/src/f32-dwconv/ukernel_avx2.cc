// AVX2 depthwise micro-kernel (ukernels.h): each 16-lane block as two ymm halves; the 16-bit lane
// masks become vector masks for vmaskmovps (which, like AVX-512 masking, never touches memory of
// a cleared lane). Otherwise the AVX-512 kernel's structure: weights in registers for 3x3 / 5x5.
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "f32-dwconv/ukernels.h"

namespace eo {
namespace {

inline __m256i vmask(unsigned m) {  // lane i all-ones iff bit i of m (8 lanes)
  const __m256i bits = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
  return _mm256_cmpeq_epi32(_mm256_and_si256(_mm256_set1_epi32((int)m), bits), bits);
}

inline __m256 act8(__m256 v, int act, __m256 lo, __m256 hi) {
  if (act == F32_DWCONV_HARDSWISH) {
    const __m256 t = _mm256_max_ps(_mm256_setzero_ps(), _mm256_add_ps(v, _mm256_set1_ps(3.f)));
    return _mm256_mul_ps(_mm256_mul_ps(v, _mm256_min_ps(_mm256_set1_ps(6.f), t)),
                         _mm256_set1_ps(1.f / 6.f));
  }
  return _mm256_min_ps(hi, _mm256_max_ps(lo, v));  // operand order: NaN passes through
}

template <int T>
void channels_t(size_t channels, const float* src, size_t src_stride, const float* w,
                const float* bias, float* y, size_t y_stride, const struct f32_dwconv_params* p) {
  const size_t nt = T ? (size_t)T : p->ntaps, P = p->npix, nv = (P + 15) / 16;
  const __m256 lo = _mm256_set1_ps(p->lo), hi = _mm256_set1_ps(p->hi);
  const ptrdiff_t* off = p->off;
  const int act = p->act;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* wc = w + c * nt;
    float* yc = y + c * y_stride;
    const __m256 b = _mm256_set1_ps(bias ? bias[c] : 0.f);
    __m256 wv[T ? T : 1];
    if (T) {
#pragma GCC unroll 32
      for (int t = 0; t < T; ++t) wv[t] = _mm256_set1_ps(wc[t]);
    }
    for (size_t v = 0; v < nv; ++v) {
      const uint16_t* m = p->mask + v * nt;
      const float* sv = s + 16 * v;
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
#pragma GCC unroll 32
      for (size_t t = 0; t < nt; ++t) {
        const __m256 wt = T ? wv[t] : _mm256_set1_ps(wc[t]);
        a0 = _mm256_fmadd_ps(_mm256_maskload_ps(sv + off[t], vmask(m[t] & 0xFF)), wt, a0);
        a1 = _mm256_fmadd_ps(_mm256_maskload_ps(sv + off[t] + 8, vmask(m[t] >> 8)), wt, a1);
      }
      a0 = act8(_mm256_add_ps(a0, b), act, lo, hi);
      a1 = act8(_mm256_add_ps(a1, b), act, lo, hi);
      const size_t n = P - 16 * v;
      if (n >= 16) {
        _mm256_storeu_ps(yc + 16 * v, a0);
        _mm256_storeu_ps(yc + 16 * v + 8, a1);
      } else {
        const unsigned tail = (1u << n) - 1;
        _mm256_maskstore_ps(yc + 16 * v, vmask(tail & 0xFF), a0);
        _mm256_maskstore_ps(yc + 16 * v + 8, vmask(tail >> 8), a1);
      }
    }
  }
}

// Weight gradient of taps [t0, t0 + TB), as the AVX-512 kernel with two ymm halves per vector.
template <int TB>
void wgrad_taps(size_t t0, const float* s, const float* d, const struct f32_dwconv_params* p,
                float* lanes) {
  const size_t nt = p->ntaps, P = p->npix, nv = (P + 15) / 16;
  ptrdiff_t off[TB];
  for (int i = 0; i < TB; ++i) off[i] = p->off[t0 + i];
  __m256 a0[TB], a1[TB];
#pragma GCC unroll 16
  for (int i = 0; i < TB; ++i) {
    a0[i] = _mm256_loadu_ps(lanes + (t0 + i) * 16);
    a1[i] = _mm256_loadu_ps(lanes + (t0 + i) * 16 + 8);
  }
  for (size_t v = 0; v < nv; ++v) {
    const size_t n = P - 16 * v;
    const unsigned live = n >= 16 ? 0xFFFFu : (1u << n) - 1;
    const __m256 d0 = _mm256_maskload_ps(d + 16 * v, vmask(live & 0xFF));
    const __m256 d1 = _mm256_maskload_ps(d + 16 * v + 8, vmask(live >> 8));
    const uint16_t* m = p->mask + v * nt + t0;
    const float* sv = s + 16 * v;
#pragma GCC unroll 16
    for (int i = 0; i < TB; ++i) {
      a0[i] = _mm256_fmadd_ps(_mm256_maskload_ps(sv + off[i], vmask(m[i] & 0xFF)), d0, a0[i]);
      a1[i] = _mm256_fmadd_ps(_mm256_maskload_ps(sv + off[i] + 8, vmask(m[i] >> 8)), d1, a1[i]);
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < TB; ++i) {
    _mm256_storeu_ps(lanes + (t0 + i) * 16, a0[i]);
    _mm256_storeu_ps(lanes + (t0 + i) * 16 + 8, a1[i]);
  }
}

}  // namespace

// Taps in blocks of up to 6: 2 x 6 accumulators and the two dy halves fit the 16 ymm registers.
void f32_dwconv_wgrad__avx2(size_t channels, const float* src, size_t src_stride, const float* dy,
                            size_t dy_stride, float* lanes, const struct f32_dwconv_params* p) {
  const size_t nt = p->ntaps;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* d = dy + c * dy_stride;
    float* dwc = lanes + c * nt * 16;
    for (size_t t0 = 0; t0 < nt; t0 += 6) {
      switch (nt - t0 < 6 ? nt - t0 : 6) {
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

void f32_dwconv_ukernel__avx2(size_t channels, const float* src, size_t src_stride,
                              const float* w, const float* bias, float* y, size_t y_stride,
                              const struct f32_dwconv_params* p) {
  if (p->ntaps == 9) channels_t<9>(channels, src, src_stride, w, bias, y, y_stride, p);
  else if (p->ntaps == 25) channels_t<25>(channels, src, src_stride, w, bias, y, y_stride, p);
  else channels_t<0>(channels, src, src_stride, w, bias, y, y_stride, p);
}

// As the AVX-512 kernel, 8 pairs of output columns per step.
void f32_dwconv_dgrad2__avx2(size_t channels, const float* dy, size_t dy_stride, const float* w,
                             float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p) {
  const ptrdiff_t H = (ptrdiff_t)p->H, W = (ptrdiff_t)p->W, OH = (ptrdiff_t)p->OH, OW = (ptrdiff_t)p->OW;
  const ptrdiff_t KH = (ptrdiff_t)p->KH, KW = (ptrdiff_t)p->KW, ph = (ptrdiff_t)p->ph, pw = (ptrdiff_t)p->pw;
  const ptrdiff_t pairs = (W + 1) / 2;
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  auto within = [&](ptrdiff_t start, ptrdiff_t n) {  // lanes l with 0 <= start + l < n
    const __m256i i = _mm256_add_epi32(lane, _mm256_set1_epi32((int)start));
    return _mm256_andnot_si256(_mm256_cmpgt_epi32(_mm256_setzero_si256(), i),
                               _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), i));
  };
  ptrdiff_t cols[2][8], e[8];
  size_t ncols[2] = {0, 0};
  for (ptrdiff_t kw = 0; kw < KW && kw < 8; ++kw) {
    const ptrdiff_t b = (kw + pw) % 2;
    e[kw] = (b + pw - kw) / 2;
    cols[b][ncols[b]++] = kw;
  }
  for (ptrdiff_t j0 = 0; j0 < pairs; j0 += 8) {
    __m256i m[8];
    for (ptrdiff_t kw = 0; kw < KW; ++kw) m[kw] = within(j0 + e[kw], OW);
    const ptrdiff_t iw0 = 2 * j0;
    const __m256i s0 = within(0, W - iw0), s1 = within(0, W - iw0 - 8);
    for (size_t c = 0; c < channels; ++c) {
      const float* d = dy + c * dy_stride + j0;
      const float* wc = w + c * KH * KW;
      float* out = dx + c * dx_stride + iw0;
      for (ptrdiff_t ih = 0; ih < H; ++ih) {
        __m256 acc[2] = {_mm256_setzero_ps(), _mm256_setzero_ps()};
        for (ptrdiff_t kh = (ih + ph) % 2; kh < KH; kh += 2) {
          const ptrdiff_t oh = (ih + ph - kh) / 2;
          if (oh < 0) break;
          if (oh >= OH) continue;
          const float* row = d + oh * OW;
          const float* wr = wc + kh * KW;
          for (int b = 0; b < 2; ++b)
            for (size_t q = 0; q < ncols[b]; ++q) {
              const ptrdiff_t kw = cols[b][q];
              acc[b] = _mm256_fmadd_ps(_mm256_set1_ps(wr[kw]), _mm256_maskload_ps(row + e[kw], m[kw]), acc[b]);
            }
        }
        const __m256 lo = _mm256_unpacklo_ps(acc[0], acc[1]), hi = _mm256_unpackhi_ps(acc[0], acc[1]);
        _mm256_maskstore_ps(out + ih * W, s0, _mm256_permute2f128_ps(lo, hi, 0x20));
        if (W - iw0 > 8) _mm256_maskstore_ps(out + ih * W + 8, s1, _mm256_permute2f128_ps(lo, hi, 0x31));
      }
    }
  }
}

}  // namespace eo

