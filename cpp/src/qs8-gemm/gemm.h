// int8 inference GEMM: C (M x N, u8 or s8) = requantize(A_u8 (M x K) * B_s8 (K x N) + bias).
//
//   acc[i][j] = sum_k (A[i][k] - a_zp) * B[k][j] + bias[j]                   exact int32
//   C[i][j]   = qs8_requantize(acc[i][j], scale[j], out_zp, qmin, qmax)
//
// A: activations, asymmetric u8 with zero point a_zp, row-major with row stride lda. For a
// convolution, rows are output pixels and columns the (im2col'd) input channels, i.e. NHWC: a 1x1
// conv consumes an NHWC activation tensor in place, M = N*H*W, K = Cin, and writes NHWC output.
// B: weights, symmetric s8 per output channel (zero point 0), packed once when the model is
// compiled (pack_b) into the micro-kernels' c4 layout (see ukernels.h), with the column sums that
// turn the activation zero point into a per-call bias correction: sum_k (a - za) b = sum_k a b -
// za colsum. One packed layout serves every path (scalar, AVX2, VNNI, AMX), so a model packs once
// whatever CPU it later runs on. Requantization: a float32 factor per output channel
// (requantize.h); qmin/qmax also apply a fused ReLU/ReLU6.
//
// Exactness: every path returns the reference's bytes provided the accumulator fits int32, which
// holds when |bias[j]| + 255 * sum_k |B[k][j]| <= 2^31 - 1 (accumulator_fits checks it; the
// bindings reject inputs that fail it).
#pragma once
#include <cstdint>
#include <vector>

#include "isa/dispatch.h"

namespace eo {

// bits 8: npad/16 panels of kpad*16 bytes, c4 layout (ukernels.h). bits 4 (values in [-8, 7]):
// the same panels at half the size, two k-groups per 64 bytes: byte i of pair h holds byte i of
// k-group 2h in its low nibble and of k-group 2h+1 in its high nibble (ukernels.h, "c4x2").
struct Qs8PackedB {
  int64_t K = 0, N = 0;
  int64_t kpad = 0, npad = 0;   // K rounded up to 64 (whole AMX tiles), N up to 16 (panels)
  int bits = 8;
  std::vector<int8_t> data;
  std::vector<int32_t> colsum;  // N: sum_k B[k][j]
  std::vector<int64_t> abssum;  // N: sum_k |B[k][j]|, for the int32 range check
  int64_t panel_stride() const { return bits == 4 ? kpad * 8 : kpad * 16; }
};

// B(k, j) = b[k*rs + j*cs]: rs = N, cs = 1 for a (K, N) array; rs = 1, cs = K for (N, K) = OI weights.
// bits 4 needs every value in [-8, 7] (std::invalid_argument otherwise).
Qs8PackedB qs8_pack_b(int64_t K, int64_t N, const int8_t* b, int64_t rs, int64_t cs, int bits = 8);

// True if the exact accumulator of every column fits int32 for any u8 A and zero point.
bool qs8_accumulator_fits(const Qs8PackedB& b, const int32_t* bias);

// This thread's buffer (64-byte aligned, reused across calls) for a 4-bit kernel's widened column
// block: qs8_gemm4_scratch_bytes(K) bytes, valid until this thread's next call; not to be held
// across a wait on a parallel loop (common/parallel.h).
int8_t* qs8_gemm4_scratch(size_t bytes);

struct Qs8Requant {
  const int32_t* bias;        // N entries, or nullptr for none
  const float* scale;         // N entries, finite and > 0
  int32_t out_zp, qmin, qmax; // u8 output: 0 <= qmin <= qmax <= 255; s8: -128 .. 127
};

// C has row stride ldc. Uses the given path (must be supported: qs8_gemm_path_supported).
// parallel=false keeps the call on this thread.
void qs8_gemm(int64_t M, const uint8_t* a, int64_t lda, int32_t a_zp, const Qs8PackedB& b,
              const Qs8Requant& rq, uint8_t* c, int64_t ldc, Qs8Path path, bool parallel);

}  // namespace eo
