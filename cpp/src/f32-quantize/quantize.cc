#include "f32-quantize/quantize.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include "common/parallel.h"

namespace eo::quant {
namespace {

constexpr int64_t kGrain = 1 << 16;  // elements per parallel task: below that a loop costs more than it saves

// f(r0, r1) over row ranges, in parallel when the array is large; returns the smallest bad index
// any range reported (-1: none), so the answer does not depend on the split.
template <class F>
int64_t over_rows(int64_t rows, int64_t cols, F f) {
  if (rows * cols < 2 * kGrain || rows < 2) return f(0, rows);
  std::atomic<int64_t> first{-1};
  parallel_for(rows, std::max<int64_t>(1, kGrain / std::max<int64_t>(cols, 1)), [&](int64_t r0, int64_t r1) {
    const int64_t bad = f(r0, r1);
    if (bad < 0) return;
    int64_t cur = first.load();
    while ((cur < 0 || bad < cur) && !first.compare_exchange_weak(cur, bad)) {
    }
  });
  return first.load();
}

template <class T>
int64_t quantize_rows(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                      int32_t qmin, int32_t qmax, T* q) {
  return over_rows(rows, cols, [&](int64_t r0, int64_t r1) -> int64_t {
    for (int64_t r = r0; r < r1; ++r) {
      const double s = scale[r], z = zp ? zp[r] : 0;
      for (int64_t j = 0; j < cols; ++j) {
        const float v = x[r * cols + j];
        if (!std::isfinite(v)) return r * cols + j;
        const double t = std::rint(double(v) / s) + z;
        q[r * cols + j] = static_cast<T>(std::min<double>(qmax, std::max<double>(qmin, t)));
      }
    }
    return -1;
  });
}

template <class T>
void dequantize_rows(const T* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp, float* x) {
  over_rows(rows, cols, [&](int64_t r0, int64_t r1) -> int64_t {
    for (int64_t r = r0; r < r1; ++r) {
      const double s = scale[r];
      const int64_t z = zp ? zp[r] : 0;
      for (int64_t j = 0; j < cols; ++j) x[r * cols + j] = static_cast<float>(s * double(int64_t(q[r * cols + j]) - z));
    }
    return -1;
  });
}

// f(r, j0, j1) over the elements of a rows x cols array in parallel chunks that may split rows.
template <class F>
void over_elements(int64_t rows, int64_t cols, F f) {
  parallel_for(rows * cols, kGrain, [&](int64_t b, int64_t e) {
    for (int64_t r = b / cols; r * cols < e; ++r) f(r, std::max(b, r * cols) - r * cols, std::min(e, (r + 1) * cols) - r * cols);
  });
}

constexpr float kRound = 12582912.f;  // 1.5 * 2^23: (t + kRound) - kRound = rint(t) for |t| < 2^22

}  // namespace

int64_t fake_quantize_rows(const float* x, int64_t rows, int64_t cols, const float* scale, const int32_t* zp,
                           int32_t qmin, int32_t qmax, float* y) {
  std::atomic<int64_t> first{-1};
  over_elements(rows, cols, [&](int64_t r, int64_t j0, int64_t j1) {
    const float s = scale[r], inv = 1.f / s, z = static_cast<float>(zp[r]);
    const float lo = static_cast<float>(qmin) - z, hi = static_cast<float>(qmax) - z;
    const float* p = x + r * cols;
    float* o = y + r * cols;
    bool finite = true;
    for (int64_t j = j0; j < j1; ++j) {
      const float t = std::min(hi, std::max(lo, p[j] * inv));  // NaN -> lo: caught below
      o[j] = ((t + kRound) - kRound) * s;
      finite &= std::isfinite(p[j]);
    }
    if (!finite)
      for (int64_t j = j0; j < j1; ++j)
        if (!std::isfinite(p[j])) {
          int64_t cur = first.load(), bad = r * cols + j;
          while ((cur < 0 || bad < cur) && !first.compare_exchange_weak(cur, bad)) {
          }
          break;
        }
  });
  return first.load();
}

void fake_quantize_backward_rows(const float* x, const float* dy, int64_t rows, int64_t cols, const float* scale,
                                 const int32_t* zp, int32_t qmin, int32_t qmax, float* dx) {
  over_elements(rows, cols, [&](int64_t r, int64_t j0, int64_t j1) {
    const float inv = 1.f / scale[r], z = static_cast<float>(zp[r]);
    const float lo = static_cast<float>(qmin) - z - 0.5f, hi = static_cast<float>(qmax) - z + 0.5f;
    const float* p = x + r * cols;
    for (int64_t j = j0; j < j1; ++j) {
      const float t = p[j] * inv;
      dx[r * cols + j] = t >= lo && t <= hi ? dy[r * cols + j] : 0.f;
    }
  });
}

int64_t row_range(const float* x, int64_t rows, int64_t cols, float* lo, float* hi) {
  return over_rows(rows, cols, [&](int64_t r0, int64_t r1) -> int64_t {
    for (int64_t r = r0; r < r1; ++r) {
      const float* p = x + r * cols;
      float a = INFINITY, b = -INFINITY;
      for (int64_t j = 0; j < cols; ++j) {
        if (!std::isfinite(p[j])) return r * cols + j;
        a = std::min(a, p[j]);
        b = std::max(b, p[j]);
      }
      lo[r] = a;
      hi[r] = b;
    }
    return -1;
  });
}

int64_t quantize_rows_s8(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         int32_t qmin, int32_t qmax, int8_t* q) {
  return quantize_rows(x, rows, cols, scale, zp, qmin, qmax, q);
}
int64_t quantize_rows_u8(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         int32_t qmin, int32_t qmax, uint8_t* q) {
  return quantize_rows(x, rows, cols, scale, zp, qmin, qmax, q);
}
int64_t quantize_rows_s32(const float* x, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                          int32_t qmin, int32_t qmax, int32_t* q) {
  return quantize_rows(x, rows, cols, scale, zp, qmin, qmax, q);
}

void dequantize_rows_s8(const int8_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp, float* x) {
  dequantize_rows(q, rows, cols, scale, zp, x);
}
void dequantize_rows_u8(const uint8_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp, float* x) {
  dequantize_rows(q, rows, cols, scale, zp, x);
}
void dequantize_rows_s32(const int32_t* q, int64_t rows, int64_t cols, const double* scale, const int32_t* zp,
                         float* x) {
  dequantize_rows(q, rows, cols, scale, zp, x);
}

int64_t histogram(const float* x, int64_t n, double lo, double hi, int64_t nbins, int64_t* counts) {
  const double inv = double(nbins) / (hi - lo);
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    if (!std::isfinite(v)) return i;
    if (v < lo || v > hi) continue;
    const int64_t b = std::min<int64_t>(nbins - 1, static_cast<int64_t>((double(v) - lo) * inv));
    counts[b] += 1;
  }
  return -1;
}

}  // namespace eo::quant
