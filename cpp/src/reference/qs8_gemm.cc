#include "qs8-gemm/requantize.h"
#include "reference/reference.h"

namespace eo::reference {

void qs8_gemm(int64_t M, int64_t N, int64_t K, const uint8_t* a, int64_t lda, int32_t a_zp,
              const int8_t* b, int64_t ldb, const int32_t* bias, const float* scale,
              int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* c, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      int64_t acc = bias ? bias[j] : 0;
      for (int64_t k = 0; k < K; ++k)
        acc += (int64_t(a[i * lda + k]) - a_zp) * int64_t(b[k * ldb + j]);
      c[i * ldc + j] = uint8_t(
          qs8_requantize(int32_t(acc), scale[j], out_zp, qmin, qmax));
    }
}

}  // namespace eo::reference
