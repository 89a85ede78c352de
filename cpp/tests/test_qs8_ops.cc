// int8-full operators: every fast path (GEMM paths scalar/AVX2/VNNI/AMX for convolutions, scalar
// and AVX-512 for depthwise/elementwise kernels) must return the plain references' bytes exactly,
// over edge shapes (channel counts around 16/32/64, kernels 1..7, strides 1..3, padding, groups,
// small and large feature maps so that both the row and the channel split of the threads run),
// every epilogue (clamp, residual add, table) and 1 or 2 threads.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "common/parallel.h"
#include "harness.h"
#include "isa/isa.h"
#include "qs8-conv2d/conv2d.h"
#include "qs8-elementwise/elementwise.h"
#include "qs8-pool/pool.h"
#include "reference/qs8_reference.h"

using namespace eo;

namespace {

struct ConvCase {
  int N, H, W, cin, cout, kh, kw, sh, sw, ph, pw, groups;
};

const ConvCase kConvCases[] = {
    // 1x1, stride 1, no padding: the GEMM reads x in place
    {1, 5, 7, 16, 33, 1, 1, 1, 1, 0, 0, 1},
    {2, 3, 3, 3, 1, 1, 1, 1, 1, 0, 0, 1},
    {1, 4, 4, 65, 64, 1, 1, 1, 1, 0, 0, 1},
    {1, 4, 4, 320, 130, 1, 1, 1, 1, 0, 0, 1},   // few rows, many channels: channel split
    {2, 1, 1, 64, 100, 1, 1, 1, 1, 0, 0, 1},    // a linear layer
    {1, 32, 32, 16, 24, 1, 1, 1, 1, 0, 0, 1},   // row split
    // im2col
    {1, 8, 8, 3, 16, 3, 3, 1, 1, 1, 1, 1},
    {1, 9, 7, 17, 31, 3, 3, 1, 1, 1, 1, 1},
    {2, 6, 6, 65, 40, 3, 3, 1, 1, 1, 1, 1},
    {1, 32, 32, 16, 16, 3, 3, 1, 1, 1, 1, 1},   // resnet20 stage 1: row split, K = 144
    {1, 16, 16, 32, 64, 3, 3, 2, 2, 1, 1, 1},
    {1, 7, 9, 16, 32, 1, 1, 2, 2, 0, 0, 1},     // 1x1 stride-2 projection
    {1, 11, 10, 5, 9, 5, 5, 2, 2, 2, 2, 1},
    {1, 12, 12, 3, 8, 7, 7, 2, 3, 3, 1, 1},
    {1, 4, 4, 96, 256, 3, 3, 1, 1, 1, 1, 1},    // im2col + channel split
    {1, 3, 3, 4, 4, 3, 3, 1, 1, 0, 0, 1},       // a single output pixel
    // grouped (one GEMM per group)
    {1, 6, 5, 8, 6, 3, 3, 1, 1, 1, 1, 2},
    {2, 5, 5, 16, 32, 1, 1, 1, 1, 0, 0, 4},
    // depthwise
    {1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 16},
    {1, 9, 9, 17, 17, 3, 3, 2, 2, 1, 1, 17},
    {2, 7, 6, 33, 33, 5, 5, 1, 1, 2, 2, 33},
    {1, 10, 10, 15, 15, 5, 5, 2, 2, 2, 2, 15},
    {1, 6, 7, 1, 1, 3, 3, 1, 1, 0, 0, 1 /* groups 1 == depthwise of 1 channel, GEMM path */},
    {1, 6, 7, 2, 2, 2, 3, 3, 2, 1, 0, 2},
    {1, 32, 32, 144, 144, 3, 3, 1, 1, 1, 1, 144},  // mobilenet_v2 size: row split
    {1, 7, 7, 96, 96, 7, 7, 1, 1, 3, 3, 96},
};

enum Epi { kPlain, kRelu, kResidual, kLut, kResidualLut };

// Factors that keep outputs mostly inside [0, 255] for K-term accumulators.
void random_requant(int n, int K, std::mt19937& rng, std::vector<float>& scale) {
  std::uniform_real_distribution<float> mant_d(0.5f, 1.0f);
  int log2k = 0;
  while ((1 << log2k) < K) ++log2k;
  std::uniform_int_distribution<int> exp_d(log2k + 4, log2k + 9);
  scale.resize(n);
  for (int j = 0; j < n; ++j) scale[j] = std::ldexp(mant_d(rng), -exp_d(rng));
}

// An add of a (zero point z_a) and b (z_b) into y (z_y) with ratios s_a / s_y, s_b / s_y in
// [0.25, 2); qmin = z_y is a ReLU after the add.
qs8_add_params random_add(std::mt19937& rng, int32_t z_a, int32_t z_b, bool relu = false) {
  std::uniform_int_distribution<int> u8(0, 255);
  std::uniform_real_distribution<float> r(0.25f, 2.0f);
  qs8_add_params p;
  p.a_scale = r(rng);
  p.b_scale = r(rng);
  const int32_t z_y = u8(rng);
  p.offset = float(z_y) - (p.a_scale * float(z_a) + p.b_scale * float(z_b));
  p.qmin = relu ? z_y : 0;
  p.qmax = 255;
  return p;
}

std::string describe(const ConvCase& c, int epi, const char* path) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "conv N=%d H=%d W=%d cin=%d cout=%d k=%dx%d s=%dx%d p=%dx%d g=%d epi=%d path=%s",
                c.N, c.H, c.W, c.cin, c.cout, c.kh, c.kw, c.sh, c.sw, c.ph, c.pw, c.groups, epi, path);
  return buf;
}

