#include <numeric>
#include <utility>

#include "data/counter_rng.h"
#include "data/data.h"

namespace eo::data {

// Fisher-Yates from the top: position i swaps with a uniform j in [0, i]. The random words are the
// SplitMix64 stream started at the (seed, epoch) key, so the permutation is a function of
// (n, seed, epoch) only. Sequential on purpose: O(n) with n = dataset size is microseconds next to
// one training step, and a parallel shuffle would need a different (harder to verify) algorithm.
void permutation(int64_t n, uint64_t seed, uint64_t epoch, int64_t* out) {
  std::iota(out, out + n, int64_t{0});
  const uint64_t base = counter_key(Stream::kShuffle, seed, epoch, 0);
  const uint64_t golden = 0x9e3779b97f4a7c15ull;
  for (int64_t i = n - 1; i > 0; --i) {
    const uint64_t word = mix64(base + static_cast<uint64_t>(i) * golden);
    const int64_t j = static_cast<int64_t>(bounded(word, static_cast<uint64_t>(i) + 1));
    std::swap(out[i], out[j]);
  }
}

}  // namespace eo::data
