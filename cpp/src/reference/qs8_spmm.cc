// Plain reference for qs8-spmm: dense loops (zeros included), int64 accumulation, the shared
// requantization of qs8-gemm.
#include "qs8-gemm/requantize.h"
#include "qs8-spmm/spmm.h"

namespace eo::reference {

void qs8_spmm(int64_t cout, int64_t cin, int64_t hw, const int8_t* w, const uint8_t* x,
              int32_t a_zp, const int32_t* bias, const float* scale,
              int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y) {
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t p = 0; p < hw; ++p) {
      int64_t acc = bias ? bias[o] : 0;
      for (int64_t k = 0; k < cin; ++k)
        acc += (int64_t(x[k * hw + p]) - a_zp) * int64_t(w[o * cin + k]);
      y[o * hw + p] =
          uint8_t(qs8_requantize(int32_t(acc), scale[o], out_zp, qmin, qmax));
    }
}

}  // namespace eo::reference
