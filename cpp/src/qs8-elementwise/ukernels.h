// int8 elementwise micro-kernels on u8 tensors with per-tensor (scale, zero point).
//
// add: both inputs are rescaled to the output grid in float32 with two fused multiply-adds,
//
//   y = clamp(rint(fma(a, a_scale, fma(b, b_scale, offset))), qmin, qmax)
//
// a_scale = s_a / s_y, b_scale = s_b / s_y, offset = z_y - (a_scale z_a + b_scale z_b), all float32
// (edgeopt.quant.add_scales): onnxruntime's QLinearAdd, term for term, so an exported model adds
// to the same bytes. Each fma rounds once; rint rounds half to even (requantize.h).
//
// channel_scale (squeeze-excitation's x * s[n, c]): y = qs8_requantize_zp_in_float((x - x_zp) *
// sc[c], scale, y_zp, qmin, qmax), sc[c] = s_q[c] - s_zp precomputed per image, scale = s_x * s_s /
// s_y: onnxruntime's QLinearMul, whose zero point is added in float32 before the rounding
// (requantize.h). |(x - x_zp) * sc| <= 255 * 255: exact.
//
// Kernels trust their inputs. Plain C only.
#pragma once
#include <math.h>
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct qs8_add_params {
  float a_scale, b_scale, offset;
  int32_t qmin, qmax;
};

// What the kernels assume of an add's parameters (the op builders check it).
#define QS8_ADD_PARAMS_RULE "scales must be finite and > 0, the offset finite, 0 <= qmin <= qmax <= 255"
static inline int qs8_add_params_valid(const struct qs8_add_params* p) {
  return isfinite(p->a_scale) && p->a_scale > 0.0f && isfinite(p->b_scale) && p->b_scale > 0.0f &&
         isfinite(p->offset) && 0 <= p->qmin && p->qmin <= p->qmax && p->qmax <= 255;
}

struct qs8_channel_scale_params {
  int32_t x_zp;
  float scale;
  int32_t y_zp, qmin, qmax;
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
