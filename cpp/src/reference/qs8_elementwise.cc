#include "qs8-gemm/requantize.h"
#include "reference/qs8_reference.h"

namespace eo::reference {

uint8_t qs8_add(uint8_t a, uint8_t b, const qs8_add_params& p) {
  // (a - zp) * 2^20 moved to the common scale, rounded half up: floor((v*m + 2^(30+s)) / 2^(31+s))
  auto to_common = [](int64_t v, int64_t m, int64_t s) {
    const int64_t num = v * 1048576 * m + (int64_t(1) << (30 + s));
    const int64_t den = int64_t(1) << (31 + s);
    return num >= 0 ? num / den : -((-num + den - 1) / den);  // floor division
  };
  const int64_t sum = to_common(int64_t(a) - p.a_zp, p.a_mult, p.a_shift) +
                      to_common(int64_t(b) - p.b_zp, p.b_mult, p.b_shift);
  return uint8_t(qs8_requantize(int32_t(sum), p.out_mult, p.out_shift, p.out_zp, p.qmin, p.qmax));
}

void qs8_channel_scale(int64_t N, int64_t HW, int64_t C, const uint8_t* x, const uint8_t* s,
                       int32_t s_zp, const qs8_channel_scale_params& p, uint8_t* y) {
  for (int64_t n = 0; n < N; ++n)
    for (int64_t i = 0; i < HW; ++i)
      for (int64_t c = 0; c < C; ++c) {
        const int64_t o = (n * HW + i) * C + c;
        const int32_t prod = (int32_t(x[o]) - p.x_zp) * (int32_t(s[n * C + c]) - s_zp);
        y[o] = uint8_t(qs8_requantize(prod, p.mult, p.shift, p.y_zp, p.qmin, p.qmax));
      }
}

}  // namespace eo::reference
