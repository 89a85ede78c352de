#include "f32-batchnorm/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "common/parallel.h"

namespace eo {
namespace {

// Per-channel sums in double. Four independent accumulators keep the adds pipelined (a single
// double accumulator would serialize on the add latency); the fixed split keeps results
// reproducible. Sums are taken around a shift k (a value of the channel) so that E[x^2] - E[x]^2
// does not cancel catastrophically when |mean| >> std.
void shifted_sums(const float* p, int64_t n, double k, double& s1, double& s2) {
  double a[4] = {0, 0, 0, 0}, b[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4)
    for (int j = 0; j < 4; ++j) {
      const double d = static_cast<double>(p[i + j]) - k;
      a[j] += d;
      b[j] += d * d;
    }
  for (; i < n; ++i) {
    const double d = static_cast<double>(p[i]) - k;
    a[0] += d;
    b[0] += d * d;
  }
  s1 += (a[0] + a[1]) + (a[2] + a[3]);
  s2 += (b[0] + b[1]) + (b[2] + b[3]);
}

// sum(dy) and sum(dy * (x - mean)) over one contiguous run. Eight float lanes (the loop
// vectorizes; a double reduction would stay scalar) are folded into the double totals every 128
// values per lane, so float rounding only ever covers short partial sums.
void grad_sums(const float* dy, const float* x, int64_t n, float mean, double& sdy, double& sdyx) {
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min<int64_t>(n, i + 8 * 128);
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= end; i += 8)
      for (int j = 0; j < 8; ++j) {
        a[j] += dy[i + j];
        b[j] += dy[i + j] * (x[i + j] - mean);
      }
    for (; i < end; ++i) {
      a[0] += dy[i];
      b[0] += dy[i] * (x[i] - mean);
    }
    for (int j = 0; j < 8; ++j) {
      sdy += a[j];
      sdyx += b[j];
    }
  }
}

// y = (x - mean) * scale + shift over one contiguous run (vectorizes). Centring first keeps the
// digits when |mean| >> std; x * scale + (shift - mean * scale) would cancel two large terms.
void affine(const float* x, float* y, int64_t n, float mean, float scale, float shift) {
  for (int64_t i = 0; i < n; ++i) y[i] = (x[i] - mean) * scale + shift;
}

// Channels per task: a channel is N*HW values; aim for tasks of ~64K values.
int64_t channel_grain(int64_t N, int64_t HW) {
  const int64_t per = N * HW;
  return per >= 65536 ? 1 : 65536 / (per > 0 ? per : 1);
}

}  // namespace

void batchnorm2d_forward_train(const float* x, const float* gamma, const float* beta,
                               float* running_mean, float* running_var, float* y,
                               float* save_mean, float* save_invstd, int64_t N, int64_t C,
                               int64_t HW, float momentum, float eps) {
  const int64_t M = N * HW;
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double k = x[c * HW];  // shift: any value of the channel
      double s1 = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n) shifted_sums(x + (n * C + c) * HW, HW, k, s1, s2);
      const double d = s1 / M;
      const double mean = k + d;
      const double var = std::max(0.0, s2 / M - d * d);  // biased
      const double invstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
      save_mean[c] = static_cast<float>(mean);
      save_invstd[c] = static_cast<float>(invstd);
      if (running_mean) running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mean);
      if (running_var) {
        const double unbiased = var * M / (M - 1);
        running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
      }
      const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      const float shift = beta ? beta[c] : 0.f;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        affine(x + off, y + off, HW, static_cast<float>(mean), scale, shift);
      }
    }
  });
}

void batchnorm2d_backward(const float* dy, const float* x, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx,
                          float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW) {
  const int64_t M = N * HW;
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = save_mean[c], invstd = save_invstd[c];
      double sdy = 0, sdyx = 0;  // sum(dy), sum(dy * (x - mean))
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        grad_sums(dy + off, x + off, HW, static_cast<float>(mean), sdy, sdyx);
      }
      if (dgamma) dgamma[c] += static_cast<float>(sdyx * invstd);  // sum(dy * xhat)
      if (dbeta) dbeta[c] += static_cast<float>(sdy);
      // dx = gamma*invstd * ((dy - mean(dy)) - (x - mean) * invstd^2 * sum(dy*(x-mean))/M).
      // Centring x before scaling matters: folded into a*dy + b*x + e, the b*x and e terms are
      // large and cancel when |mean| >> std, losing the digits of the result.
      const double a = (gamma ? gamma[c] : 1.0) * invstd;
      const double kx = sdyx * invstd * invstd / M;
      const float fa = static_cast<float>(a), fk = static_cast<float>(a * kx);
      const float fmdy = static_cast<float>(sdy / M), fmean = static_cast<float>(mean);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        const float* g = dy + off;
        const float* xi = x + off;
        float* o = dx + off;
        for (int64_t i = 0; i < HW; ++i) o[i] = fa * (g[i] - fmdy) - fk * (xi[i] - fmean);
      }
    }
  });
}

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps) {
  parallel_for(N * C, HW >= 16384 ? 1 : 16384 / (HW > 0 ? HW : 1), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      affine(x + p * HW, y + p * HW, HW, running_mean[c],
             static_cast<float>((gamma ? gamma[c] : 1.0) * invstd), beta ? beta[c] : 0.f);
    }
  });
}

void batchnorm2d_backward_eval(const float* dy, const float* x, const float* gamma,
                               const float* running_mean, const float* running_var, float* dx,
                               float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                               float eps) {
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      double sdy = 0, sdyx = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        if (dgamma || dbeta) grad_sums(dy + off, x + off, HW, running_mean[c], sdy, sdyx);
        const float* g = dy + off;
        float* o = dx + off;
        for (int64_t i = 0; i < HW; ++i) o[i] = g[i] * scale;
      }
      if (dgamma) dgamma[c] += static_cast<float>(sdyx * invstd);
      if (dbeta) dbeta[c] += static_cast<float>(sdy);
    }
  });
}

}  // namespace eo
