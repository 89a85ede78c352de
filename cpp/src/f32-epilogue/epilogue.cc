#include "f32-epilogue/epilogue.h"

#include <cmath>
#include <cstring>
#include <limits>

#include "isa/dispatch.h"
#include "f32-epilogue/ukernels.h"

namespace eo {

void f32_epilogue_minmax__scalar(size_t rows, size_t n, const float* acc, size_t lda,
                                 const float* scale, const float* bias, const float* res, float* y,
                                 size_t ldy, float lo, float hi) {
  for (size_t r = 0; r < rows; ++r, acc += lda, y += ldy) {
    const float s = scale ? scale[r] : 1.f, b = bias ? bias[r] : 0.f;
    const float* rr = res ? res + r * ldy : nullptr;
    for (size_t j = 0; j < n; ++j) {
      float v = acc[j] * s + b;
      if (rr) v += rr[j];
      v = v < lo ? lo : v;
      y[j] = v > hi ? hi : v;
    }
  }
}

}  // namespace eo

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

template <Act A>
void tile_rows(const Epilogue& e, const float* acc, int64_t lda, float* y, const float* res,
               int64_t ldy, int64_t r0, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r) {
    const float* ar = acc + r * lda;
    float* yr = y + r * ldy;
    const float s = e.scale ? e.scale[r0 + r] : 1.f, b = e.bias ? e.bias[r0 + r] : 0.f;
    if (res) {
      const float* rr = res + r * ldy;
      for (int64_t j = 0; j < n; ++j) yr[j] = act<A>((ar[j] * s + b) + rr[j]);
    } else {
      for (int64_t j = 0; j < n; ++j) yr[j] = act<A>(ar[j] * s + b);
    }
  }
}

}  // namespace

bool act_is_clamp(Act a, float* lo, float* hi) {
  constexpr float inf = std::numeric_limits<float>::infinity();
  switch (a) {
    case Act::none: *lo = -inf; *hi = inf; return true;
    case Act::relu: *lo = 0.f; *hi = inf; return true;
    case Act::relu6: *lo = 0.f; *hi = 6.f; return true;
    default: return false;
  }
}

void epilogue_tile(const Epilogue& e, const float* acc, int64_t lda, float* y, const float* res,
                   int64_t ldy, int64_t r0, int64_t rows, int64_t n) {
  float lo, hi;
  if (act_is_clamp(e.act, &lo, &hi)) {
    f32_epilogue_minmax_ukernel(active_isa())(static_cast<size_t>(rows), static_cast<size_t>(n), acc,
        static_cast<size_t>(lda), e.scale ? e.scale + r0 : nullptr, e.bias ? e.bias + r0 : nullptr, res, y,
        static_cast<size_t>(ldy), lo, hi);
    return;
  }
  switch (e.act) {
    case Act::none: tile_rows<Act::none>(e, acc, lda, y, res, ldy, r0, rows, n); break;
    case Act::relu: tile_rows<Act::relu>(e, acc, lda, y, res, ldy, r0, rows, n); break;
    case Act::relu6: tile_rows<Act::relu6>(e, acc, lda, y, res, ldy, r0, rows, n); break;
    case Act::hardswish: tile_rows<Act::hardswish>(e, acc, lda, y, res, ldy, r0, rows, n); break;
    case Act::hardsigmoid: tile_rows<Act::hardsigmoid>(e, acc, lda, y, res, ldy, r0, rows, n); break;
    case Act::sigmoid: tile_rows<Act::sigmoid>(e, acc, lda, y, res, ldy, r0, rows, n); break;
  }
}

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
