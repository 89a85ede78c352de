// Stored-weight conversion micro-kernels for the runtime's packed-weight GEMM (packed_weights.h):
// weights kept compact (f16, or s8 whose per-output-channel scale is applied in the GEMM
// epilogue) are widened to f32 a block of packed panels at a time, right before the f32
// micro-kernel reads them.
//
//   f16_to_f32:  dst[i] = (float) src[i]      IEEE binary16 -> binary32, exact (subnormals, inf, NaN)
//   s8_to_f32:   dst[i] = (float) src[i]      exact
//
// Contiguous arrays of n elements; no alignment required. Plain C declarations only: this header
// is included by ISA-specific files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*f16_to_f32_fn)(const uint16_t* src, float* dst, size_t n);
typedef void (*s8_to_f32_fn)(const int8_t* src, float* dst, size_t n);

void f16_to_f32__scalar(const uint16_t* src, float* dst, size_t n);
void f16_to_f32__avx2(const uint16_t* src, float* dst, size_t n);
void f16_to_f32__avx512(const uint16_t* src, float* dst, size_t n);
void s8_to_f32__scalar(const int8_t* src, float* dst, size_t n);
void s8_to_f32__avx2(const int8_t* src, float* dst, size_t n);
void s8_to_f32__avx512(const int8_t* src, float* dst, size_t n);

// One binary16 value to binary32 (the scalar path and the reference of the SIMD ones).
float f16_to_f32_value(uint16_t h);

}  // namespace eo
