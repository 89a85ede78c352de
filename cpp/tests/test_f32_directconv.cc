// f32-directconv micro-kernels. 1x1 (one unshifted tap): against the scalar kernel on every tile
// corner (m 1..8, n around the 16 vectors and the 48 tile), depths 1..65, with and without
// scale / bias / residual, a clamp and none; y has padding columns the kernel must not touch, x
// is read in place with its row pitch. KxK: the tap table (taps.h) and both kernels against a
// plain convolution with explicit bounds checks, over tiles that start anywhere in the plane.
#include <algorithm>
#include <limits>
#include <vector>

#include "f32-directconv/taps.h"
#include "f32-directconv/ukernels.h"
#include "harness.h"
#include "isa/dispatch.h"
#include "isa/isa.h"

using namespace eo;

TEST(f32_directconv_1x1_matches_scalar_on_edge_tiles) {
  std::mt19937 rng(3);
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    const F32DirectConvUkernel* pk = f32_directconv_ukernel(static_cast<Isa>(isa));
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
          pk->fn(m, n, kc, 1, pa.data(), x.data(), ldx, nullptr, nullptr, with_scale ? scale.data() : nullptr,
                 variant == 2 ? nullptr : bias.data(), with_res ? res.data() : nullptr, y.data(), ldy,
                 lo, hi);
          for (size_t r0 = 0; r0 < m; r0 += 4) {
            const size_t rows = std::min<size_t>(4, m - r0);
            std::fill(pa4.begin(), pa4.end(), 0.f);
            for (size_t i = 0; i < rows; ++i)
              for (size_t k = 0; k < kc; ++k) pa4[k * 4 + i] = w[(r0 + i) * kc + k];
            f32_directconv_ukernel_4x16__scalar(rows, n, kc, 1, pa4.data(), x.data(), ldx, nullptr, nullptr,
                                               with_scale ? scale.data() + r0 : nullptr,
                                               variant == 2 ? nullptr : bias.data() + r0,
                                               with_res ? res.data() + r0 * ldy : nullptr,
                                               ref.data() + r0 * ldy, ldy, lo, hi);
          }
          test::expect_close(y.data(), ref.data(), y.size(), 1e-5f, 1e-5f * kc,
                             std::string("directconv 1x1 ") + isa_name(static_cast<Isa>(isa)) + " m=" +
                                 std::to_string(m) + " n=" + std::to_string(n) + " kc=" + std::to_string(kc));
        }
  }
}

// y (Cout x OH*W) of a stride-1 conv with OW == W, plain loops, for output columns [j0, j1).
static void naive_conv(const std::vector<float>& x, const std::vector<float>& w, int64_t C, int64_t H,
                       int64_t W, int64_t M, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                       int64_t j0, int64_t j1, std::vector<float>* y) {
  const int64_t P = (H + 2 * ph - KH + 1) * W;
  for (int64_t o = 0; o < M; ++o)
    for (int64_t j = j0; j < j1; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < C; ++c)
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw) {
            const int64_t ih = j / W + kh - ph, iw = j % W + kw - pw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            acc += double(w[((o * C + c) * KH + kh) * KW + kw]) * x[(c * H + ih) * W + iw];
          }
      (*y)[o * P + j] = static_cast<float>(acc);
    }
}

TEST(f32_directconv_taps_match_plain_conv) {
  std::mt19937 rng(11);
  struct G { int64_t C, H, W, M, KH, KW, ph, pw; };
  const G geoms[] = {{3, 8, 8, 8, 3, 3, 1, 1},  {5, 7, 9, 6, 3, 3, 1, 1}, {2, 5, 5, 3, 5, 5, 2, 2},
                     {4, 6, 11, 8, 3, 1, 0, 0}, {3, 4, 3, 5, 1, 3, 2, 1}, {2, 9, 4, 7, 3, 3, 0, 1},
                     {1, 1, 1, 2, 3, 3, 1, 1},  {6, 3, 17, 8, 7, 7, 3, 3},
                     {4, 12, 32, 9, 3, 3, 1, 1}, {2, 6, 16, 8, 5, 3, 2, 1}};
  const float inf = std::numeric_limits<float>::infinity();
  for (const G& g : geoms) {
    DirectTaps d;
    CHECK(direct_taps(g.H, g.W, g.KH, g.KW, g.ph, g.pw, &d), "geometry accepted");
    const int64_t P = (g.H + 2 * g.ph - g.KH + 1) * g.W, taps = g.KH * g.KW, K = g.C * taps;
    auto x = test::random_vec(g.C * g.H * g.W, rng), w = test::random_vec(g.M * K, rng);
    std::vector<float> ref(g.M * P, 0.f);
    naive_conv(x, w, g.C, g.H, g.W, g.M, g.KH, g.KW, g.ph, g.pw, 0, P, &ref);
    for (int isa = -1; isa <= static_cast<int>(cpu_isa()); ++isa) {  // -1: the scalar kernel
      const F32DirectConvUkernel* dk = isa < 0 ? nullptr : f32_directconv_ukernel(static_cast<Isa>(isa));
      if (isa >= 0 && !dk) continue;
      const int64_t mr = dk ? dk->mr : 4, nr = dk ? dk->nr : 16;
      std::vector<float> y(g.M * P, 7.f);
      // Tiles of nr columns from 16 * first (any vector of the plane), every row panel.
      for (int64_t first = 0; first < 2 && 16 * first < P; ++first)
        for (int64_t j0 = 16 * first; j0 < P; j0 += nr)
          for (int64_t r0 = 0; r0 < g.M; r0 += mr) {
            const int64_t m = std::min(mr, g.M - r0), n = std::min(nr, P - j0);
            std::vector<float> pa(mr * K, 0.f);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t k = 0; k < K; ++k) pa[k * mr + i] = w[(r0 + i) * K + k];
            const auto fn = dk ? dk->fn : f32_directconv_ukernel_4x16__scalar;
            fn(m, n, g.C, taps, pa.data(), x.data() + j0, g.H * g.W, d.off.data(),
               d.mask.data() + (j0 / 16) * taps, nullptr, nullptr, nullptr, y.data() + r0 * P + j0, P, -inf, inf);
          }
      test::expect_close(y.data(), ref.data(), y.size(), 1e-5f, 1e-5f * K,
                         std::string("directconv ") + (dk ? isa_name(static_cast<Isa>(isa)) : "scalar") +
                             " C=" + std::to_string(g.C) + " H=" + std::to_string(g.H) + " W=" +
                             std::to_string(g.W) + " K=" + std::to_string(g.KH) + "x" + std::to_string(g.KW));
    }
  }
  DirectTaps d;
  CHECK(!direct_taps(8, 8, 3, 3, 0, 0, &d), "3x3/p0 rows are narrower than the input");
  CHECK(!direct_taps(8, 8, 1, 1, 1, 1, &d), "1x1/p1 rows are wider than the input");
  CHECK(!direct_taps(2, 8, 7, 1, 0, 0, &d), "no output rows");
  CHECK(!direct_taps(64, 64, 3, 3, 1, 1, &d, 100), "table over the limit");
}
