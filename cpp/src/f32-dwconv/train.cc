#include "f32-dwconv/train.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <vector>

#include "common/parallel.h"
#include "common/scratch.h"
#include "f32-dwconv/dwconv.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// Channels per task: about 256K FMAs each, but at least 4 tasks per thread when there are
// channels enough.
int64_t task_channels(int64_t C, int64_t fmas_per_channel) {
  const int64_t want = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, fmas_per_channel));
  const int64_t spread = std::max<int64_t>(1, (C + 4 * get_num_threads() - 1) / (4 * get_num_threads()));
  return std::min(want, spread);
}

// The data gradient as a stride-1 conv with the flipped kernel over B: dy zero-dilated by the
// stride, D[a][b] = dy[a/sh][b/sw] where sh divides a and sw divides b (else 0), of size
// (H + 2ph - KH + 1) x (W + 2pw - KW + 1), cropped by ch / cw on each side when the forward's
// padding exceeds K - 1; the conv pads B by max(K - 1 - p, 0) and gives back H x W.
struct DxGeometry {
  Conv2dShape s{};  // the stride-1 conv over B (N, channels unused)
  int64_t ch = 0, cw = 0;
  bool in_place = false;  // B is dy itself (stride 1, p <= K - 1)
  DwconvPlan plan;

  static DxGeometry of(const Conv2dShape& f) {
    DxGeometry d;
    const int64_t qh = f.KH - 1 - f.ph, qw = f.KW - 1 - f.pw;
    d.ch = std::max<int64_t>(0, -qh);
    d.cw = std::max<int64_t>(0, -qw);
    d.s = f;
    d.s.H = f.H + 2 * f.ph - f.KH + 1 - 2 * d.ch;
    d.s.W = f.W + 2 * f.pw - f.KW + 1 - 2 * d.cw;
    d.s.sh = d.s.sw = 1;
    d.s.ph = std::max<int64_t>(0, qh);
    d.s.pw = std::max<int64_t>(0, qw);
    d.in_place = f.sh == 1 && f.sw == 1 && qh >= 0 && qw >= 0;
    d.plan = DwconvPlan::make(d.s);
    return d;
  }
  int64_t plane() const { return s.H * s.W; }

  // B of one channel from its dy plane (OH x OW of the forward f).
  void fill(const Conv2dShape& f, const float* dyc, float* b) const {
    const int64_t OH = f.OH(), OW = f.OW();
    std::memset(b, 0, static_cast<size_t>(plane()) * sizeof(float));
    for (int64_t oh = 0; oh < OH; ++oh) {
      const int64_t i = oh * f.sh - ch;
      if (i < 0 || i >= s.H) continue;
      for (int64_t ow = 0; ow < OW; ++ow) {
        const int64_t j = ow * f.sw - cw;
        if (j >= 0 && j < s.W) b[i * s.W + j] = dyc[oh * OW + ow];
      }
    }
  }
};

}  // namespace

void dwconv_train_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const F32DwconvUkernels& uk = f32_dwconv_ukernels(active_isa());
  const DwconvPlan g = DwconvPlan::make(s);
  const f32_dwconv_params p = g.params(F32_DWCONV_CLAMP, -kInf, kInf);
  const int64_t M = s.Cout / s.Cin, HW = s.H * s.W;
  const int64_t cb = task_channels(s.Cout, g.P * s.KH * s.KW), per_image = (s.Cout + cb - 1) / cb;
  parallel_for(s.N * per_image, 1, [&](int64_t t0, int64_t t1) {
    float* src = g.direct ? nullptr : scratch_f32(static_cast<size_t>(g.scratch_floats()), kScratchDwSrc);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t n = t / per_image, o0 = (t % per_image) * cb, o1 = std::min(s.Cout, o0 + cb);
      f32_dwconv_forward(g, uk, p, M, x + n * s.Cin * HW, w, b, y + n * s.Cout * g.P, o0, o1, src);
    }
  });
}

