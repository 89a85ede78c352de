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

// y (Cout x OH*OW) of a conv with stride (sh, sw), plain loops with explicit bounds checks.
struct G {
  int64_t C, H, W, M, KH, KW, sh, sw, ph, pw;
  int64_t OH() const { return (H + 2 * ph - KH) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - KW) / sw + 1; }
};
static std::vector<float> naive_conv(const G& g, const std::vector<float>& x, const std::vector<float>& w) {
  const int64_t OH = g.OH(), OW = g.OW(), P = OH * OW;
  std::vector<float> y(g.M * P);
  for (int64_t o = 0; o < g.M; ++o)
    for (int64_t j = 0; j < P; ++j) {
      double acc = 0;
      for (int64_t c = 0; c < g.C; ++c)
        for (int64_t kh = 0; kh < g.KH; ++kh)
          for (int64_t kw = 0; kw < g.KW; ++kw) {
            const int64_t ih = j / OW * g.sh + kh - g.ph, iw = j % OW * g.sw + kw - g.pw;
            if (ih < 0 || ih >= g.H || iw < 0 || iw >= g.W) continue;
            acc += double(w[((o * g.C + c) * g.KH + kh) * g.KW + kw]) * x[(c * g.H + ih) * g.W + iw];
          }
      y[o * P + j] = static_cast<float>(acc);
    }
  return y;
}

// Every kernel over tiles of its nr columns starting at vector `first`, every row panel; the
// layout filled for output rows [oh0, oh1) only (the rows a split part covers) where strided,
// the rest of it poisoned with NaN, which no unmasked read may reach.
TEST(f32_directconv_taps_match_plain_conv) {
  std::mt19937 rng(11);
  const G geoms[] = {{3, 8, 8, 8, 3, 3, 1, 1, 1, 1},   {5, 7, 9, 6, 3, 3, 1, 1, 1, 1},
                     {2, 5, 5, 3, 5, 5, 1, 1, 2, 2},   {4, 6, 11, 8, 3, 1, 1, 1, 0, 0},
                     {3, 4, 3, 5, 1, 3, 1, 1, 2, 1},   {2, 9, 4, 7, 3, 3, 1, 1, 0, 1},
                     {1, 1, 1, 2, 3, 3, 1, 1, 1, 1},   {6, 3, 17, 8, 7, 7, 1, 1, 3, 3},
                     {4, 12, 32, 9, 3, 3, 1, 1, 1, 1}, {2, 6, 16, 8, 5, 3, 1, 1, 2, 1},
                     {4, 16, 16, 8, 3, 3, 2, 2, 1, 1}, {3, 15, 9, 6, 3, 3, 2, 2, 1, 1},
                     {5, 16, 16, 9, 1, 1, 2, 2, 0, 0}, {2, 13, 13, 4, 5, 5, 2, 2, 2, 2},
                     {3, 12, 14, 5, 3, 3, 3, 2, 1, 1}, {2, 32, 32, 8, 3, 3, 2, 2, 1, 1}};
  const float inf = std::numeric_limits<float>::infinity();
  for (const G& g : geoms) {
    DirectTaps d;
    CHECK(direct_taps(g.H, g.W, g.KH, g.KW, g.sh, g.sw, g.ph, g.pw, &d), "geometry accepted");
    const int64_t OH = g.OH(), P = OH * g.OW(), taps = g.KH * g.KW, K = g.C * taps;
    CHECK(d.OH == OH && d.OW == g.OW(), "output size");
    auto x = test::random_vec(g.C * g.H * g.W, rng), w = test::random_vec(g.M * K, rng);
    const std::vector<float> ref = naive_conv(g, x, w);
    for (int isa = -1; isa <= static_cast<int>(cpu_isa()); ++isa) {  // -1: the scalar kernel
      const F32DirectConvUkernel* dk = isa < 0 ? nullptr : f32_directconv_ukernel(static_cast<Isa>(isa));
      if (isa >= 0 && !dk) continue;
      const int64_t mr = dk ? dk->mr : 4, nr = dk ? dk->nr : 16;
      std::vector<float> y(g.M * P, 7.f);
      for (int64_t first = 0; first < 2 && 16 * first < P; ++first)
        for (int64_t j0 = 16 * first; j0 < P; j0 += nr) {
          const int64_t n = std::min(nr, P - j0);
          std::vector<float> xl(g.C * d.ldx + 64, std::numeric_limits<float>::quiet_NaN());
          const float* xs = x.data();
          if (d.strided() || first == 1) {  // stride 1: the copy a split part reads
            d.fill(x.data(), g.C, j0 / g.OW(), (j0 + n + g.OW() - 1) / g.OW(), xl.data());
            xs = xl.data();
          }
          for (int64_t r0 = 0; r0 < g.M; r0 += mr) {
            const int64_t m = std::min(mr, g.M - r0);
            std::vector<float> pa(mr * K, 0.f);
            for (int64_t i = 0; i < m; ++i)
              for (int64_t k = 0; k < K; ++k) pa[k * mr + i] = w[(r0 + i) * K + k];
            const auto fn = dk ? dk->fn : f32_directconv_ukernel_4x16__scalar;
            fn(m, n, g.C, taps, pa.data(), xs + j0, d.ldx, d.off.data(), d.mask.data() + (j0 / 16) * taps,
               nullptr, nullptr, nullptr, y.data() + r0 * P + j0, P, -inf, inf);
          }
        }
      test::expect_close(y.data(), ref.data(), y.size(), 1e-5f, 1e-5f * K,
                         std::string("directconv ") + (dk ? isa_name(static_cast<Isa>(isa)) : "scalar") +
                             " C=" + std::to_string(g.C) + " H=" + std::to_string(g.H) + " W=" +
                             std::to_string(g.W) + " K=" + std::to_string(g.KH) + "x" + std::to_string(g.KW) +
                             " s=" + std::to_string(g.sh) + "x" + std::to_string(g.sw));
    }
  }
  DirectTaps d;
  CHECK(!direct_taps(8, 8, 3, 3, 1, 1, 0, 0, &d), "3x3/p0 rows are narrower than the input");
  CHECK(!direct_taps(8, 8, 1, 1, 1, 1, 1, 1, &d), "1x1/p1 rows are wider than the input");
  CHECK(!direct_taps(2, 8, 7, 1, 1, 1, 0, 0, &d), "no output rows");
  CHECK(!direct_taps(9, 9, 3, 3, 2, 2, 0, 0, &d), "3x3/s2/p0 on 9 columns reads column 4 of 4");
  CHECK(!direct_taps(64, 64, 3, 3, 1, 1, 1, 1, &d, 100), "table over the limit");
}
