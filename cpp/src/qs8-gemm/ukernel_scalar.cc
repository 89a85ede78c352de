// Portable int8 GEMM: 4 x 16 register tile over the c4-packed panels, one multiply-add per MAC.
#include "qs8-gemm/requantize.h"
#include "qs8-gemm/ukernels.h"

namespace eo {

void qs8_gemm_ukernel_4x16c4__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                     const int8_t* pb, size_t panel_stride,
                                     const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 16, pb += panel_stride) {
    const size_t nc = n - j0 < 16 ? n - j0 : 16;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      int32_t acc[4][16];
      for (size_t i = 0; i < 4; ++i)
        for (size_t j = 0; j < 16; ++j) acc[i][j] = p->adj[j0 + j];
      for (size_t kk = 0; kk < k; ++kk) {
        const int8_t* b = pb + (kk >> 2) * 64 + (kk & 3);
        for (size_t i = 0; i < mc; ++i) {
          const int32_t ai = a[(i0 + i) * lda + kk];
          // unsigned wrap-around = the int32 modulo-2^32 arithmetic the SIMD paths do
          for (size_t j = 0; j < 16; ++j)
            acc[i][j] = (int32_t)((uint32_t)acc[i][j] + (uint32_t)(ai * b[j * 4]));
        }
      }
      for (size_t i = 0; i < mc; ++i)
        for (size_t j = 0; j < nc; ++j)
          c[(i0 + i) * ldc + j0 + j] = (uint8_t)qs8_requantize(
              acc[i][j], p->multiplier[j0 + j], p->shift[j0 + j], p->out_zp, p->qmin, p->qmax);
    }
  }
}

// 4-bit weights (c4x2): the nibble of k sign-extended, the same accumulation (no scratch).
void qs8_gemm4_ukernel_4x16c4x2__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                        const int8_t* pb, size_t panel_stride,
                                        const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                        int8_t* scratch) {
  (void)scratch;
  for (size_t j0 = 0; j0 < n; j0 += 16, pb += panel_stride) {
    const size_t nc = n - j0 < 16 ? n - j0 : 16;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      int32_t acc[4][16];
      for (size_t i = 0; i < 4; ++i)
        for (size_t j = 0; j < 16; ++j) acc[i][j] = p->adj[j0 + j];
      for (size_t kk = 0; kk < k; ++kk) {
        const uint8_t* b = (const uint8_t*)pb + (kk >> 3) * 64 + (kk & 3);
        const unsigned sh = (kk >> 2) & 1 ? 4 : 0;
        for (size_t i = 0; i < mc; ++i) {
          const int32_t ai = a[(i0 + i) * lda + kk];
          for (size_t j = 0; j < 16; ++j) {
            const int32_t w = (int32_t)((b[j * 4] >> sh) & 0x0F) - ((b[j * 4] >> sh) & 0x08 ? 16 : 0);
            acc[i][j] = (int32_t)((uint32_t)acc[i][j] + (uint32_t)(ai * w));
          }
        }
      }
      for (size_t i = 0; i < mc; ++i)
        for (size_t j = 0; j < nc; ++j)
          c[(i0 + i) * ldc + j0 + j] = (uint8_t)qs8_requantize(
              acc[i][j], p->multiplier[j0 + j], p->shift[j0 + j], p->out_zp, p->qmin, p->qmax);
    }
  }
}

}  // namespace eo
