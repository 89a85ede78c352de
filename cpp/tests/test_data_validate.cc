// data/validate.h against its plain loops: the first NaN / +-Inf at every position that matters
// (block edges, the parallel split, both ends, several bad values) over sizes around the block
// and the parallel threshold, at 1 and 2 threads; finite extremes never count.
#include <cfloat>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "data/validate.h"
#include "harness.h"
#include "reference/reference.h"

using namespace eo;

namespace {

struct ThreadsGuard {
  int saved = get_num_threads();
  ~ThreadsGuard() { set_num_threads(saved); }
};

void expect_same(const std::vector<float>& x, const std::string& what) {
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t got = data::first_nonfinite(x.data(), n);
  const int64_t want = reference::first_nonfinite(x.data(), n);
  CHECK(got == want, what + ": got " + std::to_string(got) + ", reference " + std::to_string(want));
}

}  // namespace

TEST(data_first_nonfinite_matches_reference) {
  ThreadsGuard guard;
  const float bad[] = {std::numeric_limits<float>::quiet_NaN(), -std::numeric_limits<float>::quiet_NaN(),
                       std::numeric_limits<float>::infinity(), -std::numeric_limits<float>::infinity()};
  // Finite values whose exponent bits are nearly all ones, subnormals and signed zero.
  const float edge[] = {FLT_MAX, -FLT_MAX, FLT_MIN, std::numeric_limits<float>::denorm_min(), -0.0f, 1e30f};
  std::mt19937 rng(3);
  const int64_t big = int64_t{1} << 20;  // above the parallel threshold (2 x 2^18)
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{2}, int64_t{255}, int64_t{256}, int64_t{257},
                      int64_t{1000}, big - 1, big + 3}) {
      std::vector<float> x = test::random_vec(static_cast<size_t>(n), rng);
      for (size_t e = 0; e < x.size() && e < 6; ++e) x[x.size() - 1 - e] = edge[e];
      const std::string base = "threads " + std::to_string(threads) + " n " + std::to_string(n);
      expect_same(x, base + " all finite");
      CHECK(data::first_nonfinite(x.data(), n) == -1, base + ": finite extremes reported");
      std::vector<int64_t> where = {0, n - 1, n / 2, 255, 256, 257, (int64_t{1} << 18) - 1,
                                    int64_t{1} << 18, (int64_t{1} << 19) + 7};
      for (int64_t pos : where) {
        if (pos < 0 || pos >= n) continue;
        for (float v : bad) {
          std::vector<float> y = x;
          y[pos] = v;
          const std::string what = base + " bad " + std::to_string(v) + " at " + std::to_string(pos);
          expect_same(y, what);
          CHECK(data::first_nonfinite(y.data(), n) == pos, what);
          // a later bad value (possibly in another thread's range) must not win
          y[n - 1] = bad[0];
          expect_same(y, what + " and at the end");
        }
      }
    }
  }
}

TEST(data_first_label_outside_matches_reference) {
  for (int64_t k : {int64_t{0}, int64_t{1}, int64_t{10}}) {
    for (int64_t n : {int64_t{0}, int64_t{1}, int64_t{7}, int64_t{300}}) {
      std::vector<int64_t> y(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) y[i] = k > 0 ? i % k : 0;
      for (int64_t pos : {int64_t{-1}, int64_t{0}, n / 2, n - 1}) {
        for (int64_t v : {int64_t{-1}, k, k + 5, std::numeric_limits<int64_t>::min(),
                          std::numeric_limits<int64_t>::max()}) {
          std::vector<int64_t> z = y;
          if (pos >= 0 && pos < n) z[pos] = v;
          const int64_t got = data::first_label_outside(z.data(), n, k);
          const int64_t want = reference::first_label_outside(z.data(), n, k);
          CHECK(got == want, "k " + std::to_string(k) + " n " + std::to_string(n) + " label " +
                                 std::to_string(v) + " at " + std::to_string(pos) + ": got " +
                                 std::to_string(got) + ", reference " + std::to_string(want));
        }
      }
    }
  }
}
