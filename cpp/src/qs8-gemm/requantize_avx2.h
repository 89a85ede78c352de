// AVX2 form of qs8_requantize (requantize.h) for 8 lanes, shared by the AVX2 int8 GEMM and spmm
// kernels: clamped in float, rounded half to even by cvtps2dq, zero point added.
#pragma once
#include <immintrin.h>

namespace eo {

static inline __m256i qs8_requant8(__m256i x, __m256 scale, __m256 lo, __m256 hi, __m256i zp) {
  __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(x), scale);
  v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
  return _mm256_add_epi32(_mm256_cvtps_epi32(v), zp);
}

}  // namespace eo
