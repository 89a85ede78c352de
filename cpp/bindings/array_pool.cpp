#include "array_pool.h"

#include <dlfcn.h>

#include <algorithm>
#include <cstdlib>
#include <deque>
#include <iterator>
#include <mutex>
#include <new>

namespace eo::bind {
namespace {

constexpr size_t kMinPooled = 64 * 1024;
// tracemalloc sees pooled arrays as it sees numpy's own data: numpy reports its array memory in
// this domain (NPY_TRACE_DOMAIN), so tracemalloc peaks measure live arrays either way.
constexpr unsigned int kTraceDomain = 389047;

// CPython 3.11's tracemalloc.h declares these without extern "C" (they would be looked up under
// C++-mangled names), so they are found by their C names at run time.
using TrackFn = int (*)(unsigned int, uintptr_t, size_t);
using UntrackFn = int (*)(unsigned int, uintptr_t);
TrackFn trace_track() {
  static const TrackFn f = reinterpret_cast<TrackFn>(dlsym(RTLD_DEFAULT, "PyTraceMalloc_Track"));
  return f;
}
UntrackFn trace_untrack() {
  static const UntrackFn f = reinterpret_cast<UntrackFn>(dlsym(RTLD_DEFAULT, "PyTraceMalloc_Untrack"));
  return f;
}
void track(void* data, size_t bytes) {
  if (TrackFn f = trace_track()) f(kTraceDomain, reinterpret_cast<uintptr_t>(data), bytes);
}
void untrack(void* data) {
  if (UntrackFn f = trace_untrack()) f(kTraceDomain, reinterpret_cast<uintptr_t>(data));
}
constexpr size_t kHeader = 64;  // holds the block's size; keeps the data 64-byte aligned

struct Pool {
  std::mutex m;
  std::deque<std::pair<size_t, char*>> idle;  // (data size, block), oldest first
  size_t idle_bytes = 0, limit = size_t{2} << 30, live = 0;
  uint64_t hits = 0, misses = 0;

  // Frees the oldest idle blocks until idle_bytes <= target. Holds m.
  void trim(size_t target) {
    while (idle_bytes > target && !idle.empty()) {
      idle_bytes -= idle.front().first;
      std::free(idle.front().second);
      idle.pop_front();
    }
  }
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed: arrays may outlive static destruction
  return *p;
}

char* acquire(size_t bytes) {
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.m);
    // The newest idle block of this size (the likeliest to be still in cache).
    for (auto it = p.idle.rbegin(); it != p.idle.rend(); ++it) {
      if (it->first != bytes) continue;
      char* block = it->second;
      p.idle.erase(std::next(it).base());
      p.idle_bytes -= bytes;
      ++p.hits;
      ++p.live;
      return block;
    }
    ++p.misses;
    ++p.live;
  }
  void* block = std::aligned_alloc(64, kHeader + (bytes + 63) / 64 * 64);
  if (!block) {
    std::lock_guard<std::mutex> lock(pool().m);
    --pool().live;
    throw std::bad_alloc();
  }
  *static_cast<size_t*>(block) = bytes;
  return static_cast<char*>(block);
}

void release(void* data) {
  char* block = static_cast<char*>(data) - kHeader;
  const size_t bytes = *reinterpret_cast<size_t*>(block);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  --p.live;
  if (bytes > p.limit) {
    std::free(block);
    return;
  }
  p.idle.emplace_back(bytes, block);
  p.idle_bytes += bytes;
  p.trim(p.limit);
}

template <class T>
py::array_t<T, py::array::c_style> new_pooled(const std::vector<py::ssize_t>& shape) {
  size_t n = 1;
  for (py::ssize_t d : shape) n *= static_cast<size_t>(d);
  const size_t bytes = n * sizeof(T);
  if (bytes < kMinPooled) return py::array_t<T, py::array::c_style>(shape);
  T* data = reinterpret_cast<T*>(acquire(bytes) + kHeader);
  track(data, bytes);
  py::capsule owner(data, [](void* d) {
    untrack(d);
    release(d);
  });
  return py::array_t<T, py::array::c_style>(shape, data, owner);
}

}  // namespace

F32Array new_f32(const std::vector<py::ssize_t>& shape) { return new_pooled<float>(shape); }

F32Array new_f32_aligned(const std::vector<py::ssize_t>& shape) {
  size_t n = 1;
  for (py::ssize_t d : shape) n *= static_cast<size_t>(d);
  const size_t bytes = n * sizeof(float);
  void* data = std::aligned_alloc(64, (std::max<size_t>(bytes, 1) + 63) / 64 * 64);
  if (!data) throw std::bad_alloc();
  track(data, bytes);
  py::capsule owner;
  try {
    owner = py::capsule(data, [](void* d) {
      untrack(d);
      std::free(d);
    });
  } catch (...) {
    untrack(data);
    std::free(data);
    throw;
  }
  return F32Array(shape, static_cast<float*>(data), owner);
}

py::array_t<int32_t, py::array::c_style> new_i32(const std::vector<py::ssize_t>& shape) {
  return new_pooled<int32_t>(shape);
}
py::array_t<uint8_t, py::array::c_style> new_u8(const std::vector<py::ssize_t>& shape) {
  return new_pooled<uint8_t>(shape);
}

ArrayPoolInfo array_pool_info() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  return {p.idle_bytes, p.limit, p.live, p.hits, p.misses};
}

void array_pool_set_limit(size_t bytes) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  p.limit = bytes;
  p.trim(bytes);
}

void array_pool_clear() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.m);
  p.trim(0);
}

}  // namespace eo::bind
