// int8 elementwise operators of the int8-full runtime (u8 tensors, per-tensor scale/zero point),
// and the conversions at the graph's edges.
//
//   quantize:      f32 (N, C, H, W) -> u8 (N, H, W, C):  q = clamp(rint(x / scale) + zp, 0, 255)
//                  (rint: round half to even, IEEE float32 quotient, so numpy's
//                  np.rint(np.float32(x) / np.float32(scale)) and onnxruntime's QuantizeLinear
//                  give the same bytes)
//   dequantize:    u8 (N, H, W, C) -> f32 (N, C, H, W):  x = float(q - zp) * scale
//   add:           float32 rescale of both inputs with two fmas (ukernels.h), any two scales
//   lut:           y = table[x], a 256-entry table built from the float function and both tensors'
//                  (scale, zp): any elementwise activation (hardswish, hardsigmoid, sigmoid, relu
//                  with a new scale...) is exact by construction
//   channel_scale: y[n,h,w,c] = requantize((x - x_zp) * (s[n,c] - s_zp)) (squeeze-excitation)
//
// Large tensors are split across threads in fixed contiguous chunks.
#pragma once
#include <cstdint>

#include "isa/dispatch.h"

namespace eo {

void qs8_quantize(int64_t N, int64_t C, int64_t HW, const float* x, float scale, int32_t zp,
                  uint8_t* y);
void qs8_dequantize(int64_t N, int64_t C, int64_t HW, const uint8_t* x, float scale, int32_t zp,
                    float* y);
void qs8_add(const Qs8OpUkernels& uk, int64_t n, const uint8_t* a, const uint8_t* b,
             const qs8_add_params& p, uint8_t* y);
void qs8_lut(int64_t n, const uint8_t* x, const uint8_t* table, uint8_t* y);
// x, y: (N, HW, C); s: (N, C) u8 with zero point s_zp.
void qs8_channel_scale(const Qs8OpUkernels& uk, int64_t N, int64_t HW, int64_t C, const uint8_t* x,
                       const uint8_t* s, int32_t s_zp, const qs8_channel_scale_params& p,
                       uint8_t* y);

}  // namespace eo
