// Portable int8 SpMM: 8 pixels at a time, int32 accumulation (wrapping, as the SIMD kernels),
// the shared scalar requantization.
#include <stddef.h>
#include <stdint.h>

#include "qs8-gemm/requantize.h"
#include "qs8-spmm/ukernels.h"

namespace eo {
namespace {

template <int BR>
void spmm(size_t mc, size_t nbr, size_t cout, const int16_t* x, size_t xs, const int32_t* w,
          const int32_t* kidx, const int32_t* rp, const struct qs8_spmm_params* p, uint8_t* y,
          size_t ys) {
  constexpr size_t T = 8;
  for (size_t p0 = 0; p0 < mc; p0 += T) {
    const size_t n = mc - p0 < T ? mc - p0 : T;
    for (size_t r = 0; r < nbr; ++r) {
      uint32_t acc[BR][T];
      for (int i = 0; i < BR; ++i)
        for (size_t j = 0; j < T; ++j) acc[i][j] = (uint32_t)p->adj[r * BR + i];
      for (int32_t t = rp[r]; t < rp[r + 1]; ++t) {
        const int16_t* xa = x + (size_t)kidx[2 * t] * xs + p0;
        const int16_t* xb = x + (size_t)kidx[2 * t + 1] * xs + p0;
        for (int i = 0; i < BR; ++i) {
          const int32_t wp = w[(size_t)t * BR + i];
          const int32_t wa = (int16_t)(wp & 0xFFFF), wb = wp >> 16;
          for (size_t j = 0; j < T; ++j) acc[i][j] += (uint32_t)(xa[j] * wa + xb[j] * wb);
        }
      }
      for (int i = 0; i < BR && r * BR + i < cout; ++i) {
        const size_t o = r * BR + i;
        for (size_t j = 0; j < n; ++j)
          y[o * ys + p0 + j] = (uint8_t)qs8_requantize((int32_t)acc[i][j], p->scale[o],
                                                       p->out_zp, p->qmin, p->qmax);
      }
    }
  }
}

}  // namespace

void qs8_spmm_ukernel_8x1__scalar(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                  size_t x_stride, const int32_t* w, const int32_t* kidx,
                                  const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                  uint8_t* y, size_t y_stride) {
  spmm<1>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}
void qs8_spmm_ukernel_8x4__scalar(size_t mc, size_t nbr, size_t cout, const int16_t* x,
                                  size_t x_stride, const int32_t* w, const int32_t* kidx,
                                  const int32_t* row_ptr, const struct qs8_spmm_params* p,
                                  uint8_t* y, size_t y_stride) {
  spmm<4>(mc, nbr, cout, x, x_stride, w, kidx, row_ptr, p, y, y_stride);
}

}  // namespace eo
