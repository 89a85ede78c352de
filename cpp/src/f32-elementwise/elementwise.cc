#include "f32-elementwise/elementwise.h"

#include <algorithm>
#include <cmath>

#include "common/parallel.h"

namespace eo {
namespace {

constexpr int64_t kGrain = 32768;  // elements per task

int64_t plane_grain(int64_t plane) { return plane >= kGrain ? 1 : kGrain / std::max<int64_t>(plane, 1); }

// splitmix64's output function (Steele, Lea, Flood 2014): a bijective 64-bit mixer.
inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

// Keep element i iff its top 24 hash bits, read as an integer, are >= ceil(p * 2^24): exactly
// "u >= p" for u = bits / 2^24, so P(keep) = 1 - p up to 2^-24.
inline uint64_t keep_threshold(float p) {
  return static_cast<uint64_t>(std::ceil(static_cast<double>(p) * 16777216.0));
}

// sum_i a[i] * b[i] with eight float lanes folded into double every 2K values.
double dot(const float* a, const float* b, int64_t n) {
  double total = 0;
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min<int64_t>(n, i + 8 * 256);
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= end; i += 8)
      for (int j = 0; j < 8; ++j) acc[j] += a[i + j] * b[i + j];
    for (; i < end; ++i) acc[0] += a[i] * b[i];
    for (float v : acc) total += v;
  }
  return total;
}

}  // namespace

void add_forward(const float* a, const float* b, float* y, int64_t n) {
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) y[i] = a[i] + b[i];
  });
}

void channel_scale_forward(const float* x, const float* s, float* y, int64_t N, int64_t C,
                           int64_t HW) {
  parallel_for(N * C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float v = s[q];
      const float* xp = x + q * HW;
      float* yp = y + q * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] = xp[i] * v;
    }
  });
}

void channel_scale_backward(const float* dy, const float* x, const float* s, float* dx, float* ds,
                            int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float v = s[q];
      const float* g = dy + q * HW;
      float* o = dx + q * HW;
      ds[q] = static_cast<float>(dot(g, x + q * HW, HW));
      for (int64_t i = 0; i < HW; ++i) o[i] = g[i] * v;
    }
  });
}

void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, float p, uint64_t seed) {
  const uint64_t key = mix64(seed + kGolden);
  const uint64_t threshold = keep_threshold(p);
  const float scale = 1.f / (1.f - p);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    // The hash loop (64-bit multiplies, scalar on SSE2) and the scaling loop (vectorizes) are kept
    // apart; the mask written by the first is still in L1 for the second.
    constexpr int64_t kBlock = 1024;
    for (int64_t b = s; b < e; b += kBlock) {
      const int64_t end = std::min(e, b + kBlock);
      for (int64_t i = b; i < end; ++i) {
        const uint64_t h = mix64(key + static_cast<uint64_t>(i + 1) * kGolden);
        mask[i] = (h >> 40) >= threshold;
      }
      // x * 0 keeps NaN/Inf visible, like PyTorch's x * mask / (1 - p)
      for (int64_t i = b; i < end; ++i) y[i] = x[i] * (static_cast<float>(mask[i]) * scale);
    }
  });
}

void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, float p) {
  const float scale = 1.f / (1.f - p);
  parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) dx[i] = dy[i] * (static_cast<float>(mask[i] != 0) * scale);
  });
}

}  // namespace eo
