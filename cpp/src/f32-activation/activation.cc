#include "f32-activation/activation.h"

#include <cmath>

#include "common/parallel.h"

namespace eo {
namespace {

// Elements per task: big enough that scheduling is noise against a memory-bound loop.
constexpr int64_t kGrain = 32768;

// min/max written as comparisons that let NaN through (x < 0 is false for NaN), like PyTorch's
// clamp, and that the compiler turns into SIMD compare/blend.
inline float clamp06(float v) { return v < 0.f ? 0.f : (v > 6.f ? 6.f : v); }

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
  unary(x, y, n, [](float v) { return v < 0.f ? 0.f : v; });
}
void relu_backward(const float* dy, const float* y, float* dx, int64_t n) {
  binary(dy, y, dx, n, [](float g, float v) { return v > 0.f ? g : 0.f; });
}

void relu6_forward(const float* x, float* y, int64_t n) { unary(x, y, n, clamp06); }
void relu6_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return (v > 0.f && v < 6.f) ? g : 0.f; });
}

void hardswish_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return v * clamp06(v + 3.f) / 6.f; });
}
void hardswish_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) {
    return v < -3.f ? 0.f : (v <= 3.f ? g * (v / 3.f + 0.5f) : g);
  });
}

void hardsigmoid_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return clamp06(v + 3.f) / 6.f; });
}
void hardsigmoid_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return (v > -3.f && v < 3.f) ? g / 6.f : 0.f; });
}

void sigmoid_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return 1.f / (1.f + std::exp(-v)); });
}
void sigmoid_backward(const float* dy, const float* y, float* dx, int64_t n) {
  binary(dy, y, dx, n, [](float g, float v) { return g * (1.f - v) * v; });
}

}  // namespace eo
