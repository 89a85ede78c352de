// Binary kernels (b1-gemm): every path this CPU has must return the reference's floats bit for bit
// (the integer dot is exact and the epilogue is the same multiply-then-add), on edge sizes around
// every tile (4 rows, 8/16 columns, 64-bit words), all three padding values, strides, fused
// clamps and residuals, batches and 1 or 2 threads.
#include <cstring>

#include "b1-gemm/gemm.h"
#include "common/parallel.h"
#include "harness.h"
#include "isa/dispatch.h"
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

// f() at 1, 2 and 4 threads on every path the CPU has (callers hold an IsaGuard).
template <class F>
void on_every_path_and_thread_count(F f) {
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    for (Isa isa : isa_levels()) {
      set_isa(isa);
      f();
    }
  }
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
  on_every_path_and_thread_count([&] {
    for (const ConvCase& c : cases) check_conv(c, variant++, rng);
  });
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

namespace {

// Two convs joined by b1_link: the writer stores the reader's bit planes, the reader skips
// binarizing; its output must equal the reference's two convs (the second binarizing the first's
// floats) bit for bit. The planes start as garbage, so a border word left unzeroed shows.
struct LinkCase {
  int batch, cin, h, w, mid, k1, s1, p1, cout, k2, s2, p2, pv2;
};

void check_link(const LinkCase& c, int variant, std::mt19937& rng) {
  std::vector<float> x = values(size_t(c.batch) * c.cin * c.h * c.w, rng);
  std::vector<float> w1 = values(size_t(c.mid) * c.cin * c.k1 * c.k1, rng);
  std::vector<float> w2 = values(size_t(c.cout) * c.mid * c.k2 * c.k2, rng);
  std::vector<float> a1 = test::random_vec(c.mid, rng), a2 = test::random_vec(c.cout, rng);
  for (auto& a : a1) a = std::fabs(a) + 0.01f;
  for (auto& a : a2) a = std::fabs(a) + 0.01f;
  std::vector<float> b1 = test::random_vec(c.mid, rng), b2 = test::random_vec(c.cout, rng);
  // Channels whose bit is constant: a zero scale, an infinite or NaN bias (every f32 output
  // +inf, or 6 under relu6; NaN binarizes to -1).
  if (variant % 5 == 0) a1[0] = 0.f;
  if (variant % 5 == 1) b1[c.mid - 1] = INFINITY;
  if (variant % 5 == 2) b1[c.mid - 1] = NAN;
  // The reader's thresholds: random, zeros of both signs, some equal to a reachable output
  // (alpha * 0 + bias: the bias, or 0 without one: ties that binarize to +1), some above relu6.
  const float* bias1 = variant % 3 == 0 ? nullptr : b1.data();
  std::vector<float> thr = test::random_vec(size_t(c.mid), rng);
  for (int o = 0; o < c.mid; ++o)
    if (o % 4 == 1) thr[o] = bias1 ? b1[o] : 0.f;
    else if (o % 4 == 2) thr[o] = o % 8 == 2 ? 0.f : -0.f;
    else if (o % 8 == 3) thr[o] = 6.5f;
  const float* thr_p = variant % 2 ? thr.data() : nullptr;
  const float lo = variant % 4 == 1 ? 0.f : -INFINITY, hi = variant % 8 == 1 ? 6.f : INFINITY;
  const B1ConvWeights p1 = b1_pack_conv_weights(c.mid, c.cin, c.k1, c.k1, w1.data(), a1.data());
  const B1ConvWeights p2 = b1_pack_conv_weights(c.cout, c.mid, c.k2, c.k2, w2.data(), a2.data());
  const B1Conv cv1{c.s1, c.s1, c.p1, c.p1, 0, nullptr}, cv2{c.s2, c.s2, c.p2, c.p2, c.pv2, thr_p};
  const B1ConvPlan plan1 = b1_conv_plan(p1, cv1, c.h, c.w);
  const B1ConvPlan plan2 = b1_conv_plan(p2, cv2, plan1.oh, plan1.ow);
  const size_t per1 = size_t(c.mid) * plan1.oh * plan1.ow, per2 = size_t(c.cout) * plan2.oh * plan2.ow;
  std::vector<float> mid(per1 * c.batch), ref(per2 * c.batch), y(ref.size(), NAN);
  for (int n = 0; n < c.batch; ++n) {
    reference::b1_conv2d(c.mid, c.cin, c.k1, c.k1, w1.data(), a1.data(), bias1, nullptr, c.s1, c.s1, c.p1, c.p1, 0,
                         nullptr, c.h, c.w, x.data() + size_t(n) * c.cin * c.h * c.w, lo, hi, mid.data() + n * per1);
    reference::b1_conv2d(c.cout, c.mid, c.k2, c.k2, w2.data(), a2.data(), b2.data(), nullptr, c.s2, c.s2, c.p2,
                         c.p2, c.pv2, thr_p, plan1.oh, plan1.ow, mid.data() + n * per1, -INFINITY, INFINITY,
                         ref.data() + n * per2);
  }
  char what[200];
  std::snprintf(what, sizeof what, "b1_link batch=%d %d@%dx%d -(%dx%d s%d p%d)-> %d -(%dx%d s%d p%d pv%d)-> %d variant=%d",
                c.batch, c.cin, c.h, c.w, c.k1, c.k1, c.s1, c.p1, c.mid, c.k2, c.k2, c.s2, c.p2, c.pv2, c.cout, variant);
  B1PlaneLink link;
  const bool linked = b1_link(plan1, bias1, lo, hi, plan2, &link);
  const bool direct = b1_gemm_ukernel(active_isa()).direct != nullptr && plan1.direct && plan2.direct;
  CHECK(linked == direct, std::string(what) + ": linked where both convs take the direct path");
  if (!linked) return;
  std::vector<uint32_t> planes(size_t(c.batch * link.image_bytes / 4) + 1, 0xA5A5A5A5u);
  b1_conv2d(plan1, c.batch, B1ConvSource{x.data()}, B1ConvEpilogue{bias1, nullptr, lo, hi},
            B1ConvSink{nullptr, &link, planes.data()}, true);
  CHECK(planes.back() == 0xA5A5A5A5u, std::string(what) + ": wrote past the planes");
  b1_conv2d(plan2, c.batch, B1ConvSource{nullptr, planes.data(), link.image_bytes},
            B1ConvEpilogue{b2.data(), nullptr, -INFINITY, INFINITY}, B1ConvSink{y.data()}, true);
  expect_equal(y, ref, what);
}

}  // namespace

