// param, grad, momentum_buf, exp_avg, exp_avg_sq: (n) — one parameter tensor, flattened.
//
// Optimizer steps with PyTorch's update rules (torch.optim.SGD / Adam / AdamW, single-tensor path):
// SGD:   d = g + wd * p
//        momentum != 0:  buf = d on the first step, else buf = momentum * buf + (1 - dampening) * d
//                        d = nesterov ? d + momentum * buf : buf
//        p -= lr * d
// Adam:  (decoupled, AdamW)  p *= 1 - lr * wd      (L2, Adam)  g = g + wd * p
//        m = lerp(m, g, 1 - beta1);  v = beta2 * v + (1 - beta2) * g^2
//        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
// Both return false without writing anything if grad holds NaN or Inf: the check reads all of grad
// first. Elementwise, so independent of the thread count.
#pragma once
#include <cstdint>

namespace eo {

// Hyperparameters in double, as Python holds them: derived scalars such as 1 - beta2 are formed in
// double and rounded to float once, as PyTorch does (1 - 0.999f would be off by 1.3e-5 relative).
struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
  bool first_step;  // the momentum buffer is initialised to d instead of updated
};
// momentum_buf may be null iff momentum == 0.
bool sgd_step(float* param, const float* grad, float* momentum_buf, int64_t n, const SgdOptions& o);

struct AdamOptions {
  double lr, beta1, beta2, eps, weight_decay;
  int64_t step;  // 1 on the first step
  bool decoupled;
};
bool adam_step(float* param, const float* grad, float* exp_avg, float* exp_avg_sq, int64_t n,
               const AdamOptions& o);

// True if every value is finite. Exposed for tests and for gradient clipping.
bool all_finite(const float* x, int64_t n);

}  // namespace eo
