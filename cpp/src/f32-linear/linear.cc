#include "f32-linear/linear.h"

#include "common/parallel.h"
#include "f32-gemm/gemm.h"

namespace eo {

void linear_forward(int64_t N, int64_t in, int64_t out, const float* x, const float* w,
                    const float* b, float* y) {
  if (N <= 0 || out <= 0) return;
  sgemm(N, out, in, row_major(x, in), transposed(w, in), y, out, false, true);
  if (!b) return;
  for (int64_t n = 0; n < N; ++n)
    for (int64_t j = 0; j < out; ++j) y[n * out + j] += b[j];
}

void linear_backward(int64_t N, int64_t in, int64_t out, const float* dy, const float* x,
                     const float* w, float* dw, float* db, float* dx) {
  if (out <= 0) return;
  if (N > 0) sgemm(out, in, N, transposed(dy, out), row_major(x, in), dw, in, true, true);
  if (db && N > 0) {
    // Column sums of dy: each column summed by one thread, rows in order, in double.
    parallel_for(out, 64, [&](int64_t j0, int64_t j1) {
      for (int64_t j = j0; j < j1; ++j) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n) s += dy[n * out + j];
        db[j] += static_cast<float>(s);
      }
    });
  }
  if (dx && N > 0) sgemm(N, in, out, row_major(dy, out), row_major(w, in), dx, in, false, true);
}

}  // namespace eo
