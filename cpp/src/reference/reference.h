// Plain reference kernels: the slow, obviously-correct loops every fast path is tested against.
#pragma once
#include <cstdint>

#include "f32-conv2d/conv2d.h"
#include "f32-gemm/gemm.h"

namespace eo::reference {

// Triple loop with double accumulation.
void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate);

}  // namespace eo::reference

namespace eo::reference {

// Direct 7-loop convolution with double accumulation; same shapes and gradient policy as
// f32-conv2d/conv2d.h (dw, db +=; dx =; db and dx may be null).
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
void conv2d_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                     float* dw, float* db, float* dx);

}  // namespace eo::reference

namespace eo::reference {

// int8 GEMM (see qs8-gemm/gemm.h): a (M x K) u8 row stride lda, b (K x N) s8 row stride ldb,
// c (M x N) u8/s8 row stride ldc. Triple loop with int64 accumulation of (a - a_zp) * b + bias
// (bias may be nullptr), then the shared qs8_requantize. The caller keeps the accumulator in
// int32 range (see qs8_accumulator_fits).
void qs8_gemm(int64_t M, int64_t N, int64_t K, const uint8_t* a, int64_t lda, int32_t a_zp,
              const int8_t* b, int64_t ldb, const int32_t* bias, const float* scale,
              int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* c, int64_t ldc);

}  // namespace eo::reference

namespace eo::reference {

// data/validate.h: index of the first NaN / +-Inf of x, of the first label outside
// [0, num_classes); -1 when there is none.
int64_t first_nonfinite(const float* x, int64_t n);
int64_t first_label_outside(const int64_t* y, int64_t n, int64_t num_classes);

}  // namespace eo::reference
