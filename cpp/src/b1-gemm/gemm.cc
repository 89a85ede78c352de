#include "b1-gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <utility>

#include "common/int_math.h"
#include "common/parallel.h"
#include "isa/dispatch.h"

namespace eo {
namespace {


// The one epilogue, shared with the reference: a separate multiply and add (this file is compiled
// for the baseline target, which has no FMA to contract them into).
inline float epilogue(int32_t dot, float alpha, const float* bias, int64_t j, float lo, float hi) {
  float v = alpha * static_cast<float>(dot);
  if (bias) v = v + bias[j];
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// Rows of B (n x kwords, row stride ldb words) into 8-column panels, zero columns past n.
void pack_panels(int64_t n, int64_t kwords, const uint64_t* b, int64_t ldb, uint64_t* panels) {
  const int64_t np = ceil_div(n, 8);
  std::memset(panels, 0, size_t(np * kwords * 8) * sizeof(uint64_t));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t w = 0; w < kwords; ++w) panels[(j / 8) * kwords * 8 + w * 8 + j % 8] = b[j * ldb + w];
}

}  // namespace

void b1_pack_rows(int64_t rows, int64_t k, const float* x, uint64_t* bits) {
  const int64_t kw = ceil_div(k, 64);
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t* d = bits + r * kw;
    for (int64_t w = 0; w < kw; ++w) {
      uint64_t word = 0;
      const int64_t end = std::min<int64_t>(64, k - w * 64);
      for (int64_t t = 0; t < end; ++t) word |= uint64_t(x[r * k + w * 64 + t] >= 0.f) << t;
      d[w] = word;
    }
  }
}

// ------------------------------------------------------------------------------------- linear

B1LinearWeights b1_pack_linear_weights(int64_t n, int64_t k, const float* w, const float* alpha) {
  B1LinearWeights p;
  p.n = n;
  p.k = k;
  p.kwords = ceil_div(k, 64);
  std::vector<uint64_t> rows(size_t(n * p.kwords));
  b1_pack_rows(n, k, w, rows.data());
  p.panels.resize(size_t(ceil_div(n, 8) * p.kwords * 8));
  pack_panels(n, p.kwords, rows.data(), p.kwords, p.panels.data());
  p.alpha.assign(alpha, alpha + n);
  return p;
}

void b1_linear(const B1LinearWeights& wt, int64_t m, const float* x, const float* bias,
               float out_min, float out_max, float* y, bool parallel) {
  const int64_t n = wt.n, kw = wt.kwords;
  if (m <= 0 || n <= 0) return;
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  std::vector<uint64_t> xb(size_t(std::max<int64_t>(1, m * kw)));
  b1_pack_rows(m, wt.k, x, xb.data());
  const int64_t np = ceil_div(n, 8);
  // Panels [q0, q1) of every row; each chunk owns its output columns.
  auto run = [&](int64_t q0, int64_t q1) {
    const int64_t j0 = q0 * 8, nc = std::min(n, q1 * 8) - j0;
    std::vector<int32_t> pc(size_t(m * nc));
    uk.fn(size_t(m), size_t(nc), size_t(kw), xb.data(), size_t(kw), wt.panels.data() + q0 * kw * 8,
          pc.data(), size_t(nc));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < nc; ++j) {
        const int32_t dot = int32_t(wt.k) - 2 * pc[i * nc + j];
        y[i * n + j0 + j] = epilogue(dot, wt.alpha[j0 + j], bias, j0 + j, out_min, out_max);
      }
  };
  const int threads = parallel ? get_num_threads() : 1;
  if (threads > 1 && np >= 2 && m * n * kw >= (1 << 14))
    parallel_chunks(np, int(std::min<int64_t>(np, threads)), [&](int, int64_t a, int64_t b) { run(a, b); });
  else
    run(0, np);
}

