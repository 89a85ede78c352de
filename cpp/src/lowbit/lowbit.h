// Low-bit weights: 1-, 2- and 4-bit integer codes packed into bytes, unpacked to int8 or fp32, and
// an fp32 GEMM that unpacks 2/4-bit weights straight into the sgemm micro-kernel's packed panels.
// No compile path reaches these yet: the quantization issue (13: 4-bit / 2-bit / binary weights on
// real kernels) owns multi-bit weights and gives them a lowering; until then only tests call them.
//
// Codes: 1 bit: {-1, +1} (bit 0 = -1, bit 1 = +1, as in b1-gemm); 2 and 4 bits: two's complement
// in [-2^(b-1), 2^(b-1) - 1]. Real weight = scale[row] * code (symmetric per-output-channel
// quantization; multi-bit weights of the survey's "binarized and multi-bit" rows).
// Layout: a (rows, k) matrix, each row in ceil(k * bits / 8) bytes, code t at bits
// [t*bits, (t+1)*bits) of the row counted LSB first (byte t*bits/8, shift t*bits%8); unused high
// bits of a row's last byte are zero. 8/bits codes per byte: 16x (2-bit: 16x, 4-bit: 8x) smaller
// than fp32.
//
// Why unpack while packing: sgemm copies A into register-tile panels anyway (f32-gemm/gemm.h), so
// decoding the codes in that copy costs nothing extra and the full fp32 weight matrix never exists.
#pragma once
#include <cstdint>
#include <vector>

#include "f32-gemm/gemm.h"
#include "qs8-gemm/gemm.h"

namespace eo {

inline int64_t lowbit_row_bytes(int64_t k, int bits) { return (k * bits + 7) / 8; }
inline bool lowbit_bits_supported(int bits) { return bits == 1 || bits == 2 || bits == 4; }

// q: (rows, k) codes, each in range for `bits` (caller validates; for 1 bit, -1 or +1).
void lowbit_pack(int64_t rows, int64_t k, int bits, const int8_t* q, uint8_t* packed);
void lowbit_unpack_s8(int64_t rows, int64_t k, int bits, const uint8_t* packed, int8_t* q);
// out[r][t] = scale[r] * code[r][t]
void lowbit_unpack_f32(int64_t rows, int64_t k, int bits, const uint8_t* packed,
                       const float* scale, float* out);

// C (M x N, row stride ldc) = (scale * codes) (M x K) * B (K x N): weights as the A operand, e.g.
// a conv's (Cout, Cin*KH*KW) times its im2col columns. parallel=false keeps it on this thread.
void lowbit_sgemm(int64_t M, int64_t N, int64_t K, int bits, const uint8_t* packed,
                  const float* scale, MatRef B, float* C, int64_t ldc, bool parallel);

// Codes of an (N, K) OI weight matrix as qs8-gemm's packed B operand (K x N), for integer
// inference with low-bit weights (requantization scales then carry the per-channel scale).
Qs8PackedB lowbit_qs8_pack_b(int64_t N, int64_t K, int bits, const uint8_t* packed);

}  // namespace eo

namespace eo::reference {

// Bit-by-bit decoding and a double-accumulation product (cpp/src/reference/lowbit.cc).
int lowbit_code(const uint8_t* row, int64_t t, int bits);
void lowbit_sgemm(int64_t M, int64_t N, int64_t K, int bits, const uint8_t* packed,
                  const float* scale, const float* b, float* c);  // b (K, N), c (M, N) row-major

}  // namespace eo::reference
