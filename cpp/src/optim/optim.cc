#include "optim/optim.h"

#include <Eigen/Core>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "common/parallel.h"

namespace eo {
namespace {

constexpr int64_t kGrain = 32768;

}  // namespace

bool all_finite(const float* x, int64_t n) {
  // A float is NaN or Inf iff its exponent bits are all ones. An integer OR-reduction of that test
  // vectorizes (a float reduction would not, without -ffast-math); one flag per fixed chunk.
  const int nchunks = reduction_chunks((n + kGrain - 1) / kGrain);
  std::vector<uint32_t> flags(static_cast<size_t>(nchunks), 0);
  parallel_chunks(n, nchunks, [&](int c, int64_t b, int64_t e) {
    uint32_t any = 0;
    for (int64_t i = b; i < e; ++i) {
      uint32_t u;
      std::memcpy(&u, x + i, 4);
      any |= static_cast<uint32_t>((u & 0x7f800000u) == 0x7f800000u);
    }
    flags[c] = any;
  });
  for (uint32_t f : flags)
    if (f) return false;
  return true;
}

// The loops below are instantiated per combination of the loop-invariant options, so each one is
// a branch-free body the compiler vectorizes (a runtime `if` inside the loop blocks that).
template <bool kWd, bool kMom, bool kNesterov, bool kFirst>
void sgd_loop(float* param, const float* grad, float* buf, int64_t n, float lr, float wd,
              float mom, float damp) {
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    for (int64_t i = s; i < e; ++i) {
      float d = grad[i];
      if (kWd) d = d + wd * param[i];
      if (kMom) {
        const float b = kFirst ? d : mom * buf[i] + damp * d;
        buf[i] = b;
        d = kNesterov ? d + mom * b : b;
      }
      param[i] = param[i] - lr * d;
    }
  });
}

template <bool kWd, bool kMom>
void sgd_dispatch(float* p, const float* g, float* b, int64_t n, const SgdOptions& o, float lr,
                  float wd, float mom, float damp) {
  if (o.nesterov) {
    if (o.first_step) sgd_loop<kWd, kMom, true, true>(p, g, b, n, lr, wd, mom, damp);
    else sgd_loop<kWd, kMom, true, false>(p, g, b, n, lr, wd, mom, damp);
  } else {
    if (o.first_step) sgd_loop<kWd, kMom, false, true>(p, g, b, n, lr, wd, mom, damp);
    else sgd_loop<kWd, kMom, false, false>(p, g, b, n, lr, wd, mom, damp);
  }
}

bool sgd_step(float* param, const float* grad, float* buf, int64_t n, const SgdOptions& o) {
  if (!all_finite(grad, n)) return false;
  const float lr = static_cast<float>(o.lr), wd = static_cast<float>(o.weight_decay);
  const float mom = static_cast<float>(o.momentum), damp = static_cast<float>(1.0 - o.dampening);
  const bool use_wd = o.weight_decay != 0.0, use_mom = o.momentum != 0.0;
  if (use_wd && use_mom) sgd_dispatch<true, true>(param, grad, buf, n, o, lr, wd, mom, damp);
  else if (use_wd) sgd_dispatch<true, false>(param, grad, buf, n, o, lr, wd, mom, damp);
  else if (use_mom) sgd_dispatch<false, true>(param, grad, buf, n, o, lr, wd, mom, damp);
  else sgd_dispatch<false, false>(param, grad, buf, n, o, lr, wd, mom, damp);
  return true;
}

struct AdamScalars {
  float step_size, bc2_sqrt, w, b2, one_b2, eps, wd, decay;
};

// kMode: 0 no weight decay, 1 L2 (Adam), 2 decoupled (AdamW). kSmallW: torch.lerp's branch,
// start + w * (end - start) for w < 0.5, else end - (end - start) * (1 - w).
template <int kMode, bool kSmallW>
void adam_loop(float* param, const float* grad, float* m, float* v, int64_t n, AdamScalars c) {
  // Blocks of 512 stay in L1 between the moment update and the parameter update; the square
  // roots go through Eigen, whose packet sqrt vectorizes (std::sqrt in a loop does not, because
  // of errno handling, without -fno-math-errno).
  constexpr int64_t kBlock = 512;
  parallel_for(n, kGrain, [=](int64_t s, int64_t e) {
    float root[kBlock];
    for (int64_t b = s; b < e; b += kBlock) {
      const int64_t len = std::min(kBlock, e - b);
      for (int64_t i = b; i < b + len; ++i) {
        float g = grad[i];
        if (kMode == 1) g = g + c.wd * param[i];
        m[i] = kSmallW ? m[i] + c.w * (g - m[i]) : g - (g - m[i]) * (1.f - c.w);
        v[i] = v[i] * c.b2 + c.one_b2 * g * g;
      }
      Eigen::Map<Eigen::ArrayXf>(root, len) = Eigen::Map<const Eigen::ArrayXf>(v + b, len).sqrt();
      for (int64_t j = 0; j < len; ++j) {
        const int64_t i = b + j;
        const float p = kMode == 2 ? param[i] * c.decay : param[i];
        param[i] = p - c.step_size * (m[i] / (root[j] / c.bc2_sqrt + c.eps));
      }
    }
  });
}

template <int kMode>
void adam_dispatch(float* p, const float* g, float* m, float* v, int64_t n, const AdamScalars& c) {
  if (c.w < 0.5f) adam_loop<kMode, true>(p, g, m, v, n, c);
  else adam_loop<kMode, false>(p, g, m, v, n, c);
}

bool adam_step(float* param, const float* grad, float* m, float* v, int64_t n,
               const AdamOptions& o) {
  if (!all_finite(grad, n)) return false;
  // Scalars in double as PyTorch computes them in Python, then used at float precision.
  const double t = static_cast<double>(o.step);
  const double bc1 = 1.0 - std::pow(o.beta1, t), bc2 = 1.0 - std::pow(o.beta2, t);
  AdamScalars c;
  c.step_size = static_cast<float>(o.lr / bc1);
  c.bc2_sqrt = static_cast<float>(std::sqrt(bc2));
  c.w = static_cast<float>(1.0 - o.beta1);  // lerp weight
  c.b2 = static_cast<float>(o.beta2);
  c.one_b2 = static_cast<float>(1.0 - o.beta2);
  c.eps = static_cast<float>(o.eps);
  c.wd = static_cast<float>(o.weight_decay);
  c.decay = static_cast<float>(1.0 - o.lr * o.weight_decay);
  if (o.weight_decay == 0.0) adam_dispatch<0>(param, grad, m, v, n, c);
  else if (!o.decoupled) adam_dispatch<1>(param, grad, m, v, n, c);
  else adam_dispatch<2>(param, grad, m, v, n, c);
  return true;
}

}  // namespace eo
