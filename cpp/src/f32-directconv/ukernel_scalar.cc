#include "f32-directconv/ukernels.h"

namespace eo {

void f32_directconv_ukernel_4x16__scalar(size_t m, size_t n, size_t channels, size_t taps,
    const float* pa, const float* x, size_t ldx, const int32_t* toff, const uint16_t* tmask,
    const float* scale, const float* bias, const float* res, float* y, size_t ldy, float lo, float hi) {
  if (!toff) taps = 1;
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.f;
      for (size_t c = 0; c < channels; ++c)
        for (size_t t = 0; t < taps; ++t) {
          if (toff && !((tmask[(j / 16) * taps + t] >> (j % 16)) & 1)) continue;
          const float xv = x[static_cast<ptrdiff_t>(c * ldx + j) + (toff ? toff[t] : 0)];
          acc += pa[(c * taps + t) * 4 + i] * xv;
        }
      float v = scale ? acc * scale[i] : acc;
      v += bias ? bias[i] : 0.f;
      if (res) v += res[i * ldy + j];
      v = v < lo ? lo : v;
      y[i * ldy + j] = v > hi ? hi : v;
    }
}

}  // namespace eo
