#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "data/data.h"

namespace eo::data {

namespace {
// A fixed chunk count (not the thread count) so float partial sums combine the same way on every
// machine; 64 chunks keep any realistic core count busy.
constexpr int kStatChunks = 64;
}  // namespace

// Exact: per-channel sums of pixels and squared pixels are integers (at most 255^2 * N * S, far
// inside 64 bits), and var = (count * sumsq - sum^2) / count^2 is formed in 128-bit integers.
void channel_stats_u8(const uint8_t* x, int64_t N, int64_t C, int64_t S, double* mean, double* stdev) {
  const int nchunks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(N, kStatChunks)));
  std::vector<uint64_t> sum(static_cast<size_t>(nchunks * C), 0), sq(sum.size(), 0);
  parallel_chunks(N, nchunks, [&](int chunk, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const uint8_t* p = x + (n * C + c) * S;
        uint64_t s = 0, q = 0;
        for (int64_t k = 0; k < S; ++k) {
          s += p[k];
          q += static_cast<uint64_t>(p[k]) * p[k];
        }
        sum[chunk * C + c] += s;
        sq[chunk * C + c] += q;
      }
  });
  const unsigned __int128 count = static_cast<unsigned __int128>(N) * static_cast<uint64_t>(S);
  for (int64_t c = 0; c < C; ++c) {
    unsigned __int128 s = 0, q = 0;
    for (int k = 0; k < nchunks; ++k) {
      s += sum[k * C + c];
      q += sq[k * C + c];
    }
    if (count == 0) {
      mean[c] = std::nan("");
      stdev[c] = std::nan("");
      continue;
    }
    const double cnt = static_cast<double>(count);
    mean[c] = static_cast<double>(s) / cnt;
    stdev[c] = std::sqrt(static_cast<double>(count * q - s * s) / (cnt * cnt));
  }
}

// Double partials of (x - K_c) and (x - K_c)^2 with K_c = the channel's first value: the shift
// keeps E[d^2] - E[d]^2 from cancelling when the mean is large next to the spread.
void channel_stats_f32(const float* x, int64_t N, int64_t C, int64_t S, double* mean, double* stdev) {
  const int nchunks = static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(N, kStatChunks)));
  std::vector<double> sum(static_cast<size_t>(nchunks * C), 0.0), sq(sum.size(), 0.0);
  std::vector<double> shift(static_cast<size_t>(C), 0.0);
  if (N > 0 && S > 0)
    for (int64_t c = 0; c < C; ++c) shift[c] = x[c * S];
  parallel_chunks(N, nchunks, [&](int chunk, int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const float* p = x + (n * C + c) * S;
        double s = 0.0, q = 0.0;
        for (int64_t k = 0; k < S; ++k) {
          const double d = static_cast<double>(p[k]) - shift[c];
          s += d;
          q += d * d;
        }
        sum[chunk * C + c] += s;
        sq[chunk * C + c] += q;
      }
  });
  const double cnt = static_cast<double>(N) * static_cast<double>(S);
  for (int64_t c = 0; c < C; ++c) {
    double s = 0.0, q = 0.0;
    for (int k = 0; k < nchunks; ++k) {
      s += sum[k * C + c];
      q += sq[k * C + c];
    }
    if (cnt == 0) {
      mean[c] = std::nan("");
      stdev[c] = std::nan("");
      continue;
    }
    const double m = s / cnt;
    mean[c] = shift[c] + m;
    stdev[c] = std::sqrt(std::max(0.0, q / cnt - m * m));
  }
}

}  // namespace eo::data
