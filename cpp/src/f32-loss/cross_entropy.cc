#include "f32-loss/cross_entropy.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"

namespace eo {

CrossEntropyResult cross_entropy(const float* logits, const int64_t* labels, float* dlogits,
                                 int64_t N, int64_t C, float label_smoothing) {
  // Blocks of rows independent of the thread count (the loss sum must not depend on it).
  const int64_t rows = std::max<int64_t>(1, 16384 / std::max<int64_t>(C, 1));
  const int64_t nblocks = (N + rows - 1) / rows;
  std::vector<double> partial(static_cast<size_t>(nblocks), 0.0);
  std::vector<int64_t> bad(static_cast<size_t>(nblocks), -1);
  const double eps = label_smoothing, off = eps / static_cast<double>(C), on = 1.0 - eps;
  const float invN = 1.f / static_cast<float>(N);

  parallel_for(nblocks, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      double block_loss = 0;
      for (int64_t n = b * rows, end = std::min(N, (b + 1) * rows); n < end; ++n) {
        const float* z = logits + n * C;
        float* g = dlogits + n * C;
        float m = z[0];
        bool finite = true;
        for (int64_t c = 0; c < C; ++c) {
          finite = finite && std::isfinite(z[c]);
          m = std::max(m, z[c]);
        }
        if (!finite) {
          if (bad[b] < 0) bad[b] = n;
          continue;
        }
        // exp(z - m) goes to dlogits first, then is scaled into the gradient in place.
        // (Eigen's packet exp vectorizes where std::exp would be a libm call per element.)
        Eigen::Map<Eigen::ArrayXf>(g, C) = (Eigen::Map<const Eigen::ArrayXf>(z, C) - m).exp();
        double sum = 0, zsum = 0;
        for (int64_t c = 0; c < C; ++c) {
          sum += g[c];
          zsum += z[c];
        }
        const double lse = m + std::log(sum);
        const int64_t y = labels[n];
        block_loss += lse - on * z[y] - off * zsum;
        const float inv_sum = static_cast<float>(1.0 / sum);
        const float offf = static_cast<float>(off);
        for (int64_t c = 0; c < C; ++c) g[c] = (g[c] * inv_sum - offf) * invN;
        g[y] -= static_cast<float>(on) * invN;
      }
      partial[b] = block_loss;
    }
  });

  CrossEntropyResult r{0.0, -1};
  for (int64_t b = 0; b < nblocks; ++b) {
    if (bad[b] >= 0 && r.bad_row < 0) r.bad_row = bad[b];
    r.loss += partial[b];
  }
  r.loss /= static_cast<double>(N);
  return r;
}

}  // namespace eo
