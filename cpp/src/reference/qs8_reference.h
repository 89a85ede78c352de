// Plain-loop references of the int8-full operators (qs8-conv2d, qs8-elementwise, qs8-pool): the
// formulas of those headers written as directly as possible (int64 accumulation, no blocking, no
// packing, no indirection), for the bit-exactness tests of every fast path.
#pragma once
#include <cstdint>

#include "qs8-conv2d/conv2d.h"
#include "qs8-elementwise/ukernels.h"
#include "qs8-pool/pool.h"

namespace eo::reference {

// x: (N, H, W, cin) u8; w: (cout, kh, kw, cin/groups) s8; bias may be nullptr; residual:
// (N, OH, OW, cout) if epi.residual; y: (N, OH, OW, cout).
void qs8_conv2d(const Qs8ConvShape& s, int64_t N, int64_t H, int64_t W, const uint8_t* x,
                int32_t in_zp, const int8_t* w, const int32_t* bias, const float* scale,
                int32_t out_zp, int32_t qmin, int32_t qmax,
                const Qs8ConvEpilogue& epi, const uint8_t* residual, uint8_t* y);

uint8_t qs8_add(uint8_t a, uint8_t b, const qs8_add_params& p);
void qs8_channel_scale(int64_t N, int64_t HW, int64_t C, const uint8_t* x, const uint8_t* s,
                       int32_t s_zp, const qs8_channel_scale_params& p, uint8_t* y);

void qs8_maxpool2d(const Qs8PoolShape& s, int64_t N, int64_t H, int64_t W, int64_t C,
                   const uint8_t* x, uint8_t* y);
void qs8_avgpool2d(const Qs8PoolShape& s, bool count_include_pad, int64_t N, int64_t H, int64_t W,
                   int64_t C, const uint8_t* x, int32_t in_zp, const float* scale,
                   int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y);

}  // namespace eo::reference
