#include "qs8-elementwise/elementwise.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "common/parallel.h"
#include "qs8-gemm/requantize.h"

namespace eo {
namespace {

constexpr int64_t kParallelElems = 1 << 16;  // below this, one thread
constexpr int64_t kMaxChannels = 4096;       // channel_scale's per-image factors live on the stack

// f(begin, end) over [0, n) items of `cost` elements each, in fixed chunks if the work is large.
template <class F>
void split(int64_t n, F&& f, int64_t cost = 1) {
  const int threads = get_num_threads();
  if (threads <= 1 || n < 2 || n * cost < kParallelElems)
    f(int64_t(0), n);
  else
    parallel_chunks(n, threads, [&](int, int64_t b, int64_t e) { f(b, e); });
}

// t[i] = clamp(round_half_even(xs[i] / scale), lo, hi) + zp for a run of n values (NaN -> lo).
// Clamping first (lo and hi are whole numbers) and qs8_round_even give nearbyint's result in a
// loop the compiler vectorizes (restrict: the bytes do not alias the floats). A quotient, not a
// product with 1 / scale: onnxruntime's QuantizeLinear divides, and the two differ near ties.
void quantize_run(const float* __restrict xs, int64_t n, float scale, float lo, float hi,
                  int32_t zp, uint8_t* __restrict t) {
  for (int64_t i = 0; i < n; ++i) {
    float r = xs[i] / scale;
    r = r > lo ? r : lo;  // also maps NaN to lo
    r = r < hi ? r : hi;
    t[i] = uint8_t(int32_t(qs8_round_even(r)) + zp);
  }
}

}  // namespace

void qs8_quantize(int64_t N, int64_t C, int64_t HW, const float* x, float scale, int32_t zp,
                  uint8_t* y) {
  const float lo = float(-zp), hi = float(255 - zp);
  // Channel planes to interleaved pixels: each channel's run of pixels is quantized into a block
  // (a contiguous loop the compiler vectorizes), then the block is interleaved.
  constexpr int64_t kBlock = 256;
  split(N * HW, [&](int64_t p0, int64_t p1) {
    std::vector<uint8_t> tmp(size_t(C * kBlock));
    for (int64_t n = p0 / HW; n * HW < p1; ++n) {
      const int64_t i0 = std::max(p0 - n * HW, int64_t(0)), i1 = std::min(p1 - n * HW, HW);
      for (int64_t b0 = i0; b0 < i1; b0 += kBlock) {
        const int64_t nb = std::min(kBlock, i1 - b0);
        for (int64_t c = 0; c < C; ++c)
          quantize_run(x + (n * C + c) * HW + b0, nb, scale, lo, hi, zp, tmp.data() + c * kBlock);
        uint8_t* yp = y + (n * HW + b0) * C;
        for (int64_t i = 0; i < nb; ++i)
          for (int64_t c = 0; c < C; ++c) yp[i * C + c] = tmp[size_t(c * kBlock + i)];
      }
    }
  }, C);
}

void qs8_dequantize(int64_t N, int64_t C, int64_t HW, const uint8_t* x, float scale, int32_t zp,
                    float* y) {
  split(N * C, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / C, c = q % C;
      const uint8_t* xs = x + n * HW * C + c;
      float* yp = y + q * HW;
      for (int64_t i = 0; i < HW; ++i) yp[i] = float(int32_t(xs[i * C]) - zp) * scale;
    }
  }, HW);
}

void qs8_add(const Qs8OpUkernels& uk, int64_t n, const uint8_t* a, const uint8_t* b,
             const qs8_add_params& p, uint8_t* y) {
  split(n, [&](int64_t i0, int64_t i1) { uk.add(size_t(i1 - i0), a + i0, b + i0, &p, y + i0); });
}

void qs8_lut(int64_t n, const uint8_t* x, const uint8_t* table, uint8_t* y) {
  split(n, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) y[i] = table[x[i]];
  });
}

void qs8_channel_scale(const Qs8OpUkernels& uk, int64_t N, int64_t HW, int64_t C, const uint8_t* x,
                       const uint8_t* s, int32_t s_zp, const qs8_channel_scale_params& p,
                       uint8_t* y) {
  // Work items are (image, channel block) x pixel ranges: one image's factors at a time.
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t c0 = 0; c0 < C; c0 += kMaxChannels) {
      const int64_t nc = std::min(kMaxChannels, C - c0);
      int32_t sc[kMaxChannels];
      for (int64_t c = 0; c < nc; ++c) sc[c] = int32_t(s[n * C + c0 + c]) - s_zp;
      const uint8_t* xn = x + n * HW * C + c0;
      uint8_t* yn = y + n * HW * C + c0;
      if (nc == C) {
        split(HW, [&](int64_t p0, int64_t p1) {
          uk.channel_scale(size_t(p1 - p0), size_t(C), xn + p0 * C, sc, &p, yn + p0 * C);
        }, C);
      } else {
        for (int64_t i = 0; i < HW; ++i)
          uk.channel_scale(1, size_t(nc), xn + i * C, sc, &p, yn + i * C);
      }
    }
  }
}

}  // namespace eo
