#include "qs8-gemm/requantize.h"
#include "reference/qs8_reference.h"

namespace eo::reference {

void qs8_maxpool2d(const Qs8PoolShape& s, int64_t N, int64_t H, int64_t W, int64_t C,
                   const uint8_t* x, uint8_t* y) {
  const int64_t OH = s.out_h(H), OW = s.out_w(W);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          int m = 0;
          for (int64_t i = 0; i < s.kh; ++i)
            for (int64_t j = 0; j < s.kw; ++j) {
              const int64_t ih = oh * s.sh - s.ph + i, iw = ow * s.sw - s.pw + j;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W && x[((n * H + ih) * W + iw) * C + c] > m)
                m = x[((n * H + ih) * W + iw) * C + c];
            }
          y[((n * OH + oh) * OW + ow) * C + c] = uint8_t(m);
        }
}

void qs8_avgpool2d(const Qs8PoolShape& s, bool count_include_pad, int64_t N, int64_t H, int64_t W,
                   int64_t C, const uint8_t* x, int32_t in_zp, const float* scale,
                   int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y) {
  const int64_t OH = s.out_h(H), OW = s.out_w(W);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow)
        for (int64_t c = 0; c < C; ++c) {
          int64_t acc = 0, taps = 0;
          for (int64_t i = 0; i < s.kh; ++i)
            for (int64_t j = 0; j < s.kw; ++j) {
              const int64_t ih = oh * s.sh - s.ph + i, iw = ow * s.sw - s.pw + j;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              acc += int64_t(x[((n * H + ih) * W + iw) * C + c]) - in_zp;
              ++taps;
            }
          const int64_t d = count_include_pad ? s.kh * s.kw : taps;
          y[((n * OH + oh) * OW + ow) * C + c] =
              uint8_t(qs8_requantize(int32_t(acc), scale[d - 1], out_zp, qmin, qmax));
        }
}

}  // namespace eo::reference