void expect_bytes(const std::vector<uint8_t>& got, const std::vector<uint8_t>& ref, const std::string& what) {
  for (size_t e = 0; e < got.size(); ++e)
    if (got[e] != ref[e]) {
      char buf[128];
      std::snprintf(buf, sizeof buf, ": byte %zu = %d, reference %d", e, got[e], ref[e]);
      throw test::Failure{what + buf};
    }
}

void run_conv_case(const ConvCase& c, int epi_kind, int gemm_path, int op_isa, std::mt19937& rng,
                   int bits = 8) {
  Qs8ConvShape s;
  s.cin = c.cin; s.cout = c.cout; s.kh = c.kh; s.kw = c.kw; s.sh = c.sh; s.sw = c.sw;
  s.ph = c.ph; s.pw = c.pw; s.groups = c.groups;
  const int64_t OH = s.out_h(c.H), OW = s.out_w(c.W), K = c.kh * c.kw * (c.cin / c.groups);
  std::uniform_int_distribution<int> u8(0, 255), s8(bits == 4 ? -8 : -128, bits == 4 ? 7 : 127);
  std::vector<uint8_t> x(size_t(c.N) * c.H * c.W * c.cin), res(size_t(c.N) * OH * OW * c.cout);
  std::vector<int8_t> w(size_t(c.cout) * K);
  for (auto& v : x) v = uint8_t(u8(rng));
  for (auto& v : res) v = uint8_t(u8(rng));
  for (auto& v : w) v = int8_t(s8(rng));
  std::vector<int32_t> bias(c.cout);
  std::vector<float> scale;
  // 4-bit weights make products 16x smaller: the bias range and the factors follow
  const int32_t bias_max = bits == 4 ? 1 << 14 : 1 << 18;
  std::uniform_int_distribution<int32_t> bias_d(-bias_max, bias_max);
  for (auto& b : bias) b = bias_d(rng);
  random_requant(c.cout, bits == 4 ? int(K) / 16 + 1 : int(K), rng, scale);
  // an output zero point away from the ends, so the outputs' spread is visible around it
  const int32_t in_zp = u8(rng), out_zp = 64 + u8(rng) / 2;
  int32_t qmin = 0, qmax = 255;
  if (epi_kind == kRelu) {
    qmin = out_zp;
    qmax = std::min(255, out_zp + 100);  // a ReLU6-like clamp
  }
  Qs8ConvEpilogue epi;
  if (epi_kind == kResidual || epi_kind == kResidualLut) {
    epi.residual = true;
    epi.add = random_add(rng, out_zp, u8(rng), epi_kind == kResidual);
  }
  if (epi_kind == kLut || epi_kind == kResidualLut) {
    epi.has_lut = true;
    for (auto& v : epi.lut) v = uint8_t(u8(rng));
  }
  Qs8Conv2d op = qs8_conv2d_create(s, w.data(), bias.data(), scale.data(), in_zp, out_zp, qmin,
                                   qmax, epi, bits);
  op.path_override = gemm_path;
  op.op_isa_override = op_isa;
  std::vector<uint8_t> y(res.size(), 0xA5), ref(res.size(), 0x5A);
  std::vector<uint8_t> ws(qs8_conv2d_workspace_bytes(op, c.N, c.H, c.W) + 1);
  qs8_conv2d_run(op, c.N, c.H, c.W, x.data(), res.data(), y.data(), ws.data());
  reference::qs8_conv2d(s, c.N, c.H, c.W, x.data(), in_zp, w.data(), bias.data(), scale.data(),
                        out_zp, qmin, qmax, epi, res.data(), ref.data());
  const char* pname = s.depthwise() ? qs8_op_ukernels(Isa(op_isa)).name
                                    : qs8_gemm_ukernel(Qs8Path(gemm_path)).name;
  expect_bytes(y, ref, describe(c, epi_kind, pname) + (bits == 4 ? " w4" : ""));
  if (epi_kind == kPlain && y.size() >= 64) {  // the data must exercise more than the clamps
    const size_t inside = size_t(std::count_if(y.begin(), y.end(), [](uint8_t v) { return v > 0 && v < 255; }));
    CHECK(inside * 4 >= y.size(), describe(c, epi_kind, pname) + ": most outputs saturate");
  }
}

