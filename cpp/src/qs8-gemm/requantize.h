// Fixed-point requantization of an int32 accumulator to 8 bits (TFLite's single-rounding mode):
//
//   y = clamp(((int64)acc * multiplier + 2^(30 + shift)) >> (31 + shift) + out_zp, qmin, qmax)
//
// i.e. acc times the real scale multiplier * 2^-(31 + shift), rounded half up (toward +inf), with
// one rounding instead of gemmlowp's two. The multiplier is a Q31 fixed-point number (typically
// in [2^30, 2^31) for a scale in [0.5, 1) * 2^-shift), shift in [0, 31] is a right shift, so scales
// below 1 are covered, which is every requantization scale of a CNN (s_a * s_w / s_out). The
// product fits in 64 bits for any int32 operands: |acc * multiplier| <= 2^62, rounding < 2^62.
// Clamping to [qmin, qmax] also implements a fused ReLU (qmin = out_zp) or ReLU6.
//
// Every int8 path (scalar, AVX2, VNNI, AMX) and the reference compute exactly this, bit for bit.
// Plain C: included by ISA-specific files.
#pragma once
#include <stdint.h>

namespace eo {

static inline int32_t qs8_requantize(int32_t acc, int32_t multiplier, int32_t shift, int32_t out_zp,
                                     int32_t qmin, int32_t qmax) {
  const int64_t p = (int64_t)acc * multiplier + ((int64_t)1 << (30 + shift));
  int64_t y = (p >> (31 + shift)) + out_zp;  // arithmetic shift: floor division by 2^(31+shift)
  if (y < qmin) y = qmin;
  if (y > qmax) y = qmax;
  return (int32_t)y;
}

}  // namespace eo
