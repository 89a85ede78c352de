#include "runtime/epilogue.h"

#include <cmath>
#include <cstring>

namespace eo::rt {
namespace {

// The activation formulas of f32-activation/activation.cc (same operation order, so fused and
// unfused graphs agree bit for bit); comparisons written so NaN passes through.
template <Act A>
inline float act(float v) {
  if constexpr (A == Act::relu) {
    return v < 0.f ? 0.f : v;
  } else if constexpr (A == Act::relu6) {
    const float lo = v < 0.f ? 0.f : v;
    return lo > 6.f ? 6.f : lo;
  } else if constexpr (A == Act::hardswish) {
    const float t = v + 3.f;
    const float lo = t < 0.f ? 0.f : t;
    return v * (lo > 6.f ? 6.f : lo) * (1.f / 6.f);
  } else if constexpr (A == Act::hardsigmoid) {
    const float t = (v + 3.f) * (1.f / 6.f);
    const float lo = t < 0.f ? 0.f : t;
    return lo > 1.f ? 1.f : lo;
  } else if constexpr (A == Act::sigmoid) {
    return 1.f / (1.f + std::exp(-v));
  } else {
    return v;
  }
}

template <Act A>
void rows(const Epilogue& e, float* y, const float* res, int64_t ld, int64_t r0, int64_t r1,
          int64_t c0, int64_t c1) {
  const int64_t n = c1 - c0;
  for (int64_t r = r0; r < r1; ++r) {
    float* yr = y + r * ld + c0;
    const float* rr = res ? res + r * ld + c0 : nullptr;
    if (e.per_col) {
      const float* b = e.bias ? e.bias + c0 : nullptr;
      const float* s = e.scale ? e.scale + c0 : nullptr;
      for (int64_t j = 0; j < n; ++j) {
        float v = s ? yr[j] * s[j] : yr[j];
        if (b) v += b[j];
        if (rr) v += rr[j];
        yr[j] = act<A>(v);
      }
      continue;
    }
    const float s = e.scale ? e.scale[r] : 1.f, b = e.bias ? e.bias[r] : 0.f;
    if (rr) {
      for (int64_t j = 0; j < n; ++j) yr[j] = act<A>((yr[j] * s + b) + rr[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) yr[j] = act<A>(yr[j] * s + b);
    }
  }
}

}  // namespace

void apply_epilogue(const Epilogue& e, float* y, const float* res, int64_t ld, int64_t r0, int64_t r1,
                    int64_t c0, int64_t c1) {
  if (e.act == Act::none && !e.bias && !e.scale && !res) return;
  switch (e.act) {
    case Act::none: rows<Act::none>(e, y, res, ld, r0, r1, c0, c1); break;
    case Act::relu: rows<Act::relu>(e, y, res, ld, r0, r1, c0, c1); break;
    case Act::relu6: rows<Act::relu6>(e, y, res, ld, r0, r1, c0, c1); break;
    case Act::hardswish: rows<Act::hardswish>(e, y, res, ld, r0, r1, c0, c1); break;
    case Act::hardsigmoid: rows<Act::hardsigmoid>(e, y, res, ld, r0, r1, c0, c1); break;
    case Act::sigmoid: rows<Act::sigmoid>(e, y, res, ld, r0, r1, c0, c1); break;
  }
}

void activate_inplace(Act a, float* y, int64_t n) {
  const Epilogue e{nullptr, nullptr, a, false};
  apply_epilogue(e, y, nullptr, n, 0, 1, 0, n);
}

}  // namespace eo::rt
