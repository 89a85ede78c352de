#include "f32-gemm/ukernels.h"

namespace eo {

void f32_gemm_ukernel_4x8__scalar(size_t m, size_t n, size_t kc, const float* pa, const float* pb,
                                  float* c, size_t ldc, int accumulate) {
  float acc[4][8] = {};
  for (size_t k = 0; k < kc; ++k, pa += 4, pb += 8)
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 8; ++j) acc[i][j] += pa[i] * pb[j];
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

void f32_interleave__scalar(size_t rows, size_t kc, const float* src, size_t ld, size_t w, float* dst) {
  for (size_t r = 0; r < w; ++r) {
    const float* s = src + r * ld;
    for (size_t k = 0; k < kc; ++k) dst[k * w + r] = r < rows ? s[k] : 0.f;
  }
}

}  // namespace eo