void b1_gemm_dots(int64_t m, int64_t n, int64_t k, const uint64_t* a, const uint64_t* b,
                  int32_t* dots) {
  if (m <= 0 || n <= 0) return;
  const int64_t kw = ceil_div(k, 64);
  std::vector<uint64_t> panels(size_t(ceil_div(n, 8) * std::max<int64_t>(kw, 1) * 8));
  pack_panels(n, kw, b, kw, panels.data());
  b1_gemm_ukernel(active_isa()).fn(size_t(m), size_t(n), size_t(kw), a, size_t(kw), panels.data(),
                                   dots, size_t(n));
  for (int64_t e = 0; e < m * n; ++e) dots[e] = int32_t(k) - 2 * dots[e];
}

// --------------------------------------------------------------------------------------- conv

std::vector<float> b1_channel_alpha(const float* w, int64_t cout, int64_t per) {
  std::vector<float> a(static_cast<size_t>(cout));
  for (int64_t o = 0; o < cout; ++o) {
    double s = 0;
    for (int64_t t = 0; t < per; ++t) s += std::fabs(w[o * per + t]);
    a[o] = per ? float(s / per) : 0.f;
  }
  return a;
}

B1ConvWeights b1_pack_conv_weights(int64_t cout, int64_t cin, int64_t kh, int64_t kw,
                                   const float* w, const float* alpha) {
  B1ConvWeights p;
  p.cout = cout;
  p.cin = cin;
  p.kh = kh;
  p.kw = kw;
  p.cw = ceil_div(cin, 64);
  const int64_t taps = kh * kw, kwd = p.kwords();
  p.bits.assign(size_t(cout * kwd), 0);
  p.tapsum.assign(size_t(cout * taps), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t t = 0; t < taps; ++t) {
        const bool pos = w[(o * cin + c) * taps + t] >= 0.f;
        if (pos) p.bits[o * kwd + t * p.cw + c / 64] |= uint64_t(1) << (c % 64);
        p.tapsum[o * taps + t] += pos ? 1 : -1;
      }
  p.alpha.assign(alpha, alpha + cout);
  return p;
}

