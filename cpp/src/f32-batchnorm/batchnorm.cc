#include "f32-batchnorm/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

// Channels per task: a channel is N*HW values; aim for tasks of ~64K values.
int64_t channel_grain(int64_t N, int64_t HW) {
  const int64_t per = N * HW;
  return per >= 65536 ? 1 : 65536 / (per > 0 ? per : 1);
}

// f(c0, c1) over blocks of channels, each visited image by image: within an image a block's
// planes are contiguous, so the loops stream through memory instead of jumping N times per
// channel to a new page (one plane per page defeats the hardware prefetcher). Blocks of at least
// channel_grain channels, at least 4 per thread when there are channels enough.
template <class F>
void for_channel_blocks(int64_t N, int64_t C, int64_t HW, F f) {
  const int64_t spread = (C + 4 * get_num_threads() - 1) / (4 * get_num_threads());
  const int64_t block = std::max<int64_t>(channel_grain(N, HW), std::max<int64_t>(1, spread));
  parallel_for((C + block - 1) / block, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) f(b * block, std::min(C, (b + 1) * block));
  });
}

}  // namespace

void batchnorm2d_forward_train(const float* x, const float* gamma, const float* beta,
                               float* running_mean, float* running_var, float* y,
                               float* save_mean, float* save_invstd, int64_t N, int64_t C,
                               int64_t HW, float momentum, float eps, int act, const float* residual) {
  const int64_t M = N * HW;
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  const size_t run = static_cast<size_t>(HW);
  for_channel_blocks(N, C, HW, [&](int64_t c0, int64_t c1) {
    // Each channel's sums run over the images in order, whatever the blocking.
    std::vector<double> s1(static_cast<size_t>(c1 - c0), 0.0), s2(s1);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c)
        uk.sums(x + (n * C + c) * HW, run, x[c * HW], &s1[c - c0], &s2[c - c0]);  // shift: x[0, c, 0]
    std::vector<float> mean(s1.size()), scale(s1.size()), shift(s1.size());
    for (int64_t c = c0; c < c1; ++c) {
      const double k = x[c * HW], d = s1[c - c0] / M;
      const double mu = k + d;
      const double var = std::max(0.0, s2[c - c0] / M - d * d);  // biased
      const double invstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
      save_mean[c] = mean[c - c0] = static_cast<float>(mu);
      save_invstd[c] = static_cast<float>(invstd);
      if (running_mean) running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
      if (running_var) {
        const double unbiased = var * M / (M - 1);
        running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
      }
      scale[c - c0] = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
      shift[c - c0] = beta ? beta[c] : 0.f;
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = (n * C + c) * HW;
        uk.apply(x + off, residual ? residual + off : nullptr, y + off, run, mean[c - c0], scale[c - c0],
                 shift[c - c0], act);
      }
  });
}

void batchnorm2d_backward(const float* dy, const float* x, const float* y, const float* gamma,
                          const float* beta, const float* save_mean, const float* save_invstd,
                          float* dx, float* dgamma, float* dbeta, float* dres, int64_t N, int64_t C,
                          int64_t HW, int act) {
  const int64_t M = N * HW;
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  const size_t run = static_cast<size_t>(HW);
  for_channel_blocks(N, C, HW, [&](int64_t c0, int64_t c1) {
    const size_t nb = static_cast<size_t>(c1 - c0);
    // z as the forward computed it (its scale, shift and mean are these floats)
    std::vector<float> scale(nb), shift(nb), fa(nb), fmg(nb), fk(nb);
    for (int64_t c = c0; c < c1; ++c) {
      scale[c - c0] = static_cast<float>((gamma ? gamma[c] : 1.0) * static_cast<double>(save_invstd[c]));
      shift[c - c0] = beta ? beta[c] : 0.f;
    }
    std::vector<double> sg(nb, 0.0), sgx(nb, 0.0);  // sum(g), sum(g * (x - mean))
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = (n * C + c) * HW;
        uk.grad_sums(dy + off, x + off, y ? y + off : nullptr, run, save_mean[c], scale[c - c0],
                     shift[c - c0], act, &sg[c - c0], &sgx[c - c0]);
      }
    for (int64_t c = c0; c < c1; ++c) {
      const double invstd = save_invstd[c];
      if (dgamma) dgamma[c] += static_cast<float>(sgx[c - c0] * invstd);  // sum(g * xhat)
      if (dbeta) dbeta[c] += static_cast<float>(sg[c - c0]);
      // dx = gamma*invstd * ((g - mean(g)) - (x - mean) * invstd^2 * sum(g*(x-mean))/M).
      // Centring x before scaling matters: folded into a*g + b*x + e, the b*x and e terms are
      // large and cancel when |mean| >> std, losing the digits of the result.
      const double a = (gamma ? gamma[c] : 1.0) * invstd;
      const double kx = sgx[c - c0] * invstd * invstd / M;
      fa[c - c0] = static_cast<float>(a);
      fk[c - c0] = static_cast<float>(a * kx);
      fmg[c - c0] = static_cast<float>(sg[c - c0] / M);
    }
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t off = (n * C + c) * HW, i = c - c0;
        uk.grad_apply(dy + off, x + off, y ? y + off : nullptr, run, save_mean[c], scale[i], shift[i], act,
                      fa[i], fmg[i], fk[i], dx + off, dres ? dres + off : nullptr);
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
