#include "f32-pool/pool.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "common/parallel.h"

namespace eo {
namespace {

// Planes per task, so that a task touches at least ~16K input values.
int64_t plane_grain(int64_t plane) { return plane >= 16384 ? 1 : 16384 / std::max<int64_t>(plane, 1); }

// Window [*b, *e) of output index o along one axis, clipped to the input [0, size).
inline void window(int64_t o, int64_t stride, int64_t pad, int64_t k, int64_t size, int64_t* b,
                   int64_t* e) {
  const int64_t s = o * stride - pad;
  *b = std::max<int64_t>(s, 0);
  *e = std::min<int64_t>(s + k, size);
}

// The fast loops run over a whole output row at once: for each window row ih and kernel column kw,
// output column ow reads input column iw = ow*sw + (kw - pw). Those loops are long and uniform, so
// they vectorize, where a loop over one small window per output does not. Each output still sees
// its window in row-major order, so ties and NaNs resolve exactly as in the per-window loop.
// cols() gives the ow range whose iw is inside [0, W) for offset off = kw - pw.
inline void cols(int64_t off, int64_t sw, int64_t W, int64_t OW, int64_t* lo, int64_t* hi) {
  *lo = off >= 0 ? 0 : (-off + sw - 1) / sw;
  *hi = W - 1 - off < 0 ? 0 : std::min<int64_t>(OW, (W - 1 - off) / sw + 1);
}

// A select on bit patterns: under -ftrapping-math GCC will not if-convert `c ? v : m` when v is a
// loaded float, which keeps the loop scalar; and/andnot/or has no such restriction.
inline float select(bool c, float a, float b) {
  uint32_t ua, ub;
  std::memcpy(&ua, &a, 4);
  std::memcpy(&ub, &b, 4);
  const uint32_t mask = 0u - static_cast<uint32_t>(c);
  const uint32_t r = (ua & mask) | (ub & ~mask);
  float out;
  std::memcpy(&out, &r, 4);
  return out;
}

}  // namespace

void maxpool2d_forward(const float* x, float* y, int32_t* argmax, const Pool2d& p) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* xp = x + q * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        float* m = y + (q * OH + oh) * OW;
        int32_t* a = argmax + (q * OH + oh) * OW;
        // PyTorch's rule: start from -inf at the window's first in-bounds index, take strictly
        // greater values (the first maximum wins) or NaN (the last NaN wins).
        for (int64_t ow = 0; ow < OW; ++ow) {
          m[ow] = -INFINITY;
          a[ow] = static_cast<int32_t>(h0 * p.W + std::max<int64_t>(ow * p.sw - p.pw, 0));
        }
        for (int64_t ih = h0; ih < h1; ++ih) {
          const float* row = xp + ih * p.W;
          for (int64_t kw = 0; kw < p.kw; ++kw) {
            const int64_t off = kw - p.pw, sw = p.sw;
            int64_t lo, hi;
            cols(off, sw, p.W, OW, &lo, &hi);
            const int32_t base = static_cast<int32_t>(ih * p.W + off);
            for (int64_t ow = lo; ow < hi; ++ow) {
              const float v = row[ow * sw + off];
              const bool take = (v > m[ow]) | (v != v);
              m[ow] = select(take, v, m[ow]);
              a[ow] = take ? base + static_cast<int32_t>(ow * sw) : a[ow];
            }
          }
        }
      }
    }
  });
}

bool maxpool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                        int64_t OHW, int64_t HW) {
  // One flag per plane (no shared writes); read in order afterwards.
  bool ok = true;
  std::vector<char> bad(static_cast<size_t>(planes), 0);
  parallel_for(planes, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      float* dp = dx + q * HW;
      std::memset(dp, 0, sizeof(float) * HW);
      const float* g = dy + q * OHW;
      const int32_t* a = argmax + q * OHW;
      for (int64_t i = 0; i < OHW; ++i) {
        const int32_t j = a[i];
        if (j < 0 || j >= HW) {
          bad[q] = 1;
          break;
        }
        dp[j] += g[i];
      }
    }
  });
  for (char b : bad) ok = ok && !b;
  return ok;
}

// 1 / divisor for output column ow of a row whose window rows are [h0, h1).
inline float avg_scale(const Pool2d& p, bool count_include_pad, int64_t h0, int64_t h1,
                       int64_t ow) {
  if (count_include_pad) return 1.f / static_cast<float>(p.kh * p.kw);
  int64_t w0, w1;
  window(ow, p.sw, p.pw, p.kw, p.W, &w0, &w1);
  return 1.f / static_cast<float>((h1 - h0) * (w1 - w0));
}

void avgpool2d_forward(const float* x, float* y, const Pool2d& p, bool count_include_pad) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* xp = x + q * HW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        float* s = y + (q * OH + oh) * OW;
        std::fill(s, s + OW, 0.f);
        for (int64_t ih = h0; ih < h1; ++ih) {
          const float* row = xp + ih * p.W;
          for (int64_t kw = 0; kw < p.kw; ++kw) {
            const int64_t off = kw - p.pw, sw = p.sw;
            int64_t lo, hi;
            cols(off, sw, p.W, OW, &lo, &hi);
            for (int64_t ow = lo; ow < hi; ++ow) s[ow] += row[ow * sw + off];
          }
        }
        for (int64_t ow = 0; ow < OW; ++ow) s[ow] *= avg_scale(p, count_include_pad, h0, h1, ow);
      }
    }
  });
}

void avgpool2d_backward(const float* dy, float* dx, const Pool2d& p, bool count_include_pad) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    std::vector<float> v(static_cast<size_t>(OW));  // dy / divisor for one output row
    for (int64_t q = q0; q < q1; ++q) {
      float* dp = dx + q * HW;
      std::memset(dp, 0, sizeof(float) * HW);
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        const float* g = dy + (q * OH + oh) * OW;
        for (int64_t ow = 0; ow < OW; ++ow) v[ow] = g[ow] * avg_scale(p, count_include_pad, h0, h1, ow);
        for (int64_t ih = h0; ih < h1; ++ih) {
          float* row = dp + ih * p.W;
          for (int64_t kw = 0; kw < p.kw; ++kw) {
            const int64_t off = kw - p.pw, sw = p.sw;
            int64_t lo, hi;
            cols(off, sw, p.W, OW, &lo, &hi);
            for (int64_t ow = lo; ow < hi; ++ow) row[ow * sw + off] += v[ow];
          }
        }
      }
    }
  });
}

void global_avgpool2d_forward(const float* x, float* y, int64_t N, int64_t C, int64_t HW) {
  parallel_for(N * C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* xp = x + q * HW;
      // Eight float lanes (vectorizable), folded into double every 256 values per lane.
      double total = 0;
      int64_t i = 0;
      while (i < HW) {
        const int64_t end = std::min<int64_t>(HW, i + 8 * 256);
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (; i + 8 <= end; i += 8)
          for (int j = 0; j < 8; ++j) acc[j] += xp[i + j];
        for (; i < end; ++i) acc[0] += xp[i];
        for (float a : acc) total += a;
      }
      y[q] = static_cast<float>(total / static_cast<double>(HW));
    }
  });
}

void global_avgpool2d_backward(const float* dy, float* dx, int64_t N, int64_t C, int64_t HW) {
  const float inv = 1.f / static_cast<float>(HW);
  parallel_for(N * C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float v = dy[q] * inv;
      float* dp = dx + q * HW;
      for (int64_t i = 0; i < HW; ++i) dp[i] = v;
    }
  });
}

}  // namespace eo
