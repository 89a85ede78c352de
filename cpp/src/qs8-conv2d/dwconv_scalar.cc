// Portable int8 depthwise micro-kernel: the formula of ukernels.h, one channel at a time.
#include "qs8-conv2d/ukernels.h"
#include "qs8-gemm/requantize.h"

namespace eo {

void qs8_dwconv_ukernel__scalar(size_t channels, size_t npix, size_t ntaps,
                                const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                uint8_t* y, size_t y_stride) {
  for (size_t px = 0; px < npix; ++px, taps += ntaps, y += y_stride) {
    for (size_t c = 0; c < channels; ++c) {
      uint32_t acc = (uint32_t)p->adj[c];  // modulo 2^32, as the vector kernels
      for (size_t t = 0; t < ntaps; ++t)
        acc += (uint32_t)((int32_t)taps[t][c] * p->w[t * p->cstride + c]);
      y[c] = (uint8_t)qs8_requantize((int32_t)acc, p->scale[c], p->out_zp, p->qmin, p->qmax);
    }
  }
}

}  // namespace eo