std::vector<int> gemm_paths() {
  std::vector<int> p;
  for (int i = 0; i < kQs8PathCount; ++i)
    if (qs8_gemm_path_supported(static_cast<Qs8Path>(i))) p.push_back(i);
  return p;
}

std::vector<int> op_isas() {
  std::vector<int> p = {int(Isa::scalar)};
  if (cpu_isa() >= Isa::avx512) p.push_back(int(Isa::avx512));
  return p;
}

}  // namespace

TEST(qs8_conv2d_matches_reference_every_path_and_epilogue) {
  std::mt19937 rng(11);
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const ConvCase& c : kConvCases) {
      const bool dw = c.groups > 1 && c.groups == c.cin && c.cout == c.cin;
      const std::vector<int> paths = dw ? std::vector<int>{int(Qs8Path::scalar)} : gemm_paths();
      for (int path : paths)
        for (int isa : op_isas())
          for (int e = kPlain; e <= kResidualLut; ++e) {
            if (!dw && isa != int(Isa::scalar) && e != kResidual && e != kResidualLut) continue;
            run_conv_case(c, e, path, isa, rng);
          }
    }
  }
  set_num_threads(2);
}

// Cin % 4 == 0 convs other than 1x1 stride 1 run the implicit GEMM on the VNNI path: tiles across
// image rows and images, padding materialized, non-square kernels / strides / pads, the channel
// split. (Its own random stream: the cases above keep theirs.)
TEST(qs8_conv2d_implicit_gemm_matches_reference) {
  std::mt19937 rng(13);
  const ConvCase cases[] = {
      {2, 9, 7, 8, 20, 3, 3, 1, 1, 1, 1, 1},
      {1, 10, 13, 12, 40, 5, 3, 2, 1, 2, 1, 1},
      {3, 5, 5, 64, 48, 3, 3, 1, 1, 1, 1, 1},
      {1, 6, 6, 4, 8, 3, 3, 1, 1, 3, 2, 1},  // padding wider than the kernel's reach
      {2, 8, 8, 32, 64, 3, 3, 2, 2, 1, 1, 1},
  };
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const ConvCase& c : cases)
      for (int path : gemm_paths())
        for (int e : {kPlain, kResidualLut}) run_conv_case(c, e, path, int(Isa::scalar), rng);
  }
  set_num_threads(2);
}

