// The implicit-GEMM ("shifted") conv driver of the deploy runtime (f32-conv2d/layer.h), any
// kernel, stride and padding whose phase-plane geometry fits (PhaseGeometry::of): no im2col
// matrix, the f32-conv2d shifted micro-kernel (ukernels.h; 8x48 on AVX-512) over zero-bordered
// phase planes of the image, whole depth per tile, epilogue on each finished block. At batch 1 on
// resnet20 that took the 3x3 layers from ~45 to ~70 GMAC/s per core (the 12-row GEMM tile also
// wasted a third of its FMAs on 16-channel layers).
//
// Geometry (PhaseGeometry), any stride. The image is copied once into
// zero-bordered *phase planes*: for stride (sh, sw), phase (pr, pc) holds the input rows
// ih = R*sh + pr - rtop*sh and columns iw = C*sw + pc - ctop*sw (zero outside the image), on a row
// pitch Ws. Tap (kh, kw) of output (oh, ow) reads input (sh*oh + kh - ph, sw*ow + kw - pw), i.e.
// phase ((kh-ph) mod sh, (kw-pw) mod sw) at row oh + floor((kh-ph)/sh) + rtop and column
// ow + floor((kw-pw)/sw) + ctop. Giving output (oh, ow) the wide index j = oh*Ws + ow, every tap
// reads the planes at j + off[tap]: row k = (c, kh, kw) of the im2col matrix is the phase planes
// shifted by off[k], which is what the shifted micro-kernel computes on (f32-conv2d/ukernels.h),
// with no im2col matrix and no stride in the inner loop. Stride 1 has one phase (the padded image
// of f32-conv2d's WideGeometry); a 3x3/s2 conv reads 4 quarter-size phases with 9 real taps (no
// zero taps, unlike a space-to-depth rewrite); a 1x1/s2 conv one subsampled phase.
// Wide columns with ow >= OW are junk and dropped by the epilogue. Ws is the smallest pitch for
// which every valid read lands in its own row, or wraps onto a zero of the next row (3x3/p1 at
// stride 1: the right border of a row doubles as the left border of the next, Ws = W + 1).
// The fill of the planes is a real share of the layer (up to a third for 3x3/s2), hence the
// hand-vectorized row copies in shifted_conv.cc.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

#include "f32-conv2d/layer.h"
#include "isa/dispatch.h"

namespace eo::rt {

// One of four layouts that turn conv taps into shifts of a copied image. This one zero-borders
// the planes on a padded pitch Ws, so the shifted kernel needs no masks and may read across row
// ends; the cost is a few junk columns per row, dropped by the epilogue from a wide buffer. Unlike
// WideGeometry (f32-conv2d/im2col.h, training, stride 1 only, pitch by formula and an HWC twin
// for the weight gradient) it takes any stride and fills row ranges per thread part. DirectTaps
// (f32-directconv/taps.h) and DwconvPlan (f32-dwconv/dwconv.h) keep the output pitch OW with no
// borders and mask padding taps per 16-lane vector instead, because their kernels store y
// directly (no junk columns to drop).
struct PhaseGeometry {
  int64_t C = 0, H = 0, W = 0, sh = 1, sw = 1;
  int64_t nr_ph = 1, nc_ph = 1;      // phase rows / columns stored
  int64_t rph[64] = {}, cph[64] = {};  // residue -> phase index (-1: not read)
  int64_t rtop = 0, ctop = 0, Hs = 0, Ws = 0, plane = 0;
  int64_t dr_min = 0, dr_max = 0;    // output row oh reads plane rows oh + rtop + [dr_min, dr_max]
  int64_t col_lo[64] = {}, col_hi[64] = {};  // column phase pc: plane columns [lo, hi) are inside the image
  int64_t OH = 0, OW = 0, P = 0;     // P = OH * Ws wide outputs
  int64_t size = 0;                  // floats of the copy, slack for the last panel's reads included
  std::vector<int32_t> off;          // per k = (c, kh, kw)

  // False when the geometry does not fit or does not pay (see of's last line).
  static bool of(const Conv2dShape& s, int64_t C, PhaseGeometry* gp);
  // A read past the row end (column cc >= Ws) is only allowed where the wanted input column is
  // padding and the column it wraps to (next row) holds padding too.
  static bool pitch_ok(const Conv2dShape& s, const PhaseGeometry& g, int64_t ws);

  // xq (size floats) = the phase planes of x (C, H, W), zero padding and slack included.
  void fill(const float* x, float* xq) const { fill_rows(x, xq, 0, Hs); }

  // Plane rows [R0, R1) of every channel and phase; the slack after the planes with the last rows.
  void fill_rows(const float* x, float* xq, int64_t R0, int64_t R1) const;
};

// True (and pg set) if the layer runs this way: not depthwise, not 1x1/s1, a geometry that fits.
bool f32_shifted_conv_plan(const F32ConvLayer& L, PhaseGeometry* pg);

// Weights: per group, MR-row panels of the shifted kernel's mr over the whole depth (kc = Kg).
// Workspace: one part's phase planes, wide output and widened weights per part of a split image.
size_t f32_shifted_conv_workspace_bytes(const F32ConvLayer& L, const PhaseGeometry& pg);
void f32_shifted_conv_run(const F32ConvLayer& L, const PhaseGeometry& pg, Isa isa,
                          const std::vector<PackedWeights>& W, const F32ConvCall& c);

}  // namespace eo::rt
