// AVX-512 int8 depthwise micro-kernel (ukernels.h): 16 channels per zmm of int32 accumulators,
// channel blocks outermost (dwconv_avx512.h).
#include <stdint.h>

#include "qs8-conv2d/dwconv_avx512.h"
#include "qs8-conv2d/ukernels.h"

namespace eo {

void qs8_dwconv_ukernel__avx512(size_t channels, size_t npix, size_t ntaps,
                                const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                uint8_t* y, size_t y_stride) {
  for (size_t c0 = 0; c0 < channels; c0 += 16)
    qs8_dwconv16_avx512(c0, channels - c0 < 16 ? channels - c0 : 16, npix, ntaps, taps, p, y, y_stride);
}

}  // namespace eo
