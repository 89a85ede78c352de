#include "common/scratch.h"

#include <cstdlib>
#include <new>

namespace eo {
namespace {
struct Buffers {
  float* p[kScratchSlots] = {};
  size_t cap[kScratchSlots] = {};
  ~Buffers() {
    for (auto* q : p) std::free(q);
  }
};
thread_local Buffers t_buffers;
}  // namespace

float* scratch_f32(size_t n, ScratchSlot slot) {
  Buffers& b = t_buffers;
  if (n > b.cap[slot]) {
    std::free(b.p[slot]);
    size_t bytes = ((n * sizeof(float) + 63) / 64) * 64;
    b.p[slot] = static_cast<float*>(std::aligned_alloc(64, bytes));
    if (!b.p[slot]) {
      b.cap[slot] = 0;
      throw std::bad_alloc();
    }
    b.cap[slot] = n;
  }
  return b.p[slot];
}

}  // namespace eo
