// Binary kernels (b1-gemm): every path this CPU has must return the reference's floats bit for bit
// (the integer dot is exact and the epilogue is the same multiply-then-add), on edge sizes around
// every tile (4 rows, 8/16 columns, 64-bit words), all three padding values, strides, fused
// clamps and residuals, batches and 1 or 2 threads.
#include <cstring>

#include "b1-gemm/gemm.h"
#include "common/parallel.h"
#include "harness.h"
#include "isa/isa.h"

using namespace eo;

namespace {

const int kSizes[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16, 17, 31, 32, 33, 63, 64, 65};
constexpr int kNumSizes = sizeof(kSizes) / sizeof(kSizes[0]);

struct IsaGuard {
  Isa saved = active_isa();
  ~IsaGuard() { set_isa(saved); }
};

std::vector<Isa> isa_levels() {
  std::vector<Isa> v;
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512})
    if (i <= cpu_isa()) v.push_back(i);
  return v;
}

// Values with the edge cases of sign() sprinkled in, which every path must binarize as the
// reference does (x >= 0 is +1): zeros of both signs (+1), NaNs of both signs (-1), infinities and
// denormals.
std::vector<float> values(size_t n, std::mt19937& rng) {
  std::vector<float> v = test::random_vec(n, rng);
  const float edge[] = {0.f, -0.f, NAN, -NAN, INFINITY, -INFINITY, 1e-40f, -1e-40f};
  for (size_t i = 0; i < n; i += 5) v[i] = edge[(i / 5) % 8];
  return v;
}

void expect_equal(const std::vector<float>& y, const std::vector<float>& ref, const char* what) {
  for (size_t e = 0; e < y.size(); ++e)
    if (std::memcmp(&y[e], &ref[e], 4) != 0) {
      char buf[300];
      std::snprintf(buf, sizeof buf, "%s (%s): y[%zu] = %.9g, reference %.9g", what,
                    isa_name(active_isa()), e, y[e], ref[e]);
      throw test::Failure{buf};
    }
}

void check_linear(int m, int n, int k, int variant, std::mt19937& rng) {
  std::vector<float> x = values(size_t(m) * k, rng), w = values(size_t(n) * k, rng);
  std::vector<float> alpha = test::random_vec(n, rng), bias = test::random_vec(n, rng);
  for (auto& a : alpha) a = std::fabs(a) + 0.01f;
  const float* bias_p = variant % 3 == 0 ? nullptr : bias.data();
  const float lo = variant % 4 == 1 ? 0.f : -INFINITY, hi = variant % 4 == 1 ? 6.f : INFINITY;
  B1LinearWeights p = b1_pack_linear_weights(n, k, w.data(), alpha.data());
  std::vector<float> y(size_t(m) * n, NAN), ref(y.size());
  b1_linear(p, m, x.data(), bias_p, lo, hi, y.data(), true);
  reference::b1_linear(n, k, w.data(), alpha.data(), bias_p, m, x.data(), lo, hi, ref.data());
  char what[128];
  std::snprintf(what, sizeof what, "b1_linear m=%d n=%d k=%d variant=%d", m, n, k, variant);
  expect_equal(y, ref, what);
}

struct ConvCase {
  int batch, cin, h, w, cout, kh, kw, stride, pad, pad_value;
};