// 4-bit weights through every conv path (1x1 in place, implicit GEMM, im2col, groups, depthwise).
TEST(qs8_conv2d_4bit_weights_match_reference) {
  std::mt19937 rng(15);
  const ConvCase cases[] = {
      {1, 5, 7, 16, 33, 1, 1, 1, 1, 0, 0, 1},   {2, 9, 7, 8, 20, 3, 3, 1, 1, 1, 1, 1},
      {1, 32, 32, 16, 16, 3, 3, 1, 1, 1, 1, 1}, {1, 16, 16, 32, 64, 3, 3, 2, 2, 1, 1, 1},
      {1, 9, 7, 17, 31, 3, 3, 1, 1, 1, 1, 1},   {1, 10, 13, 12, 40, 5, 3, 2, 1, 2, 1, 1},
      {1, 6, 5, 8, 6, 3, 3, 1, 1, 1, 1, 2},     {1, 8, 8, 16, 16, 3, 3, 1, 1, 1, 1, 16},
      {1, 4, 4, 96, 256, 3, 3, 1, 1, 1, 1, 1},
  };
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const ConvCase& c : cases)
      for (int path : gemm_paths())
        for (int e : {kPlain, kResidualLut}) run_conv_case(c, e, path, int(Isa::scalar), rng, 4);
  }
  set_num_threads(2);
}

TEST(qs8_conv2d_rejects_bad_settings) {
  Qs8ConvShape s;
  s.cin = 4; s.cout = 6; s.groups = 4;
  std::vector<int8_t> w(64, 1);
  std::vector<float> m(6, 0.5f);
  bool threw = false;
  try {
    qs8_conv2d_create(s, w.data(), nullptr, m.data(), 0, 0, 0, 255);
  } catch (const std::exception&) {
    threw = true;
  }
  CHECK(threw, "cout not divisible by groups must throw");
  s.groups = 1;
  std::vector<int32_t> big(6, INT32_MAX);
  threw = false;
  try {
    qs8_conv2d_create(s, w.data(), big.data(), m.data(), 0, 0, 0, 255);
  } catch (const std::exception&) {
    threw = true;
  }
  CHECK(threw, "a bias that can overflow the accumulator must throw");
  for (float bad : {0.0f, -1.0f, NAN, INFINITY}) {
    std::vector<float> sc(6, 0.5f);
    sc[3] = bad;
    threw = false;
    try {
      qs8_conv2d_create(s, w.data(), nullptr, sc.data(), 0, 0, 0, 255);
    } catch (const std::exception&) {
      threw = true;
    }
    CHECK(threw, "a scale that is not finite and > 0 must throw");
  }
}

TEST(qs8_add_and_channel_scale_match_reference) {
  std::mt19937 rng(12);
  std::uniform_int_distribution<int> u8(0, 255);
  for (int isa : op_isas()) {
    const Qs8OpUkernels& uk = qs8_op_ukernels(Isa(isa));
    for (int n : {1, 7, 15, 16, 17, 33, 64, 100, 70000}) {
      for (int rep = 0; rep < 3; ++rep) {
        std::vector<uint8_t> a(n), b(n), y(n), ref(n);
        for (auto& v : a) v = uint8_t(u8(rng));
        for (auto& v : b) v = uint8_t(u8(rng));
        if (rep == 0) {
          std::fill(a.begin(), a.end(), 255);
          std::fill(b.begin(), b.end(), 0);
        }
        qs8_add_params p = random_add(rng, u8(rng), u8(rng), rep == 2);
        if (rep == 0) {  // exact ties: a/2 + b/2 with a + b odd rounds half to even
          p.a_scale = p.b_scale = 0.5f;
          p.offset = 0.0f;
          for (int i = 0; i < n; ++i) a[i] = uint8_t(i % 256), b[i] = uint8_t((i * 7 + 1) % 256);
        }
        qs8_add(uk, n, a.data(), b.data(), p, y.data());
        for (int i = 0; i < n; ++i) ref[i] = reference::qs8_add(a[i], b[i], p);
        expect_bytes(y, ref, std::string("qs8 add ") + uk.name + " n=" + std::to_string(n));
      }
    }
    for (int C : {1, 15, 16, 17, 96, 4100})
      for (int HW : {1, 3, 64}) {
        const int N = 2;
        std::vector<uint8_t> x(size_t(N) * HW * C), s(size_t(N) * C), y(x.size()), ref(x.size());
        for (auto& v : x) v = uint8_t(u8(rng));
        for (auto& v : s) v = uint8_t(u8(rng));
        std::uniform_real_distribution<float> m(0.5f, 1.0f);
        std::uniform_int_distribution<int> sh(6, 10);
        qs8_channel_scale_params p{u8(rng), std::ldexp(m(rng), -sh(rng)), u8(rng), 0, 255};
        const int32_t s_zp = u8(rng) / 4;
        qs8_channel_scale(uk, N, HW, C, x.data(), s.data(), s_zp, p, y.data());
        reference::qs8_channel_scale(N, HW, C, x.data(), s.data(), s_zp, p, ref.data());
        expect_bytes(y, ref, std::string("qs8 channel_scale ") + uk.name + " C=" + std::to_string(C));
      }
  }
}

