#include "f32-activation/activation.h"

#include <Eigen/Core>
#include <cmath>
#include <cstring>

#include "common/parallel.h"

namespace eo {
namespace {

// Elements per task: big enough that scheduling is noise against a memory-bound loop.
constexpr int64_t kGrain = 32768;

// Branch-free selects. Under the default -ftrapping-math GCC will not if-convert a chain of float
// `?:` whose operands are computed values (a float compare or op may not be made unconditional),
// and the loop then stays scalar; a select done on the bit patterns has no such restriction and
// vectorizes to and/andnot/or. Plain `c ? g : 0.f` selects vectorize as they are.
inline float select(bool c, float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  const uint32_t r = (ua & m) | (ub & ~m);
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

// min/max written as comparisons that let NaN through (x < 0 is false for NaN), like PyTorch's
// clamp.
inline float clamp06(float v) {
  const float lo = v < 0.f ? 0.f : v;
  return lo > 6.f ? 6.f : lo;
}

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

void relu6_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return clamp06(v); });
}
void relu6_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) { return ((v > 0.f) & (v < 6.f)) ? g : 0.f; });
}

void hardswish_forward(const float* x, float* y, int64_t n) {
  unary(x, y, n, [](float v) { return v * clamp06(v + 3.f) * (1.f / 6.f); });  // as PyTorch's SIMD path
}
void hardswish_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) {
    return select(v <= -3.f, 0.f, select(v < 3.f, g * (v / 3.f + 0.5f), g));
  });
}

void hardsigmoid_forward(const float* x, float* y, int64_t n) {
  // min(max(x + 3, 0), 6) / 6, with the scaling before the clamp (the same values) so that it is
  // not folded into a branch; times 1/6 like PyTorch's vectorized kernel.
  unary(x, y, n, [](float v) {
    const float t = (v + 3.f) * (1.f / 6.f);
    const float lo = t < 0.f ? 0.f : t;
    return lo > 1.f ? 1.f : lo;
  });
}
void hardsigmoid_backward(const float* dy, const float* x, float* dx, int64_t n) {
  binary(dy, x, dx, n, [](float g, float v) {
    return select((v > -3.f) & (v < 3.f), g * (1.f / 6.f), 0.f);
  });
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
