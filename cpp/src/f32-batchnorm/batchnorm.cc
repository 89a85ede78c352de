#include "f32-batchnorm/batchnorm.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "common/parallel.h"
#include "f32-activation/formulas.h"

namespace eo {
namespace {

// Short float partial sums (the loops vectorize; a double reduction would stay scalar): eight
// lanes, folded into double totals every 128 values per lane, so float rounding only ever covers
// short runs and the totals (over up to millions of values) are double.
constexpr int64_t kFold = 8 * 128;

// sum(x - k) and sum((x - k)^2) over one contiguous run. The shift k (a value of the channel) keeps
// E[x^2] - E[x]^2 from cancelling catastrophically when |mean| >> std.
void shifted_sums(const float* p, int64_t n, float k, double& s1, double& s2) {
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min(n, i + kFold);
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= end; i += 8)
      for (int j = 0; j < 8; ++j) {
        const float d = p[i + j] - k;
        a[j] += d;
        b[j] += d * d;
      }
    for (; i < end; ++i) {
      const float d = p[i] - k;
      a[0] += d;
      b[0] += d * d;
    }
    for (int j = 0; j < 8; ++j) {
      s1 += a[j];
      s2 += b[j];
    }
  }
}

template <int A>
inline float act_of(float v) {
  if (A == kBnActRelu) return act::relu(v);
  if (A == kBnActRelu6) return act::relu6(v);
  if (A == kBnActHardswish) return act::hardswish(v);
  return v;
}

// g = dy * act'(u), u = z (+ residual), z = (x - mean) * scale + shift written exactly as the
// forward computes it (so the same float). With a residual the derivative is read from the output
// y instead (relu / relu6: 0 < y (< 6) exactly when 0 < u (< 6)).
template <int A, bool FromY>
inline float grad_at(float g, float z, const float* y, int64_t i) {
  if (A == kBnActNone) return g;
  const float u = FromY ? y[i] : z;
  if (A == kBnActRelu) return act::relu_grad_from_output(g, u);  // u > 0 iff relu(u) > 0
  if (A == kBnActRelu6) return act::relu6_grad(g, u);
  return act::hardswish_grad(g, u);
}

// y = act((x - mean) * scale + shift (+ r)) over one contiguous run. Centring first keeps the
// digits when |mean| >> std; x * scale + (shift - mean * scale) would cancel two large terms.
template <int A>
void affine(const float* x, const float* r, float* y, int64_t n, float mean, float scale, float shift) {
  if (r) {
    for (int64_t i = 0; i < n; ++i) y[i] = act_of<A>((x[i] - mean) * scale + shift + r[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) y[i] = act_of<A>((x[i] - mean) * scale + shift);
  }
}

// sum(g) and sum(g * (x - mean)) over one contiguous run.
template <int A, bool FromY>
void grad_sums(const float* dy, const float* x, const float* y, int64_t n, float mean, float scale,
               float shift, double& sg, double& sgx) {
  int64_t i = 0;
  while (i < n) {
    const int64_t end = std::min(n, i + kFold);
    float a[8] = {0, 0, 0, 0, 0, 0, 0, 0}, b[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (; i + 8 <= end; i += 8)
      for (int j = 0; j < 8; ++j) {
        const float xc = x[i + j] - mean;
        const float g = grad_at<A, FromY>(dy[i + j], xc * scale + shift, y, i + j);
        a[j] += g;
        b[j] += g * xc;
      }
    for (; i < end; ++i) {
      const float xc = x[i] - mean;
      const float g = grad_at<A, FromY>(dy[i], xc * scale + shift, y, i);
      a[0] += g;
      b[0] += g * xc;
    }
    for (int j = 0; j < 8; ++j) {
      sg += a[j];
      sgx += b[j];
    }
  }
}

// dx = fa * (g - mg) - fk * (x - mean), and dres = g when asked, over one contiguous run.
template <int A, bool FromY>
void grad_apply(const float* dy, const float* x, const float* y, int64_t n, float mean, float scale,
                float shift, float fa, float mg, float fk, float* dx, float* dres) {
  if (dres) {
    for (int64_t i = 0; i < n; ++i) {
      const float xc = x[i] - mean;
      const float g = grad_at<A, FromY>(dy[i], xc * scale + shift, y, i);
      dx[i] = fa * (g - mg) - fk * xc;
      dres[i] = g;
    }
  } else {
    for (int64_t i = 0; i < n; ++i) {
      const float xc = x[i] - mean;
      dx[i] = fa * (grad_at<A, FromY>(dy[i], xc * scale + shift, y, i) - mg) - fk * xc;
    }
  }
}

// f(std::integral_constant<int, act>) for the run-time activation.
template <class F>
void with_act(int act, F f) {
  switch (act) {
    case kBnActRelu: return f(std::integral_constant<int, kBnActRelu>());
    case kBnActRelu6: return f(std::integral_constant<int, kBnActRelu6>());
    case kBnActHardswish: return f(std::integral_constant<int, kBnActHardswish>());
    default: return f(std::integral_constant<int, kBnActNone>());
  }
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
                               int64_t HW, float momentum, float eps, int act, const float* residual) {
  const int64_t M = N * HW;
  with_act(act, [&](auto A) {
    parallel_for(C, channel_grain(N, HW), [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const float k = x[c * HW];  // shift: any value of the channel
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
          affine<A>(x + off, residual ? residual + off : nullptr, y + off, HW, static_cast<float>(mean), scale, shift);
        }
      }
    });
  });
}

void batchnorm2d_backward(const float* dy, const float* x, const float* y, const float* gamma,
                          const float* beta, const float* save_mean, const float* save_invstd,
                          float* dx, float* dgamma, float* dbeta, float* dres, int64_t N, int64_t C,
                          int64_t HW, int act) {
  const int64_t M = N * HW;
  with_act(act, [&](auto A) {
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
          if (y) grad_sums<A, true>(dy + off, x + off, y + off, HW, fmean, scale, shift, sg, sgx);
          else grad_sums<A, false>(dy + off, x + off, nullptr, HW, fmean, scale, shift, sg, sgx);
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
          float* dr = dres ? dres + off : nullptr;
          if (y) grad_apply<A, true>(dy + off, x + off, y + off, HW, fmean, scale, shift, fa, fmg, fk, dx + off, dr);
          else grad_apply<A, false>(dy + off, x + off, nullptr, HW, fmean, scale, shift, fa, fmg, fk, dx + off, dr);
        }
      }
    });
  });
}

void batchnorm2d_forward_eval(const float* x, const float* gamma, const float* beta,
                              const float* running_mean, const float* running_var, float* y,
                              int64_t N, int64_t C, int64_t HW, float eps) {
  parallel_for(N * C, HW >= 16384 ? 1 : 16384 / (HW > 0 ? HW : 1), [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c = p % C;
      const double invstd = 1.0 / std::sqrt(static_cast<double>(running_var[c]) + eps);
      affine<kBnActNone>(x + p * HW, nullptr, y + p * HW, HW, running_mean[c],
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
        if (dgamma || dbeta) grad_sums<kBnActNone, false>(dy + off, x + off, nullptr, HW, running_mean[c], 1.f, 0.f, sdy, sdyx);
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
