#include "qs8-gemm/requantize.h"
#include "reference/qs8_reference.h"

namespace eo::reference {

void qs8_conv2d(const Qs8ConvShape& s, int64_t N, int64_t H, int64_t W, const uint8_t* x,
                int32_t in_zp, const int8_t* w, const int32_t* bias, const float* scale,
                int32_t out_zp, int32_t qmin, int32_t qmax,
                const Qs8ConvEpilogue& epi, const uint8_t* residual, uint8_t* y) {
  const int64_t OH = s.out_h(H), OW = s.out_w(W), cig = s.cin / s.groups, cog = s.cout / s.groups;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t co = 0; co < s.cout; ++co) {
          const int64_t g = co / cog;
          int64_t acc = bias ? bias[co] : 0;
          for (int64_t i = 0; i < s.kh; ++i)
            for (int64_t j = 0; j < s.kw; ++j) {
              const int64_t ih = oh * s.sh - s.ph + i, iw = ow * s.sw - s.pw + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;  // padding: x - in_zp = 0
              for (int64_t ci = 0; ci < cig; ++ci) {
                const int64_t xv = x[((n * H + ih) * W + iw) * s.cin + g * cig + ci];
                acc += (xv - in_zp) * w[((co * s.kh + i) * s.kw + j) * cig + ci];
              }
            }
          const int64_t o = ((n * OH + oh) * OW + ow) * s.cout + co;
          uint8_t v = uint8_t(qs8_requantize(int32_t(acc), scale[co], out_zp, qmin, qmax));
          if (epi.residual) v = qs8_add(v, residual[o], epi.add);
          if (epi.has_lut) v = epi.lut[v];
          y[o] = v;
        }
}

}  // namespace eo::reference
