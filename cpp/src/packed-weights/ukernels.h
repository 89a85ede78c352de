// Stored-weight conversion micro-kernels for the runtime's packed-weight GEMM (packed_weights.h):
// weights kept compact (f16, or s8 whose per-output-channel scale is applied in the GEMM
// epilogue) are widened to f32 a block of packed panels at a time, right before the f32
// micro-kernel reads them.
//
//   f16_to_f32:  dst[i] = (float) src[i]      IEEE binary16 -> binary32, exact (subnormals, inf, NaN)
//   s8_to_f32:   dst[i] = (float) src[i]      exact
//   s4_to_f32, s2_to_f32:  dst[i] = (float) code(first + i) of a bit-packed code stream: code t
//                at bits [t*b, (t+1)*b) counted LSB first from packed[0], b-bit two's complement
//                (the lowbit/lowbit.h code layout, read as one stream)
//   s1_to_f32:   the same for 1-bit codes, bit 1 = +1, bit 0 = -1 (binary weights)
//
// Contiguous arrays of n elements; no alignment required. Plain C declarations only: this header
// is included by ISA-specific files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*f16_to_f32_fn)(const uint16_t* src, float* dst, size_t n);
typedef void (*s8_to_f32_fn)(const int8_t* src, float* dst, size_t n);
typedef void (*lowbit_to_f32_fn)(const uint8_t* packed, int64_t first, float* dst, size_t n);

void f16_to_f32__scalar(const uint16_t* src, float* dst, size_t n);
void f16_to_f32__avx2(const uint16_t* src, float* dst, size_t n);
void f16_to_f32__avx512(const uint16_t* src, float* dst, size_t n);
void s8_to_f32__scalar(const int8_t* src, float* dst, size_t n);
void s8_to_f32__avx2(const int8_t* src, float* dst, size_t n);
void s8_to_f32__avx512(const int8_t* src, float* dst, size_t n);

void s4_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s4_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s4_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s2_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s2_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s2_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s1_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s1_to_f32__avx2(const uint8_t* packed, int64_t first, float* dst, size_t n);
void s1_to_f32__avx512(const uint8_t* packed, int64_t first, float* dst, size_t n);

static inline float binary_stream_code(const uint8_t* packed, int64_t t) {
  return ((packed[t >> 3] >> (t & 7)) & 1) ? 1.f : -1.f;
}

// Code t of a b-bit stream (the scalar path, and the head / tail of the SIMD ones).
static inline int lowbit_stream_code(const uint8_t* packed, int64_t t, int b) {
  const int64_t bit = t * b;
  const int v = (packed[bit >> 3] >> (bit & 7)) & ((1 << b) - 1);
  return v >= (1 << (b - 1)) ? v - (1 << b) : v;
}

// One binary16 value to binary32 (the scalar path and the reference of the SIMD ones).
float f16_to_f32_value(uint16_t h);

}  // namespace eo
