// Plain reference for f32-spmm: a dense triple loop (zeros included) with double accumulation.
#include "f32-spmm/spmm.h"

namespace eo::reference {

void f32_spmm(int64_t cout, int64_t cin, int64_t hw, const float* w, const float* x,
              const float* bias, float out_min, float out_max, float* y) {
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t p = 0; p < hw; ++p) {
      double acc = bias ? bias[o] : 0.0;
      for (int64_t k = 0; k < cin; ++k) acc += double(w[o * cin + k]) * double(x[k * hw + p]);
      float v = float(acc);
      v = v < out_min ? out_min : v;
      y[o * hw + p] = v > out_max ? out_max : v;
    }
}

}  // namespace eo::reference
