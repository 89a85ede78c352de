// f32 fully connected layer, forward and backward, as PyTorch's nn.Linear.
//
// x: (N, in)  w: (out, in)  b: (out,) or null  y: (N, out)
//   y = x w^T + b;   dx = dy w;   dw += dy^T x;   db += sum_n dy
// Parameter gradients accumulate (+=), the input gradient is assigned. All three products go
// through eo::sgemm, whose per-element summation order does not depend on the thread schedule,
// so the results are deterministic.
#pragma once
#include <cstdint>

namespace eo {

void linear_forward(int64_t N, int64_t in, int64_t out, const float* x, const float* w,
                    const float* b, float* y);
// dw (+=), db (+=, may be null), dx (=, may be null to skip the input gradient).
void linear_backward(int64_t N, int64_t in, int64_t out, const float* dy, const float* x,
                     const float* w, float* dw, float* db, float* dx);

}  // namespace eo
