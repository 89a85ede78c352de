// Activation memory planning: every tensor the ops write gets an offset in one arena, and two
// tensors share bytes only if their lifetimes (from the op that defines one to the last op that
// reads it) do not overlap. Greedy by size (largest first, lowest offset that fits), the usual
// heuristic for static inference graphs; aliases (flatten) share their source's buffer.
//
// Offsets are computed for one image. Tensor sizes scale with the batch and so do the offsets, so a
// plan for one image is a valid plan for any batch: offset(batch) = offset * batch. That keeps a
// loaded Engine stateless per batch size (concurrent callers may use different batches).
#pragma once
#include <cstdint>
#include <vector>

namespace eo::rt {

struct PlanTensor {
  int64_t bytes = 0;   // per image (0: not in the arena)
  int32_t first = 0;   // index of the defining op
  int32_t last = 0;    // index of the last reading op (or the op count for the graph output)
  int32_t alias = -1;  // tensor whose buffer this one is (flatten), resolved before planning
};

struct MemoryPlan {
  std::vector<int64_t> offset;  // per tensor: bytes per image unit in the arena, -1 = external
  int64_t bytes_per_image = 0;  // arena bytes per image
};

// Tensors with bytes == 0 and no alias, or aliasing an external one, are external (-1).
MemoryPlan plan_memory(const std::vector<PlanTensor>& tensors);

}  // namespace eo::rt
