#include "reference/reference.h"

#include <vector>

namespace eo::reference {

// Direct loops over (n, o, oh, ow) x (c, kh, kw), accumulating in double.
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.Cin / s.groups, Mg = s.Cout / s.groups;
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.Cout; ++o) {
      const int64_t g = o / Mg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          double acc = b ? b[o] : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.sh - s.ph + kh, iw = ow * s.sw - s.pw + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                acc += double(w[((o * Cg + c) * s.KH + kh) * s.KW + kw]) *
                       double(x[((n * s.Cin + g * Cg + c) * s.H + ih) * s.W + iw]);
              }
          y[((n * s.Cout + o) * OH + oh) * OW + ow] = float(acc);
        }
    }
}

// The same loops, scattering dy into double accumulators for dx, dw and db.
void conv2d_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                     float* dw, float* db, float* dx) {
  const int64_t OH = s.OH(), OW = s.OW(), Cg = s.Cin / s.groups, Mg = s.Cout / s.groups;
  std::vector<double> gx(dx ? s.N * s.Cin * s.H * s.W : 0), gw(s.Cout * Cg * s.KH * s.KW),
      gb(s.Cout);
  for (int64_t n = 0; n < s.N; ++n)
    for (int64_t o = 0; o < s.Cout; ++o) {
      const int64_t g = o / Mg;
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          const double d = dy[((n * s.Cout + o) * OH + oh) * OW + ow];
          gb[o] += d;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < s.KH; ++kh)
              for (int64_t kw = 0; kw < s.KW; ++kw) {
                const int64_t ih = oh * s.sh - s.ph + kh, iw = ow * s.sw - s.pw + kw;
                if (ih < 0 || ih >= s.H || iw < 0 || iw >= s.W) continue;
                const int64_t xi = ((n * s.Cin + g * Cg + c) * s.H + ih) * s.W + iw;
                const int64_t wi = ((o * Cg + c) * s.KH + kh) * s.KW + kw;
                gw[wi] += d * x[xi];
                if (dx) gx[xi] += d * w[wi];
              }
        }
    }
  for (size_t i = 0; i < gw.size(); ++i) dw[i] += float(gw[i]);
  if (db)
    for (size_t i = 0; i < gb.size(); ++i) db[i] += float(gb[i]);
  if (dx)
    for (size_t i = 0; i < gx.size(); ++i) dx[i] = float(gx[i]);
}

}  // namespace eo::reference