void check_conv(const ConvCase& c, int variant, std::mt19937& rng) {
  std::vector<float> x = values(size_t(c.batch) * c.cin * c.h * c.w, rng);
  std::vector<float> w = values(size_t(c.cout) * c.cin * c.kh * c.kw, rng);
  std::vector<float> alpha = test::random_vec(c.cout, rng), bias = test::random_vec(c.cout, rng);
  for (auto& a : alpha) a = std::fabs(a) + 0.01f;
  const float* bias_p = variant % 3 == 0 ? nullptr : bias.data();
  const float lo = variant % 4 == 1 ? 0.f : -INFINITY, hi = INFINITY;
  B1ConvWeights p = b1_pack_conv_weights(c.cout, c.cin, c.kh, c.kw, w.data(), alpha.data());
  B1Conv cv{c.stride, c.stride, c.pad, c.pad, c.pad_value, nullptr};
  const int oh = (c.h + 2 * c.pad - c.kh) / c.stride + 1, ow = (c.w + 2 * c.pad - c.kw) / c.stride + 1;
  const size_t per = size_t(c.cout) * oh * ow;
  // Half the calls add a residual (a fused skip connection, NaNs and infinities included), a third
  // binarize at per-channel thresholds (ties with inputs included: x == t is +1); drawn from the
  // seeded generator, so every case meets both with and without the bias and the clamp above.
  const bool with_res = rng() % 2 == 1, with_thr = rng() % 3 == 0;
  std::vector<float> res = values(per * c.batch, rng);
  const float* res_p = with_res ? res.data() : nullptr;
  std::vector<float> thr = test::random_vec(size_t(c.cin), rng);
  thr[0] = 0.f;
  if (c.cin > 1) thr[1] = -0.f;
  const float* thr_p = with_thr ? thr.data() : nullptr;
  if (thr_p)
    for (size_t i = 0; i < x.size(); i += 11) x[i] = thr[(i / size_t(c.h * c.w)) % size_t(c.cin)];
  std::vector<float> y(per * c.batch, NAN), ref(y.size());
  cv.threshold = thr_p;
  b1_conv2d(p, cv, c.batch, c.h, c.w, x.data(), B1ConvEpilogue{bias_p, res_p, lo, hi}, y.data(), true);
  for (int n = 0; n < c.batch; ++n)
    reference::b1_conv2d(c.cout, c.cin, c.kh, c.kw, w.data(), alpha.data(), bias_p,
                         res_p ? res_p + n * per : nullptr, c.stride, c.stride, c.pad, c.pad, c.pad_value, thr_p,
                         c.h, c.w, x.data() + size_t(n) * c.cin * c.h * c.w, lo, hi, ref.data() + n * per);
  char what[200];
  std::snprintf(what, sizeof what, "b1_conv2d batch=%d cin=%d %dx%d cout=%d k=%dx%d s=%d p=%d pv=%d res=%d thr=%d",
                c.batch, c.cin, c.h, c.w, c.cout, c.kh, c.kw, c.stride, c.pad, c.pad_value, res_p != nullptr,
                thr_p != nullptr);
  expect_equal(y, ref, what);
}

}  // namespace

TEST(b1_gemm_dots_match_plain_sign_products_every_path) {
  IsaGuard guard;
  std::mt19937 rng(31);
  for (Isa isa : isa_levels()) {
    set_isa(isa);
    for (int m : {1, 3, 4, 5, 9}) 
      for (int n : {1, 7, 8, 9, 16, 17, 33})
        for (int k : {1, 63, 64, 65, 130, 200}) {
          std::vector<float> a = values(size_t(m) * k, rng), b = values(size_t(n) * k, rng);
          const int kw = (k + 63) / 64;
          std::vector<uint64_t> ab(size_t(m) * kw), bb(size_t(n) * kw);
          b1_pack_rows(m, k, a.data(), ab.data());
          b1_pack_rows(n, k, b.data(), bb.data());
          std::vector<int32_t> d(size_t(m) * n);
          b1_gemm_dots(m, n, k, ab.data(), bb.data(), d.data());
          for (int i = 0; i < m; ++i)
            for (int j = 0; j < n; ++j) {
              int want = 0;
              for (int t = 0; t < k; ++t)
                want += (a[size_t(i) * k + t] >= 0 ? 1 : -1) * (b[size_t(j) * k + t] >= 0 ? 1 : -1);
              CHECK(d[size_t(i) * n + j] == want, "b1 dot");
            }
        }
  }
}

TEST(b1_linear_matches_reference_bit_for_bit_on_edge_sizes_every_path) {
  IsaGuard guard;
  std::mt19937 rng(32);
  int variant = 0;
  for (Isa isa : isa_levels()) {
    set_isa(isa);
    for (int i = 0; i < kNumSizes; ++i)
      for (int j = 0; j < kNumSizes; ++j) {
        const int k = kSizes[(i * 7 + j * 3 + variant) % kNumSizes] * (variant % 2 ? 3 : 1);
        check_linear(kSizes[i], kSizes[j], k, variant++, rng);
      }
  }
}

