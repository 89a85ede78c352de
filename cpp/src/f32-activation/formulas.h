// The activations' element formulas, one definition each, inlined into every loop that applies
// them: the activation kernels (activation.cc), the fused BatchNorm loops (f32-batchnorm, also
// compiled per ISA) and squeeze-excitation. Formulas and boundary conventions are PyTorch's (see
// activation.h). Written so that loops over them vectorize under the default -ftrapping-math (see
// select()). `static`: each translation unit keeps its own copy, so a copy compiled with AVX-512
// flags can never be the one the linker picks for baseline code.
#pragma once
#include <cstdint>
#include <cstring>

namespace eo::act {

// Branch-free select. GCC will not if-convert a chain of float `?:` whose operands are computed
// values (a float compare or op may not be made unconditional), and the loop then stays scalar; a
// select done on the bit patterns has no such restriction and vectorizes to and/andnot/or. (Plain
// `c ? g : 0.f` vectorizes in a simple loop but not once inlined into the fused BatchNorm loops.)
static inline float select(bool c, float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  const uint32_t m = 0u - static_cast<uint32_t>(c);
  const uint32_t r = (ua & m) | (ub & ~m);
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

// min/max written as comparisons that let NaN through (x < 0 is false for NaN), like PyTorch's clamp.
static inline float clamp06(float v) {
  const float lo = v < 0.f ? 0.f : v;
  return lo > 6.f ? 6.f : lo;
}

static inline float relu(float v) { return v < 0.f ? 0.f : v; }
static inline float relu_grad_from_output(float g, float y) { return select(y > 0.f, g, 0.f); }

static inline float relu6(float v) { return clamp06(v); }
// From the input; from the output it is the same test (0 < y < 6 exactly when 0 < x < 6).
static inline float relu6_grad(float g, float v) { return select((v > 0.f) & (v < 6.f), g, 0.f); }

static inline float hardswish(float v) { return v * clamp06(v + 3.f) * (1.f / 6.f); }  // as PyTorch's SIMD path
static inline float hardswish_grad(float g, float v) {
  return select(v <= -3.f, 0.f, select(v < 3.f, g * (v / 3.f + 0.5f), g));
}

// min(max(x + 3, 0), 6) / 6, with the scaling before the clamp (the same values) so that it is not
// folded into a branch; times 1/6 like PyTorch's vectorized kernel.
static inline float hardsigmoid(float v) {
  const float t = (v + 3.f) * (1.f / 6.f);
  const float lo = t < 0.f ? 0.f : t;
  return lo > 1.f ? 1.f : lo;
}
static inline float hardsigmoid_grad(float g, float v) { return select((v > -3.f) & (v < 3.f), g * (1.f / 6.f), 0.f); }

}  // namespace eo::act