TEST(qs8_pools_match_reference) {
  std::mt19937 rng(13);
  std::uniform_int_distribution<int> u8(0, 255);
  struct P { int N, H, W, C, kh, kw, sh, sw, ph, pw; };
  const P cases[] = {{1, 8, 8, 16, 2, 2, 2, 2, 0, 0}, {2, 7, 9, 17, 3, 3, 2, 2, 1, 1},
                     {1, 5, 5, 3, 3, 2, 1, 2, 1, 0}, {1, 32, 32, 64, 3, 3, 1, 1, 1, 1}};
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (const P& c : cases) {
      Qs8PoolShape s{c.kh, c.kw, c.sh, c.sw, c.ph, c.pw};
      const int64_t OH = s.out_h(c.H), OW = s.out_w(c.W);
      std::vector<uint8_t> x(size_t(c.N) * c.H * c.W * c.C), y(size_t(c.N) * OH * OW * c.C),
          ref(y.size());
      for (auto& v : x) v = uint8_t(u8(rng));
      qs8_maxpool2d(s, c.N, c.H, c.W, c.C, x.data(), y.data());
      reference::qs8_maxpool2d(s, c.N, c.H, c.W, c.C, x.data(), ref.data());
      expect_bytes(y, ref, "qs8 maxpool");
      std::vector<float> scale(c.kh * c.kw);
      for (int d = 1; d <= c.kh * c.kw; ++d) scale[d - 1] = 1.0f / float(d * (1 + d % 3));
      for (bool cip : {false, true}) {
        const int32_t in_zp = u8(rng), out_zp = u8(rng);
        qs8_avgpool2d(s, cip, c.N, c.H, c.W, c.C, x.data(), in_zp, scale.data(), out_zp, 0, 255,
                      y.data());
        reference::qs8_avgpool2d(s, cip, c.N, c.H, c.W, c.C, x.data(), in_zp, scale.data(), out_zp,
                                 0, 255, ref.data());
        expect_bytes(y, ref, "qs8 avgpool");
      }
      // global average pool = an average pool over the whole map without padding
      Qs8PoolShape g{c.H, c.W, 1, 1, 0, 0};
      const int d = c.H * c.W;
      std::vector<float> gscale(d, 0.5f);
      gscale[d - 1] = 1.0f / float(d + 3);
      std::vector<uint8_t> gy(size_t(c.N) * c.C), gref(gy.size());
      qs8_global_avgpool2d(c.N, d, c.C, x.data(), 7, gscale[d - 1], 100, 0, 255, gy.data());
      reference::qs8_avgpool2d(g, true, c.N, c.H, c.W, c.C, x.data(), 7, gscale.data(), 100, 0,
                               255, gref.data());
      expect_bytes(gy, gref, "qs8 global avgpool");
    }
  }
  set_num_threads(2);
}

