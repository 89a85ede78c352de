#include <cmath>

#include "qs8-gemm/requantize.h"
#include "reference/qs8_reference.h"

namespace eo::reference {

uint8_t qs8_add(uint8_t a, uint8_t b, const qs8_add_params& p) {
  // written apart from the kernels' rounding: std::nearbyint (half to even), clamped after
  const float v = std::fma(float(a), p.a_scale, std::fma(float(b), p.b_scale, p.offset));
  const float r = std::nearbyint(v);
  return uint8_t(r < float(p.qmin) ? p.qmin : r > float(p.qmax) ? p.qmax : int32_t(r));
}

void qs8_channel_scale(int64_t N, int64_t HW, int64_t C, const uint8_t* x, const uint8_t* s,
                       int32_t s_zp, const qs8_channel_scale_params& p, uint8_t* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t o = (n * HW + i) * C + c;
        const int32_t prod = (int32_t(x[o]) - p.x_zp) * (int32_t(s[n * C + c]) - s_zp);
        // written apart from the kernels' rounding: two float32 roundings, then std::nearbyint
        volatile float product = float(prod) * p.scale;
        const float r = std::nearbyint(product + float(p.y_zp));
        y[o] = uint8_t(r < float(p.qmin) ? p.qmin : r > float(p.qmax) ? p.qmax : int32_t(r));
      }
}

}  // namespace eo::reference
