// The per-run loops of training batch norm (batchnorm.h), one set per ISA path (the same loops,
// loops.inc, compiled with each path's flags). A run is one (image, channel) plane of n values.
//
//   sums        s1 += sum(x - k), s2 += sum((x - k)^2)
//   apply       y = act(z (+ r)),  z = (x - mean) * scale + shift
//   grad_sums   sg += sum(g), sgx += sum(g * (x - mean)),  g = dy * act'(u)
//   grad_apply  dx = fa * (g - mg) - fk * (x - mean),  dres = g (when dres is not null)
//
// u is z recomputed by the same expression as apply, or, when y is not null, the forward's output
// (relu / relu6 after a residual: their derivative is a test on the output). act: BnAct values
// (batchnorm.h). Sums run in float lanes folded into the double totals every 128 values per lane.
// Plain C declarations: included by ISA files.
#pragma once
#include <stddef.h>

namespace eo {

typedef void (*f32_bn_sums_fn)(const float* x, size_t n, float k, double* s1, double* s2);
typedef void (*f32_bn_apply_fn)(const float* x, const float* r, float* y, size_t n, float mean,
                                float scale, float shift, int act);
typedef void (*f32_bn_grad_sums_fn)(const float* dy, const float* x, const float* y, size_t n,
                                    float mean, float scale, float shift, int act, double* sg,
                                    double* sgx);
typedef void (*f32_bn_grad_apply_fn)(const float* dy, const float* x, const float* y, size_t n,
                                     float mean, float scale, float shift, int act, float fa,
                                     float mg, float fk, float* dx, float* dres);

#define EO_F32_BN_DECLARE(isa)                                                                     \
  void f32_bn_sums__##isa(const float* x, size_t n, float k, double* s1, double* s2);             \
  void f32_bn_apply__##isa(const float* x, const float* r, float* y, size_t n, float mean,        \
                           float scale, float shift, int act);                                    \
  void f32_bn_grad_sums__##isa(const float* dy, const float* x, const float* y, size_t n,         \
                               float mean, float scale, float shift, int act, double* sg,         \
                               double* sgx);                                                      \
  void f32_bn_grad_apply__##isa(const float* dy, const float* x, const float* y, size_t n,        \
                                float mean, float scale, float shift, int act, float fa, float mg, \
                                float fk, float* dx, float* dres);
EO_F32_BN_DECLARE(scalar)
EO_F32_BN_DECLARE(avx2)
EO_F32_BN_DECLARE(avx512)
#undef EO_F32_BN_DECLARE

}  // namespace eo
