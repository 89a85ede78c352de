// Scalar depthwise micro-kernel (ukernels.h): the same 16-lane blocks and masks as the SIMD
// kernel; taps accumulate in t order, then bias, then the activation. Full-mask taps (most of a
// large plane) take a branch-free loop the compiler vectorizes with the baseline ISA.
#include "f32-dwconv/ukernels.h"

namespace eo {

void f32_dwconv_ukernel__scalar(size_t channels, const float* src, size_t src_stride,
                                const float* w, const float* bias, float* y, size_t y_stride,
                                const struct f32_dwconv_params* p) {
  const size_t nt = p->ntaps, P = p->npix;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* wc = w + c * nt;
    const float b = bias ? bias[c] : 0.f;
    float* yc = y + c * y_stride;
    for (size_t v = 0; v * 16 < P; ++v) {
      float acc[16] = {0.f};
      const uint16_t* m = p->mask + v * nt;
      for (size_t t = 0; t < nt; ++t) {
        const float* st = s + p->off[t] + 16 * v;
        if (m[t] == 0xFFFF) {  // interior: a plain loop the compiler vectorizes
          for (int i = 0; i < 16; ++i) acc[i] += wc[t] * st[i];
        } else {
          for (int i = 0; i < 16; ++i)
            if (m[t] >> i & 1) acc[i] += wc[t] * st[i];
        }
      }
      const size_t n = P - 16 * v < 16 ? P - 16 * v : 16;
      for (size_t i = 0; i < n; ++i) {
        const float u = acc[i] + b;
        float r;
        if (p->act == F32_DWCONV_HARDSWISH) {
          const float t = u + 3.f;
          const float lo = t < 0.f ? 0.f : t;
          r = u * (lo > 6.f ? 6.f : lo) * (1.f / 6.f);
        } else {
          const float lo = u < p->lo ? p->lo : u;
          r = lo > p->hi ? p->hi : lo;
        }
        yc[16 * v + i] = r;
      }
    }
  }
}

void f32_dwconv_wgrad__scalar(size_t channels, const float* src, size_t src_stride, const float* dy,
                              size_t dy_stride, float* lanes, const struct f32_dwconv_params* p) {
  const size_t nt = p->ntaps, P = p->npix;
  for (size_t c = 0; c < channels; ++c) {
    const float* s = src + c * src_stride;
    const float* d = dy + c * dy_stride;
    for (size_t t = 0; t < nt; ++t) {
      float* lane = lanes + (c * nt + t) * 16;
      for (size_t v = 0; v * 16 < P; ++v) {
        const uint16_t m = p->mask[v * nt + t];
        const float* st = s + p->off[t] + 16 * v;
        const float* dv = d + 16 * v;
        if (m == 0xFFFF) {
          for (int i = 0; i < 16; ++i) lane[i] += dv[i] * st[i];
        } else {
          for (int i = 0; i < 16; ++i)
            if (m >> i & 1) lane[i] += dv[i] * st[i];
        }
      }
    }
  }
}

void f32_dwconv_dgrad2__scalar(size_t channels, const float* dy, size_t dy_stride, const float* w,
                               float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p) {
  const ptrdiff_t OH = (ptrdiff_t)p->OH, OW = (ptrdiff_t)p->OW, KW = (ptrdiff_t)p->KW;
  for (size_t c = 0; c < channels; ++c) {
    const float* d = dy + c * dy_stride;
    const float* wc = w + c * p->KH * p->KW;
    float* out = dx + c * dx_stride;
    for (size_t ih = 0; ih < p->H; ++ih)
      for (size_t iw = 0; iw < p->W; ++iw) {
        float acc = 0.f;
        for (ptrdiff_t kh = 0; kh < (ptrdiff_t)p->KH; ++kh) {
          const ptrdiff_t t = (ptrdiff_t)(ih + p->ph) - kh;
          if (t < 0 || t % 2 != 0 || t / 2 >= OH) continue;
          for (ptrdiff_t kw = 0; kw < KW; ++kw) {
            const ptrdiff_t u = (ptrdiff_t)(iw + p->pw) - kw;
            if (u < 0 || u % 2 != 0 || u / 2 >= OW) continue;
            acc += wc[kh * KW + kw] * d[(t / 2) * OW + u / 2];
          }
        }
        out[ih * p->W + iw] = acc;
      }
  }
}

void f32_dwconv_split2__scalar(size_t rows, size_t w, const float* x, size_t x_stride, float* even,
                               float* odd, size_t pitch) {
  const size_t ne = (w + 1) / 2 < pitch ? (w + 1) / 2 : pitch, no = w / 2 < pitch ? w / 2 : pitch;
  for (size_t i = 0; i < rows; ++i, x += x_stride, even += pitch, odd += pitch) {
    for (size_t k = 0; k < ne; ++k) even[k] = x[2 * k];
    for (size_t k = 0; k < no; ++k) odd[k] = x[2 * k + 1];
  }
}

}  // namespace eo
