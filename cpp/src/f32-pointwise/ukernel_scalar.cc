#include "f32-pointwise/ukernels.h"

namespace eo {

void f32_pointwise_ukernel_4x16__scalar(size_t m, size_t n, size_t kc, const float* pa,
    const float* x, size_t ldx, const float* scale, const float* bias, const float* res, float* y,
    size_t ldy, float lo, float hi) {
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j) {
      float acc = 0.f;
      for (size_t k = 0; k < kc; ++k) acc += pa[k * 4 + i] * x[k * ldx + j];
      float v = scale ? acc * scale[i] : acc;
      v += bias ? bias[i] : 0.f;
      if (res) v += res[i * ldy + j];
      v = v < lo ? lo : v;
      y[i * ldy + j] = v > hi ? hi : v;
    }
}

}  // namespace eo
