#include "f32-activation/activation.h"

#include <Eigen/Core>
#include <cmath>

#include "common/parallel.h"
#include "f32-activation/formulas.h"

namespace eo {
namespace {

// Elements per task: big enough that scheduling is noise against a memory-bound loop.
constexpr int64_t kGrain = 32768;

template <class F>
void unary(const float* x, float* y, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

template <class F>
void binary(const float* a, const float* b, float* y, int64_t n, F f) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = f(a[i], b[i]);
  });
}

}  // namespace

void relu_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return act::relu(v); });
}
void relu_backward(const float* dy, const float* y, float* dx, int64_t n) {
  binary(dy, y, dx, n, [](float g, float v) { return act::relu_grad_from_output(g, v); });
}

void relu6_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return act::relu6(v); });
}
void relu6_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return act::relu6_grad(g, v); });
}

void hardswish_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return act::hardswish(v); });
}
void hardswish_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return act::hardswish_grad(g, v); });
}

void hardsigmoid_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return act::hardsigmoid(v); });
}
void hardsigmoid_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return act::hardsigmoid_grad(g, v); });
}

void sigmoid_forward(const float* x, float* y, int64_t n) {
  // Eigen's packet exp vectorizes; std::exp in a loop stays scalar (a libm call per element).
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    Eigen::Map<Eigen::ArrayXf>(y + b, e - b) =
        (1.f + (-Eigen::Map<const Eigen::ArrayXf>(x + b, e - b)).exp()).inverse();
  });
}
void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) {
  binary(dy, y, dx, n, [](float g, float v) { return g * (1.f - v) * v; });
}

}  // namespace eo
