// The per-run loops of training batch norm (batchnorm.h), one set per ISA path (the same loops,
// loops.inc, compiled with each path's flags). A call covers nc consecutive channels of one image:
// nc contiguous runs of n values, run c with its own statistics (arrays indexed by c):
//
//   sums        s1[c] += sum(x - k[c]), s2[c] += sum((x - k[c])^2)
//   apply       y = act(z (+ r)),  z = (x - mean[c]) * scale[c] + shift[c]
//   grad_sums   sg[c] += sum(g), sgx[c] += sum(g * (x - mean[c])),  g = dy * act'(u)
//   grad_apply  dx = fa[c] * (g - mg[c]) - fk[c] * (x - mean[c]),  dres = g (when dres is not null)
//
// (One call per block, not per plane: late MobileNet stages have planes of 4 or 16 values.)
//
// Flat forms of the forward, for planes under 64 values (4x4, 2x2), where per-channel runs are
// too short to vectorize: the block's nc*n values as one run, every value with its channel's
// constants expanded per value (kx, mx, sx, hx: arrays of the run's length, built once per block
// by the caller), the sums accumulated per value in float (a1, a2: the caller folds them into its
// per-channel double totals). The backward has the same two (per-channel runs of 16 or 4 values
// left its sums a scalar chain per channel):
//
//   sums_flat        a1 += x - kx, a2 += (x - kx)^2
//   apply_flat       y = act(z (+ r)),  z = (x - mx) * sx + hx
//   grad_sums_flat   a1 += g, a2 += g * (x - mx)
//   grad_apply_flat  dx = fax * (g - mgx) - fkx * (x - mx),  dres = g (when dres is not null)
//
// u is z recomputed by the same expression as apply, or, when y is not null, the forward's output
// (relu / relu6 after a residual: their derivative is a test on the output). Outputs (y, dx, dres,
// a1, a2) must not overlap an input: the loops are compiled with restrict pointers, so they
// vectorize without run-time overlap checks (GCC gave up on the flat backward's nine pointers
// and left it scalar for every activation but none). act: BnAct values
// (batchnorm.h). Sums run in float lanes folded into the double totals every 128 values per lane
// (sums: two vector chains of 64 each, their lanes added pairwise before the fold).
// Plain C declarations: included by ISA files.
#pragma once
#include <stddef.h>

namespace eo {

typedef void (*f32_bn_sums_fn)(const float* x, size_t n, size_t nc, const float* k, double* s1,
                               double* s2);
typedef void (*f32_bn_apply_fn)(const float* x, const float* r, float* y, size_t n, size_t nc,
                                const float* mean, const float* scale, const float* shift, int act);
typedef void (*f32_bn_grad_sums_fn)(const float* dy, const float* x, const float* y, size_t n,
                                    size_t nc, const float* mean, const float* scale,
                                    const float* shift, int act, double* sg, double* sgx);
typedef void (*f32_bn_grad_apply_fn)(const float* dy, const float* x, const float* y, size_t n,
                                     size_t nc, const float* mean, const float* scale,
                                     const float* shift, int act, const float* fa, const float* mg,
                                     const float* fk, float* dx, float* dres);

typedef void (*f32_bn_sums_flat_fn)(const float* x, size_t e, const float* kx, float* a1, float* a2);
typedef void (*f32_bn_apply_flat_fn)(const float* x, const float* r, float* y, size_t e, const float* mx,
                                     const float* sx, const float* hx, int act);
typedef void (*f32_bn_grad_sums_flat_fn)(const float* dy, const float* x, const float* y, size_t e,
                                         const float* mx, const float* sx, const float* hx, int act,
                                         float* a1, float* a2);
typedef void (*f32_bn_grad_apply_flat_fn)(const float* dy, const float* x, const float* y, size_t e,
                                          const float* mx, const float* sx, const float* hx, int act,
                                          const float* fax, const float* mgx, const float* fkx, float* dx,
                                          float* dres);

#define EO_F32_BN_DECLARE(isa)                                                                    \
  void f32_bn_sums__##isa(const float* x, size_t n, size_t nc, const float* k, double* s1,       \
                          double* s2);                                                           \
  void f32_bn_apply__##isa(const float* x, const float* r, float* y, size_t n, size_t nc,        \
                           const float* mean, const float* scale, const float* shift, int act);  \
  void f32_bn_grad_sums__##isa(const float* dy, const float* x, const float* y, size_t n,        \
                               size_t nc, const float* mean, const float* scale,                 \
                               const float* shift, int act, double* sg, double* sgx);            \
  void f32_bn_grad_apply__##isa(const float* dy, const float* x, const float* y, size_t n,       \
                                size_t nc, const float* mean, const float* scale,                \
                                const float* shift, int act, const float* fa, const float* mg,   \
                                const float* fk, float* dx, float* dres);                 \
  void f32_bn_sums_flat__##isa(const float* x, size_t e, const float* kx, float* a1, float* a2);  \
  void f32_bn_apply_flat__##isa(const float* x, const float* r, float* y, size_t e,              \
                                const float* mx, const float* sx, const float* hx, int act);      \
  void f32_bn_grad_sums_flat__##isa(const float* dy, const float* x, const float* y, size_t e,    \
                                    const float* mx, const float* sx, const float* hx, int act,   \
                                    float* a1, float* a2);                                        \
  void f32_bn_grad_apply_flat__##isa(const float* dy, const float* x, const float* y, size_t e,   \
                                     const float* mx, const float* sx, const float* hx, int act,  \
                                     const float* fax, const float* mgx, const float* fkx,        \
                                     float* dx, float* dres);
EO_F32_BN_DECLARE(scalar)
EO_F32_BN_DECLARE(avx2)
EO_F32_BN_DECLARE(avx512)
#undef EO_F32_BN_DECLARE

}  // namespace eo
