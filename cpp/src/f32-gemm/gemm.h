// f32 GEMM: C (M x N) = A (M x K) * B (K x N), or C += A * B.
//
// A and B are strided views, so transposed operands cost nothing extra to describe: element (r, c)
// of a view is p[r*rs + c*cs]. The driver packs cache-sized blocks of A and B into register-tile
// panels and runs the active ISA's micro-kernel over them (BLIS-style blocking: a KC x NC block of
// B stays in L2, an MR x KC panel of A and a KC x NR panel of B stream through L1).
#pragma once
#include <cstddef>
#include <cstdint>

namespace eo {

struct MatRef {
  const float* p;
  int64_t rs, cs;  // row and column strides, in elements
};

// A matrix stored row-major with leading dimension ld.
inline MatRef row_major(const float* p, int64_t ld) { return {p, ld, 1}; }
// The transpose of a matrix stored row-major with leading dimension ld.
inline MatRef transposed(const float* p, int64_t ld) { return {p, 1, ld}; }

// C has row stride ldc (columns contiguous). parallel=false keeps the call on this thread: use it
// inside an outer parallel loop (see the scratch rule in common/parallel.h).
void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate, bool parallel);

}  // namespace eo
