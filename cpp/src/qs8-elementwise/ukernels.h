// int8 elementwise micro-kernels on u8 tensors with per-tensor (scale, zero point).
//
// add (TFLite's fixed-point add): both inputs move to a common scale with 20 bits of headroom,
// are added exactly, and the sum is requantized once to the output scale:
//
//   a' = R((a - a_zp) << 20, a_mult, a_shift)        R(v, m, s) = ((int64)v*m + 2^(30+s)) >> (31+s)
//   b' = R((b - b_zp) << 20, b_mult, b_shift)
//   y  = qs8_requantize(a' + b', out_mult, out_shift, out_zp, qmin, qmax)
//
// with real multipliers a_mult*2^-(31+a_shift) = s_a / (2 max(s_a, s_b)) (<= 1/2, same for b) and
// out = 2 max(s_a, s_b) / (2^20 s_y). |a - a_zp| << 20 < 2^28 and every Q31 factor is < 1, so
// |a'| + |b'| < 2^29: no overflow.
//
// channel_scale (squeeze-excitation's x * s[n, c]): y = qs8_requantize((x - x_zp) * sc[c], mult,
// shift, y_zp, qmin, qmax), sc[c] = s_q[c] - s_zp precomputed per image, real multiplier
// s_x * s_s / s_y. |(x - x_zp) * sc| <= 255 * 255: exact.
//
// R and qs8_requantize round half up (toward +inf). Kernels trust their inputs. Plain C only.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct qs8_add_params {
  int32_t a_zp, a_mult, a_shift;
  int32_t b_zp, b_mult, b_shift;
  int32_t out_mult, out_shift, out_zp, qmin, qmax;
};

struct qs8_channel_scale_params {
  int32_t x_zp, mult, shift, y_zp, qmin, qmax;
};

// y[i] = add(a[i], b[i]) for i < n (y may alias a or b).
typedef void (*qs8_add_ukernel_fn)(size_t n, const uint8_t* a, const uint8_t* b,
                                   const struct qs8_add_params* p, uint8_t* y);
// y[p * C + c] = channel_scale(x[p * C + c], sc[c]) for p < npix, c < C (y may alias x).
typedef void (*qs8_channel_scale_ukernel_fn)(size_t npix, size_t C, const uint8_t* x,
                                             const int32_t* sc,
                                             const struct qs8_channel_scale_params* p, uint8_t* y);

void qs8_add_ukernel__scalar(size_t n, const uint8_t* a, const uint8_t* b,
                             const struct qs8_add_params* p, uint8_t* y);
void qs8_add_ukernel__avx512(size_t n, const uint8_t* a, const uint8_t* b,
                             const struct qs8_add_params* p, uint8_t* y);
void qs8_channel_scale_ukernel__scalar(size_t npix, size_t C, const uint8_t* x, const int32_t* sc,
                                       const struct qs8_channel_scale_params* p, uint8_t* y);
void qs8_channel_scale_ukernel__avx512(size_t npix, size_t C, const uint8_t* x, const int32_t* sc,
                                       const struct qs8_channel_scale_params* p, uint8_t* y);

}  // namespace eo
