#include "runtime/plan.h"

#include <algorithm>

namespace eo::rt {

MemoryPlan plan_memory(const std::vector<PlanTensor>& tensors) {
  const size_t n = tensors.size();
  // Resolve aliases to their root buffer (aliases always point at earlier tensors) and widen the
  // root's lifetime to cover every alias.
  std::vector<int32_t> root(n);
  std::vector<int64_t> bytes(n);
  std::vector<int32_t> first(n), last(n);
  for (size_t t = 0; t < n; ++t) {
    root[t] = static_cast<int32_t>(t);
    bytes[t] = (tensors[t].bytes + 63) / 64 * 64;
    first[t] = tensors[t].first;
    last[t] = tensors[t].last;
  }
  for (size_t t = 0; t < n; ++t) {
    const int32_t a = tensors[t].alias;
    if (a < 0) continue;
    const int32_t r = root[a];
    root[t] = r;
    first[r] = std::min(first[r], first[t]);
    last[r] = std::max(last[r], last[t]);
  }
  std::vector<int32_t> order;
  for (size_t t = 0; t < n; ++t)
    if (root[t] == static_cast<int32_t>(t) && bytes[t] > 0) order.push_back(static_cast<int32_t>(t));
  std::stable_sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return bytes[a] > bytes[b]; });

  MemoryPlan plan;
  plan.offset.assign(n, -1);
  std::vector<int32_t> placed;
  std::vector<std::pair<int64_t, int64_t>> busy;  // [begin, end) of live-overlapping placed buffers
  for (int32_t t : order) {
    busy.clear();
    for (int32_t p : placed)
      if (first[p] <= last[t] && first[t] <= last[p])
        busy.emplace_back(plan.offset[p], plan.offset[p] + bytes[p]);
    std::sort(busy.begin(), busy.end());
    int64_t at = 0;
    for (const auto& b : busy) {
      if (at + bytes[t] <= b.first) break;
      at = std::max(at, b.second);
    }
    plan.offset[t] = at;
    plan.bytes_per_image = std::max(plan.bytes_per_image, at + bytes[t]);
    placed.push_back(t);
  }
  for (size_t t = 0; t < n; ++t)
    if (root[t] != static_cast<int32_t>(t)) plan.offset[t] = plan.offset[root[t]];
  return plan;
}

}  // namespace eo::rt