TEST(b1_conv2d_matches_reference_bit_for_bit_every_path_padding_and_thread_count) {
  IsaGuard guard;
  std::mt19937 rng(33);
  const ConvCase cases[] = {
      {1, 1, 1, 1, 1, 1, 1, 1, 0, 0},     {1, 3, 5, 7, 4, 3, 3, 1, 1, 0},
      {2, 16, 8, 8, 17, 3, 3, 1, 1, 0},   {1, 64, 8, 8, 16, 3, 3, 1, 1, 1},
      {1, 65, 9, 7, 9, 3, 3, 2, 1, -1},   {1, 33, 10, 10, 65, 1, 1, 1, 0, 0},
      {1, 128, 6, 6, 64, 3, 3, 1, 1, 0},  {3, 8, 15, 17, 5, 5, 5, 2, 2, 1},
      {1, 32, 16, 16, 32, 3, 3, 1, 1, 0}, {1, 10, 4, 4, 3, 3, 3, 1, 2, -1},
      {1, 64, 32, 32, 64, 3, 3, 1, 1, 0}, {1, 5, 3, 3, 2, 3, 3, 1, 3, 1},
      // the direct stride-1 path: row tails (17, 33 columns), 1-4 words per pixel, every output
      // channel remainder of 8, wide kernels and pads beyond the kernel
      {3, 31, 9, 17, 15, 3, 3, 1, 1, 1},  {1, 100, 5, 33, 7, 3, 3, 1, 1, -1},
      {1, 32, 16, 16, 13, 5, 5, 1, 2, 0}, {2, 96, 7, 7, 11, 7, 7, 1, 3, 1},
      {1, 20, 6, 40, 9, 1, 1, 1, 0, 0},   {1, 48, 11, 12, 6, 3, 3, 1, 0, 0},
      {1, 8, 2, 2, 10, 3, 3, 1, 2, 1},
      // split by output rows, where the first parts' rows see only padding (at 4 threads)
      {1, 8, 4, 20, 256, 1, 1, 1, 6, 1},
      // the direct path at stride 2: resnet20's downsampling convs and 1x1 shortcuts, both
      // column parities of the padding, odd widths and row tails, 2-3 words per pixel, even and
      // wide kernels (7x7: tap triples across both halves of a row), an input smaller than the
      // kernel, rows of padding only, and splits by rows from 2 threads
      {1, 16, 32, 32, 32, 3, 3, 2, 1, 0}, {1, 32, 16, 16, 64, 3, 3, 2, 1, -1},
      {1, 16, 32, 32, 32, 1, 1, 2, 0, 0}, {2, 33, 13, 35, 9, 3, 3, 2, 1, 1},
      {1, 40, 9, 9, 5, 5, 5, 2, 2, -1},   {1, 8, 6, 33, 12, 3, 3, 2, 0, 1},
      {1, 64, 10, 40, 8, 2, 2, 2, 0, 0},  {1, 70, 8, 40, 6, 3, 3, 2, 1, 0},
      {1, 5, 3, 3, 2, 3, 3, 2, 3, 1},     {1, 8, 12, 40, 512, 1, 1, 2, 6, 1},
      {2, 32, 32, 32, 64, 3, 3, 2, 1, 0}, {1, 8, 2, 2, 10, 3, 3, 2, 2, 1},
      {1, 8, 9, 40, 128, 7, 7, 2, 3, -1}, {1, 20, 7, 37, 6, 4, 4, 2, 1, 0},
      {1, 16, 20, 40, 64, 5, 5, 2, 2, 1}, {1, 32, 6, 37, 9, 3, 3, 2, 1, 0},
      {1, 16, 5, 5, 4, 3, 3, 2, 4, -1},
      // 16-bit planes (3x3, stride 1, at most 16 channels, rows over 16 wide): resnet20's first
      // stage, row tails of 1 and 6 pixels past a 32-pixel block (and a second full block), pads
      // 0-3, one channel, and splits by rows, one with rows of padding only
      {1, 16, 32, 32, 16, 3, 3, 1, 1, 0}, {2, 3, 7, 33, 9, 3, 3, 1, 1, 1},
      {1, 16, 5, 40, 13, 3, 3, 1, 0, -1}, {1, 12, 9, 17, 8, 3, 3, 1, 1, 0},
      {1, 16, 6, 20, 7, 3, 3, 1, 2, 1},   {1, 1, 3, 64, 3, 3, 3, 1, 1, 0},
      {2, 16, 40, 48, 64, 3, 3, 1, 1, 0}, {1, 4, 2, 40, 128, 3, 3, 1, 3, 1},
      // two rows per vector (3x3, stride 1, rows of at most 8 pixels, 1-2 words per pixel):
      // resnet20's last stage at CIFAR and Fashion-MNIST sizes (odd rows), a single row, and a
      // split by rows with an odd row count
      {1, 64, 8, 8, 64, 3, 3, 1, 1, 0},   {2, 40, 7, 7, 9, 3, 3, 1, 1, 1},
      {1, 33, 3, 8, 5, 3, 3, 1, 0, 0},    {1, 8, 9, 5, 512, 3, 3, 1, 1, -1},
      // (the review's: a split with batch 2 and an odd row count, two words per pixel split, rows
      // of 1 and 3 pixels, and 16-bit planes split with an odd row count)
      {2, 8, 7, 5, 512, 3, 3, 1, 1, 0},   {1, 40, 7, 8, 256, 3, 3, 1, 1, -1},
      {1, 16, 6, 1, 520, 3, 3, 1, 1, 1},  {1, 33, 5, 5, 7, 3, 3, 1, 0, 0},
      {2, 16, 9, 40, 64, 3, 3, 1, 1, 0},
  };
  int variant = 0;
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    for (Isa isa : isa_levels()) {
      set_isa(isa);
      for (const ConvCase& c : cases) check_conv(c, variant++, rng);
    }
  }
}

