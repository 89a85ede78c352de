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

// Planes under kFlatBelow values run the flat loops (ukernels.h): the per-channel runs would be
// too short to vectorize. Their per-value float sums fold into the double totals every kFlatFold
// images (as the per-channel loops fold every 128 values per lane).
constexpr int64_t kFlatBelow = 64, kFlatFold = 128;

// The block's per-channel constants (nb of them) expanded to one per value of a plane of HW.
std::vector<float> expand(const float* v, size_t nb, int64_t HW) {
  std::vector<float> out(nb * static_cast<size_t>(HW));
  for (size_t c = 0; c < nb; ++c) std::fill_n(out.begin() + static_cast<std::ptrdiff_t>(c * HW), HW, v[c]);
  return out;
}

// The per-value sums a1, a2 added to the per-channel totals s1, s2 (value order) and zeroed.
void fold_values(std::vector<float>& a1, std::vector<float>& a2, int64_t HW, double* s1, double* s2) {
  for (size_t c = 0; c < a1.size() / static_cast<size_t>(HW); ++c)
    for (int64_t i = 0; i < HW; ++i) {
      s1[c] += a1[c * HW + i];
      s2[c] += a2[c * HW + i];
    }
  std::fill(a1.begin(), a1.end(), 0.f);
  std::fill(a2.begin(), a2.end(), 0.f);
}

// z = (x - mean) * scale + shift: the scale of channel c, from the stored float invstd, so the
// backward recomputes exactly the forward's z.
float z_scale(const float* gamma, const float* save_invstd, int64_t c) {
  return static_cast<float>((gamma ? gamma[c] : 1.0) * static_cast<double>(save_invstd[c]));
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
    const size_t nb = static_cast<size_t>(c1 - c0);
    std::vector<float> k(nb), mean(nb), scale(nb), shift(nb);
    for (int64_t c = c0; c < c1; ++c) k[c - c0] = x[c * HW];  // shift: a value of the channel
    std::vector<double> s1(nb, 0.0), s2(nb, 0.0);
    const bool flat = HW < kFlatBelow;
    const size_t e = nb * run;
    if (flat) {
      const std::vector<float> kx = expand(k.data(), nb, HW);
      std::vector<float> a1(e, 0.f), a2(e, 0.f);
      for (int64_t n = 0; n < N; ++n) {
        uk.sums_flat(x + (n * C + c0) * HW, e, kx.data(), a1.data(), a2.data());
        if ((n + 1) % kFlatFold == 0 || n + 1 == N) fold_values(a1, a2, HW, s1.data(), s2.data());
      }
    } else {
      for (int64_t n = 0; n < N; ++n) uk.sums(x + (n * C + c0) * HW, run, nb, k.data(), s1.data(), s2.data());
    }
    for (int64_t c = c0; c < c1; ++c) {
      const double d = s1[c - c0] / M;
      const double mu = k[c - c0] + d;
      const double var = std::max(0.0, s2[c - c0] / M - d * d);  // biased
      const double invstd = 1.0 / std::sqrt(var + static_cast<double>(eps));
      save_mean[c] = mean[c - c0] = static_cast<float>(mu);
      save_invstd[c] = static_cast<float>(invstd);
      if (running_mean) running_mean[c] = static_cast<float>((1.0 - momentum) * running_mean[c] + momentum * mu);
      if (running_var) {
        const double unbiased = var * M / (M - 1);
        running_var[c] = static_cast<float>((1.0 - momentum) * running_var[c] + momentum * unbiased);
      }
      scale[c - c0] = z_scale(gamma, save_invstd, c);
      shift[c - c0] = beta ? beta[c] : 0.f;
    }
    if (flat) {
      const std::vector<float> mx = expand(mean.data(), nb, HW), sx = expand(scale.data(), nb, HW),
                               hx = expand(shift.data(), nb, HW);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c0) * HW;
        uk.apply_flat(x + off, residual ? residual + off : nullptr, y + off, e, mx.data(), sx.data(), hx.data(),
                      act);
      }
      return;
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c0) * HW;
      uk.apply(x + off, residual ? residual + off : nullptr, y + off, run, nb, mean.data(), scale.data(),
               shift.data(), act);
    }
  });
}

