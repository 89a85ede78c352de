// Output arrays of the training bindings (conv, linear, layers; pooling indices and dropout masks too) come from a pool of freed buffers
// keyed by byte size. A training step allocates the same shapes every step, so from the second
// step on its activations and gradients reuse the previous step's memory: no fresh pages for the
// kernel to zero and fault in (measured: a first write to fresh memory costs more than the op
// that writes it). Arrays under 64 KB stay with numpy's allocator.
//
// Live pooled arrays are reported to tracemalloc like numpy's own array data.
//
// Idle buffers are capped (default 2 GiB; set_limit): past it a freed buffer goes back to the
// system. The pool is process-wide and thread-safe; a buffer returns when its last numpy view dies.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "check.h"

namespace eo::bind {

// A C-contiguous float32 (int32, uint8) array of `shape`, uninitialized, from the pool.
F32Array new_f32(const std::vector<py::ssize_t>& shape);
// A C-contiguous float32 array of `shape`, uninitialized and 64-byte aligned, outside the pool
// (freed with its last view): the Engine's outputs, which its ops write in place (a vector store
// to numpy's 16-byte aligned memory spans two cache lines). Reported to tracemalloc the same way.
F32Array new_f32_aligned(const std::vector<py::ssize_t>& shape);
py::array_t<int32_t, py::array::c_style> new_i32(const std::vector<py::ssize_t>& shape);
py::array_t<uint8_t, py::array::c_style> new_u8(const std::vector<py::ssize_t>& shape);

struct ArrayPoolInfo {
  size_t idle_bytes, limit_bytes, live_buffers;
  uint64_t hits, misses;
};
ArrayPoolInfo array_pool_info();
void array_pool_set_limit(size_t bytes);  // frees idle buffers past the new limit
void array_pool_clear();                  // frees every idle buffer

}  // namespace eo::bind
