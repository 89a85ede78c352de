// Portable int8 GEMM: 4 x 16 register tile over the c4-packed panels (or the 4-bit c4x2 ones,
// read nibble by nibble), one multiply-add per MAC.
#include "qs8-gemm/requantize.h"
#include "qs8-gemm/ukernels.h"

namespace eo {
namespace {

// A weight from its byte in the panel: the byte (c4), or its nibble `shift` sign-extended (c4x2).
template <int Bits>
inline int32_t weight(int8_t byte, unsigned shift) {
  if (Bits == 8) return byte;
  const int32_t u = ((uint8_t)byte >> shift) & 0x0F;
  return u - (u & 8 ? 16 : 0);
}

// Inlined into each entry point: as an out-of-line template the 8-bit path measured 12-30 %
// slower than the hand-written loop it replaced (bench_qs8_gemm.py --paths scalar).
template <int Bits>
__attribute__((always_inline)) inline void gemm_4x16(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda, const int8_t* pb,
               size_t panel_stride, const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  for (size_t j0 = 0; j0 < n; j0 += 16, pb += panel_stride) {
    const size_t nc = n - j0 < 16 ? n - j0 : 16;
    for (size_t i0 = 0; i0 < m; i0 += 4) {
      const size_t mc = m - i0 < 4 ? m - i0 : 4;
      int32_t acc[4][16];
      for (size_t i = 0; i < 4; ++i)
        for (size_t j = 0; j < 16; ++j) acc[i][j] = p->adj[j0 + j];
      for (size_t kk = 0; kk < k; ++kk) {
        const int8_t* b = pb + (Bits == 8 ? (kk >> 2) * 64 : (kk >> 3) * 64) + (kk & 3);
        const unsigned shift = Bits == 4 && ((kk >> 2) & 1) ? 4 : 0;
        for (size_t i = 0; i < mc; ++i) {
          const int32_t ai = a[(i0 + i) * lda + kk];
          // unsigned wrap-around = the int32 modulo-2^32 arithmetic the SIMD paths do
          for (size_t j = 0; j < 16; ++j)
            acc[i][j] = (int32_t)((uint32_t)acc[i][j] + (uint32_t)(ai * weight<Bits>(b[j * 4], shift)));
        }
      }
      for (size_t i = 0; i < mc; ++i)
        for (size_t j = 0; j < nc; ++j)
          c[(i0 + i) * ldc + j0 + j] = (uint8_t)qs8_requantize(
              acc[i][j], p->scale[j0 + j], p->out_zp, p->qmin, p->qmax);
    }
  }
}

}  // namespace

void qs8_gemm_ukernel_4x16c4__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                     const int8_t* pb, size_t panel_stride,
                                     const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  gemm_4x16<8>(m, n, k, a, lda, pb, panel_stride, p, c, ldc);
}

void qs8_gemm4_ukernel_4x16c4x2__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                        const int8_t* pb, size_t panel_stride,
                                        const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                        int8_t* scratch) {
  (void)scratch;  // reads the nibbles in place
  gemm_4x16<4>(m, n, k, a, lda, pb, panel_stride, p, c, ldc);
}

}  // namespace eo
