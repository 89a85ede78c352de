#include "f32-conv2d/ukernels.h"

namespace eo {

void f32_conv2d_shifted_ukernel_4x16__scalar(size_t m, size_t n, size_t kc, const float* pa,
                                             const float* b, const int32_t* off, float* c,
                                             size_t ldc, int accumulate) {
  float acc[4][16] = {};
  for (size_t k = 0; k < kc; ++k, pa += 4) {
    const float* bk = b + off[k];
    for (int i = 0; i < 4; ++i)
      for (int j = 0; j < 16; ++j) acc[i][j] += pa[i] * bk[j];
  }
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

void f32_conv2d_strided_ukernel_4x16__scalar(size_t m, size_t n, size_t rows, size_t cols,
    const float* a, size_t lda, size_t a_row, const float* b, const int32_t* boff, size_t ldb,
    size_t b_row, float* c, size_t ldc, int accumulate) {
  float acc[4][16] = {};
  for (size_t r = 0; r < rows; ++r)
    for (size_t p = 0; p < cols; ++p) {
      const float* bp = b + r * b_row + p * ldb + boff[0];
      for (size_t i = 0; i < m; ++i) {
        const float ai = a[i * lda + r * a_row + p];
        for (int j = 0; j < 16; ++j) acc[i][j] += ai * bp[j];
      }
    }
  for (size_t i = 0; i < m; ++i)
    for (size_t j = 0; j < n; ++j)
      c[i * ldc + j] = accumulate ? c[i * ldc + j] + acc[i][j] : acc[i][j];
}

}  // namespace eo