void dwconv_train_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                           float* dw, float* dx) {
  const F32DwconvUkernels& uk = f32_dwconv_ukernels(active_isa());
  const DwconvPlan g = DwconvPlan::make(s);
  const f32_dwconv_params p = g.params(F32_DWCONV_CLAMP, -kInf, kInf);
  const int64_t M = s.Cout / s.Cin, HW = s.H * s.W, P = g.P, KK = s.KH * s.KW;
  // Stride 2 (multiplier 1) from 16 columns up: the parity kernel (ukernels.h), whose vectors run
  // along pairs of output columns; narrower planes take the dilated form, whose flat vectors span
  // rows (at 4x4 the pair vectors would be mostly empty lanes).
  const bool parity = M == 1 && s.sh == 2 && s.sw == 2 && s.W >= 16 && s.KW <= 8;
  DxGeometry d;
  f32_dwconv_params pd{};
  std::vector<float> wf;  // the flipped kernel of the dilated form
  if (dx && !parity) {
    d = DxGeometry::of(s);
    pd = d.plan.params(F32_DWCONV_CLAMP, -kInf, kInf);
    wf.resize(static_cast<size_t>(s.Cout * KK));
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t t = 0; t < KK; ++t) wf[o * KK + t] = w[o * KK + KK - 1 - t];
  }
  const int64_t Bsz = d.plane(), bblock = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, Bsz));

  const f32_dwconv_dgrad2_params p2{static_cast<size_t>(s.H), static_cast<size_t>(s.W),
                                    static_cast<size_t>(s.OH()), static_cast<size_t>(s.OW()),
                                    static_cast<size_t>(s.KH), static_cast<size_t>(s.KW),
                                    static_cast<size_t>(s.ph), static_cast<size_t>(s.pw)};
  // dx of image n (dy, dx at the image) for input channels [c0, c1); tmp: one plane.
  auto data_grad = [&](const float* dyn, float* dxn, int64_t c0, int64_t c1, float* tmp) {
    if (parity)
      return uk.dgrad2(static_cast<size_t>(c1 - c0), dyn + c0 * P, static_cast<size_t>(P), w + c0 * KK,
                       dxn + c0 * HW, static_cast<size_t>(HW), &p2);
    float* dsrc = d.plan.direct ? nullptr
                                : scratch_f32(static_cast<size_t>(d.plan.scratch_floats()), kScratchDwDySrc);
    if (M == 1 && d.in_place) return f32_dwconv_forward(d.plan, uk, pd, 1, dyn, wf.data(), nullptr, dxn, c0, c1, dsrc);
    if (M == 1) {
      for (int64_t b0 = c0; b0 < c1; b0 += bblock) {
        const int64_t nb = std::min(bblock, c1 - b0);
        float* B = scratch_f32(static_cast<size_t>(nb * Bsz), kScratchDwDy);
        for (int64_t i = 0; i < nb; ++i) d.fill(s, dyn + (b0 + i) * P, B + i * Bsz);
        f32_dwconv_forward(d.plan, uk, pd, 1, B, wf.data() + b0 * KK, nullptr, dxn + b0 * HW, 0, nb, dsrc);
      }
      return;
    }
    // Channel multiplier: dx[c] = sum over its M outputs, each a one-channel conv.
    float* B = d.in_place ? nullptr : scratch_f32(static_cast<size_t>(Bsz), kScratchDwDy);
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t m = 0; m < M; ++m) {
        const int64_t o = c * M + m;
        const float* src = dyn + o * P;
        if (!d.in_place) {
          d.fill(s, src, B);
          src = B;
        }
        float* out = m == 0 ? dxn + c * HW : tmp;
        f32_dwconv_forward(d.plan, uk, pd, 1, src, wf.data() + o * KK, nullptr, out, 0, 1, dsrc);
        if (m > 0)
          for (int64_t i = 0; i < HW; ++i) dxn[c * HW + i] += tmp[i];
      }
  };

  // Each task walks the whole batch for its channels, so its reads are one run of cb planes per
  // image: runs of at least ~8 KB (while every thread still gets two tasks), or small planes (a 4x4
  // one is a cache line) leave the reads waiting on memory.
  const int64_t run = std::min<int64_t>((2048 + P * M - 1) / (P * M),
                                        std::max<int64_t>(1, s.Cin / (2 * get_num_threads())));
  const int64_t cb = std::max(task_channels(s.Cin, 2 * s.N * P * KK * M), run),
                tasks = (s.Cin + cb - 1) / cb;
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    float* src = g.direct ? nullptr : scratch_f32(static_cast<size_t>(g.scratch_floats()), kScratchDwSrc);
    // the lane sums of the task's taps over the whole batch, then one plane for the multiplier's dx
    float* lanes = scratch_f32(static_cast<size_t>(cb * M * KK * 16 + (M > 1 ? HW : 0)), kScratchDwPart);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t c0 = t * cb, c1 = std::min(s.Cin, c0 + cb), o0 = c0 * M, o1 = c1 * M;
      const int64_t nl = (o1 - o0) * KK;
      std::fill(lanes, lanes + nl * 16, 0.f);
      for (int64_t n = 0; n < s.N; ++n) {
        const float* dyn = dy + n * s.Cout * P;
        f32_dwconv_wgrad(g, uk, p, M, x + n * s.Cin * HW, dyn, o0, o1, src, lanes);
        if (dx) data_grad(dyn, dx + n * s.Cin * HW, c0, c1, lanes + cb * M * KK * 16);
      }
      for (int64_t i = 0; i < nl; ++i) {
        double sum = 0.0;
        for (int64_t l = 0; l < 16; ++l) sum += lanes[i * 16 + l];
        dw[o0 * KK + i] += static_cast<float>(sum);
      }
    }
  });
}

}  // namespace eo
