// Portable f32 SpMM: tiles of 8 pixels in a small array (the compiler keeps it in SSE registers),
// same block walk as the SIMD kernels, plain multiply-add (no FMA on the baseline target).
#include <stddef.h>
#include <stdint.h>

#include "f32-spmm/ukernels.h"

namespace eo {
namespace {

template <int BR, int BC>
void spmm(size_t mc, size_t nbr, size_t cout, const float* x, size_t xs, const float* w,
          const int32_t* col, const int32_t* rp, const float* bias, float* y, size_t ys,
          const struct f32_spmm_params* p) {
  constexpr size_t T = 8;
  for (size_t p0 = 0; p0 < mc; p0 += T) {
    const size_t n = mc - p0 < T ? mc - p0 : T;
    for (size_t r = 0; r < nbr; ++r) {
      float acc[BR][T];
      for (int i = 0; i < BR; ++i)
        for (size_t j = 0; j < T; ++j) acc[i][j] = bias[r * BR + i];
      for (int32_t b = rp[r]; b < rp[r + 1]; ++b) {
        const float* xb = x + (size_t)col[b] * xs + p0;
        const float* wb = w + (size_t)b * (BR * BC);
        for (int c = 0; c < BC; ++c) {
          float xv[T] = {0, 0, 0, 0, 0, 0, 0, 0};
          for (size_t j = 0; j < n; ++j) xv[j] = xb[c * xs + j];
          for (int i = 0; i < BR; ++i)
            for (size_t j = 0; j < T; ++j) acc[i][j] += wb[c * BR + i] * xv[j];
        }
      }
      for (int i = 0; i < BR && r * BR + i < cout; ++i) {
        float* yi = y + (r * BR + i) * ys + p0;
        for (size_t j = 0; j < n; ++j) {
          const float v = acc[i][j] < p->min ? p->min : acc[i][j];
          yi[j] = v > p->max ? p->max : v;
        }
      }
    }
  }
}

}  // namespace

void f32_spmm_ukernel_8x1x1__scalar(size_t mc, size_t nbr, size_t cout, const float* x,
                                    size_t x_stride, const float* w, const int32_t* col,
                                    const int32_t* row_ptr, const float* bias, float* y,
                                    size_t y_stride, const struct f32_spmm_params* p) {
  spmm<1, 1>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_8x4x1__scalar(size_t mc, size_t nbr, size_t cout, const float* x,
                                    size_t x_stride, const float* w, const int32_t* col,
                                    const int32_t* row_ptr, const float* bias, float* y,
                                    size_t y_stride, const struct f32_spmm_params* p) {
  spmm<4, 1>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}
void f32_spmm_ukernel_8x8x1__scalar(size_t mc, size_t nbr, size_t cout, const float* x,
                                    size_t x_stride, const float* w, const int32_t* col,
                                    const int32_t* row_ptr, const float* bias, float* y,
                                    size_t y_stride, const struct f32_spmm_params* p) {
  spmm<8, 1>(mc, nbr, cout, x, x_stride, w, col, row_ptr, bias, y, y_stride, p);
}

}  // namespace eo
