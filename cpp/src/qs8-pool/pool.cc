#include "qs8-pool/pool.h"

#include <algorithm>

#include "common/parallel.h"
#include "qs8-gemm/requantize.h"

namespace eo {
namespace {

constexpr int64_t kParallelWork = 1 << 17;  // taps x channels below which one thread does it all
constexpr int64_t kAccChannels = 1024;      // channel block of the int32 accumulators (stack)

// f(begin, end) over output rows [0, rows) in fixed chunks when the work is large.
template <class F>
void over_rows(int64_t rows, int64_t work, F&& f) {
  const int threads = get_num_threads();
  if (threads <= 1 || rows < 2 || work < kParallelWork)
    f(int64_t(0), rows);
  else
    parallel_chunks(rows, threads, [&](int, int64_t b, int64_t e) { f(b, e); });
}

}  // namespace

void qs8_maxpool2d(const Qs8PoolShape& s, int64_t N, int64_t H, int64_t W, int64_t C,
                   const uint8_t* x, uint8_t* y) {
  const int64_t OH = s.out_h(H), OW = s.out_w(W);
  over_rows(N * OH, N * OH * OW * C * s.kh * s.kw, [&](int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / OH, oh = q % OH;
      const int64_t h0 = std::max<int64_t>(0, oh * s.sh - s.ph), h1 = std::min(H, oh * s.sh - s.ph + s.kh);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(0, ow * s.sw - s.pw), w1 = std::min(W, ow * s.sw - s.pw + s.kw);
        uint8_t* yp = y + (q * OW + ow) * C;
        std::fill(yp, yp + C, uint8_t(0));
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) {
            const uint8_t* xp = x + ((n * H + ih) * W + iw) * C;
            for (int64_t c = 0; c < C; ++c) yp[c] = std::max(yp[c], xp[c]);
          }
      }
    }
  });
}

void qs8_avgpool2d(const Qs8PoolShape& s, bool count_include_pad, int64_t N, int64_t H, int64_t W,
                   int64_t C, const uint8_t* x, int32_t in_zp, const float* scale,
                   int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y) {
  const int64_t OH = s.out_h(H), OW = s.out_w(W);
  over_rows(N * OH, N * OH * OW * C * s.kh * s.kw, [&](int64_t q0, int64_t q1) {
    int32_t acc[kAccChannels];
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / OH, oh = q % OH;
      const int64_t h0 = std::max<int64_t>(0, oh * s.sh - s.ph), h1 = std::min(H, oh * s.sh - s.ph + s.kh);
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t w0 = std::max<int64_t>(0, ow * s.sw - s.pw), w1 = std::min(W, ow * s.sw - s.pw + s.kw);
        const int64_t taps = (h1 - h0) * (w1 - w0);
        const int64_t d = count_include_pad ? s.kh * s.kw : taps;
        uint8_t* yp = y + (q * OW + ow) * C;
        for (int64_t c0 = 0; c0 < C; c0 += kAccChannels) {
          const int64_t nc = std::min(kAccChannels, C - c0);
          std::fill(acc, acc + nc, int32_t(-taps * in_zp));
          for (int64_t ih = h0; ih < h1; ++ih)
            for (int64_t iw = w0; iw < w1; ++iw) {
              const uint8_t* xp = x + ((n * H + ih) * W + iw) * C + c0;
              for (int64_t c = 0; c < nc; ++c) acc[c] += xp[c];
            }
          for (int64_t c = 0; c < nc; ++c)
            yp[c0 + c] = uint8_t(qs8_requantize(acc[c], scale[d - 1], out_zp, qmin, qmax));
        }
      }
    }
  });
}

void qs8_global_avgpool2d(int64_t N, int64_t HW, int64_t C, const uint8_t* x, int32_t in_zp,
                          float scale, int32_t out_zp, int32_t qmin, int32_t qmax,
                          uint8_t* y) {
  over_rows(N, N * HW * C, [&](int64_t n0, int64_t n1) {
    int32_t acc[kAccChannels];
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t c0 = 0; c0 < C; c0 += kAccChannels) {
        const int64_t nc = std::min(kAccChannels, C - c0);
        std::fill(acc, acc + nc, int32_t(-HW * in_zp));
        for (int64_t i = 0; i < HW; ++i) {
          const uint8_t* xp = x + (n * HW + i) * C + c0;
          for (int64_t c = 0; c < nc; ++c) acc[c] += xp[c];
        }
        for (int64_t c = 0; c < nc; ++c)
          y[n * C + c0 + c] = uint8_t(qs8_requantize(acc[c], scale, out_zp, qmin, qmax));
      }
  });
}

}  // namespace eo
