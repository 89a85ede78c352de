#include <vector>

#include "common/parallel.h"
#include "f32-conv2d/conv2d.h"
#include "harness.h"
#include "isa/isa.h"
#include "reference/reference.h"

using namespace eo;

namespace {

// Edge shapes: odd sizes, stride 2, padding, grouped, depthwise (multiplier 1 and 2), 1x1 (the
// no-im2col path), a kernel as large as the padded input, batches below and above the thread
// count (parallel GEMM vs parallel images), Cout around the 12-row tile, P around the 32 panel;
// small images on the by-kernel-column path (4x4, 2x2, 8x8 from 128 channels, 3x5 kernels with
// uneven padding, a 1-pixel image); the implicit GEMM with few input channels (weight gradient
// over patches) and with 16 (over padded planes).
// {N, Cin, H, W, Cout, KH, KW, sh, sw, ph, pw, groups}
const Conv2dShape kShapes[] = {
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1},     {2, 3, 7, 9, 5, 3, 3, 1, 1, 1, 1, 1},
    {3, 4, 8, 8, 6, 3, 3, 2, 2, 1, 1, 2},     {2, 6, 9, 7, 6, 3, 3, 1, 1, 1, 1, 6},
    {2, 6, 9, 7, 12, 3, 3, 2, 2, 1, 1, 6},    {3, 8, 5, 5, 13, 1, 1, 1, 1, 0, 0, 1},
    {2, 8, 5, 6, 16, 1, 1, 2, 2, 0, 0, 1},    {1, 5, 11, 10, 25, 5, 3, 2, 1, 2, 1, 1},
    {4, 3, 4, 4, 2, 6, 6, 1, 1, 1, 1, 1},     {2, 12, 6, 6, 24, 3, 3, 1, 1, 0, 0, 3},
    {1, 16, 33, 17, 17, 3, 3, 1, 1, 1, 1, 1}, {3, 2, 3, 3, 4, 1, 2, 3, 2, 0, 1, 2},
    {3, 9, 4, 4, 10, 3, 3, 1, 1, 1, 1, 1},    {2, 7, 2, 2, 13, 3, 3, 1, 1, 1, 1, 1},
    {2, 130, 8, 8, 6, 3, 3, 1, 1, 1, 1, 1},   {2, 4, 5, 3, 3, 3, 5, 1, 1, 0, 2, 1},
    {3, 5, 1, 1, 4, 3, 3, 1, 1, 1, 1, 1},     {2, 3, 6, 5, 4, 5, 5, 1, 1, 2, 1, 1},
    {2, 3, 12, 10, 7, 3, 3, 1, 1, 1, 1, 1},   {2, 2, 9, 8, 5, 5, 5, 1, 1, 2, 2, 1},
    {3, 16, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1},
};

std::string name(const Conv2dShape& s) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "N%ld C%ld %ldx%ld O%ld k%ldx%ld s%ld,%ld p%ld,%ld g%ld", (long)s.N,
                (long)s.Cin, (long)s.H, (long)s.W, (long)s.Cout, (long)s.KH, (long)s.KW,
                (long)s.sh, (long)s.sw, (long)s.ph, (long)s.pw, (long)s.groups);
  return buf;
}

void check_shape(const Conv2dShape& s, std::mt19937& rng, const std::string& tag) {
  const size_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * (s.Cin / s.groups) * s.KH * s.KW;
  const size_t ny = s.N * s.Cout * s.OH() * s.OW();
  auto x = test::random_vec(nx, rng), w = test::random_vec(nw, rng), b = test::random_vec(s.Cout, rng);
  auto dy = test::random_vec(ny, rng);
  const std::string what = tag + " " + name(s);
  std::vector<float> y(ny), y_ref(ny);
  conv2d_forward(s, x.data(), w.data(), b.data(), y.data());
  reference::conv2d_forward(s, x.data(), w.data(), b.data(), y_ref.data());
  const float tol = 1e-5f * (s.Cin / s.groups) * s.KH * s.KW;
  test::expect_close(y.data(), y_ref.data(), ny, 1e-4f, tol, what + " y");
  // dw, db start non-zero: they must be accumulated into.
  auto dw = test::random_vec(nw, rng), db = test::random_vec(s.Cout, rng);
  auto dw_ref = dw, db_ref = db;
  std::vector<float> dx(nx, 7.f), dx_ref(nx);
  conv2d_backward(s, dy.data(), x.data(), w.data(), dw.data(), db.data(), dx.data());
  reference::conv2d_backward(s, dy.data(), x.data(), w.data(), dw_ref.data(), db_ref.data(), dx_ref.data());
  const float tol_w = 1e-5f * s.N * s.OH() * s.OW();
  test::expect_close(dx.data(), dx_ref.data(), nx, 1e-4f, 1e-5f * s.Cout * s.KH * s.KW, what + " dx");
  test::expect_close(dw.data(), dw_ref.data(), nw, 1e-4f, tol_w, what + " dw");
  test::expect_close(db.data(), db_ref.data(), s.Cout, 1e-4f, tol_w, what + " db");
  // need_dx = false, no bias: the same parameter gradients.
  auto dw2 = dw;
  conv2d_backward(s, dy.data(), x.data(), w.data(), dw2.data(), nullptr, nullptr);
  std::vector<float> dw_twice(dw);
  reference::conv2d_backward(s, dy.data(), x.data(), w.data(), dw_twice.data(), nullptr, nullptr);
  test::expect_close(dw2.data(), dw_twice.data(), nw, 1e-4f, 2 * tol_w, what + " dw (no dx)");
}

}  // namespace

TEST(f32_conv2d_matches_reference_on_every_isa_and_thread_count) {
  std::mt19937 rng(3);
  const Isa saved = active_isa();
  const int saved_threads = get_num_threads();
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    set_isa(static_cast<Isa>(isa));
    for (int threads : {1, 2}) {
      set_num_threads(threads);
      for (const auto& s : kShapes)
        check_shape(s, rng, std::string(isa_name(static_cast<Isa>(isa))) + " t" + std::to_string(threads));
    }
  }
  set_num_threads(saved_threads);
  set_isa(saved);
}

TEST(f32_conv2d_backward_is_deterministic) {
  std::mt19937 rng(4);
  const int saved_threads = get_num_threads();
  set_num_threads(2);
  for (const Conv2dShape& s : {Conv2dShape{5, 8, 9, 9, 8, 3, 3, 1, 1, 1, 1, 1},
                               Conv2dShape{5, 8, 9, 9, 8, 3, 3, 2, 2, 1, 1, 8},
                               Conv2dShape{5, 8, 4, 4, 8, 3, 3, 1, 1, 1, 1, 1}}) {
    const size_t nx = s.N * s.Cin * s.H * s.W, nw = s.Cout * (s.Cin / s.groups) * s.KH * s.KW;
    auto x = test::random_vec(nx, rng), w = test::random_vec(nw, rng);
    auto dy = test::random_vec(s.N * s.Cout * s.OH() * s.OW(), rng);
    std::vector<float> dw1(nw), dw2(nw), db1(s.Cout), db2(s.Cout), dx1(nx), dx2(nx);
    conv2d_backward(s, dy.data(), x.data(), w.data(), dw1.data(), db1.data(), dx1.data());
    conv2d_backward(s, dy.data(), x.data(), w.data(), dw2.data(), db2.data(), dx2.data());
    CHECK(dw1 == dw2 && db1 == db2 && dx1 == dx2, "two identical backward calls differ: " + name(s));
  }
  set_num_threads(saved_threads);
}
