// int8 pooling on u8 NHWC tensors.
//
//   max pool:     y = max over the window's in-bounds taps. Quantization is monotonic, so the
//                 output keeps the input's (scale, zero point) and the result is exact.
//   average pool: acc = sum over in-bounds taps of (x - in_zp) (padding is real 0), divided by
//                 d = KH*KW (count_include_pad) or the number of in-bounds taps, folded into the
//                 requantization: y = qs8_requantize(acc, scale[d-1], out_zp, qmin, qmax) with
//                 scale[d-1] = s_in / (s_out * d) in float32 (one entry per d).
//   global average pool: the same with d = H*W: y[n, c] = qs8_requantize(sum_hw x - HW*in_zp, ...)
//                 (onnxruntime's QLinearGlobalAveragePool).
//
// Rounding is qs8_requantize's (half to even). Accumulators: |acc| <= 255 * taps, exact in int32.
#pragma once
#include <cstdint>

namespace eo {

struct Qs8PoolShape {
  int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0;
  int64_t out_h(int64_t h) const { return (h + 2 * ph - kh) / sh + 1; }
  int64_t out_w(int64_t w) const { return (w + 2 * pw - kw) / sw + 1; }
};

// x: (N, H, W, C) -> y: (N, OH, OW, C). Every window must hold at least one in-bounds tap
// (padding < kernel, as PyTorch requires).
void qs8_maxpool2d(const Qs8PoolShape& s, int64_t N, int64_t H, int64_t W, int64_t C,
                   const uint8_t* x, uint8_t* y);
// scale: KH*KW entries, indexed by divisor - 1.
void qs8_avgpool2d(const Qs8PoolShape& s, bool count_include_pad, int64_t N, int64_t H, int64_t W,
                   int64_t C, const uint8_t* x, int32_t in_zp, const float* scale,
                   int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y);
// x: (N, HW, C) -> y: (N, C).
void qs8_global_avgpool2d(int64_t N, int64_t HW, int64_t C, const uint8_t* x, int32_t in_zp,
                          float scale, int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y);

}  // namespace eo
