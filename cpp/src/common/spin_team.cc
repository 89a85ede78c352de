#include "common/spin_team.h"

#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
static inline void cpu_relax() { _mm_pause(); }
#else
static inline void cpu_relax() {}
#endif

namespace eo {
namespace {

constexpr int kMaxParts = 32;  // claim bits in the low half of Team::state_

// How long a worker spins for the next job before it sleeps. Long enough to bridge the gap between
// two layers and between two calls from a Python loop; short enough that an idle process is idle.
std::chrono::microseconds spin_window() {
  static const std::chrono::microseconds us([] {
    const char* s = std::getenv("EDGEOPT_SPIN_US");
    const long v = s ? std::strtol(s, nullptr, 10) : 200;
    return v < 0 ? 0L : v;
  }());
  return us;
}

class Team {
 public:
  // One per worker thread: the job number it was told about, and its sleep state.
  struct Worker {
    std::atomic<uint32_t> go{0};
    std::atomic<bool> sleeping{false};
    std::mutex m;
    std::condition_variable cv;
  };

  bool run(int nparts, int threads, const std::function<void(int)>& f) {
    if (nparts > kMaxParts || busy_.exchange(true, std::memory_order_acquire)) return false;
    const int nw = std::min(nparts, threads) - 1;
    grow(nw);
    const uint32_t seq = ++seq_;
    // First the new sequence number with every part claimed, then the job, then its open claims: a
    // worker still entering the previous job that reads this job's f_ / nparts_ then sees a
    // sequence that is not its own and leaves. (Publishing f_ first let such a worker claim a part
    // past the old job's count on the old claim word, so that part ran twice and the caller could
    // return while the worker still ran it.)
    state_.store((uint64_t(seq) << 32) | 0xFFFFFFFFu);
    f_.store(&f);
    nparts_.store(nparts);
    done_.store(0);
    error_ = nullptr;
    state_.store(uint64_t(seq) << 32);
    for (int w = 1; w <= nw; ++w) {
      Worker& wk = *workers_[w - 1];
      wk.go.store(seq);
      if (wk.sleeping.load()) {
        std::lock_guard<std::mutex> lock(wk.m);
        wk.cv.notify_one();
      }
    }
    work(0, seq);
    // Every part is claimed now; wait for those that workers are still running.
    for (int spins = 0; done_.load(std::memory_order_acquire) < nparts; ++spins)
      if (spins < 4096) cpu_relax(); else std::this_thread::yield();
    std::exception_ptr err = error_;
    busy_.store(false, std::memory_order_release);
    if (err) std::rethrow_exception(err);
    return true;
  }

 private:
  // Claims parts of job `seq` (preferring part `me`) and runs them until none is left. f_ / nparts_
  // are read before the state word; run() closes the old job's claims under the new sequence
  // number before it overwrites them, so if the state word still holds `seq` (checked by every
  // claim), they are this job's.
  void work(int me, uint32_t seq) {
    const std::function<void(int)>* f = f_.load();
    const int n = nparts_.load();
    for (;;) {
      uint64_t s = state_.load();
      int p = -1;
      for (;;) {
        if (uint32_t(s >> 32) != seq) return;
        const uint32_t mask = uint32_t(s);
        if (me < n && !(mask & (1u << me))) p = me;
        else {
          p = -1;
          for (int i = 0; i < n; ++i)
            if (!(mask & (1u << i))) { p = i; break; }
          if (p < 0) return;
        }
        if (state_.compare_exchange_weak(s, s | (uint64_t(1) << p))) break;
      }
      try {
        (*f)(p);
      } catch (...) {
        std::lock_guard<std::mutex> lock(error_mutex_);
        if (!error_) error_ = std::current_exception();
      }
      done_.fetch_add(1, std::memory_order_release);
    }
  }

  void grow(int nw) {
    while (static_cast<int>(workers_.size()) < nw) {
      workers_.push_back(std::make_unique<Worker>());
      const int w = static_cast<int>(workers_.size());
      Worker* wk = workers_.back().get();
      // Detached: the team lives until the process exits (see team()), so a worker never outlives it.
      std::thread([this, wk, w] { loop(*wk, w); }).detach();
    }
  }

  void loop(Worker& wk, int w) {
    uint32_t seen = 0;
    for (;;) {
      uint32_t g;
      auto deadline = std::chrono::steady_clock::now() + spin_window();
      for (int i = 0; (g = wk.go.load(std::memory_order_acquire)) == seen; ++i) {
        cpu_relax();
        if ((i & 63) || std::chrono::steady_clock::now() < deadline) continue;
        std::unique_lock<std::mutex> lock(wk.m);
        wk.sleeping.store(true);  // seq_cst pairs with run(): it sees `sleeping` or we see `go`
        wk.cv.wait(lock, [&] { return wk.go.load() != seen; });
        wk.sleeping.store(false);
      }
      seen = g;
      work(w, g);
    }
  }

  std::atomic<bool> busy_{false};
  std::atomic<uint64_t> state_{0};  // (job seq << 32) | claimed parts
  std::atomic<const std::function<void(int)>*> f_{nullptr};
  std::atomic<int> nparts_{0};
  std::atomic<int> done_{0};
  uint32_t seq_ = 0;
  std::mutex error_mutex_;
  std::exception_ptr error_;
  std::vector<std::unique_ptr<Worker>> workers_;
};

// Never destroyed: detached workers may still be spinning on it while the process exits. A forked
// child has none of the parent's workers, so it starts a new team (the old one is leaked).
std::atomic<Team*> g_team{nullptr};
std::once_flag g_atfork_once;

Team& team() {
  std::call_once(g_atfork_once, [] {
    pthread_atfork(nullptr, nullptr, [] { g_team.store(nullptr); });
  });
  Team* t = g_team.load(std::memory_order_acquire);
  if (t) return *t;
  Team* fresh = new Team;
  if (g_team.compare_exchange_strong(t, fresh)) return *fresh;
  delete fresh;
  return *t;
}

}  // namespace

bool spin_team_run(int nparts, int threads, const std::function<void(int)>& f) {
  if (nparts < 2 || threads < 2) return false;
  return team().run(nparts, threads, f);
}

}  // namespace eo
