// f32-pointwise micro-kernels against the scalar one: every tile corner (m 1..8, n around the 16
// vectors and the 48 tile), depths 1..65, with and without scale / bias / residual, a clamp and
// none. y has padding columns the kernel must not touch; x is read in place with its row pitch.
#include <algorithm>
#include <limits>
#include <vector>

#include "f32-pointwise/ukernels.h"
#include "harness.h"
#include "isa/dispatch.h"
#include "isa/isa.h"

using namespace eo;

TEST(f32_pointwise_matches_scalar_on_edge_tiles) {
  std::mt19937 rng(3);
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    const F32PointwiseUkernel* pk = f32_pointwise_ukernel(static_cast<Isa>(isa));
    if (!pk) continue;
    const size_t mr = pk->mr;
    for (size_t m = 1; m <= mr; ++m)
      for (size_t n : {1, 5, 15, 16, 17, 31, 32, 33, 47, 48})
        for (size_t kc : {1, 3, 24, 65}) {
          const int variant = static_cast<int>(m + n + kc) % 4;
          const bool with_scale = variant & 1, with_res = variant & 2;
          const float inf = std::numeric_limits<float>::infinity();
          const float lo = variant == 1 ? -inf : 0.f, hi = variant == 1 ? inf : 0.5f;
          const size_t ldx = n + 5, ldy = n + 3;
          auto w = test::random_vec(m * kc, rng), x = test::random_vec(kc * ldx, rng);
          auto scale = test::random_vec(m, rng), bias = test::random_vec(m, rng);
          auto res = test::random_vec(m * ldy, rng), y = test::random_vec(m * ldy, rng);
          auto ref = y;
          std::vector<float> pa(mr * kc, 0.f), pa4(4 * kc, 0.f);  // k-major panels
          for (size_t i = 0; i < m; ++i)
            for (size_t k = 0; k < kc; ++k) pa[k * mr + i] = w[i * kc + k];
          pk->fn(m, n, kc, pa.data(), x.data(), ldx, with_scale ? scale.data() : nullptr,
                 variant == 2 ? nullptr : bias.data(), with_res ? res.data() : nullptr, y.data(), ldy,
                 lo, hi);
          for (size_t r0 = 0; r0 < m; r0 += 4) {
            const size_t rows = std::min<size_t>(4, m - r0);
            std::fill(pa4.begin(), pa4.end(), 0.f);
            for (size_t i = 0; i < rows; ++i)
              for (size_t k = 0; k < kc; ++k) pa4[k * 4 + i] = w[(r0 + i) * kc + k];
            f32_pointwise_ukernel_4x16__scalar(rows, n, kc, pa4.data(), x.data(), ldx,
                                               with_scale ? scale.data() + r0 : nullptr,
                                               variant == 2 ? nullptr : bias.data() + r0,
                                               with_res ? res.data() + r0 * ldy : nullptr,
                                               ref.data() + r0 * ldy, ldy, lo, hi);
          }
          test::expect_close(y.data(), ref.data(), y.size(), 1e-5f, 1e-5f * kc,
                             std::string("pointwise ") + isa_name(static_cast<Isa>(isa)) + " m=" +
                                 std::to_string(m) + " n=" + std::to_string(n) + " kc=" + std::to_string(kc));
        }
  }
}
