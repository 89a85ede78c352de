#include "reference/reference.h"

namespace eo::reference {

void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = 0;
      for (int64_t k = 0; k < K; ++k)
        s += double(A.p[i * A.rs + A.k_offset(k, A.cs)]) * double(B.p[B.k_offset(k, B.rs) + j * B.cs]);
      float& c = C[i * ldc + j];
      c = accumulate ? float(c + s) : float(s);
    }
}

}  // namespace eo::reference
