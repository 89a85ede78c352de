#include "f32-dwconv/dwconv.h"

#include <algorithm>
#include <cstring>

#include "common/int_math.h"

namespace eo {

DwconvPlan DwconvPlan::make(const Conv2dShape& s) {
  DwconvPlan g;
  g.H = s.H; g.W = s.W; g.KH = s.KH; g.KW = s.KW; g.sh = s.sh; g.sw = s.sw; g.ph = s.ph; g.pw = s.pw;
  g.OH = s.OH(); g.OW = s.OW(); g.P = g.OH * g.OW;
  // Column phases work if every real input column a tap reads lands in [0, OW) of its phase.
  bool phases = true;
  for (int64_t kw = 0; kw < g.KW && phases; ++kw) {
    const int64_t dc = floor_div(kw - g.pw, g.sw);
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t iw = g.sw * ow + kw - g.pw;
      if (iw >= 0 && iw < g.W && (ow + dc < 0 || ow + dc >= g.OW)) { phases = false; break; }
    }
  }
  g.phases = phases;
  g.direct = phases && g.sh == 1 && g.sw == 1 && g.OW == g.W;
  g.nr = g.sh;
  g.nc = phases ? g.sw : g.KW;
  for (int64_t j = 0; j < g.nc; ++j) g.col0.push_back(phases ? j : j - g.pw);
  g.rows = (g.H + g.sh - 1) / g.sh;
  g.plane = g.rows * g.OW;
  const int64_t taps = g.KH * g.KW, nv = (g.P + 15) / 16;
  for (int64_t kh = 0; kh < g.KH; ++kh)
    for (int64_t kw = 0; kw < g.KW; ++kw) {
      const int64_t dr = floor_div(kh - g.ph, g.sh), r = kh - g.ph - dr * g.sh;
      const int64_t dc = phases ? floor_div(kw - g.pw, g.sw) : 0;
      const int64_t j = phases ? kw - g.pw - dc * g.sw : kw;
      g.off.push_back(static_cast<ptrdiff_t>((r * g.nc + j) * g.block() * g.plane + dr * g.OW + dc));
    }
  g.mask.assign(static_cast<size_t>(nv * taps), 0);
  for (int64_t p = 0; p < g.P; ++p) {
    const int64_t oh = p / g.OW, ow = p % g.OW;
    for (int64_t kh = 0; kh < g.KH; ++kh) {
      const int64_t ih = g.sh * oh + kh - g.ph;
      if (ih < 0 || ih >= g.H) continue;
      for (int64_t kw = 0; kw < g.KW; ++kw) {
        const int64_t iw = g.sw * ow + kw - g.pw;
        if (iw >= 0 && iw < g.W) g.mask[(p / 16) * taps + kh * g.KW + kw] |= uint16_t(1u << (p % 16));
      }
    }
  }
  return g;
}

