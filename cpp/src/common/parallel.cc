#include "common/parallel.h"

#include "common/spin_team.h"

#include <tbb/blocked_range.h>
#include <tbb/global_control.h>
#include <tbb/parallel_for.h>
#include <tbb/partitioner.h>
#include <tbb/task_arena.h>

#include <algorithm>
#include <atomic>
#include <memory>
#include <mutex>
#include <stdexcept>

namespace eo {
namespace {
std::mutex g_mutex;  // serializes set_num_threads (the global_control swap)
std::unique_ptr<tbb::global_control> g_control;
std::atomic<int> g_threads{0};  // 0: not set yet, use TBB's default (all cores)
thread_local int t_pinned = 0;  // ThreadCountScope's value on this thread, 0: none
thread_local bool t_team_scope = false;
}  // namespace

ThreadCountScope::ThreadCountScope() : ThreadCountScope(get_num_threads()) {}
ThreadCountScope::ThreadCountScope(int threads) : saved_(t_pinned), threads_(threads) {
  if (threads_ < 1) throw std::invalid_argument("ThreadCountScope: threads must be >= 1");
  t_pinned = threads_;
}
ThreadCountScope::~ThreadCountScope() { t_pinned = saved_; }

TeamScope::TeamScope() : saved_(t_team_scope) { t_team_scope = true; }
TeamScope::~TeamScope() { t_team_scope = saved_; }

void set_num_threads(int n) {
  if (n < 1) throw std::invalid_argument("num_threads must be >= 1");
  std::lock_guard<std::mutex> lock(g_mutex);
  g_control.reset();
  g_control = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, n);
  g_threads.store(n);
}

int get_num_threads() {
  if (t_pinned > 0) return t_pinned;
  const int n = g_threads.load();
  return n > 0 ? n : std::max(1, tbb::this_task_arena::max_concurrency());
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& f) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = get_num_threads();
  if (n <= grain || threads == 1) {
    f(0, n);
    return;
  }
  if (t_team_scope) {
    const int parts = static_cast<int>(std::min<int64_t>(threads, n / grain));
    if (parts < 2) {
      f(0, n);
      return;
    }
    if (spin_team_run(parts, threads, [&](int p) {
          const ThreadCountScope pin(threads);
          f(n * p / parts, n * (p + 1) / parts);
        }))
      return;
  }
  tbb::parallel_for(tbb::blocked_range<int64_t>(0, n, grain), [&](const tbb::blocked_range<int64_t>& r) {
    const ThreadCountScope pin(threads);
    f(r.begin(), r.end());
  });
}

void parallel_chunks(int64_t n, int nchunks, const std::function<void(int, int64_t, int64_t)>& f) {
  if (n <= 0) return;
  nchunks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(nchunks, n)));
  const int threads = get_num_threads();
  auto run = [&](int c) {
    const ThreadCountScope pin(threads);
    const int64_t b = n * c / nchunks, e = n * (c + 1) / nchunks;
    f(c, b, e);
  };
  if (nchunks == 1) {
    run(0);
    return;
  }
  if (t_team_scope && spin_team_run(nchunks, threads, run)) return;
  tbb::parallel_for(0, nchunks, [&](int c) { run(c); });
}

void parallel_parts(int nparts, const std::function<void(int)>& f) {
  if (nparts < 1 || nparts > 64) throw std::invalid_argument("parallel_parts: nparts must be in [1, 64]");
  const int threads = get_num_threads();
  if (nparts == 1 || threads == 1) {
    for (int i = 0; i < nparts; ++i) f(i);
    return;
  }
  auto run = [&](int p) {
    const ThreadCountScope pin(threads);
    f(p);
  };
  if (spin_team_run(nparts, threads, run)) return;
  // The team is taken (another caller): a TBB loop. Each of the nparts loop bodies claims one part: its own thread's index if still free, else
  // the first free one. nparts bodies claim nparts distinct parts, so every part runs once.
  std::atomic<uint64_t> claimed{0};
  auto take = [&](int p) {
    const uint64_t bit = uint64_t(1) << p;
    return !(claimed.fetch_or(bit, std::memory_order_relaxed) & bit);
  };
  tbb::parallel_for(0, nparts, [&](int) {
    const int me = tbb::this_task_arena::current_thread_index();
    int p = me >= 0 && me < nparts && take(me) ? me : -1;
    for (int i = 0; p < 0 && i < nparts; ++i)
      if (take(i)) p = i;
    run(p);  // p >= 0: there are as many bodies as parts
  }, tbb::static_partitioner());
}

int reduction_chunks(int64_t n) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(n, get_num_threads())));
}

}  // namespace eo
