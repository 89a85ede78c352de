#include "f32-squeeze-excite/squeeze_excite.h"

#include <vector>

#include "common/parallel.h"
#include "f32-activation/formulas.h"
#include "f32-elementwise/elementwise.h"
#include "f32-gemm/gemm.h"
#include "f32-pool/pool.h"

namespace eo {
namespace {

// rows x cols + bias per row-broadcast column: m[i][j] += b[j].
void add_bias(float* m, const float* b, int64_t rows, int64_t cols) {
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) m[i * cols + j] += b[j];
}

// db[j] += sum_i m[i][j], summed in double in row order.
void bias_grad(const float* m, float* db, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    double t = 0;
    for (int64_t i = 0; i < rows; ++i) t += m[i * cols + j];
    db[j] += static_cast<float>(t);
  }
}

}  // namespace

void squeeze_excite_forward(const float* x, const float* w1, const float* b1, const float* w2,
                            const float* b2, float* y, float* pooled, float* a1, float* a2, float* s,
                            int64_t N, int64_t C, int64_t S, int64_t HW) {
  global_avgpool2d_forward(x, pooled, N, C, HW);
  sgemm(N, S, C, row_major(pooled, C), transposed(w1, C), a1, S, false, true);
  if (b1) add_bias(a1, b1, N, S);
  std::vector<float> h(static_cast<size_t>(N * S));
  for (int64_t i = 0; i < N * S; ++i) h[i] = act::relu(a1[i]);
  sgemm(N, C, S, row_major(h.data(), S), transposed(w2, S), a2, C, false, true);
  if (b2) add_bias(a2, b2, N, C);
  for (int64_t i = 0; i < N * C; ++i) s[i] = act::hardsigmoid(a2[i]);
  channel_scale_forward(x, s, y, N, C, HW);
}

void squeeze_excite_backward(const float* dy, const float* x, const float* w1, const float* w2,
                             const float* pooled, const float* a1, const float* a2, const float* s,
                             float* dx, float* dw1, float* db1, float* dw2, float* db2, int64_t N,
                             int64_t C, int64_t S, int64_t HW) {
  std::vector<float> d2(static_cast<size_t>(N * C)), h(static_cast<size_t>(N * S)), d1(static_cast<size_t>(N * S));
  channel_scale_backward(dy, x, s, dx, d2.data(), N, C, HW);  // dx = dy * s, d2 = ds
  for (int64_t i = 0; i < N * C; ++i)
    d2[i] = act::hardsigmoid_grad(d2[i], a2[i]);  // da2
  for (int64_t i = 0; i < N * S; ++i) h[i] = act::relu(a1[i]);
  sgemm(C, S, N, transposed(d2.data(), C), row_major(h.data(), S), dw2, S, true, true);
  if (db2) bias_grad(d2.data(), db2, N, C);
  sgemm(N, S, C, row_major(d2.data(), C), row_major(w2, S), d1.data(), S, false, true);  // dh
  for (int64_t i = 0; i < N * S; ++i) d1[i] = act::relu_grad_from_output(d1[i], h[i]);   // da1
  sgemm(S, C, N, transposed(d1.data(), S), row_major(pooled, C), dw1, C, true, true);
  if (db1) bias_grad(d1.data(), db1, N, S);
  std::vector<float> dp(static_cast<size_t>(N * C));
  sgemm(N, C, S, row_major(d1.data(), S), row_major(w1, C), dp.data(), C, false, true);  // dpooled
  const float inv = 1.f / static_cast<float>(HW);
  parallel_for(N * C, 64, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float g = dp[q] * inv;
      float* o = dx + q * HW;
      for (int64_t i = 0; i < HW; ++i) o[i] += g;
    }
  });
}

}  // namespace eo
