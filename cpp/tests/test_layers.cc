// Layer and optimizer kernels against plain loops, where the fast path differs from the obvious
// one: shifted double sums in batch norm, the folded dx formula, lane-split reductions, the
// pooling scatter (checked as the adjoint of the forward), the dropout hash under different
// thread counts, and the NaN/Inf bit test of the optimizers.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "f32-batchnorm/batchnorm.h"
#include "f32-elementwise/elementwise.h"
#include "f32-loss/cross_entropy.h"
#include "f32-pool/pool.h"
#include "harness.h"
#include "optim/optim.h"

using namespace eo;

namespace {

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// Runs f with 1 and then 2 threads, restoring the previous setting.
template <class F>
void with_threads(int n, F f) {
  const int saved = get_num_threads();
  set_num_threads(n);
  f();
  set_num_threads(saved);
}

}  // namespace

TEST(batchnorm_train_matches_two_pass_double_loops) {
  std::mt19937 rng(2);
  for (auto [N, C, HW] : {std::array<int64_t, 3>{2, 3, 35}, {5, 7, 1}, {1, 2, 2}, {4, 16, 81}}) {
    const int64_t M = N * HW;
    auto x = test::random_vec(N * C * HW, rng), dy = test::random_vec(N * C * HW, rng);
    for (auto& v : x) v = 100.f + 3.f * v;  // an offset the shifted sums must absorb
    auto gamma = test::random_vec(C, rng), beta = test::random_vec(C, rng);
    std::vector<float> y(x.size()), mean(C), invstd(C), rm(C, 0.5f), rv(C, 2.f);
    std::vector<float> dx(x.size()), dgamma(C, 1.f), dbeta(C, 0.f);
    batchnorm2d_forward_train(x.data(), gamma.data(), beta.data(), rm.data(), rv.data(), y.data(),
                              mean.data(), invstd.data(), N, C, HW, 0.1f, 1e-5f);
    batchnorm2d_backward(dy.data(), x.data(), nullptr, gamma.data(), beta.data(), mean.data(), invstd.data(), dx.data(),
                         dgamma.data(), dbeta.data(), nullptr, N, C, HW);
    for (int64_t c = 0; c < C; ++c) {
      auto at = [&](int64_t n, int64_t i) { return (n * C + c) * HW + i; };
      double mu = 0, var = 0, sdy = 0, sdyxh = 0;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) mu += x[at(n, i)];
      mu /= M;
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) var += (x[at(n, i)] - mu) * (x[at(n, i)] - mu);
      var /= M;
      const double is = 1.0 / std::sqrt(var + 1e-5);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          sdy += dy[at(n, i)];
          sdyxh += dy[at(n, i)] * (x[at(n, i)] - mu) * is;
        }
      const float want_stats[4] = {float(mu), float(is), float(0.9 * 0.5 + 0.1 * mu),
                                   float(0.9 * 2.0 + 0.1 * var * M / (M - 1))};
      const float got_stats[4] = {mean[c], invstd[c], rm[c], rv[c]};
      test::expect_close(got_stats, want_stats, 4, 1e-5f, 1e-6f, "batchnorm stats");
      const float want_p[2] = {float(1.0 + sdyxh), float(sdy)}, got_p[2] = {dgamma[c], dbeta[c]};
      test::expect_close(got_p, want_p, 2, 1e-4f, 1e-4f, "batchnorm dgamma/dbeta");
      for (int64_t n = 0; n < N; ++n)
        for (int64_t i = 0; i < HW; ++i) {
          const double xh = (x[at(n, i)] - mu) * is;
          const float wy = float(gamma[c] * xh + beta[c]);
          const float wdx = float(gamma[c] * is / M * (M * dy[at(n, i)] - sdy - xh * sdyxh));
          test::expect_close(&y[at(n, i)], &wy, 1, 1e-4f, 1e-5f, "batchnorm y");
          test::expect_close(&dx[at(n, i)], &wdx, 1, 1e-4f, 1e-5f, "batchnorm dx");
        }
    }
  }
}