TEST(b1_conv2d_kernel_larger_than_padded_input_gives_no_output) {
  // h + 2 pad one or two short of the kernel: a truncating division gave one output row, which
  // read past the planes at stride 2.
  IsaGuard guard;
  const int cin = 40, cout = 5;
  std::mt19937 rng(34);
  const std::vector<float> w = values(size_t(cout) * cin * 9, rng), alpha(cout, 1.f);
  const B1ConvWeights p = b1_pack_conv_weights(cout, cin, 3, 3, w.data(), alpha.data());
  for (int stride : {1, 2})
    for (int hw : {1, 2}) {
      const B1Conv cv{stride, stride, 0, 0, 0, nullptr};
      const B1ConvPlan plan = b1_conv_plan(p, cv, hw, hw);
      CHECK(plan.oh == 0 && plan.ow == 0, "no output rows or columns");
      const std::vector<float> x = values(size_t(cin) * hw * hw, rng);
      std::vector<float> y(16, 7.f);
      for (Isa isa : isa_levels()) {
        set_isa(isa);
        b1_conv2d(plan, 1, x.data(), B1ConvEpilogue{nullptr, nullptr, -INFINITY, INFINITY}, y.data(), true);
        reference::b1_conv2d(cout, cin, 3, 3, w.data(), alpha.data(), nullptr, nullptr, stride, stride, 0, 0, 0,
                             nullptr, hw, hw, x.data(), -INFINITY, INFINITY, y.data());
        for (float v : y) CHECK(v == 7.f, "nothing written");
      }
    }
}

// ------------------------------------------------------------------------------------ lowbit

#include "lowbit/lowbit.h"

TEST(lowbit_pack_unpack_round_trip_and_reference_decoding) {
  std::mt19937 rng(41);
  for (int bits : {1, 2, 4})
    for (int rows : {1, 3, 8})
      for (int k : {1, 2, 3, 5, 7, 8, 9, 17, 64, 65}) {
        const int lo = bits == 1 ? -1 : -(1 << (bits - 1)), hi = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
        std::uniform_int_distribution<int> d(lo, hi);
        std::vector<int8_t> q(size_t(rows) * k), back(q.size());
        for (auto& v : q) {
          v = int8_t(d(rng));
          if (bits == 1 && v == 0) v = 1;
        }
        std::vector<uint8_t> packed(size_t(rows * lowbit_row_bytes(k, bits)));
        lowbit_pack(rows, k, bits, q.data(), packed.data());
        lowbit_unpack_s8(rows, k, bits, packed.data(), back.data());
        CHECK(back == q, "lowbit round trip");
        for (int r = 0; r < rows; ++r)
          for (int t = 0; t < k; ++t)
            CHECK(reference::lowbit_code(packed.data() + r * lowbit_row_bytes(k, bits), t, bits) ==
                      q[size_t(r) * k + t], "reference decoding");
      }
}

TEST(lowbit_sgemm_matches_reference_every_path) {
  IsaGuard guard;
  std::mt19937 rng(42);
  for (Isa isa : isa_levels()) {
    set_isa(isa);
    for (int bits : {1, 2, 4})
      for (int M : {1, 5, 16, 33})
        for (int N : {1, 9, 64})
          for (int K : {1, 7, 65, 400}) {
            const int lo = bits == 1 ? -1 : -(1 << (bits - 1)), hi = bits == 1 ? 1 : (1 << (bits - 1)) - 1;
            std::uniform_int_distribution<int> d(lo, hi);
            std::vector<int8_t> q(size_t(M) * K);
            for (auto& v : q) {
              v = int8_t(d(rng));
              if (bits == 1 && v == 0) v = -1;
            }
            std::vector<uint8_t> packed(size_t(M * lowbit_row_bytes(K, bits)));
            lowbit_pack(M, K, bits, q.data(), packed.data());
            std::vector<float> scale = test::random_vec(M, rng), b = test::random_vec(size_t(K) * N, rng);
            std::vector<float> c(size_t(M) * N), ref(c.size());
            lowbit_sgemm(M, N, K, bits, packed.data(), scale.data(), row_major(b.data(), N), c.data(), N, true);
            reference::lowbit_sgemm(M, N, K, bits, packed.data(), scale.data(), b.data(), ref.data());
            test::expect_close(c.data(), ref.data(), c.size(), 1e-5f, 1e-5f * K * (1 << bits), "lowbit_sgemm");
          }
  }
}
