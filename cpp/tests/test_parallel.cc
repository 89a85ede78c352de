// parallel_parts and the spinning team behind it: every part runs exactly once whatever the thread
// count, part count and timing (workers asleep, several callers at once), exceptions reach the
// caller, and the team hands a busy call back to the fallback instead of blocking.
#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <stdexcept>
#include <thread>
#include <vector>

#include "common/parallel.h"
#include "common/spin_team.h"
#include "harness.h"

using namespace eo;

namespace {

struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};

// Runs parallel_parts(nparts) and checks that each part ran once.
void expect_each_part_once(int nparts, const char* what) {
  std::vector<std::atomic<int>> hits(static_cast<size_t>(nparts));
  for (auto& h : hits) h = 0;
  parallel_parts(nparts, [&](int p) { hits[static_cast<size_t>(p)]++; });
  for (int p = 0; p < nparts; ++p)
    CHECK(hits[static_cast<size_t>(p)] == 1, std::string(what) + ": part " + std::to_string(p));
}

}  // namespace

TEST(parallel_parts_runs_each_part_once) {
  ThreadsGuard guard;
  for (int threads : {1, 2, 3, 4, 8}) {
    set_num_threads(threads);
    for (int nparts : {1, 2, 3, 4, 7, 8, 31, 32, 33, 64})
      for (int rep = 0; rep < 20; ++rep)
        expect_each_part_once(nparts, ("threads " + std::to_string(threads) + " parts " +
                                       std::to_string(nparts)).c_str());
  }
}

TEST(parallel_parts_after_workers_sleep) {
  // The team's workers sleep after a short spin; the next call must wake them or do without.
  ThreadsGuard guard;
  set_num_threads(2);
  for (int rep = 0; rep < 5; ++rep) {
    expect_each_part_once(2, "first call");
    std::this_thread::sleep_for(std::chrono::milliseconds(3));
    expect_each_part_once(2, "after a pause");
  }
}

// Tiny jobs back to back, alternating few and many parts: the caller often finishes a job alone
// and publishes the next while a worker is still entering the last one. That worker must not run
// a part of the new job against the old job's claims (the part would run twice, and the caller
// could return while the worker still runs its function: a crash on a stack that is gone).
TEST(spin_team_late_worker_never_runs_a_part_twice) {
  ThreadsGuard guard;
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    for (int job = 0; job < 100000; ++job) {
      const int nparts = job % 2 ? 32 : 2;
      int hits[32] = {0};  // on this call's stack, as a layer's captures are
      const std::function<void(int)> f = [&](int p) { __atomic_fetch_add(&hits[p], 1, __ATOMIC_RELAXED); };
      CHECK(spin_team_run(nparts, threads, f), "the team declined a job with no other caller");
      for (int p = 0; p < nparts; ++p)
        if (__atomic_load_n(&hits[p], __ATOMIC_RELAXED) != 1)
          CHECK(false, "threads " + std::to_string(threads) + " job " + std::to_string(job) + " part " +
                           std::to_string(p) + " ran " + std::to_string(hits[p]) + " times");
    }
  }
}

TEST(parallel_parts_rejects_bad_counts) {
  for (int nparts : {0, -1, 65}) {
    bool threw = false;
    try {
      parallel_parts(nparts, [](int) {});
    } catch (const std::invalid_argument&) {
      threw = true;
    }
    CHECK(threw, "nparts " + std::to_string(nparts));
  }
}

TEST(parallel_parts_rethrows_from_any_part) {
  ThreadsGuard guard;
  set_num_threads(2);
  for (int bad : {0, 1, 3}) {
    std::atomic<int> ran{0};
    bool caught = false;
    try {
      parallel_parts(4, [&](int p) {
        ran++;
        if (p == bad) throw std::runtime_error("part failed");
      });
    } catch (const std::runtime_error&) {
      caught = true;
    }
    CHECK(caught, "exception from part " + std::to_string(bad));
    CHECK(ran == 4, "the other parts still ran");
    expect_each_part_once(4, "the next call after an exception");
  }
}