// NCHW float -> NHWC u8: y = clamp(nearbyint(x / scale), -zp, 255 - zp) + zp with NaN at the
// low end; ties to even, infinities and huge values saturate, every split of the pixels; a
// quotient (onnxruntime's QuantizeLinear), not a product with the reciprocal.
TEST(qs8_quantize_matches_nearbyint_and_clamp) {
  std::mt19937 rng(14);
  std::uniform_real_distribution<float> u(-300.f, 300.f);
  for (int threads : {1, 2})
    for (int64_t N : {1, 2, 3})
      for (int64_t C : {1, 3, 16})
        for (int64_t HW : {1, 7, 1024}) {
          set_num_threads(threads);
          std::vector<float> x(size_t(N * C * HW));
          for (size_t e = 0; e < x.size(); ++e) {
            switch (e % 9) {
              case 0: x[e] = float(int(u(rng))) + 0.5f; break;  // a tie
              case 1: x[e] = NAN; break;
              case 2: x[e] = e % 2 ? INFINITY : -INFINITY; break;
              case 3: x[e] = e % 2 ? 3e38f : -3e38f; break;
              default: x[e] = u(rng);
            }
          }
          const int32_t zp = int32_t(rng() % 256);
          const float scale = HW == 7 ? 0.37f : 1.f;   // 1: the ties above stay ties
          std::vector<uint8_t> y(x.size()), want(x.size());
          qs8_quantize(N, C, HW, x.data(), scale, zp, y.data());
          for (int64_t n = 0; n < N; ++n)
            for (int64_t c = 0; c < C; ++c)
              for (int64_t i = 0; i < HW; ++i) {
                const float v = x[size_t((n * C + c) * HW + i)];
                float r = std::isnan(v) ? float(-zp) : std::nearbyint(v / scale);
                r = std::min(std::max(r, float(-zp)), float(255 - zp));
                want[size_t((n * HW + i) * C + c)] = uint8_t(int32_t(r) + zp);
              }
          CHECK(y == want, "qs8_quantize");
        }
  set_num_threads(2);
}

// The plain AVX-512 depthwise kernel (AVX-512 CPUs without VNNI; qs8_op_ukernels gives the VNNI
// one where the CPU has it) against the scalar kernel, on the same parameters and taps.
TEST(qs8_dwconv_avx512_kernel_matches_scalar) {
  if (cpu_isa() < Isa::avx512) return;
  std::mt19937 rng(16);
  std::uniform_int_distribution<int> u8(0, 255), s8(-128, 127);
  for (int C : {2, 15, 16, 17, 64, 144})   // (one channel is a GEMM, not depthwise)
    for (int ntaps : {1, 4, 9, 25}) {
      Qs8ConvShape s;
      s.cin = s.cout = s.groups = C;
      s.kh = 1;
      s.kw = ntaps;
      std::vector<int8_t> w(size_t(C) * ntaps);
      for (auto& v : w) v = int8_t(s8(rng));
      std::vector<int32_t> bias(C);
      std::vector<float> scale;
      for (auto& b : bias) b = u8(rng) * 64 - 8000;
      random_requant(C, ntaps, rng, scale);
      const Qs8Conv2d op = qs8_conv2d_create(s, w.data(), bias.data(), scale.data(), u8(rng),
                                             u8(rng), 0, 255);
      const qs8_dwconv_params p{op.dw_w.data(),      op.dw_adj.data(), op.dw_scale.data(),
                                size_t(op.cstride),   op.out_zp,        op.qmin,
                                op.qmax,              op.dw_w8.data(),  op.dw_adj_p.data(),
                                op.dw_scale_p.data(), op.zp_row.data()};
      const int npix = 7;
      std::vector<uint8_t> x(size_t(npix + ntaps) * C);
      for (auto& v : x) v = uint8_t(u8(rng));
      std::vector<const uint8_t*> taps(size_t(npix) * ntaps);
      for (int px = 0; px < npix; ++px)
        for (int t = 0; t < ntaps; ++t) taps[size_t(px * ntaps + t)] = x.data() + size_t(px + t) * C;
      std::vector<uint8_t> a(size_t(npix) * C), b(a.size());
      qs8_dwconv_ukernel__avx512(C, npix, ntaps, taps.data(), &p, a.data(), C);
      qs8_dwconv_ukernel__scalar(C, npix, ntaps, taps.data(), &p, b.data(), C);
      CHECK(a == b, "avx512 depthwise kernel = scalar (C " + std::to_string(C) + ", taps " + std::to_string(ntaps) + ")");
    }
}
