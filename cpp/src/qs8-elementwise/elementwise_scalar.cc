// Portable int8 add and channel-scale micro-kernels: the formulas of ukernels.h.
#include <math.h>

#include "qs8-elementwise/ukernels.h"
#include "qs8-gemm/requantize.h"

namespace eo {

void qs8_add_ukernel__scalar(size_t n, const uint8_t* a, const uint8_t* b,
                             const struct qs8_add_params* p, uint8_t* y) {
  for (size_t i = 0; i < n; ++i) {
    const float v = fmaf((float)a[i], p->a_scale, fmaf((float)b[i], p->b_scale, p->offset));
    y[i] = (uint8_t)qs8_round_clamp(v, 0, p->qmin, p->qmax);
  }
}

void qs8_channel_scale_ukernel__scalar(size_t npix, size_t C, const uint8_t* x, const int32_t* sc,
                                       const struct qs8_channel_scale_params* p, uint8_t* y) {
  for (size_t px = 0; px < npix; ++px, x += C, y += C)
    for (size_t c = 0; c < C; ++c)
      y[c] = (uint8_t)qs8_requantize_zp_in_float(((int32_t)x[c] - p->x_zp) * sc[c], p->scale, p->y_zp,
                                                 p->qmin, p->qmax);
}

}  // namespace eo
