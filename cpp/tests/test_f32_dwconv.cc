// f32-dwconv: the inference depthwise kernels and the training weight-gradient kernel (every ISA
// path) against the reference conv, on edge
// plane sizes (1..9, 15/16/17, 31/32/33: one partial vector, planes that span vectors, rows that
// straddle them), 3x3 and 5x5, stride 1 and 2, padding 0/1/2 (direct, phase-plane and per-tap
// sources), channel blocks, channel multiplier 1 and 2, bias with none / relu / relu6 / hardswish. Guard values
// after the output catch writes past the last plane.
#include <algorithm>
#include <cstdio>
#include <limits>
#include <vector>

#include "f32-dwconv/dwconv.h"
#include "harness.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "reference/reference.h"

using namespace eo;

namespace {

float act_ref(int act, float v) {
  switch (act) {
    case 1: return std::max(v, 0.f);
    case 2: return std::min(std::max(v, 0.f), 6.f);
    case 3: return v * std::min(std::max(v + 3.f, 0.f), 6.f) / 6.f;
    default: return v;
  }
}

void check(Isa isa, int64_t H, int64_t W, int64_t k, int64_t st, int64_t pad, int64_t mult, int act,
           std::mt19937& rng, int64_t C = 3) {
  const int64_t Cout = C * mult;
  const Conv2dShape s{1, C, H, W, Cout, k, k, st, st, pad, pad, C};
  if (H + 2 * pad < k || W + 2 * pad < k) return;
  const int64_t P = s.OH() * s.OW(), guard = 21;
  auto x = test::random_vec(C * H * W, rng), w = test::random_vec(Cout * k * k, rng);
  auto b = test::random_vec(Cout, rng);
  for (auto& v : b) v *= 4.f;  // reach both sides of relu6 / hardswish bends
  std::vector<float> ref(Cout * P);
  reference::conv2d_forward(s, x.data(), w.data(), b.data(), ref.data());
  for (auto& v : ref) v = act_ref(act, v);

  const DwconvPlan plan = DwconvPlan::make(s);
  constexpr float inf = std::numeric_limits<float>::infinity();
  const float lo = act == 0 ? -inf : 0.f, hi = act == 2 ? 6.f : inf;
  const f32_dwconv_params p = plan.params(act == 3 ? F32_DWCONV_HARDSWISH : F32_DWCONV_CLAMP, lo, hi);
  std::vector<float> scratch(static_cast<size_t>(plan.scratch_floats()) + 1);
  char what[200];
  std::snprintf(what, sizeof what, "%s C%ld %ldx%ld k%ld s%ld p%ld m%ld act%d %s", isa_name(isa), (long)C, (long)H,
                (long)W, (long)k, (long)st, (long)pad, (long)mult, act,
                plan.direct ? "direct" : plan.phases ? "phases" : "per-kw");
  for (int64_t o0 : {int64_t(0), Cout - 1}) {  // all planes in one call, and the last one alone
    std::vector<float> y(Cout * P + guard, -777.f);
    f32_dwconv_forward(plan, f32_dwconv_ukernels(isa), p, mult, x.data(), w.data(), b.data(), y.data(),
                       o0, Cout, scratch.data());
    test::expect_close(y.data() + o0 * P, ref.data() + o0 * P, (Cout - o0) * P, 1e-5f, 1e-5f * k * k, what);
    for (int64_t i = 0; i < o0 * P; ++i) CHECK(y[i] == -777.f, std::string(what) + ": wrote a plane before o0");
    for (int64_t i = 0; i < guard; ++i) CHECK(y[Cout * P + i] == -777.f, std::string(what) + ": wrote past the end");
  }
}

}  // namespace

// The weight gradient of one image through the plan's sources (f32_dwconv_wgrad), all channels
// in one call and the last one alone, against the reference conv's dw.
void check_wgrad(Isa isa, int64_t H, int64_t W, int64_t k, int64_t st, int64_t pad, int64_t mult,
                 std::mt19937& rng, int64_t C = 3) {
  const int64_t Cout = C * mult;
  const Conv2dShape s{1, C, H, W, Cout, k, k, st, st, pad, pad, C};
  if (H + 2 * pad < k || W + 2 * pad < k) return;
  const int64_t P = s.OH() * s.OW(), KK = k * k;
  auto x = test::random_vec(C * H * W, rng), w = test::random_vec(Cout * KK, rng);
  auto dy = test::random_vec(Cout * P, rng);
  std::vector<float> ref(Cout * KK, 0.f), dx(C * H * W);
  reference::conv2d_backward(s, dy.data(), x.data(), w.data(), ref.data(), nullptr, dx.data());
  const DwconvPlan plan = DwconvPlan::make(s);
  const f32_dwconv_params p = plan.params(F32_DWCONV_CLAMP, -1.f, 1.f);  // act unused by wgrad
  std::vector<float> scratch(static_cast<size_t>(plan.scratch_floats()) + 1);
  char what[160];
  std::snprintf(what, sizeof what, "wgrad %s C%ld %ldx%ld k%ld s%ld p%ld m%ld", isa_name(isa), (long)C,
                (long)H, (long)W, (long)k, (long)st, (long)pad, (long)mult);
  for (int64_t o0 : {int64_t(0), Cout - 1}) {
    // lanes start at 1 (the kernel adds to them); the 16 lane sums minus 16 are dw
    const int64_t nl = (Cout - o0) * KK;
    std::vector<float> lanes(nl * 16 + 5, 1.f), part(nl);
    for (int64_t i = 0; i < 5; ++i) lanes[nl * 16 + i] = -777.f;
    f32_dwconv_wgrad(plan, f32_dwconv_ukernels(isa), p, mult, x.data(), dy.data(), o0, Cout, scratch.data(),
                     lanes.data());
    for (int64_t i = 0; i < nl; ++i) {
      double sum = -16.0;
      for (int64_t l = 0; l < 16; ++l) sum += lanes[i * 16 + l];
      part[i] = static_cast<float>(sum);
    }
    test::expect_close(part.data(), ref.data() + o0 * KK, nl, 1e-5f, 1e-5f * P, what);
    for (int64_t i = 0; i < 5; ++i) CHECK(lanes[nl * 16 + i] == -777.f, std::string(what) + ": wrote past the end");
  }
}

