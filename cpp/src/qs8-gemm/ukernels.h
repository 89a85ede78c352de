// int8 GEMM micro-kernels: a block of C (m x n, u8 or s8) from u8 activations and packed s8 weights.
//
//   acc[i][j] = sum_{k < K} a[i*lda + k] * B[k][j] + adj[j]          (exact int32, modulo 2^32)
//   c[i*ldc + j] = qs8_requantize(acc[i][j], scale[j], out_zp, qmin, qmax)        (requantize.h)
//
// adj[j] = bias[j] - a_zero_point * sum_k B[k][j] folds the activation zero point into the bias
// (sum_k (a - za) b = sum_k a b - za colsum), so the inner loop multiplies raw u8 by s8, which is
// what vpdpbusd and TDPBUSD do. Modulo-2^32 arithmetic gives the exact result whenever the final
// accumulator fits int32 (the driver's caller guarantees that).
//
// Packed B ("c4" = VNNI-4 layout): 16-column panels; in panel q, the 4 consecutive k of column j
// of k-group g sit at pb[q*panel_stride + g*64 + j*4 + k%4]. One k-group of a panel is 64 bytes:
// a zmm of 16 int32 lanes for vpdpbusd, and one row of an AMX B tile (16 groups = a 16 x 64-byte
// tile, loaded with stride 64). K is zero-padded to a multiple of 64 (whole AMX tiles), columns to
// a multiple of 16, so every path reads the same packed weights. A is read in place (row stride
// lda); kernels never read A past column K or row m.
//
// 4-bit B ("c4x2", weights in [-8, 7]): two k-groups share 64 bytes, byte i of k-group 2h in the
// low nibble and byte i of k-group 2h+1 in the high nibble of byte i of pair h (panel stride
// kpad*8). The VNNI and AMX kernels widen each 32-column block once per call into the caller's
// scratch (qs8_gemm4_scratch_bytes(K): room for two blocks) as c4 int8 panels (VNNI: a nibble u is (u ^ 8) - 8; AMX:
// 16 * w up to K = 65536, the sums shifted back by 4) and run the 8-bit tiles on them: the same
// result, and no 8-bit copy of more than 32 columns. With few rows the VNNI kernels read the
// panels in place instead; the scalar kernel reads the nibbles directly (no scratch).
//
// The kernel loops over the whole block itself (so AMX configures its tiles once per call); the
// driver in gemm.cc cuts C into per-thread blocks. Kernels trust their inputs. Plain C only.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct qs8_gemm_params {
  const int32_t* adj;         // n entries (padded to 16): bias - a_zero_point * column sum
  const float* scale;         // n entries (padded to 16): the float32 requantization factors
  int32_t out_zp, qmin, qmax;
};

typedef void (*qs8_gemm_ukernel_fn)(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                    const int8_t* pb, size_t panel_stride,
                                    const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);

// Implicit-GEMM form, for convolutions without an im2col copy: row i (< m) of A is ntaps pieces
// of kc bytes (kc a multiple of 4), piece t at rows[i] + tap_off[t] (the input pixel under tap t
// of output pixel i, in an input with its padding materialized); K = ntaps*kc in the packed B's k
// order. rows holds m rounded up to 8 valid pointers (the driver repeats the last row).
typedef void (*qs8_igemm_ukernel_fn)(size_t m, size_t n, size_t ntaps, size_t kc,
                                     const uint8_t* const* rows, const size_t* tap_off,
                                     const int8_t* pb, size_t panel_stride,
                                     const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
// The 4-bit forms, with their scratch.
typedef void (*qs8_gemm4_ukernel_fn)(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                     const int8_t* pb, size_t panel_stride,
                                     const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                     int8_t* scratch);
typedef void (*qs8_igemm4_ukernel_fn)(size_t m, size_t n, size_t ntaps, size_t kc,
                                      const uint8_t* const* rows, const size_t* tap_off,
                                      const int8_t* pb, size_t panel_stride,
                                      const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                      int8_t* scratch);
// Two 32-column blocks of widened panels (K rounded up to whole 64-deep AMX tiles): the block in
// use and (AMX) the next one, widened alongside.
static inline size_t qs8_gemm4_scratch_bytes(size_t k) { return 64 * ((k + 63) / 64 * 64); }

void qs8_gemm_ukernel_4x16c4__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                     const int8_t* pb, size_t panel_stride,
                                     const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
void qs8_gemm_ukernel_4x16c4__avx2(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                   const int8_t* pb, size_t panel_stride,
                                   const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
void qs8_gemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                         size_t lda, const int8_t* pb, size_t panel_stride,
                                         const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
void qs8_gemm4_ukernel_4x16c4x2__scalar(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                        const int8_t* pb, size_t panel_stride,
                                        const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                        int8_t* scratch);
void qs8_gemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t k, const uint8_t* a,
                                            size_t lda, const int8_t* pb, size_t panel_stride,
                                            const struct qs8_gemm_params* p, uint8_t* c,
                                            size_t ldc, int8_t* scratch);
void qs8_igemm4_ukernel_8x32c4x2__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                             const uint8_t* const* rows, const size_t* tap_off,
                                             const int8_t* pb, size_t panel_stride,
                                             const struct qs8_gemm_params* p, uint8_t* c,
                                             size_t ldc, int8_t* scratch);
void qs8_igemm_ukernel_8x32c4__avx512vnni(size_t m, size_t n, size_t ntaps, size_t kc,
                                          const uint8_t* const* rows, const size_t* tap_off,
                                          const int8_t* pb, size_t panel_stride,
                                          const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
void qs8_gemm_ukernel_32x32c4__amx(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                   const int8_t* pb, size_t panel_stride,
                                   const struct qs8_gemm_params* p, uint8_t* c, size_t ldc);
void qs8_gemm4_ukernel_32x32c4x2__amx(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                      const int8_t* pb, size_t panel_stride,
                                      const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                      int8_t* scratch);

}  // namespace eo