TEST(b1_link_hands_the_reader_its_bit_planes_bit_for_bit) {
  IsaGuard guard;
  std::mt19937 rng(35);
  const LinkCase cases[] = {
      // resnet20's body convs: 16-bit planes at 32x32, a stride-2 writer into 32-bit planes, two
      // words per pixel two rows per vector (8x8)
      {1, 16, 32, 32, 16, 3, 1, 1, 16, 3, 1, 1, 0}, {1, 16, 32, 32, 32, 3, 2, 1, 32, 3, 1, 1, 0},
      {2, 32, 16, 16, 64, 3, 2, 1, 64, 3, 1, 1, 0}, {1, 64, 8, 8, 64, 3, 1, 1, 64, 3, 1, 1, 0},
      // two rows per vector with 7-pixel rows (packed), one and two words per pixel
      {3, 40, 7, 7, 9, 3, 1, 1, 5, 3, 1, 1, 1},     {1, 9, 7, 7, 40, 3, 1, 1, 6, 3, 1, 1, -1},
      // a stride-2 reader (even and odd columns in halves), a 1x1 reader, a 5x5 reader with pad
      // 2, a 16-bit reader of 40-pixel rows, channel counts that are not multiples of 8 or 32,
      // a 5x5 stride-2 writer
      {1, 8, 13, 35, 33, 3, 1, 1, 9, 3, 2, 1, 1},   {1, 20, 6, 40, 12, 3, 1, 1, 7, 1, 1, 0, 0},
      {1, 16, 9, 17, 13, 3, 1, 1, 6, 5, 1, 2, 0},   {2, 16, 5, 40, 16, 3, 1, 1, 4, 3, 1, 1, 0},
      {1, 8, 6, 20, 70, 3, 1, 1, 5, 3, 1, 1, -1},   {1, 3, 9, 9, 5, 5, 2, 2, 7, 3, 2, 0, 1},
      // writers split by rows at 2 and 4 threads (16-bit, 32-bit and two-row forms)
      {1, 32, 32, 32, 64, 3, 1, 1, 8, 3, 1, 1, 0},  {2, 16, 40, 48, 16, 3, 1, 1, 8, 3, 1, 1, 1},
      {1, 8, 33, 7, 64, 3, 1, 1, 5, 3, 1, 1, 0},    {1, 16, 64, 64, 32, 3, 2, 1, 8, 3, 1, 1, 0},
      // resnet's 1x1 stride-2 shortcut as the reader
      {1, 16, 16, 16, 16, 3, 1, 1, 32, 1, 2, 0, 0},
      // a reader on the GEMM path (16 words per pixel in 5-pixel rows): no link
      {1, 8, 9, 5, 512, 3, 1, 1, 3, 3, 1, 1, 0},
  };
  int variant = 0;
  on_every_path_and_thread_count([&] {
    for (const LinkCase& c : cases) check_link(c, variant++, rng);
  });
}

