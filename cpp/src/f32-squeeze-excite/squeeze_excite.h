// Squeeze-and-excitation (MobileNetV3) forward and backward, each one call:
//   x, y, dy, dx: (N, C, HW)  w1: (S, C)  b1: (S)  w2: (C, S)  b2: (C)
//   pooled = mean_hw x                           (N, C)
//   a1 = pooled w1^T + b1,   h = relu(a1)        (N, S)
//   a2 = h w2^T + b2,        s = hardsigmoid(a2) (N, C)
//   y = x * s
// backward, from x and the small tensors the forward keeps (pooled, a1, a2, s):
//   ds = sum_hw dy * x,  da2 = ds * hardsigmoid'(a2),  dw2 += da2^T relu(a1),  db2 += sum_n da2
//   da1 = (da2 w2) * (a1 > 0),  dw1 += da1^T pooled,  db1 += sum_n da1
//   dx = dy * s + (da1 w1) / HW
// The pooling, channel scaling and FC products are the family kernels (f32-pool, f32-elementwise,
// f32-gemm); activations use the shared formulas (f32-activation/formulas.h). Parameter gradients
// accumulate (+=), dx is assigned; results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace eo {

// pooled, a1, a2, s: outputs the backward needs ((N, C), (N, S), (N, C), (N, C)).
void squeeze_excite_forward(const float* x, const float* w1, const float* b1, const float* w2,
                            const float* b2, float* y, float* pooled, float* a1, float* a2, float* s,
                            int64_t N, int64_t C, int64_t S, int64_t HW);

void squeeze_excite_backward(const float* dy, const float* x, const float* w1, const float* w2,
                             const float* pooled, const float* a1, const float* a2, const float* s,
                             float* dx, float* dw1, float* db1, float* dw2, float* db2, int64_t N,
                             int64_t C, int64_t S, int64_t HW);

}  // namespace eo
