// x, y, dy, dx: (n) — any shape, flattened.
//
// Pointwise activations and their gradients, with PyTorch's formulas and boundary conventions:
//   relu        y = max(x, 0)                  dx = dy * (y > 0)              (from the output)
//   relu6       y = min(max(x, 0), 6)          dx = dy * (0 < x < 6)
//   hardswish   y = x * relu6(x + 3) / 6       dx = 0 (x <= -3), dy * (x/3 + 1/2) (-3 < x < 3),
//                                                   dy (x >= 3)   (PyTorch 2.x: both ends open,
//                                                   so the gradient is 0 and 1 at the kinks)
//   hardsigmoid y = relu6(x + 3) / 6           dx = dy / 6 (-3 < x < 3), else 0
//   sigmoid     y = 1 / (1 + exp(-x))          dx = dy * (1 - y) * y          (from the output)
// NaN inputs propagate as in PyTorch. Input gradients are assigned. Parallel over blocks of
// elements; the results are elementwise, so independent of the thread count.
#pragma once
#include <cstdint>

namespace eo {

void relu_forward(const float* x, float* y, int64_t n);
void relu_backward(const float* dy, const float* y, float* dx, int64_t n);

void relu6_forward(const float* x, float* y, int64_t n);
void relu6_backward(const float* dy, const float* x, float* dx, int64_t n);

void hardswish_forward(const float* x, float* y, int64_t n);
void hardswish_backward(const float* dy, const float* x, float* dx, int64_t n);

void hardsigmoid_forward(const float* x, float* y, int64_t n);
void hardsigmoid_backward(const float* dy, const float* x, float* dx, int64_t n);

void sigmoid_forward(const float* x, float* y, int64_t n);
void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n);

}  // namespace eo
