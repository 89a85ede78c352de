// x, y, dy, dx: (N, C, HW)  gamma, beta, running_mean, running_var, save_mean, save_invstd: (C)
//
// Batch normalization over (N, H, W) per channel, PyTorch semantics.
//   training:  mean = E[x], var = E[(x - mean)^2] (biased), invstd = 1 / sqrt(var + eps)
//              y = gamma * (x - mean) * invstd + beta
//              running = (1 - momentum) * running + momentum * stat, with the *unbiased* variance
//              var * M / (M - 1) going into running_var (M = N*H*W values per channel)
//   backward:  xhat = (x - mean) * invstd
//              dx = gamma * invstd / M * (M*dy - sum(dy) - xhat * sum(dy * xhat))
//              dgamma += sum(dy * xhat), dbeta += sum(dy)
//   eval:      the running statistics replace the batch ones and are constants, so
//              dx = dy * gamma / sqrt(running_var + eps).
// Channel sums are accumulated in double (M reaches millions; the backward sums fold short float
// partial sums into double). gamma/beta may be null
// (affine=False: gamma = 1, beta = 0); running stats may be null in training
// (track_running_stats=False); dgamma/dbeta may be null when not needed.
// Parameter gradients accumulate (+=), dx is assigned. Parallel over channels; each channel's sums
// are computed by one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace eo {

// Requires N*HW >= 2 (the caller raises like PyTorch otherwise).
void batchnorm2d_forward_train(const float* x, const float* gamma, const float* beta,
                               float* running_mean, float* running_var, float* y,
                               float* save_mean, float* save_invstd, int64_t N, int64_t C,
                               int64_t HW, float momentum, float eps);

void batchnorm2d_backward(const float* dy, const float* x, const float* gamma,
                          const float* save_mean, const float* save_invstd, float* dx,
                          float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW);

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps);

void batchnorm2d_backward_eval(const float* dy, const float* x, const float* gamma,
                               const float* running_mean, const float* running_var, float* dx,
                               float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                               float eps);

}  // namespace eo
