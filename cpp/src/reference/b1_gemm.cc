// Plain reference for b1-gemm: loops over sign values (+1 for v >= 0, else -1), integer dot,
// the same epilogue as the fast paths (b1_epilogue in gemm.h).
#include <algorithm>

#include "b1-gemm/gemm.h"
#include "common/int_math.h"

namespace eo::reference {
namespace {

inline int sgn(float v, float t = 0.f) { return v >= t ? 1 : -1; }

}  // namespace

void b1_conv2d(int64_t cout, int64_t cin, int64_t kh, int64_t kw, const float* w, const float* alpha,
               const float* bias, const float* residual, int64_t stride_h, int64_t stride_w, int64_t pad_h,
               int64_t pad_w, int pad_value, const float* threshold, int64_t h, int64_t wd, const float* x,
               float out_min, float out_max, float* y) {
  // no output where the kernel does not fit the padded input
  const int64_t oh = std::max<int64_t>(0, floor_div(h + 2 * pad_h - kh, stride_h) + 1);
  const int64_t ow = std::max<int64_t>(0, floor_div(wd + 2 * pad_w - kw, stride_w) + 1);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t r = 0; r < oh; ++r)
      for (int64_t s = 0; s < ow; ++s) {
        int64_t dot = 0;
        for (int64_t c = 0; c < cin; ++c)
          for (int64_t i = 0; i < kh; ++i)
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t ih = r * stride_h - pad_h + i, iw = s * stride_w - pad_w + j;
              const int xv = (ih >= 0 && ih < h && iw >= 0 && iw < wd)
                                 ? sgn(x[(c * h + ih) * wd + iw], threshold ? threshold[c] : 0.f)
                                 : pad_value;
              dot += xv * sgn(w[((o * cin + c) * kh + i) * kw + j]);
            }
        const int64_t q = (o * oh + r) * ow + s;
        y[q] = b1_epilogue(dot, alpha[o], bias ? bias + o : nullptr, residual ? residual + q : nullptr, out_min, out_max);
      }
}

void b1_linear(int64_t n, int64_t k, const float* w, const float* alpha, const float* bias,
               int64_t m, const float* x, float out_min, float out_max, float* y) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      int64_t dot = 0;
      for (int64_t t = 0; t < k; ++t) dot += sgn(x[i * k + t]) * sgn(w[j * k + t]);
      y[i * n + j] = b1_epilogue(dot, alpha[j], bias ? bias + j : nullptr, nullptr, out_min, out_max);
    }
}

}  // namespace eo::reference