TEST(parallel_parts_concurrent_callers) {
  // Several threads calling at once: one holds the team, the others fall back; all complete.
  ThreadsGuard guard;
  set_num_threads(2);
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int t = 0; t < 4; ++t)
    callers.emplace_back([&] {
      for (int rep = 0; rep < 200; ++rep) {
        std::atomic<int> sum{0};
        parallel_parts(6, [&](int p) { sum += 1 << p; });
        if (sum != 63) failures++;
      }
    });
  for (auto& c : callers) c.join();
  CHECK(failures == 0, "a concurrent call lost or repeated a part");
}

TEST(spin_team_declines_what_it_cannot_take) {
  int calls = 0;
  CHECK(!spin_team_run(33, 2, [&](int) { calls++; }), "more parts than claim bits");
  CHECK(!spin_team_run(4, 1, [&](int) { calls++; }), "one thread");
  CHECK(calls == 0, "a declined job must not run any part");
  // While a job holds the team, a nested call from inside a part is declined, not deadlocked.
  bool nested_taken = true;
  CHECK(spin_team_run(2, 2, [&](int p) {
          if (p == 0) nested_taken = spin_team_run(2, 2, [](int) {});
        }),
        "the outer job");
  CHECK(!nested_taken, "a nested job while the team is busy");
}

TEST(team_scope_loops_cover_every_item_once) {
  // Inside a TeamScope (as during an inference) parallel_for and parallel_chunks run on the team:
  // same contract as on TBB (every item once, ranges of at least `grain`, fixed chunk bounds).
  ThreadsGuard guard;
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    const TeamScope scope;
    for (int64_t n : {1, 2, 5, 64, 1000})
      for (int64_t grain : {1, 3, 64}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (auto& h : hits) h = 0;
        std::atomic<bool> short_range{false};
        parallel_for(n, grain, [&](int64_t b, int64_t e) {
          if (e - b < std::min(grain, n)) short_range = true;
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
        for (int64_t i = 0; i < n; ++i) CHECK(hits[static_cast<size_t>(i)] == 1, "parallel_for item");
        CHECK(!short_range, "a range shorter than grain");
      }
    for (int nchunks : {1, 2, 3, 7, 40}) {
      std::vector<int64_t> lo(static_cast<size_t>(nchunks), -1), hi(static_cast<size_t>(nchunks), -1);
      parallel_chunks(100, nchunks, [&](int c, int64_t b, int64_t e) {
        lo[static_cast<size_t>(c)] = b;
        hi[static_cast<size_t>(c)] = e;
      });
      for (int c = 0; c < nchunks; ++c)
        CHECK(lo[static_cast<size_t>(c)] == 100 * c / nchunks && hi[static_cast<size_t>(c)] == 100 * (c + 1) / nchunks,
              "chunk " + std::to_string(c) + " of " + std::to_string(nchunks));
    }
  }
}

TEST(thread_count_scope_pins_the_count_for_the_whole_call) {
  // While another thread keeps changing set_num_threads, a pinned computation sees one count on
  // its own thread and in every loop body (TBB, team, nested), and the pin ends with the scope.
  ThreadsGuard guard;
  set_num_threads(3);
  std::atomic<bool> stop{false};
  std::thread changer([&] {
    for (int i = 0; !stop; ++i) set_num_threads(1 + i % 8);
  });
  std::atomic<int> mismatches{0};
  for (int rep = 0; rep < 200; ++rep) {
    const ThreadCountScope pin;
    const int n = pin.threads();
    auto same = [&] {
      if (get_num_threads() != n) mismatches++;
    };
    parallel_for(64, 1, [&](int64_t, int64_t) {
      same();
      parallel_for(8, 1, [&](int64_t, int64_t) { same(); });  // nested: the pin travels on
    });
    parallel_chunks(64, 4, [&](int, int64_t, int64_t) { same(); });
    parallel_parts(4, [&](int) { same(); });
    if (rep % 2) {
      const TeamScope team;
      parallel_for(64, 1, [&](int64_t, int64_t) { same(); });
      parallel_chunks(64, 4, [&](int, int64_t, int64_t) { same(); });
    }
    same();
  }
  stop = true;
  changer.join();
  CHECK(mismatches == 0, std::to_string(mismatches.load()) + " loop bodies saw another thread count");
  set_num_threads(5);
  CHECK(get_num_threads() == 5, "after the scope, the global setting again");
  {
    const ThreadCountScope pin(2);
    set_num_threads(7);
    CHECK(get_num_threads() == 2, "an explicit pin");
  }
  CHECK(get_num_threads() == 7, "the pin restored");
}
