// int8 GEMM: every path this CPU has must return the reference's bytes exactly, on edge sizes
// around every tile (4/8/32 rows, 16/32 columns, 4/64-deep k-groups), extreme values, both output
// types, fused clamps, with and without bias, padded strides and 1 or 2 threads.
#include <algorithm>
#include <cmath>
#include <random>
#include <stdexcept>

#include "common/parallel.h"
#include "harness.h"
#include "qs8-gemm/gemm.h"
#include "qs8-gemm/requantize.h"
#include "reference/reference.h"

using namespace eo;

namespace {

const int kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};

struct Case {
  int M, N, K;
  int variant;  // picks zero points, bias, output type, clamps, value ranges
};

// bits 4: weights in [-8, 7], packed c4x2 (the 4-bit kernels); the reference sees the same values.
void run_case(const Case& cs, Qs8Path path, std::mt19937& rng, int bits = 8) {
  const int M = cs.M, N = cs.N, K = cs.K, v = cs.variant;
  const int lda = K + (v % 3), ldc = N + (v % 2) * 5;
  const int wlo = bits == 4 ? -8 : -128, whi = bits == 4 ? 7 : 127;
  std::uniform_int_distribution<int> u8(0, 255), s8(wlo, whi);
  std::vector<uint8_t> a(size_t(M) * lda);
  std::vector<int8_t> b(size_t(K) * N);
  const int extreme = v % 7;  // 0: all 255 x all most-negative, 1: all 0 x all most-positive
  for (auto& x : a) x = extreme == 0 ? 255 : extreme == 1 ? 0 : uint8_t(u8(rng));
  for (auto& x : b) x = int8_t(extreme == 0 ? wlo : extreme == 1 ? whi : s8(rng));
  const int32_t a_zp = (v % 4 == 0) ? 0 : (v % 4 == 1) ? 255 : u8(rng);
  const bool has_bias = v % 5 != 0;
  std::vector<int32_t> bias(N);
  std::vector<float> scale(N);
  std::uniform_int_distribution<int32_t> bias_d(-(1 << 20), 1 << 20);
  std::uniform_real_distribution<float> mant_d(0.5f, 1.0f);
  int log2k = 0;
  while ((1 << log2k) < K) ++log2k;
  std::uniform_int_distribution<int> exp_d(log2k + 1, log2k + 9);
  for (int j = 0; j < N; ++j) {
    bias[j] = bias_d(rng);
    scale[j] = std::ldexp(mant_d(rng), -exp_d(rng));
  }
  if (v % 11 == 3) {  // extreme requantization settings: factors >= 1, tiny, and exact ties
    scale[0] = 3.0f;
    if (N > 1) scale[1] = 1e-30f;
    if (N > 2) scale[2] = 0.5f;
  }
  const bool s8_out = v % 2 == 1;
  int32_t out_zp, qmin, qmax;
  if (s8_out) {
    out_zp = -128 + u8(rng);
    qmin = v % 3 == 0 ? out_zp : -128;
    qmax = v % 3 == 0 ? std::min(127, out_zp + 60) : 127;  // ReLU6-like
  } else {
    out_zp = (v % 4 == 2) ? 255 : u8(rng);
    qmin = v % 3 == 0 ? out_zp : 0;
    qmax = 255;
  }
  const int32_t* bias_p = has_bias ? bias.data() : nullptr;
  Qs8PackedB pb = qs8_pack_b(K, N, b.data(), N, 1, bits);
  CHECK(qs8_accumulator_fits(pb, bias_p), "test data must keep the accumulator in int32");
  std::vector<uint8_t> c(size_t(M) * ldc, 0xA5), ref(size_t(M) * ldc, 0xA5);
  qs8_gemm(M, a.data(), lda, a_zp, pb, {bias_p, scale.data(), out_zp, qmin, qmax},
           c.data(), ldc, path, true);
  reference::qs8_gemm(M, N, K, a.data(), lda, a_zp, b.data(), N, bias_p, scale.data(), out_zp, qmin, qmax, ref.data(), ldc);
  for (size_t e = 0; e < c.size(); ++e) {
    if (c[e] != ref[e]) {
      char buf[256];
      std::snprintf(buf, sizeof buf,
                    "qs8 gemm %s w%d M=%d N=%d K=%d variant=%d: C[%zu][%zu] = %d, reference %d",
                    qs8_gemm_ukernel(path).name, bits, M, N, K, v, e / ldc, e % ldc, c[e], ref[e]);
      throw test::Failure{buf};
    }
  }
}

std::vector<Qs8Path> supported_paths() {
  std::vector<Qs8Path> p;
  for (int i = 0; i < kQs8PathCount; ++i)
    if (qs8_gemm_path_supported(static_cast<Qs8Path>(i))) p.push_back(static_cast<Qs8Path>(i));
  return p;
}

}  // namespace