TEST(maxpool_matches_window_loops_and_backward_scatters_to_argmax) {
  std::mt19937 rng(3);
  for (Pool2d p : {Pool2d{2, 3, 7, 9, 3, 3, 2, 2, 1, 1}, Pool2d{1, 2, 8, 8, 2, 2, 2, 2, 0, 0},
                   Pool2d{2, 1, 5, 6, 4, 3, 1, 2, 2, 1}}) {
    const int64_t OH = p.OH(), OW = p.OW(), planes = p.N * p.C, HW = p.H * p.W;
    auto x = test::random_vec(planes * HW, rng), dy = test::random_vec(planes * OH * OW, rng);
    std::vector<float> y(planes * OH * OW), dx(x.size()), want_dx(x.size(), 0.f);
    std::vector<int32_t> arg(y.size());
    maxpool2d_forward(x.data(), y.data(), arg.data(), p);
    CHECK(maxpool2d_backward(dy.data(), arg.data(), dx.data(), planes, OH * OW, HW), "valid argmax");
    for (int64_t q = 0; q < planes; ++q)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow) {
          float m = -std::numeric_limits<float>::infinity();
          int64_t best = -1;
          for (int64_t kh = 0; kh < p.kh; ++kh)
            for (int64_t kw = 0; kw < p.kw; ++kw) {
              const int64_t ih = oh * p.sh - p.ph + kh, iw = ow * p.sw - p.pw + kw;
              if (ih < 0 || iw < 0 || ih >= p.H || iw >= p.W) continue;
              if (x[q * HW + ih * p.W + iw] > m) m = x[q * HW + ih * p.W + iw], best = ih * p.W + iw;
            }
          const int64_t o = q * OH * OW + oh * OW + ow;
          CHECK(y[o] == m && arg[o] == best, "maxpool value and argmax");
          want_dx[q * HW + best] += dy[o];
        }
    test::expect_close(dx.data(), want_dx.data(), dx.size(), 1e-6f, 1e-6f, "maxpool dx");
    arg[arg.size() - 1] = static_cast<int32_t>(HW);  // out of range: reported, never written
    CHECK(!maxpool2d_backward(dy.data(), arg.data(), dx.data(), planes, OH * OW, HW), "bad argmax");
  }
}

TEST(avgpool_backward_is_the_adjoint_of_forward) {
  // <avgpool(x), dy> == <x, avgpool_backward(dy)> for any x, dy: checks the scatter and divisors.
  std::mt19937 rng(4);
  for (bool include_pad : {true, false})
    for (Pool2d p : {Pool2d{2, 3, 7, 9, 3, 3, 2, 2, 1, 1}, Pool2d{1, 2, 9, 5, 5, 2, 3, 1, 2, 1}}) {
      const int64_t ny = p.N * p.C * p.OH() * p.OW();
      auto x = test::random_vec(p.N * p.C * p.H * p.W, rng), dy = test::random_vec(ny, rng);
      std::vector<float> y(ny), dx(x.size());
      avgpool2d_forward(x.data(), y.data(), p, include_pad);
      avgpool2d_backward(dy.data(), dx.data(), p, include_pad);
      const float a = static_cast<float>(dot(y, dy)), b = static_cast<float>(dot(x, dx));
      test::expect_close(&a, &b, 1, 1e-5f, 1e-5f, "avgpool adjoint");
    }
  // global average pooling against a plain mean, on a plane longer than one folding block
  const int64_t HW = 5000;
  std::vector<float> x(2 * HW), y(2);
  for (int64_t i = 0; i < 2 * HW; ++i) x[i] = 1.f + static_cast<float>(i % 7);
  global_avgpool2d_forward(x.data(), y.data(), 1, 2, HW);
  for (int q = 0; q < 2; ++q) {
    double s = 0;
    for (int64_t i = 0; i < HW; ++i) s += x[q * HW + i];
    const float want = static_cast<float>(s / HW);
    test::expect_close(&y[q], &want, 1, 1e-6f, 0.f, "global avgpool");
  }
}

TEST(dropout_mask_does_not_depend_on_thread_count) {
  const int64_t n = 300001;
  std::vector<float> x(n, 1.f), y1(n), y2(n);
  std::vector<uint8_t> m1(n), m2(n);
  with_threads(1, [&] { dropout_forward(x.data(), y1.data(), m1.data(), n, 0.25f, 99); });
  with_threads(2, [&] { dropout_forward(x.data(), y2.data(), m2.data(), n, 0.25f, 99); });
  CHECK(m1 == m2 && y1 == y2, "same mask with 1 and 2 threads");
  int64_t kept = 0;
  for (uint8_t v : m1) kept += v;
  CHECK(std::fabs(kept / double(n) - 0.75) < 0.005, "keep rate 1 - p");
  for (int64_t i = 0; i < n; ++i) CHECK(y1[i] == (m1[i] ? 1.f / 0.75f : 0.f), "y = x * mask / (1 - p)");
}

