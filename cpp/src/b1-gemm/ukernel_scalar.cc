// Portable binary GEMM: one 64-bit XOR + popcount per 64 multiply-adds.
#include <stddef.h>
#include <stdint.h>

#include "b1-gemm/ukernels.h"

namespace eo {

void b1_gemm_ukernel_4x8__scalar(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                 const uint64_t* b, int32_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 8, b += kw * 8) {
    const size_t nc = n - j0 < 8 ? n - j0 : 8;
    for (size_t i = 0; i < m; ++i) {
      const uint64_t* ai = a + i * lda;
      int32_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (size_t w = 0; w < kw; ++w)
        for (size_t j = 0; j < 8; ++j) acc[j] += __builtin_popcountll(ai[w] ^ b[w * 8 + j]);
      for (size_t j = 0; j < nc; ++j) c[i * ldc + j0 + j] = acc[j];
    }
  }
}

}  // namespace eo
