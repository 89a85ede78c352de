#include "f32-pool/pool.h"

#include <algorithm>
#include <cmath>
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

}  // namespace

void maxpool2d_forward(const float* x, float* y, int32_t* argmax, const Pool2d& p) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* xp = x + q * HW;
      float* yp = y + q * OH * OW;
      int32_t* ap = argmax + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0, w1;
          window(ow, p.sw, p.pw, p.kw, p.W, &w0, &w1);
          // PyTorch's rule: start at the first in-bounds index with -inf, take strictly greater
          // values (first maximum wins) or NaN (last NaN wins).
          int64_t best = h0 * p.W + w0;
          float m = -INFINITY;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const float v = xp[ih * p.W + iw];
              if (v > m || std::isnan(v)) {
                m = v;
                best = ih * p.W + iw;
              }
            }
          yp[oh * OW + ow] = m;
          ap[oh * OW + ow] = static_cast<int32_t>(best);
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

void avgpool2d_forward(const float* x, float* y, const Pool2d& p, bool count_include_pad) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  const float full = 1.f / static_cast<float>(p.kh * p.kw);
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const float* xp = x + q * HW;
      float* yp = y + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0, w1;
          window(ow, p.sw, p.pw, p.kw, p.W, &w0, &w1);
          float s = 0.f;
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) s += xp[ih * p.W + iw];
          yp[oh * OW + ow] = count_include_pad ? s * full
                                               : s / static_cast<float>((h1 - h0) * (w1 - w0));
        }
      }
    }
  });
}

void avgpool2d_backward(const float* dy, float* dx, const Pool2d& p, bool count_include_pad) {
  const int64_t OH = p.OH(), OW = p.OW(), HW = p.H * p.W;
  const float full = 1.f / static_cast<float>(p.kh * p.kw);
  parallel_for(p.N * p.C, plane_grain(HW), [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      float* dp = dx + q * HW;
      std::memset(dp, 0, sizeof(float) * HW);
      const float* g = dy + q * OH * OW;
      for (int64_t oh = 0; oh < OH; ++oh) {
        int64_t h0, h1;
        window(oh, p.sh, p.ph, p.kh, p.H, &h0, &h1);
        for (int64_t ow = 0; ow < OW; ++ow) {
          int64_t w0, w1;
          window(ow, p.sw, p.pw, p.kw, p.W, &w0, &w1);
          const float v = count_include_pad ? g[oh * OW + ow] * full
                                            : g[oh * OW + ow] / static_cast<float>((h1 - h0) * (w1 - w0));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) dp[ih * p.W + iw] += v;
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
