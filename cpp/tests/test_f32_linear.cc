#include <vector>

#include "common/parallel.h"
#include "f32-linear/linear.h"
#include "harness.h"
#include "isa/isa.h"
#include "reference/reference.h"

using namespace eo;

// linear vs the reference GEMM: y = x w^T + b, dx = dy w, dw += dy^T x, db += sum_n dy.
TEST(f32_linear_matches_reference_on_every_isa) {
  std::mt19937 rng(5);
  const Isa saved = active_isa();
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    set_isa(static_cast<Isa>(isa));
    for (int N : {1, 3, 17})
      for (int in : {1, 5, 33})
        for (int out : {1, 10, 13}) {
          const std::string what = std::string(isa_name(static_cast<Isa>(isa))) + " N=" +
                                   std::to_string(N) + " in=" + std::to_string(in) +
                                   " out=" + std::to_string(out);
          auto x = test::random_vec(N * in, rng), w = test::random_vec(out * in, rng);
          auto b = test::random_vec(out, rng), dy = test::random_vec(N * out, rng);
          std::vector<float> y(N * out), y_ref(N * out);
          linear_forward(N, in, out, x.data(), w.data(), b.data(), y.data());
          reference::sgemm(N, out, in, row_major(x.data(), in), transposed(w.data(), in),
                           y_ref.data(), out, false);
          for (int n = 0; n < N; ++n)
            for (int j = 0; j < out; ++j) y_ref[n * out + j] += b[j];
          test::expect_close(y.data(), y_ref.data(), y.size(), 1e-5f, 1e-5f * in, what + " y");

          auto dw = test::random_vec(out * in, rng), db = test::random_vec(out, rng);
          auto dw_ref = dw, db_ref = db;
          std::vector<float> dx(N * in, 3.f), dx_ref(N * in);
          linear_backward(N, in, out, dy.data(), x.data(), w.data(), dw.data(), db.data(), dx.data());
          reference::sgemm(out, in, N, transposed(dy.data(), out), row_major(x.data(), in),
                           dw_ref.data(), in, true);
          reference::sgemm(N, in, out, row_major(dy.data(), out), row_major(w.data(), in),
                           dx_ref.data(), in, false);
          for (int n = 0; n < N; ++n)
            for (int j = 0; j < out; ++j) db_ref[j] += dy[n * out + j];
          test::expect_close(dw.data(), dw_ref.data(), dw.size(), 1e-5f, 1e-5f * N, what + " dw");
          test::expect_close(db.data(), db_ref.data(), db.size(), 1e-5f, 1e-5f * N, what + " db");
          test::expect_close(dx.data(), dx_ref.data(), dx.size(), 1e-5f, 1e-5f * out, what + " dx");
        }
  }
  set_isa(saved);
}
