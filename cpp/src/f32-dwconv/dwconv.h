// Depthwise convolution forward for inference (Cin/G == 1, channel multiplier M = Cout/Cin):
//   x: (Cin, H, W)  w: (Cout, KH*KW)  bias: (Cout) or null  y: (Cout, OH, OW)   (one image)
//   y[o][oh][ow] = act( sum_{kh,kw} w[o][kh*KW+kw] * x[o/M][sh*oh+kh-ph][sw*ow+kw-pw] + bias[o] )
// with zero padding. No reductions across threads (each output plane is one task's), so the
// result does not depend on the thread count.
//
// Layout trick (see ukernels.h): the micro-kernel reads every tap as a constant shift of the flat
// output index. A DwconvPlan, built once per shape, says how the input is presented to it:
//  - direct: stride 1 and OW == W (3x3 p1, 5x5 p2): the input plane itself, tap shift
//    (kh-ph)*W + (kw-pw); padding is masked, nothing is copied.
//  - source planes of pitch OW, otherwise. Rows are split by residue r = ih mod sh (row R holds
//    ih = sh*R + r, so tap kh reads row oh + floor((kh-ph)/sh) of residue (kh-ph) mod sh).
//    Columns are split by phase c = iw mod sw when every real input column then lands inside the
//    pitch (stride 2 with 3x3 p1 / 5x5 p2: four quarter planes, no more floats than x itself);
//    else each kw gets its own column-resampled copy (column C holds iw = sw*C + kw - pw; e.g.
//    padding 0). Copies are per channel into a small per-thread buffer.
// Masks (per 16 outputs and tap) clear every lane whose input pixel is padding.
#pragma once
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "f32-conv2d/conv2d.h"
#include "f32-dwconv/ukernels.h"
#include "isa/dispatch.h"

namespace eo {

// One of four layouts that turn conv taps into shifts (the others: PhaseGeometry in
// f32-conv2d/shifted_conv.h, WideGeometry in f32-conv2d/im2col.h, DirectTaps in
// f32-directconv/taps.h). Like DirectTaps it keeps the output pitch OW with masked padding taps
// and no junk columns; it differs in being per channel (a depthwise tap reads one plane, so
// sources are built a few channels at a time into L1-sized scratch, not for the whole image) and
// in its per-kw column-resampled fallback, which takes the shapes DirectTaps refuses (e.g.
// stride 2 with padding 0). Used by the runtime's depthwise driver (f32-dwconv/conv.h).
struct DwconvPlan {
  int64_t H = 0, W = 0, KH = 0, KW = 0, sh = 1, sw = 1, ph = 0, pw = 0, OH = 0, OW = 0, P = 0;
  bool direct = false;
  bool phases = false;           // column sources are stride phases (else one per kw)
  int64_t nr = 1, nc = 1;        // row residues x column sources
  int64_t rows = 0, plane = 0;   // rows per source plane (pitch OW), floats per plane
  std::vector<int64_t> col0;     // column C of source j reads iw = sw*C + col0[j]
  std::vector<ptrdiff_t> off;    // per tap (kh, kw)
  std::vector<uint16_t> mask;    // ceil(P/16) x taps

  // Shape of one image: H, W, KH, KW, strides, padding of s (channels and groups unused).
  static DwconvPlan make(const Conv2dShape& s);
  // Floats of one channel's source planes (0 when direct).
  int64_t source_floats() const { return direct ? 0 : nr * nc * plane; }
  // Channels whose sources are built before one kernel call (~16 KB: they stay in L1), and the scratch they need.
  int64_t block() const { return direct ? 1 : std::max<int64_t>(1, std::min<int64_t>(64, 4096 / source_floats())); }
  int64_t scratch_floats() const { return source_floats() * block(); }
  // src (scratch_floats) = the source planes of n <= block() consecutive input channels x (n, H, W),
  // plane-major: source plane q of channel i at q * block() * plane + i * plane, so that one split
  // covers a row residue of the whole block. Entries no tap reads unmasked are left as they are.
  void fill_sources(const float* x, int64_t n, float* src, f32_dwconv_split2_fn split2) const;
  f32_dwconv_params params(int act, float lo, float hi) const {
    return {static_cast<size_t>(P), off.size(), off.data(), mask.data(), act, lo, hi};
  }
};

// Output channels [o0, o1) of one image (x, y point at the image). scratch: scratch_floats().
// mult = Cout / Cin. p.act and p.lo/hi set the activation.
void f32_dwconv_forward(const DwconvPlan& plan, const F32DwconvUkernels& uk, const f32_dwconv_params& p,
                        int64_t mult, const float* x, const float* w, const float* bias, float* y,
                        int64_t o0, int64_t o1, float* scratch);

// The weight gradient's per-image part (training), added to 16 lane sums per tap:
// lanes[((o - o0) * taps + t) * 16 + i] += the products of output channel o's tap t at the output
// pixels i mod 16, for output channels [o0, o1) of one image (x, dy point at the image), read
// through the same sources and masks as the forward; dw is the sum of the 16 lanes.
// scratch: scratch_floats().
void f32_dwconv_wgrad(const DwconvPlan& plan, const F32DwconvUkernels& uk, const f32_dwconv_params& p,
                      int64_t mult, const float* x, const float* dy, int64_t o0, int64_t o1,
                      float* scratch, float* lanes);

}  // namespace eo
