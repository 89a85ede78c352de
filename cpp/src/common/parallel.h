// Thread control and parallel loops over oneTBB.
//
// Every parallel loop in edgeopt goes through here so that set_num_threads bounds all of them and
// so that reductions are deterministic: parallel_chunks cuts [0, n) into a fixed number of
// contiguous chunks that depends only on n and the thread count, never on scheduling, and callers
// combine per-chunk partials in chunk order.
//
// Rule for scratch memory: thread_local buffers may only be used by code that does not itself wait
// on a parallel loop (a waiting TBB thread can run another task that would reuse the buffer).
#pragma once
#include <cstdint>
#include <functional>

namespace eo {

// set_num_threads may be called from any thread at any time. It never changes the count seen by a
// computation already running: see ThreadCountScope.
void set_num_threads(int n);  // n >= 1
// The pinned count of the innermost ThreadCountScope on this thread, else the global setting.
int get_num_threads();

// Pins get_num_threads() on this thread to one value for the scope's life: by default the value
// get_num_threads() had at construction (the enclosing scope's pin, else the global setting). A kernel reads the count several times (to size
// workspace, then to split work over it); another Python thread's set_num_threads between two
// reads made the split outgrow the workspace (heap corruption in the engine's split conv). Every
// binding that computes, and Engine::run, holds one; parallel_for / parallel_chunks /
// parallel_parts carry the caller's pin into the bodies they run on other threads.
class ThreadCountScope {
 public:
  ThreadCountScope();
  explicit ThreadCountScope(int threads);  // pin to `threads` (>= 1)
  ~ThreadCountScope();
  ThreadCountScope(const ThreadCountScope&) = delete;
  ThreadCountScope& operator=(const ThreadCountScope&) = delete;
  int threads() const { return threads_; }

 private:
  int saved_, threads_;
};

// f(begin, end) over sub-ranges of [0, n); each sub-range has at least `grain` items.
void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f);

// f(chunk, begin, end) for chunk in [0, nchunks): chunk c covers a fixed contiguous range.
void parallel_chunks(int64_t n, int nchunks, const std::function<void(int, int64_t, int64_t)>& f);

// f(part) once for each part in [0, nparts) (nparts <= 64), in parallel: on the spinning team
// (spin_team.h) when it is free, else on TBB. Part i goes to the same thread in every call (team
// worker i, or the thread with arena index i) when that thread takes part in time, so successive
// loops with the same partition give each thread the same part: a layer split by output rows then
// finds the rows it reads (written by the previous layer's same part) in its own core's cache.
// Which thread runs which part never changes results, only speed.
void parallel_parts(int nparts, const std::function<void(int)>& f);

// While a TeamScope lives on a thread, parallel_for and parallel_chunks called from that thread
// also run on the spinning team when it is free (parallel_for then cuts [0, n) into one contiguous
// range per thread). The deploy runtime holds one for a whole inference, so every layer uses the
// same hot workers and no TBB thread competes with a spinning one for a core. It also pins the
// thread count (ThreadCountScope) for the whole inference.
class TeamScope {
 public:
  TeamScope();
  ~TeamScope();
  TeamScope(const TeamScope&) = delete;
  TeamScope& operator=(const TeamScope&) = delete;

 private:
  ThreadCountScope pin_;
  bool saved_;
};

// Number of chunks for a deterministic reduction over n items: min(n, threads), at least 1.
int reduction_chunks(int64_t n);

}  // namespace eo
