#include "f32-directconv/conv.h"

#include <algorithm>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"

namespace eo::rt {
namespace {

// Tasks are (image, group, row panels, column tiles) blocks. Batch 1 is split by columns where the
// input outweighs the weights (3x3 layers on 32x32 / 16x16 planes, 1x1 layers whose plane is at
// least as large as Cout: each thread reads all of the small W, half of X and a row of halo), by
// row panels otherwise (8x8 and 4x4 planes, wide layers: each thread streams half of the weights,
// which is what those layers wait on). Layers under kSerialMacs run on the calling thread: a
// parallel loop costs more than it saves there.
constexpr int64_t kSerialMacs = 50000;
bool split_columns(const F32ConvLayer& L, const DirectTaps& taps) {
  return taps.taps ? L.Mg * L.Kg <= 2 * L.Cg * L.s.H * L.s.W : L.P >= L.Mg;
}

// Row panels [p0, p1) x column tiles [q0, q1) (tile q: vectors [nv*q/Nt, nv*(q+1)/Nt)) of one
// image and group. Panels go in blocks whose f32 weights fit ~32 KB (L1): stored-dtype weights
// are widened a block at a time into per-thread scratch, and a block's panels are reused across
// every column tile while in L1 (K = 24: all panels at once; K = 960: one panel at a time).
// Strided convs first copy the rows of X their outputs read into phase planes in per-thread
// scratch (DirectTaps::fill). So do stride-1 KxK convs when split (the image is shared with
// other threads' blocks at batch 1): the kernel reading X in place, where the previous layer's
// parts wrote it, ran each tile ~30 % slower at 2 threads (16x16 planes) while the copy costs a
// tenth of that. 1x1/s1 convs read in place at full speed.
void direct_block(const F32ConvLayer& L, const DirectTaps& taps, const F32DirectConvUkernel& dk, Isa isa,
                  const PackedWeights& Wg, const float* x, float* y, const float* res, const Epilogue& ep,
                  int64_t p0, int64_t p1, int64_t q0, int64_t q1, int64_t nv, int64_t Nt, bool split) {
  if (p0 >= p1 || q0 >= q1) return;
  const int64_t Mg = L.Mg, Kg = L.Kg, Cg = L.Cg, P = L.P;
  const int64_t mr = dk.mr, step = std::max<int64_t>(1, 8192 / (mr * Kg));
  const size_t ntaps = taps.taps ? static_cast<size_t>(taps.taps) : 1;
  const int32_t* toff = taps.taps ? taps.off.data() : nullptr;
  const int64_t c0 = 16 * (nv * q0 / Nt), c1 = std::min(P, 16 * (nv * q1 / Nt));
  int64_t ldx = L.s.H * L.s.W;
  if (taps.taps && (split || taps.strided())) {
    float* xp = scratch_f32(static_cast<size_t>(Cg * taps.ldx), kScratchRtPad);
    taps.fill(x, Cg, c0 / taps.OW, ceil_div(c1, taps.OW), xp);
    x = xp;
    ldx = taps.ldx;
  }
  float lo, hi;
  const bool clamp = act_is_clamp(ep.act, &lo, &hi);
  if (!clamp) act_is_clamp(Act::none, &lo, &hi);
  float* abuf = Wg.dtype == WDtype::f32
                    ? nullptr
                    : scratch_f32(weight_panels_scratch(Wg, p0, std::min(p1, p0 + step)), kScratchRtA);
  for (int64_t b0 = p0; b0 < p1; b0 += step) {
    const int64_t b1 = std::min(p1, b0 + step);
    const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t j0 = 16 * (nv * q / Nt), j1 = std::min(P, 16 * (nv * (q + 1) / Nt));
      const uint16_t* tmask = taps.taps ? taps.mask.data() + (j0 / 16) * taps.taps : nullptr;
      for (int64_t p = b0; p < b1; ++p) {
        const int64_t r0 = p * mr, o = r0 * P + j0;
        dk.fn(static_cast<size_t>(std::min(mr, Mg - r0)), static_cast<size_t>(j1 - j0),
              static_cast<size_t>(Cg), ntaps, A.at(0, Kg, p), x + j0, static_cast<size_t>(ldx),
              toff, tmask, ep.scale ? ep.scale + r0 : nullptr, ep.bias ? ep.bias + r0 : nullptr,
              res ? res + o : nullptr, y + o, static_cast<size_t>(P), lo, hi);
      }
    }
    if (!clamp) {  // the kernel stored (acc * scale + bias) (+ res): now the activation
      const Epilogue act_only{nullptr, nullptr, ep.act, false};
      apply_epilogue(act_only, y, nullptr, P, b0 * mr, std::min(b1 * mr, Mg), c0, c1);
    }
  }
}

}  // namespace

bool f32_direct_conv_plan(const F32ConvLayer& L, DirectTaps* taps) {
  const Conv2dShape& s = L.s;
  return !L.depthwise && (L.pointwise || direct_taps(s.H, s.W, s.KH, s.KW, s.sh, s.sw, s.ph, s.pw, taps));
}

void f32_direct_conv_run(const F32ConvLayer& L, const DirectTaps& taps, const F32DirectConvUkernel& dk,
                         Isa isa, const std::vector<PackedWeights>& W, const F32ConvCall& c) {
  const int64_t Mg = L.Mg, Kg = L.Kg, P = L.P, G = L.G;
  const int64_t N = c.batch, images = N * G, mr = dk.mr;
  const int64_t Mp = ceil_div(Mg, mr);
  // Column tiles of at most nr columns, in whole vectors of 16, balanced (64 -> 32 + 32).
  const int64_t nv = ceil_div(P, 16), Nt = ceil_div(nv, dk.nr / 16);
  const int threads = get_num_threads();
  int64_t nbr = 1, nbc = 1;
  if (threads > 1 && images < threads && Mg * Kg * P * images >= kSerialMacs) {
    const int64_t parts = ceil_div(threads, images);
    if (split_columns(L, taps) && Nt >= parts) nbc = parts;
    else nbr = std::min(Mp, parts);
  }
  const int64_t per_image = nbr * nbc, tasks = images * per_image;
  auto task = [&](int64_t t) {
    const int64_t ig = t / per_image, b = t % per_image, br = b / nbc, bc = b % nbc;
    const int64_t n = ig / G, g = ig % G;
    direct_block(L, taps, dk, isa, W[g], L.xg(c, n, g), L.yg(c, n, g), L.rg(c, n, g), L.epilogue(g),
                 Mp * br / nbr, Mp * (br + 1) / nbr, Nt * bc / nbc, Nt * (bc + 1) / nbc, nv, Nt,
                 per_image > 1);
  };
  if (tasks == 1 || threads == 1 || Mg * Kg * P * N < kSerialMacs) {
    for (int64_t t = 0; t < tasks; ++t) task(t);
    return;
  }
  parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) task(t);
  });
}

}  // namespace eo::rt