void DwconvPlan::fill_sources(const float* x, int64_t n, float* src, f32_dwconv_split2_fn split2) const {
  const int64_t HW = H * W, qstride = block() * plane;  // source plane q of channel i: q*qstride + i*plane
  if (phases && sw == 2 && H % sh == 0) {
    // Row residue r of consecutive channels is one run of n*rows rows, sh*W apart: one call.
    for (int64_t r = 0; r < nr; ++r)
      split2(static_cast<size_t>(n * rows), static_cast<size_t>(W), x + r * W, static_cast<size_t>(sh * W),
             src + r * nc * qstride, src + (r * nc + 1) * qstride, static_cast<size_t>(OW));
    return;
  }
  for (int64_t i = 0; i < n; ++i) {
    const float* xc = x + i * HW;
    if (phases && sw == 2) {  // both column phases of each row residue in one pass
      for (int64_t r = 0; r < nr && r < H; ++r)
        split2(static_cast<size_t>((H - r + sh - 1) / sh), static_cast<size_t>(W), xc + r * W,
               static_cast<size_t>(sh * W), src + r * nc * qstride + i * plane,
               src + (r * nc + 1) * qstride + i * plane, static_cast<size_t>(OW));
      continue;
    }
    for (int64_t r = 0; r < nr; ++r)
      for (int64_t j = 0; j < nc; ++j) {
        float* pl = src + (r * nc + j) * qstride + i * plane;
        // Columns C with iw = sw*C + col0[j] inside the image: [lo, hi).
        int64_t lo = 0;
        while (lo < OW && sw * lo + col0[j] < 0) ++lo;
        int64_t hi = lo;
        while (hi < OW && sw * hi + col0[j] < W) ++hi;
        if (lo == hi) continue;
        for (int64_t R = 0; R < rows; ++R) {
          const int64_t ih = sh * R + r;
          if (ih >= H) break;
          const float* xr = xc + ih * W + sw * lo + col0[j];
          float* d = pl + R * OW + lo;
          if (sw == 1) std::memcpy(d, xr, static_cast<size_t>(hi - lo) * 4);
          else for (int64_t k = 0; k < hi - lo; ++k) d[k] = xr[sw * k];
        }
      }
  }
}

namespace {

// Calls f(o, n, src, src_stride) so that output channels [o, o + n) of [o0, o1) read their
// sources at src + i * src_stride: the input planes themselves when direct, else source planes
// built a block (or, with a channel multiplier, one input channel) at a time in scratch.
template <class F>
void for_each_source(const DwconvPlan& g, f32_dwconv_split2_fn split2, int64_t mult, const float* x,
                     int64_t o0, int64_t o1, float* scratch, F f) {
  const int64_t HW = g.H * g.W;
  if (g.direct && mult == 1) return f(o0, o1 - o0, x + o0 * HW, HW);
  if (g.direct) {
    for (int64_t o = o0; o < o1; ++o) f(o, 1, x + (o / mult) * HW, 0);
    return;
  }
  if (mult == 1) {
    for (int64_t b0 = o0; b0 < o1; b0 += g.block()) {
      const int64_t n = std::min(g.block(), o1 - b0);
      g.fill_sources(x + b0 * HW, n, scratch, split2);
      f(b0, n, scratch, g.plane);
    }
    return;
  }
  for (int64_t o = o0; o < o1; ++o) {
    if (o == o0 || o % mult == 0) g.fill_sources(x + (o / mult) * HW, 1, scratch, split2);
    f(o, 1, scratch, 0);
  }
}

}  // namespace

void f32_dwconv_forward(const DwconvPlan& g, const F32DwconvUkernels& uk, const f32_dwconv_params& p,
                        int64_t mult, const float* x, const float* w, const float* bias, float* y,
                        int64_t o0, int64_t o1, float* scratch) {
  const int64_t taps = g.KH * g.KW;
  for_each_source(g, uk.split2, mult, x, o0, o1, scratch, [&](int64_t o, int64_t n, const float* src, int64_t stride) {
    uk.conv(static_cast<size_t>(n), src, static_cast<size_t>(stride), w + o * taps,
            bias ? bias + o : nullptr, y + o * g.P, static_cast<size_t>(g.P), &p);
  });
}

void f32_dwconv_wgrad(const DwconvPlan& g, const F32DwconvUkernels& uk, const f32_dwconv_params& p,
                      int64_t mult, const float* x, const float* dy, int64_t o0, int64_t o1,
                      float* scratch, float* lanes) {
  const int64_t taps = g.KH * g.KW;
  for_each_source(g, uk.split2, mult, x, o0, o1, scratch, [&](int64_t o, int64_t n, const float* src, int64_t stride) {
    uk.wgrad(static_cast<size_t>(n), src, static_cast<size_t>(stride), dy + o * g.P,
             static_cast<size_t>(g.P), lanes + (o - o0) * taps * 16, &p);
  });
}

}  // namespace eo
