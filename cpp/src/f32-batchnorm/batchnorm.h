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
// Training fuses an activation (and a residual) into the same passes:
//   forward    y = act(gamma * xhat + beta (+ residual))
//   backward   g = dy * act'(u) at the forward's u, then the formulas above with g for dy;
//              dres = g (the residual's gradient) when asked
// act' is taken at z = gamma * xhat + beta recomputed from x (the same float expression as the
// forward), or, when the forward had a residual, from the output y (relu / relu6 only: their
// derivative is a test on y). So backward keeps x, the two statistics and, with a residual, y.
// Channel sums are accumulated in double (M reaches millions) from short float partial sums.
// gamma/beta may be null (affine=False: gamma = 1, beta = 0); running stats may be null in
// training (track_running_stats=False); dgamma/dbeta/dres may be null when not needed.
// Outputs (y, dx, dres) must not overlap any input (the loops use restrict pointers); inputs may
// overlap each other. Parameter gradients accumulate (+=), dx is assigned. Parallel over channels; each channel's sums
// are computed by one thread in a fixed order, so results do not depend on the thread count.
#pragma once
#include <cstdint>

namespace eo {

enum BnAct : int { kBnActNone = 0, kBnActRelu = 1, kBnActRelu6 = 2, kBnActHardswish = 3 };

// Requires N*HW >= 2 (the caller raises like PyTorch otherwise). residual: (N, C, HW) or null.
void batchnorm2d_forward_train(const float* x, const float* gamma, const float* beta,
                               float* running_mean, float* running_var, float* y,
                               float* save_mean, float* save_invstd, int64_t N, int64_t C,
                               int64_t HW, float momentum, float eps, int act = kBnActNone,
                               const float* residual = nullptr);

// y: the forward's output when it had a residual (and act is relu / relu6), else null. N*HW may
// be 0 (nothing to do).
void batchnorm2d_backward(const float* dy, const float* x, const float* y, const float* gamma,
                          const float* beta, const float* save_mean, const float* save_invstd,
                          float* dx, float* dgamma, float* dbeta, float* dres, int64_t N, int64_t C,
                          int64_t HW, int act = kBnActNone);

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps);

void batchnorm2d_backward_eval(const float* dy, const float* x, const float* gamma,
                               const float* running_mean, const float* running_var, float* dx,
                               float* dgamma, float* dbeta, int64_t N, int64_t C, int64_t HW,
                               float eps);

}  // namespace eo
