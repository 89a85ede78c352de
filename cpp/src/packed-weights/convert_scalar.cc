#include <string.h>

#include "packed-weights/ukernels.h"

namespace eo {

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits. Normal numbers re-bias the exponent
// (+112) and shift the mantissa into place; subnormals (exponent 0) are normalised by shifting the
// mantissa up until its leading 1 reaches the implicit position; exponent 31 is inf / NaN (the
// NaN payload is kept, quieted like the hardware conversion does).
float f16_to_f32_value(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
  if (exp == 0x1f) {
    bits = sign | 0x7f800000u | (man << 13) | (man ? 0x00400000u : 0u);
  } else if (exp != 0) {
    bits = sign | ((exp + 112u) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;
  } else {
    exp = 113;  // 2^-14 = the subnormal scale, as a binary32 exponent before normalising
    while (!(man & 0x400u)) {
      man <<= 1;
      --exp;
    }
    bits = sign | (exp << 23) | ((man & 0x3ffu) << 13);
  }
  float f;
  memcpy(&f, &bits, 4);
  return f;
}

void f16_to_f32__scalar(const uint16_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = f16_to_f32_value(src[i]);
}

void s8_to_f32__scalar(const int8_t* src, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = (float)src[i];
}

void s4_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, 4);
}

void s1_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = binary_stream_code(packed, first + (int64_t)i);
}

void s2_to_f32__scalar(const uint8_t* packed, int64_t first, float* dst, size_t n) {
  for (size_t i = 0; i < n; ++i) dst[i] = (float)lowbit_stream_code(packed, first + (int64_t)i, 2);
}

}  // namespace eo