TEST(f32_dwconv_wgrad_matches_reference) {
  std::mt19937 rng(11);
  for (int i = 0; i <= static_cast<int>(cpu_isa()); ++i) {
    const Isa isa = static_cast<Isa>(i);
    for (int64_t H : {1, 4, 7, 8, 9, 16, 17, 32})
      for (int64_t k : {3, 5, 7})
        for (int64_t st : {1, 2})
          for (int64_t pad : {int64_t(0), (k - 1) / 2, k - 1}) {
            check_wgrad(isa, H, H, k, st, pad, 1, rng);
            check_wgrad(isa, H, H + 2, k, st, pad, 2, rng);
          }
    check_wgrad(isa, 8, 8, 3, 2, 1, 1, rng, 70);  // a partial block of copied sources
  }
}

// The stride-2 data gradient (f32_dwconv_dgrad2) of every ISA against the reference conv's dx,
// whole planes of a few channels: odd and even sizes, every padding up to K - 1, narrow planes.
TEST(f32_dwconv_stride2_data_gradient_matches_reference) {
  std::mt19937 rng(12);
  for (int i = 0; i <= static_cast<int>(cpu_isa()); ++i) {
    const Isa isa = static_cast<Isa>(i);
    for (int64_t H : {1, 2, 5, 8, 16, 17})
      for (int64_t W : {1, 3, 16, 17, 32, 33, 47})
        for (int64_t k : {3, 5, 7})
          for (int64_t pad = 0; pad < k; ++pad) {
            const int64_t C = 3;
            const Conv2dShape s{1, C, H, W, C, k, k, 2, 2, pad, pad, C};
            if (H + 2 * pad < k || W + 2 * pad < k) continue;
            const int64_t P = s.OH() * s.OW(), KK = k * k;
            auto x = test::random_vec(C * H * W, rng), w = test::random_vec(C * KK, rng);
            auto dy = test::random_vec(C * P, rng);
            std::vector<float> dw(C * KK, 0.f), ref(C * H * W), dx(C * H * W + 5, -777.f);
            reference::conv2d_backward(s, dy.data(), x.data(), w.data(), dw.data(), nullptr, ref.data());
            const f32_dwconv_dgrad2_params p{size_t(H), size_t(W), size_t(s.OH()), size_t(s.OW()),
                                             size_t(k), size_t(k), size_t(pad), size_t(pad)};
            f32_dwconv_ukernels(isa).dgrad2(C, dy.data(), P, w.data(), dx.data(), H * W, &p);
            char what[128];
            std::snprintf(what, sizeof what, "dgrad2 %s %ldx%ld k%ld p%ld", isa_name(isa), (long)H, (long)W,
                          (long)k, (long)pad);
            test::expect_close(dx.data(), ref.data(), C * H * W, 1e-5f, 1e-5f * k * k, what);
            for (int64_t e = 0; e < 5; ++e) CHECK(dx[C * H * W + e] == -777.f, std::string(what) + ": wrote past the end");
          }
  }
}

TEST(f32_dwconv_matches_reference) {
  std::mt19937 rng(7);
  const int64_t sizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 15, 16, 17, 31, 32, 33};
  int n = 0;
  for (int i = 0; i <= static_cast<int>(cpu_isa()); ++i) {
    const Isa isa = static_cast<Isa>(i);
    for (int64_t H : sizes)
      for (int64_t k : {3, 5})
        for (int64_t st : {1, 2})
          for (int64_t pad : {0, 1, 2}) {
            // square planes, and one neighbouring width (rows that straddle vectors differently)
            const int64_t W2 = H == 33 ? 1 : H + 1 + (H % 3);
            check(isa, H, H, k, st, pad, 1, n % 4, rng);
            check(isa, H, W2, k, st, pad, 1 + n % 2, (n + 1) % 4, rng);
            ++n;
          }
    // Channel blocks of the copied sources (up to 64 channels per kernel call): a partial last
    // block, even and odd heights (one split per block / per channel).
    for (int64_t H : {4, 8, 9, 32})
      for (int64_t pad : {0, 1, 2}) {
        check(isa, H, H, 3, 2, pad, 1, n % 4, rng, 70);
        check(isa, H, H + 1, 5, 1, pad, 1, (n + 1) % 4, rng, 70);
        ++n;
      }
  }
}
