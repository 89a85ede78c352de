// Depthwise convolution (Cin/G == 1, channel multiplier M = Cout/G >= 1) by direct loops: output
// channel o reads only input channel o / M, so im2col would build a KH*KW-times larger copy of x
// for a product with a single row. Loops run along output rows so stride-1 rows vectorise.
//   x: (N, Cin, H, W)  w: (Cout, 1, KH, KW)  y: (N, Cout, OH, OW)
// Parallel over (image, channel) planes for y and dx; over channels for dw, so each dw entry is
// summed by one thread in a fixed order (deterministic; float per row, double across rows).
#include <algorithm>
#include <cstring>
#include <vector>

#include "common/parallel.h"
#include "f32-conv2d/conv2d.h"
#include "f32-conv2d/im2col.h"

namespace eo {

void conv2d_depthwise_forward(const Conv2dShape& s, const float* x, const float* w, const float* b,
                              float* y) {
  const int64_t OH = s.OH(), OW = s.OW(), H = s.H, W = s.W, KK = s.KH * s.KW;
  const int64_t M = s.Cout / s.Cin;
  parallel_for(s.N * s.Cout, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / s.Cout, o = t % s.Cout;
      const float* xc = x + (n * s.Cin + o / M) * H * W;
      const float* wo = w + o * KK;
      float* yo = y + t * OH * OW;
      const float bias = b ? b[o] : 0.f;
      for (int64_t oh = 0; oh < OH; ++oh) {
        float* yr = yo + oh * OW;
        for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = bias;
        for (int64_t kh = 0; kh < s.KH; ++kh) {
          const int64_t ih = oh * s.sh - s.ph + kh;
          if (ih < 0 || ih >= H) continue;
          const float* xr = xc + ih * W;
          for (int64_t kw = 0; kw < s.KW; ++kw) {
            int64_t lo, hi;
            valid_range(OW, W, s.sw, s.pw, kw, &lo, &hi);
            if (hi <= lo) continue;
            const float wv = wo[kh * s.KW + kw];
            if (s.sw == 1) {
              const float* xs = xr + (lo - s.pw + kw);
              float* ys = yr + lo;
              for (int64_t i = 0; i < hi - lo; ++i) ys[i] += wv * xs[i];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow) yr[ow] += wv * xr[ow * s.sw - s.pw + kw];
            }
          }
        }
      }
    }
  });
}

void conv2d_depthwise_backward(const Conv2dShape& s, const float* dy, const float* x,
                               const float* w, float* dw, float* dx) {
  const int64_t OH = s.OH(), OW = s.OW(), H = s.H, W = s.W, KK = s.KH * s.KW;
  const int64_t M = s.Cout / s.Cin;
  // dw[o, kh, kw] += sum_{n, oh, ow} dy[n, o, oh, ow] * x[n, o / M, ih, iw]
  parallel_for(s.Cout, 1, [&](int64_t o0, int64_t o1) {
    std::vector<double> acc(KK);
    for (int64_t o = o0; o < o1; ++o) {
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int64_t n = 0; n < s.N; ++n) {
        const float* xc = x + (n * s.Cin + o / M) * H * W;
        const float* dyo = dy + (n * s.Cout + o) * OH * OW;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* dr = dyo + oh * OW;
          for (int64_t kh = 0; kh < s.KH; ++kh) {
            const int64_t ih = oh * s.sh - s.ph + kh;
            if (ih < 0 || ih >= H) continue;
            const float* xr = xc + ih * W;
            for (int64_t kw = 0; kw < s.KW; ++kw) {
              int64_t lo, hi;
              valid_range(OW, W, s.sw, s.pw, kw, &lo, &hi);
              if (hi <= lo) continue;
              float sum = 0.f;
              if (s.sw == 1) {
                const float* xs = xr + (lo - s.pw + kw);
                const float* ds = dr + lo;
                for (int64_t i = 0; i < hi - lo; ++i) sum += ds[i] * xs[i];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) sum += dr[ow] * xr[ow * s.sw - s.pw + kw];
              }
              acc[kh * s.KW + kw] += sum;
            }
          }
        }
      }
      for (int64_t k = 0; k < KK; ++k) dw[o * KK + k] += static_cast<float>(acc[k]);
    }
  });
  if (!dx) return;
  // dx[n, c, ih, iw] = sum over the M output channels of c and the taps that read (ih, iw).
  parallel_for(s.N * s.Cin, 4, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / s.Cin, c = t % s.Cin;
      float* dxc = dx + t * H * W;
      std::memset(dxc, 0, H * W * sizeof(float));
      for (int64_t m = 0; m < M; ++m) {
        const int64_t o = c * M + m;
        const float* dyo = dy + (n * s.Cout + o) * OH * OW;
        const float* wo = w + o * KK;
        for (int64_t oh = 0; oh < OH; ++oh) {
          const float* dr = dyo + oh * OW;
          for (int64_t kh = 0; kh < s.KH; ++kh) {
            const int64_t ih = oh * s.sh - s.ph + kh;
            if (ih < 0 || ih >= H) continue;
            float* xr = dxc + ih * W;
            for (int64_t kw = 0; kw < s.KW; ++kw) {
              int64_t lo, hi;
              valid_range(OW, W, s.sw, s.pw, kw, &lo, &hi);
              if (hi <= lo) continue;
              const float wv = wo[kh * s.KW + kw];
              if (s.sw == 1) {
                float* xs = xr + (lo - s.pw + kw);
                const float* ds = dr + lo;
                for (int64_t i = 0; i < hi - lo; ++i) xs[i] += wv * ds[i];
              } else {
                for (int64_t ow = lo; ow < hi; ++ow) xr[ow * s.sw - s.pw + kw] += wv * dr[ow];
              }
            }
          }
        }
      }
    }
  });
}

}  // namespace eo