TEST(qs8_gemm_matches_reference_on_edge_sizes_every_path) {
  std::mt19937 rng(7);
  int variant = 0;
  for (Qs8Path path : supported_paths())
    for (int M : kSizes)
      for (int N : kSizes)
        for (int K : kSizes) {
          // all small cases; a third of those with every dimension above 10 keeps it quick
          if (M > 10 && N > 10 && K > 10 && (M + N + K) % 3 != 0) continue;
          run_case({M, N, K, variant++}, path, rng);
        }
}

TEST(qs8_gemm_matches_reference_on_larger_and_deep_shapes) {
  std::mt19937 rng(8);
  const Case cases[] = {{100, 70, 127, 0}, {129, 33, 300, 1}, {64, 96, 576, 2}, {257, 48, 129, 3},
                        {33, 130, 1000, 4}, {200, 17, 27, 5},  {70, 64, 64, 6},  {96, 100, 257, 10}};
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (Qs8Path path : supported_paths())
      for (Case cs : cases)
        for (int v = 0; v < 14; v += 3) run_case({cs.M, cs.N, cs.K, cs.variant + v}, path, rng);
  }
}

// 4-bit weights: K around every pair of k-groups (8), partial k-groups, tiles and threads; deep
// enough (1000) for AMX's k-block-at-a-time widening of up to 32 rows.
TEST(qs8_gemm_4bit_weights_match_reference_every_path) {
  std::mt19937 rng(9);
  const int ks[] = {1, 3, 4, 5, 7, 8, 9, 12, 15, 16, 17, 31, 33, 64, 65, 144, 300, 1000};
  int variant = 0;
  for (int threads : {1, 2}) {
    set_num_threads(threads);
    for (Qs8Path path : supported_paths())
      for (int K : ks)
        for (int MN : {1, 8, 9, 16, 17, 33, 70}) run_case({MN, (MN * 7) % 41 + 1, K, variant++}, path, rng, 4);
  }
  // The VNNI kernel reads the panels of up to 16 rows in place as 16 * w, exact up to K = 65536
  // (all-255 x all -8 is variant 0; 65794 would overflow); deeper K takes the widened form.
  for (Qs8Path path : supported_paths())
    for (int K : {65536, 65794})
      for (int v : {0, 2}) run_case({16, 17, K, v}, path, rng, 4);
  bool threw = false;
  try {
    const int8_t w[2] = {8, 0};
    qs8_pack_b(2, 1, w, 1, 1, 4);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "a 4-bit weight outside [-8, 7] must be refused");
}

TEST(qs8_gemm_default_path_is_supported) {
  CHECK(qs8_gemm_path_supported(qs8_gemm_default_path()), "default int8 path");
}

// The shared requantization against the formula written with the C library's rounding:
// clamp(nearbyint(float(acc) * scale) + zp) (nearbyint: half to even in the default mode).
TEST(qs8_requantize_rounds_half_to_even_like_nearbyint) {
  CHECK(qs8_requantize(5, 0.5f, 0, -1000, 1000) == 2, "2.5 -> 2");
  CHECK(qs8_requantize(7, 0.5f, 0, -1000, 1000) == 4, "3.5 -> 4");
  CHECK(qs8_requantize(-5, 0.5f, 0, -1000, 1000) == -2, "-2.5 -> -2");
  CHECK(qs8_requantize(-7, 0.5f, 10, 0, 255) == 6, "-3.5 -> -4, + 10");
  CHECK(qs8_requantize(INT32_MAX, 3.0f, 0, 0, 255) == 255, "huge products saturate");
  CHECK(qs8_requantize(INT32_MIN, 3.0f, 7, 0, 255) == 0, "and negative ones too");
  std::mt19937 rng(5);
  std::uniform_int_distribution<int32_t> acc_d(-(1 << 24), 1 << 24), zp_d(0, 255);
  std::uniform_real_distribution<float> scale_d(1e-6f, 4.0f);
  for (int i = 0; i < 200000; ++i) {
    const int32_t acc = i % 3 ? acc_d(rng) / (1 << (i % 20)) : acc_d(rng);
    const float scale = i % 5 == 0 ? std::ldexp(1.0f, -(i % 12)) : scale_d(rng) / float(1 << (i % 16));
    const int32_t zp = zp_d(rng), qmin = i % 7 == 0 ? zp : 0, qmax = 255;
    const double r = std::nearbyint(double(float(acc) * scale)) + zp;
    const int32_t want = int32_t(std::min(double(qmax), std::max(double(qmin), r)));
    CHECK(qs8_requantize(acc, scale, zp, qmin, qmax) == want, "requantize vs nearbyint");
  }
}