TEST(cross_entropy_matches_plain_log_softmax_and_is_thread_count_independent) {
  std::mt19937 rng(5);
  const int64_t N = 3000, C = 7;  // several row blocks
  auto z = test::random_vec(N * C, rng);
  std::vector<int64_t> y(N);
  for (int64_t n = 0; n < N; ++n) y[n] = (n * 5) % C;
  std::vector<float> g1(N * C), g2(N * C), want(N * C);
  CrossEntropyResult r1, r2;
  with_threads(1, [&] { r1 = cross_entropy(z.data(), y.data(), g1.data(), N, C, 0.1f); });
  with_threads(2, [&] { r2 = cross_entropy(z.data(), y.data(), g2.data(), N, C, 0.1f); });
  CHECK(r1.loss == r2.loss && g1 == g2 && r1.bad_row == -1, "bitwise equal across thread counts");
  double loss = 0;
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t c = 0; c < C; ++c) s += std::exp(double(z[n * C + c]));
    for (int64_t c = 0; c < C; ++c) {
      const double logp = z[n * C + c] - std::log(s);
      const double q = 0.9 * (c == y[n]) + 0.1 / C;
      loss -= q * logp;
      want[n * C + c] = float((std::exp(logp) - q) / N);
    }
  }
  const float got_loss = float(r1.loss), want_loss = float(loss / N);
  test::expect_close(&got_loss, &want_loss, 1, 1e-6f, 0.f, "cross-entropy loss");
  test::expect_close(g1.data(), want.data(), want.size(), 1e-4f, 1e-9f, "cross-entropy dlogits");
  z[1234 * C + 3] = std::numeric_limits<float>::quiet_NaN();
  CHECK(cross_entropy(z.data(), y.data(), g1.data(), N, C, 0.f).bad_row == 1234, "NaN row reported");
}

TEST(channel_scale_backward_matches_plain_sums) {
  std::mt19937 rng(6);
  const int64_t N = 3, C = 4, HW = 2100;  // longer than one folding block of the dot product
  auto x = test::random_vec(N * C * HW, rng), dy = test::random_vec(N * C * HW, rng);
  auto s = test::random_vec(N * C, rng);
  std::vector<float> dx(x.size()), ds(N * C), want(N * C);
  channel_scale_backward(dy.data(), x.data(), s.data(), dx.data(), ds.data(), N, C, HW);
  for (int64_t q = 0; q < N * C; ++q) {
    double acc = 0;
    for (int64_t i = 0; i < HW; ++i) acc += double(dy[q * HW + i]) * x[q * HW + i];
    want[q] = float(acc);
    for (int64_t i = 0; i < HW; ++i) CHECK(dx[q * HW + i] == dy[q * HW + i] * s[q], "dx = dy * s");
  }
  test::expect_close(ds.data(), want.data(), want.size(), 1e-4f, 1e-4f, "channel scale ds");
}

TEST(optimizers_reject_non_finite_gradients_anywhere) {
  const int64_t n = 100000;
  const float specials[] = {std::numeric_limits<float>::quiet_NaN(),
                            std::numeric_limits<float>::infinity(),
                            -std::numeric_limits<float>::infinity()};
  std::vector<float> g(n, 0.5f), p(n, 1.f), buf(n, 0.f);
  CHECK(all_finite(g.data(), n), "finite");
  g[0] = std::numeric_limits<float>::max();
  g[1] = std::numeric_limits<float>::denorm_min();
  CHECK(all_finite(g.data(), n), "max and denormals are finite");
  for (float bad : specials)
    for (int64_t at : {int64_t(0), n / 2, n - 1}) {
      const float keep = g[at];
      g[at] = bad;
      CHECK(!all_finite(g.data(), n), "special value found");
      CHECK(!sgd_step(p.data(), g.data(), buf.data(), n, SgdOptions{0.1, 0.9, 0.0, 0.0, false, true}),
            "sgd refuses");
      g[at] = keep;
    }
  CHECK(std::all_of(p.begin(), p.end(), [](float v) { return v == 1.f; }) &&
            std::all_of(buf.begin(), buf.end(), [](float v) { return v == 0.f; }),
        "nothing written");
}