TEST(b1_link_refuses_what_it_cannot_hand_off) {
  IsaGuard guard;
  if (!cpu_has_avx512icl()) return;  // no direct path: nothing links (the test above checks that)
  std::mt19937 rng(36);
  const std::vector<float> w1 = values(16 * 8 * 9, rng), w2 = values(4 * 16 * 9, rng);
  std::vector<float> a1(16, 0.5f), a2(4, 1.f);
  const B1Conv cv{1, 1, 1, 1, 0, nullptr};
  const B1ConvWeights r = b1_pack_conv_weights(4, 16, 3, 3, w2.data(), a2.data());
  const B1ConvPlan reader = b1_conv_plan(r, cv, 10, 10);
  B1PlaneLink link;
  {
    const B1ConvWeights p = b1_pack_conv_weights(16, 8, 3, 3, w1.data(), a1.data());
    CHECK(b1_link(b1_conv_plan(p, cv, 10, 10), nullptr, -INFINITY, INFINITY, reader, &link), "a plain pair links");
    CHECK(!b1_link(b1_conv_plan(p, cv, 12, 10), nullptr, -INFINITY, INFINITY, reader, &link),
          "the reader's input is not the writer's output");
  }
  a1[3] = -0.5f;  // a negative scale: the bit falls as the dot grows
  const B1ConvWeights p = b1_pack_conv_weights(16, 8, 3, 3, w1.data(), a1.data());
  CHECK(!b1_link(b1_conv_plan(p, cv, 10, 10), nullptr, -INFINITY, INFINITY, reader, &link), "not monotone");
  // ... unless the clamp makes the channel constant (relu: 0 for every dot >= 0, all >= the
  // threshold 0)
  CHECK(b1_link(b1_conv_plan(p, cv, 10, 10), nullptr, 0.f, INFINITY, reader, &link), "a constant channel links");
  CHECK(link.dmin[3] == -8 * 9, "every dot's bit is 1");
  set_isa(Isa::avx2);
  CHECK(!b1_link(b1_conv_plan(p, cv, 10, 10), nullptr, 0.f, INFINITY, reader, &link), "no direct path on AVX2");
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
