// Requantization of an int32 accumulator to 8 bits, in float32:
//
//   y = clamp(rint(float(acc) * scale), qmin - out_zp, qmax - out_zp) + out_zp
//
// float(acc) and the product round to nearest (even), rint rounds half to even. scale is the
// float32 factor s_in * s_w / s_out computed once per model (edgeopt.quant.requant_scale), in the
// order onnxruntime computes it, and this is the arithmetic of its QLinearConv / QGemm, so an
// exported QDQ model gives the same bytes. Clamping before rounding keeps any product finite and
// in int32 range; [qmin, qmax] also implements a fused ReLU (qmin = out_zp) or ReLU6.
//
// Every int8 path (scalar, AVX2, VNNI, AMX) and the reference compute exactly this, bit for bit.
// Plain C: included by ISA-specific files.
#pragma once
#include <stdint.h>

#if defined(__FAST_MATH__)
#error "qs8_round_even needs IEEE float arithmetic: build without -ffast-math"
#endif

namespace eo {

// Round half to even for |v| < 2^22: adding 1.5 * 2^23 leaves no fraction bits, so the FPU's
// round-to-nearest-even does the rounding (what cvtps2dq does in the vector kernels).
static inline float qs8_round_even(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

// The float-domain clamp and round shared by every requantization (and the integer add).
static inline int32_t qs8_round_clamp(float v, int32_t out_zp, int32_t qmin, int32_t qmax) {
  const float lo = (float)(qmin - out_zp), hi = (float)(qmax - out_zp);
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return (int32_t)qs8_round_even(v) + out_zp;
}

static inline int32_t qs8_requantize(int32_t acc, float scale, int32_t out_zp, int32_t qmin,
                                     int32_t qmax) {
  return qs8_round_clamp((float)acc * scale, out_zp, qmin, qmax);
}

// onnxruntime's QLinearMul (squeeze-excitation's x * s) adds the output zero point in float32
// before rounding: y = clamp(rint(fl(fl(float(acc) * scale) + out_zp))), two roundings, no fma.
// It differs from qs8_requantize where the product sits on a half (x.5 + an odd zero point rounds
// the other way) or within an ulp of one. The volatile keeps the compiler from fusing the two.
static inline int32_t qs8_requantize_zp_in_float(int32_t acc, float scale, int32_t out_zp,
                                                 int32_t qmin, int32_t qmax) {
  volatile float product = (float)acc * scale;
  return qs8_round_clamp(product + (float)out_zp, 0, qmin, qmax);
}

}  // namespace eo
