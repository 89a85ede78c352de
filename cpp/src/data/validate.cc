#include "data/validate.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "common/parallel.h"

namespace eo::data {

namespace {
constexpr int64_t kBlock = 256;                // floats tested before one branch
constexpr int64_t kGrain = int64_t{1} << 18;   // 1 MB per thread: less is not worth a hand-off
constexpr uint32_t kExponent = 0x7f800000u;

bool block_has_nonfinite(const float* x, int64_t n) {
  uint32_t any = 0;
  for (int64_t i = 0; i < n; ++i) {
    uint32_t bits;
    std::memcpy(&bits, x + i, sizeof bits);
    any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
  }
  return any != 0;
}

int64_t scan(const float* x, int64_t begin, int64_t end) {
  for (int64_t b = begin; b < end; b += kBlock) {
    const int64_t e = std::min(end, b + kBlock);
    if (!block_has_nonfinite(x + b, e - b)) continue;
    for (int64_t i = b; i < e; ++i)
      if (!std::isfinite(x[i])) return i;
  }
  return -1;
}
}  // namespace

int64_t first_nonfinite(const float* x, int64_t n) {
  if (n < 2 * kGrain) return scan(x, 0, n);
  std::atomic<int64_t> best{n};
  parallel_for(n, kGrain, [&](int64_t begin, int64_t end) {
    if (begin >= best.load(std::memory_order_relaxed)) return;  // cannot hold the first one
    const int64_t i = scan(x, begin, end);
    if (i < 0) return;
    int64_t cur = best.load(std::memory_order_relaxed);
    while (i < cur && !best.compare_exchange_weak(cur, i, std::memory_order_relaxed)) {
    }
  });
  const int64_t i = best.load();
  return i == n ? -1 : i;
}

// One unsigned compare per label: a negative label becomes a huge unsigned value.
int64_t first_label_outside(const int64_t* y, int64_t n, int64_t num_classes) {
  const uint64_t k = num_classes < 0 ? 0 : static_cast<uint64_t>(num_classes);
  for (int64_t i = 0; i < n; ++i)
    if (static_cast<uint64_t>(y[i]) >= k) return i;
  return -1;
}

}  // namespace eo::data
