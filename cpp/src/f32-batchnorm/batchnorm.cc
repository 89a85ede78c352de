#include "f32-batchnorm/batchnorm.h"

#include <algorithm>
#include <cmath>

#include "common/parallel.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

// Channels per task: a channel is N*HW values; aim for tasks of ~64K values.
int64_t channel_grain(int64_t N, int64_t HW) {
  const int64_t per = N * HW;
  return per >= 65536 ? 1 : 65536 / (per > 0 ? per : 1);
}

}  // namespace

void batchnorm2d_forward_train(const float* x, const float* gamma, const float* beta,
                               float* running_mean, float* running_var, float* y,
                               float* save_mean, float* save_invstd, int64_t N, int64_t C,
                               int64_t HW, float momentum, float eps, int act, const float* residual) {
  const int64_t M = N * HW;
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const float k = x[c * HW];  // shift: any value of the channel
      double s1 = 0, s2 = 0;
      for (int64_t n = 0; n < N; ++n) uk.sums(x + (n * C + c) * HW, static_cast<size_t>(HW), k, &s1, &s2);
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
        uk.apply(x + off, residual ? residual + off : nullptr, y + off, static_cast<size_t>(HW),
                 static_cast<float>(mean), scale, shift, act);
      }
    }
  });
}

void batchnorm2d_backward(const float* dy, const float* x, const float* y, const float* gamma,
                          const float* beta, const float* save_mean, const float* save_invstd,
                          float* dx, float* dgamma, float* dbeta, float* dres, int64_t N, int64_t C,
                          int64_t HW, int act) {
  const int64_t M = N * HW;
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double mean = save_mean[c], invstd = save_invstd[c];
      const float fmean = static_cast<float>(mean);
      // z as the forward computed it (its scale, shift and mean are these floats)
      const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      const float shift = beta ? beta[c] : 0.f;
      double sg = 0, sgx = 0;  // sum(g), sum(g * (x - mean))
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        uk.grad_sums(dy + off, x + off, y ? y + off : nullptr, static_cast<size_t>(HW), fmean, scale,
                     shift, act, &sg, &sgx);
      }
      if (dgamma) dgamma[c] += static_cast<float>(sgx * invstd);  // sum(g * xhat)
      if (dbeta) dbeta[c] += static_cast<float>(sg);
      // dx = gamma*invstd * ((g - mean(g)) - (x - mean) * invstd^2 * sum(g*(x-mean))/M).
      // Centring x before scaling matters: folded into a*g + b*x + e, the b*x and e terms are
      // large and cancel when |mean| >> std, losing the digits of the result.
      const double a = (gamma ? gamma[c] : 1.0) * invstd;
      const double kx = sgx * invstd * invstd / M;
      const float fa = static_cast<float>(a), fk = static_cast<float>(a * kx);
      const float fmg = static_cast<float>(sg / M);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        uk.grad_apply(dy + off, x + off, y ? y + off : nullptr, static_cast<size_t>(HW), fmean, scale,
                      shift, act, fa, fmg, fk, dx + off, dres ? dres + off : nullptr);
      }
    }
  });
}

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps) {
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  parallel_for(N * C, HW >= 16384 ? 1 : 16384 / (HW > 0 ? HW : 1), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      uk.apply(x + p * HW, nullptr, y + p * HW, static_cast<size_t>(HW), running_mean[c],
               static_cast<float>((gamma ? gamma[c] : 1.0) * invstd), beta ? beta[c] : 0.f, kBnActNone);
    }
  });
}

void batchnorm2d_backward_eval(const float* dy, const float* x, const float* gamma,
                               const float* running_mean, const float* running_var, float* dx,
                               float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                               float eps) {
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      const float scale = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      double sdy = 0, sdyx = 0;
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c) * HW;
        if (dgamma || dbeta)
          uk.grad_sums(dy + off, x + off, nullptr, static_cast<size_t>(HW), running_mean[c], 1.f, 0.f,
                       kBnActNone, &sdy, &sdyx);
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