void b1_conv2d(const B1ConvWeights& wt, const B1Conv& cv, int64_t batch, int64_t h, int64_t w,
               const float* x, const float* bias, float out_min, float out_max, float* y,
               bool parallel) {
  const int64_t cout = wt.cout, cin = wt.cin, kh = wt.kh, kw = wt.kw, cw = wt.cw;
  const int64_t kwd = wt.kwords(), taps = kh * kw, K = cin * taps;
  const int64_t oh = (h + 2 * cv.pad_h - kh) / cv.stride_h + 1;
  const int64_t ow = (w + 2 * cv.pad_w - kw) / cv.stride_w + 1;
  if (batch <= 0 || cout <= 0 || oh <= 0 || ow <= 0) return;
  const int64_t P = oh * ow, np = ceil_div(P, 8);
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  const int32_t pad_mult = cv.pad_value + 1;  // padded taps hold -1; add (pad_value + 1) * sum w

  // The binarized image sits in a plane with a zero-word border (bit 0 = -1, as padded taps are
  // in the im2col), so the im2col copies words without bounds checks.
  const int64_t hp = h + 2 * cv.pad_h, wp = w + 2 * cv.pad_w;
  // Output pixels whose window reaches the padding get (pad_value + 1) * sum of sign(W) over the
  // padded taps: each such pixel's padded-tap mask, found once per call.
  std::vector<std::pair<int64_t, uint64_t>> border;
  if (pad_mult != 0)
    for (int64_t p = 0; p < P; ++p) {
      const int64_t ih0 = (p / ow) * cv.stride_h - cv.pad_h, iw0 = (p % ow) * cv.stride_w - cv.pad_w;
      uint64_t mask = 0;
      for (int64_t a = 0; a < kh; ++a)
        for (int64_t b = 0; b < kw; ++b)
          if (ih0 + a < 0 || ih0 + a >= h || iw0 + b < 0 || iw0 + b >= w) mask |= uint64_t(1) << (a * kw + b);
      if (mask) border.emplace_back(p, mask);
    }

  // One image: binarized NHWC words, then panels [q0, q1) of its im2col, kernel and epilogue.
  auto image = [&](int64_t n, std::vector<uint64_t>& xb, std::vector<uint64_t>& col, int64_t q0,
                   int64_t q1, bool binarize) {
    const float* xn = x + n * cin * h * w;
    if (binarize) {
      std::fill(xb.begin(), xb.end(), 0);
      for (int64_t c = 0; c < cin; ++c) {
        const uint64_t bit = uint64_t(1) << (c % 64);
        for (int64_t r = 0; r < h; ++r) {
          const float* xr = xn + (c * h + r) * w;
          uint64_t* dst = xb.data() + ((r + cv.pad_h) * wp + cv.pad_w) * cw + c / 64;
          if (cw == 1)  // contiguous words: a select-or per pixel, which vectorizes
            for (int64_t s = 0; s < w; ++s) dst[s] |= xr[s] >= 0.f ? bit : 0;
          else
            for (int64_t s = 0; s < w; ++s) dst[s * cw] |= xr[s] >= 0.f ? bit : 0;
        }
      }
    }
    for (int64_t p = q0 * 8; p < q1 * 8; ++p) {
      uint64_t* dst = col.data() + (p / 8) * kwd * 8 + p % 8;
      if (p >= P) {
        for (int64_t t = 0; t < kwd; ++t) dst[t * 8] = 0;
        continue;
      }
      const uint64_t* src = xb.data() + ((p / ow) * cv.stride_h * wp + (p % ow) * cv.stride_w) * cw;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t c = 0; c < cw; ++c) dst[((i * kw + j) * cw + c) * 8] = src[(i * wp + j) * cw + c];
    }
    constexpr int64_t kRows = 64, kPanels = 8;
    int32_t pc[kRows * kPanels * 8];
    float* yn = y + n * cout * P;
    for (int64_t qb = q0; qb < q1; qb += kPanels) {
      const int64_t j0 = qb * 8, nc = std::min(P, std::min(q1, qb + kPanels) * 8) - j0;
      if (nc <= 0) break;
      const auto b0 = std::lower_bound(border.begin(), border.end(), std::make_pair(j0, uint64_t(0)));
      for (int64_t o0 = 0; o0 < cout; o0 += kRows) {
        const int64_t mc = std::min(kRows, cout - o0);
        uk.fn(size_t(mc), size_t(nc), size_t(kwd), wt.bits.data() + o0 * kwd, size_t(kwd),
              col.data() + qb * kwd * 8, pc, size_t(nc));
        for (int64_t i = 0; i < mc; ++i) {
          int32_t* pci = pc + i * nc;
          for (int64_t j = 0; j < nc; ++j) pci[j] = int32_t(K) - 2 * pci[j];   // popcounts -> dots
          const int32_t* ts = wt.tapsum.data() + (o0 + i) * taps;
          for (auto it = b0; it != border.end() && it->first < j0 + nc; ++it) {
            int32_t s = 0;
            for (uint64_t m = it->second; m; m &= m - 1) s += ts[__builtin_ctzll(m)];
            pci[it->first - j0] += pad_mult * s;
          }
          float* yo = yn + (o0 + i) * P + j0;
          for (int64_t j = 0; j < nc; ++j) yo[j] = epilogue(pci[j], wt.alpha[o0 + i], bias, o0 + i, out_min, out_max);
        }
      }
    }
  };

  const int threads = parallel ? get_num_threads() : 1;
  const bool big = cout * P * kwd >= (1 << 14);
  if (threads > 1 && big && batch >= threads) {
    parallel_chunks(batch, threads, [&](int, int64_t n0, int64_t n1) {
      std::vector<uint64_t> xb(size_t(hp * wp * cw)), col(size_t(np * kwd * 8));
      for (int64_t n = n0; n < n1; ++n) image(n, xb, col, 0, np, true);
    });
    return;
  }
  std::vector<uint64_t> xb(size_t(hp * wp * cw)), col(size_t(np * kwd * 8));
  for (int64_t n = 0; n < batch; ++n) {
    if (threads > 1 && big && np >= 2) {
      image(n, xb, col, 0, 0, true);  // binarize once; each chunk builds its own panels
      parallel_chunks(np, int(std::min<int64_t>(np, threads)),
                      [&](int, int64_t q0, int64_t q1) { image(n, xb, col, q0, q1, false); });
    } else {
      image(n, xb, col, 0, np, true);
    }
  }
}

}  // namespace eo