void batchnorm2d_backward(const float* dy, const float* x, const float* y, const float* gamma,
                          const float* beta, const float* save_mean, const float* save_invstd,
                          float* dx, float* dgamma, float* dbeta, float* dres, int64_t N, int64_t C,
                          int64_t HW, int act) {
  const int64_t M = N * HW;
  if (M == 0) return;  // no values: dx is empty, and dgamma / dbeta gain nothing
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  const size_t run = static_cast<size_t>(HW);
  for_channel_blocks(N, C, HW, [&](int64_t c0, int64_t c1) {
    const size_t nb = static_cast<size_t>(c1 - c0);
    // z as the forward computed it (its scale, shift and mean are these floats)
    std::vector<float> scale(nb), shift(nb), fa(nb), fmg(nb), fk(nb);
    const float* mean = save_mean + c0;
    for (int64_t c = c0; c < c1; ++c) {
      scale[c - c0] = z_scale(gamma, save_invstd, c);
      shift[c - c0] = beta ? beta[c] : 0.f;
    }
    std::vector<double> sg(nb, 0.0), sgx(nb, 0.0);  // sum(g), sum(g * (x - mean))
    const bool flat = HW < kFlatBelow;
    const size_t e = nb * run;
    std::vector<float> mx, sx, hx;
    if (flat) {
      mx = expand(mean, nb, HW);
      sx = expand(scale.data(), nb, HW);
      hx = expand(shift.data(), nb, HW);
      std::vector<float> a1(e, 0.f), a2(e, 0.f);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c0) * HW;
        uk.grad_sums_flat(dy + off, x + off, y ? y + off : nullptr, e, mx.data(), sx.data(), hx.data(), act,
                          a1.data(), a2.data());
        if ((n + 1) % kFlatFold == 0 || n + 1 == N) fold_values(a1, a2, HW, sg.data(), sgx.data());
      }
    } else {
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c0) * HW;
        uk.grad_sums(dy + off, x + off, y ? y + off : nullptr, run, nb, mean, scale.data(), shift.data(), act,
                     sg.data(), sgx.data());
      }
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
    if (flat) {
      const std::vector<float> fax = expand(fa.data(), nb, HW), mgx = expand(fmg.data(), nb, HW),
                               fkx = expand(fk.data(), nb, HW);
      for (int64_t n = 0; n < N; ++n) {
        const int64_t off = (n * C + c0) * HW;
        uk.grad_apply_flat(dy + off, x + off, y ? y + off : nullptr, e, mx.data(), sx.data(), hx.data(), act,
                           fax.data(), mgx.data(), fkx.data(), dx + off, dres ? dres + off : nullptr);
      }
      return;
    }
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c0) * HW;
      uk.grad_apply(dy + off, x + off, y ? y + off : nullptr, run, nb, mean, scale.data(), shift.data(), act,
                    fa.data(), fmg.data(), fk.data(), dx + off, dres ? dres + off : nullptr);
    }
  });
}

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps) {
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  std::vector<float> scale(static_cast<size_t>(C)), shift(static_cast<size_t>(C));
  for (int64_t c = 0; c < C; ++c) {
    const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
    scale[c] = static_cast<float>((gamma ? gamma[c] : 1.0) * invstd);
    shift[c] = beta ? beta[c] : 0.f;
  }
  for_channel_blocks(N, C, HW, [&](int64_t c0, int64_t c1) {
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c0) * HW;
      uk.apply(x + off, nullptr, y + off, static_cast<size_t>(HW), static_cast<size_t>(c1 - c0),
               running_mean + c0, scale.data() + c0, shift.data() + c0, kBnActNone);
    }
  });
}

void batchnorm2d_backward_eval(const float* dy, const float* x, const float* gamma,
                               const float* running_mean, const float* running_var, float* dx,
                               float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                               float eps) {
  const F32BatchnormUkernels& uk = f32_batchnorm_ukernels(active_isa());
  std::vector<float> scale(static_cast<size_t>(C)), one(static_cast<size_t>(C), 1.f), zero(static_cast<size_t>(C), 0.f);
  for (int64_t c = 0; c < C; ++c)
    scale[c] = static_cast<float>((gamma ? gamma[c] : 1.0) / std::sqrt(static_cast<double>(running_var[c]) + eps));
  for_channel_blocks(N, C, HW, [&](int64_t c0, int64_t c1) {
    const size_t nb = static_cast<size_t>(c1 - c0);
    std::vector<double> sdy(nb, 0.0), sdyx(nb, 0.0);
    for (int64_t n = 0; n < N; ++n) {
      const int64_t off = (n * C + c0) * HW;
      if (dgamma || dbeta)
        uk.grad_sums(dy + off, x + off, nullptr, static_cast<size_t>(HW), nb, running_mean + c0, one.data(),
                     zero.data(), kBnActNone, sdy.data(), sdyx.data());
      for (int64_t i = 0; i < static_cast<int64_t>(nb) * HW; ++i) dx[off + i] = dy[off + i] * scale[c0 + i / HW];
    }
    for (int64_t c = c0; c < c1; ++c) {
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      if (dgamma) dgamma[c] += static_cast<float>(sdyx[c - c0] * invstd);
      if (dbeta) dbeta[c] += static_cast<float>(sdy[c - c0]);
    }
  });
}

}  // namespace eo
