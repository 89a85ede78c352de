// Binary (1-bit) GEMM micro-kernels: XNOR-popcount over bit-packed {-1, +1} operands.
//
// With +1 stored as bit 1 and -1 as bit 0, the product of two such values is +1 where the bits
// agree and -1 where they differ, so a dot product over K bits is
//     dot = K - 2 * popcount(a XOR b)
// and 64 multiply-adds cost one XOR and one popcount. Kernels return the popcount part only:
//     c[i*ldc + j] = sum_{w < kw} popcount(a[i*lda + w] XOR b_j[w])
// (the driver turns it into dot, adds padding corrections and scales). Bits past K must be zero in
// both operands so they never differ.
//
// A: m rows of kw 64-bit words (row stride lda words), each word broadcast against a panel.
// B: panels of 8 columns, word-major: column j of panel q, word w at b[q*kw*8 + w*8 + j%8]
// (one zmm of 8 words per k step for vpopcntq; zero columns pad the last panel). n columns of c
// are written. Kernels trust their inputs. Plain C declarations only.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*b1_gemm_ukernel_fn)(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                   const uint64_t* b, int32_t* c, size_t ldc);

// Scalar: __builtin_popcountll. AVX2: nibble lookup (vpshufb) + vpsadbw. AVX-512: vpopcntq.
void b1_gemm_ukernel_4x8__scalar(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                 const uint64_t* b, int32_t* c, size_t ldc);
void b1_gemm_ukernel_4x8__avx2(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                               const uint64_t* b, int32_t* c, size_t ldc);
void b1_gemm_ukernel_4x16__avx512vpopcntdq(size_t m, size_t n, size_t kw, const uint64_t* a,
                                           size_t lda, const uint64_t* b, int32_t* c, size_t ldc);

}  // namespace eo
