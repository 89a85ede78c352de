// int8-full conv layers at batch 1, every GEMM path this CPU has, 8-bit against 4-bit weights:
// the figures behind the path rules in qs8-conv2d/conv2d.cc (conv_path) and qs8-gemm/ukernel_amx.cc.
//
// Shapes: resnet20's convs and mobilenet_v2's 1x1 convs at CIFAR input (1x3x32x32), NHWC u8,
// random operands (time does not depend on the values). Variants: "default" is the path the
// runtime picks (EDGEOPT_ISA and the shape decide); the others force one path. Every variant of a
// shape is timed in each round, taken in turn (a burst of load from other processes hits them
// alike) and in reverse order every second round (a fixed order favours whichever comes first);
// a variant's turn is 20 warm-up calls, then `calls` timed ones. Printed: the median over
// rounds of the per-call mean, and the fastest round, in microseconds.
//
//   build/dev/bench_qs8_conv_paths [threads=2] [rounds=21] [calls=100]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "common/parallel.h"
#include "isa/dispatch.h"
#include "qs8-conv2d/conv2d.h"

namespace {

struct Shape {
  const char* model;
  int cin, cout, k, stride, hw;  // square kernel and input
};

const Shape kShapes[] = {
    {"resnet20", 16, 16, 3, 1, 32}, {"resnet20", 16, 32, 3, 2, 32}, {"resnet20", 32, 32, 3, 1, 16},
    {"resnet20", 32, 64, 3, 2, 16}, {"resnet20", 64, 64, 3, 1, 8},  {"resnet20", 16, 32, 1, 2, 32},
    {"resnet20", 32, 64, 1, 2, 16}, {"mbv2", 16, 96, 1, 1, 32},     {"mbv2", 96, 24, 1, 1, 32},
    {"mbv2", 24, 144, 1, 1, 32},    {"mbv2", 144, 24, 1, 1, 32},    {"mbv2", 144, 32, 1, 1, 16},
    {"mbv2", 32, 192, 1, 1, 16},    {"mbv2", 192, 32, 1, 1, 16},    {"mbv2", 192, 64, 1, 1, 8},
    {"mbv2", 64, 384, 1, 1, 8},     {"mbv2", 384, 64, 1, 1, 8},     {"mbv2", 384, 96, 1, 1, 8},
    {"mbv2", 96, 576, 1, 1, 8},     {"mbv2", 576, 96, 1, 1, 8},     {"mbv2", 576, 160, 1, 1, 4},
    {"mbv2", 160, 960, 1, 1, 4},    {"mbv2", 960, 160, 1, 1, 4},    {"mbv2", 960, 320, 1, 1, 4},
    {"mbv2", 320, 1280, 1, 1, 4},
};

struct Variant {
  std::string name;
  int bits, path;  // path -1: the runtime's choice
};

}  // namespace

int main(int argc, char** argv) {
  using namespace eo;
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const int rounds = argc > 2 ? std::atoi(argv[2]) : 21;
  const int calls = argc > 3 ? std::atoi(argv[3]) : 100;
  if (threads < 1 || threads > 256 || rounds < 1 || calls < 1) {
    std::fprintf(stderr, "usage: bench_qs8_conv_paths [threads >= 1] [rounds >= 1] [calls >= 1]\n");
    return 2;
  }
  set_num_threads(threads);
  std::vector<Variant> variants;
  for (int bits : {8, 4}) {
    variants.push_back({"default w" + std::to_string(bits), bits, -1});
    for (int p = int(Qs8Path::avx512vnni); p < kQs8PathCount; ++p)
      if (qs8_gemm_path_supported(Qs8Path(p)))  // also asks the OS for AMX tile state
        variants.push_back({std::string(qs8_gemm_ukernel(Qs8Path(p)).name) + " w" + std::to_string(bits), bits, p});
  }
  std::printf("# %d thread(s), %d rounds of %d calls; us per call: median over rounds / fastest round\n",
              threads, rounds, calls);
  std::printf("%-9s %-22s", "model", "conv");
  for (const Variant& v : variants) std::printf(" %17s", v.name.c_str());
  std::printf("\n");
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> u8(0, 255), w4(-8, 7);
  for (const Shape& sh : kShapes) {
    Qs8ConvShape s;
    s.cin = sh.cin, s.cout = sh.cout, s.kh = s.kw = sh.k, s.sh = s.sw = sh.stride, s.ph = s.pw = sh.k / 2;
    std::vector<int8_t> w(size_t(sh.cout) * sh.k * sh.k * sh.cin);
    for (int8_t& v : w) v = int8_t(w4(rng));  // in [-8, 7]: valid at both widths
    std::vector<float> scale(size_t(sh.cout), 1e-3f);
    std::vector<uint8_t> x(size_t(sh.hw) * sh.hw * sh.cin);
    for (uint8_t& v : x) v = uint8_t(u8(rng));
    std::vector<uint8_t> y(size_t(s.out_h(sh.hw) * s.out_w(sh.hw) * sh.cout));
    std::vector<Qs8Conv2d> ops;
    std::vector<std::vector<uint8_t>> ws;
    for (const Variant& v : variants) {
      ops.push_back(qs8_conv2d_create(s, w.data(), nullptr, scale.data(), 128, 0, 0, 255, {}, v.bits));
      ops.back().path_override = v.path;
      ws.emplace_back(qs8_conv2d_workspace_bytes(ops.back(), 1, sh.hw, sh.hw) + 64);
    }
    std::vector<std::vector<double>> us(variants.size());
    for (int r = 0; r < rounds; ++r)
      for (size_t j = 0; j < ops.size(); ++j) {
        const size_t i = r % 2 ? ops.size() - 1 - j : j;  // reversed every second round
        for (int c = 0; c < 20; ++c) qs8_conv2d_run(ops[i], 1, sh.hw, sh.hw, x.data(), nullptr, y.data(), ws[i].data());
        const auto t0 = std::chrono::steady_clock::now();
        for (int c = 0; c < calls; ++c)
          qs8_conv2d_run(ops[i], 1, sh.hw, sh.hw, x.data(), nullptr, y.data(), ws[i].data());
        us[i].push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / calls);
      }
    char conv[64];
    std::snprintf(conv, sizeof conv, "%d->%d %dx%d s%d @%d", sh.cin, sh.cout, sh.k, sh.k, sh.stride, sh.hw);
    std::printf("%-9s %-22s", sh.model, conv);
    for (std::vector<double>& t : us) {
      std::sort(t.begin(), t.end());
      std::printf("      %5.2f / %5.2f", t[t.size() / 2], t[0]);
    }
    std::printf("\n");
  }
}
