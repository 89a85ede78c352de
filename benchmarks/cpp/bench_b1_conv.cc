// The binary direct conv at resnet20's three 3x3 stages (16->16 on its 16-bit planes, 64->64 two
// rows per vector) and its stride-2 convs (3x3 and the 1x1 shortcuts), batch 1, by phase:
// binarizing the whole input into the bit planes, the XNOR-popcount kernel over all output
// channels, and the whole b1_conv2d call on one thread and on `threads` (a TeamScope held, as the
// Engine does; the caller copies the output after every call, as a caller that reads its result
// does, so a split pays for moving the other part's rows to it; "copy" is that copy alone,
// included in every call),
// and the same call on one thread with the plan's direct path turned off (the im2col + GEMM path
// these convs took before the direct kernel covered them).
// The figures behind the direct path's split threshold (b1-gemm/gemm.cc) and the kernel work in
// benchmarks/README.md.
//
// Each variant of a shape is timed in every round, in turn and in reverse order every second round;
// a turn is 20 warm-up calls then `calls` timed ones. Printed: the median over rounds of the
// per-call mean, and the fastest round, in microseconds. On a CPU without the direct kernel
// (cpu_has_avx512icl) only the whole calls are timed, on the GEMM path.
//
//   build/dev/bench_b1_conv [threads=2] [rounds=21] [calls=200]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "b1-gemm/gemm.h"
#include "b1-gemm/ukernels.h"
#include "common/parallel.h"
#include "isa/dispatch.h"

namespace {

struct Shape {
  int cin, cout, hw, k, stride, pad;
};

const Shape kShapes[] = {{16, 16, 32, 3, 1, 1}, {32, 32, 16, 3, 1, 1}, {64, 64, 8, 3, 1, 1},
                         {16, 32, 32, 3, 2, 1}, {32, 64, 16, 3, 2, 1}, {16, 32, 32, 1, 2, 0},
                         {32, 64, 16, 1, 2, 0}};

}  // namespace

int main(int argc, char** argv) {
  using namespace eo;
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 21;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 200;
  if (threads < 1 || threads > 256 || rounds < 1 || calls < 1) {
    std::fprintf(stderr, "usage: bench_b1_conv [threads >= 1] [rounds >= 1] [calls >= 1]\n");
    return 2;
  }
  set_num_threads(threads);
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  const bool direct = uk.direct != nullptr;
  std::printf("# %d thread(s), %d rounds of %d calls; us per call: median over rounds / fastest round%s\n",
              threads, rounds, calls, direct ? "" : " (no direct kernel on this CPU: GEMM path)");
  std::printf("%-18s %17s %17s %17s %17s %17s %17s\n", "conv", "binarize", "kernel", "copy", "call 1 thread",
              ("call " + std::to_string(threads) + " threads").c_str(), "GEMM path 1 thr");
  std::mt19937 rng(1);
  std::normal_distribution<float> nd;
  for (const Shape& sh : kShapes) {
    const int cin = sh.cin, cout = sh.cout, hw = sh.hw, k = sh.k;
    B1Conv cv;
    cv.stride_h = cv.stride_w = sh.stride;
    cv.pad_h = cv.pad_w = sh.pad;
    std::vector<float> w(size_t(cout) * cin * k * k), x(size_t(cin) * hw * hw), bias(cout);
    for (float& v : w) v = nd(rng);
    for (float& v : x) v = nd(rng);
    for (float& v : bias) v = nd(rng);
    const std::vector<float> alpha = b1_channel_alpha(w.data(), cout, int64_t(cin) * k * k);
    const B1ConvWeights wt = b1_pack_conv_weights(cout, cin, k, k, w.data(), alpha.data());
    const B1ConvPlan plan = b1_conv_plan(wt, cv, hw, hw);
    B1ConvPlan gemm_plan = plan;
    gemm_plan.direct = false;
    std::vector<float> y(size_t(cout) * plan.oh * plan.ow), out(y.size());
    const size_t plane = size_t(hw + 2 * sh.pad) * size_t(plan.ldp);
    // one row of slack: two rows per vector (8x8) load a row past the planes
    std::vector<uint32_t> planes(plane * size_t(std::max<int64_t>(plan.nw, 1)) + size_t(plan.ldp), 0);
    const b1_direct_params prm{planes.data(), plane, size_t(plan.ldp), size_t(plan.nw), size_t(k), size_t(k), plan.layout,
                               size_t(plan.ldh), plan.w32.data(), size_t(plan.wstride), plan.base.data(),
                               plan.base16.data(), size_t(plan.ncls), size_t(plan.ldb),
                               plan.rowcls.data(), wt.alpha.data(), bias.data(), 0.f, 1e30f, y.data(),
                               size_t(plan.oh), size_t(plan.ow), nullptr};
    auto call = [&](const B1ConvPlan& pl, bool parallel) {
      const TeamScope team;
      b1_conv2d(pl, 1, x.data(), B1ConvEpilogue{bias.data(), nullptr, 0.f, 1e30f}, y.data(), parallel);
      std::memcpy(out.data(), y.data(), y.size() * sizeof(float));
    };
    std::vector<std::function<void()>> variants;
    const bool on_direct = direct && plan.direct;
    if (on_direct) {
      variants.push_back([&] {
        uk.binarize(x.data(), size_t(cin), size_t(hw), size_t(hw), 0, size_t(hw), planes.data(), plane,
                    size_t(plan.ldp), size_t(sh.pad), size_t(sh.pad), plan.layout, size_t(plan.ldh), nullptr);
      });
      variants.push_back([&] { uk.direct(&prm, 0, size_t(cout), 0, size_t(plan.oh)); });
    }
    variants.push_back([&] { std::memcpy(out.data(), y.data(), y.size() * sizeof(float)); });
    variants.push_back([&] { call(plan, false); });
    variants.push_back([&] { call(plan, true); });
    variants.push_back([&] { call(gemm_plan, false); });
    std::vector<std::vector<double>> us(variants.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t j = 0; j < variants.size(); ++j) {
        const size_t i = r % 2 ? variants.size() - 1 - j : j;
        for (int k = 0; k < 20; ++k) variants[i]();
        const auto t0 = std::chrono::steady_clock::now();
        for (int k = 0; k < calls; ++k) variants[i]();
        us[i].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / calls);
      }
    char conv[48];
    std::snprintf(conv, sizeof conv, "%dx%d s%d %d->%d @%d", k, k, sh.stride, cin, cout, hw);
    std::printf("%-18s", conv);
    if (!on_direct) std::printf(" %17s %17s", "-", "-");
    for (std::vector<double>& t : us) {
      std::sort(t.begin(), t.end());
      std::printf("     %5.2f / %5.2f", t[t.size() / 2], t[0]);
    }
    std::printf("\n");
  }
}
