// Plain reference kernels: the slow, obviously-correct loops every fast path is tested against.
#pragma once
#include <cstdint>

#include "f32-gemm/gemm.h"

namespace eo::reference {

// Triple loop with double accumulation.
void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate);

}  // namespace eo::reference
