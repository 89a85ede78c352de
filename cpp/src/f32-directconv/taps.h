// The tap table and input layout of a direct conv (f32-directconv/ukernels.h).
//
// Stride 1 with output rows as wide as the input (KW == 2 pw + 1): the kernel reads the NCHW image
// itself and tap (kh, kw) of output pixel j = oh*W + ow is input pixel j + (kh - ph)*W + (kw - pw).
// Stride > 1: the image is first copied into phase planes (fill): phase (pr, pc) holds input rows
// sh*R + pr and columns sw*C + pc at [R * OW + C], on the output's row pitch, so a tap is again a
// shift: output (oh, ow) reads phase ((kh - ph) mod sh, (kw - pw) mod sw) at row oh + floor((kh -
// ph) / sh) and column ow + floor((kw - pw) / sw). That needs every column a valid tap reads to lie
// below OW (true for "same"-style padding: 3x3/s2/p1, 1x1/s2/p0, 5x5/s2/p2, ...). Taps outside the
// image are masked per 16-column output vector either way.
#pragma once
#include <cstdint>
#include <vector>

namespace eo {

// One of four layouts that turn conv taps into shifts (the others: PhaseGeometry in
// f32-conv2d/shifted_conv.h, WideGeometry in f32-conv2d/im2col.h, DwconvPlan in
// f32-dwconv/dwconv.h). This one has no zero border: planes on the output pitch OW (or the image
// itself), padding taps masked per 16-column vector, so the direct kernel (runtime,
// f32-directconv/conv.h) writes y in place with its epilogue and computes no junk columns; the
// price is that it only fits "same"-style padding (see above). DwconvPlan is the same idea per
// channel, with a per-kw fallback for the shapes this one refuses.
struct DirectTaps {
  int64_t taps = 0;                  // KH * KW
  std::vector<int32_t> off;          // per tap: shift in the layout from output pixel j
  int64_t min_off = 0, max_off = 0;  // of off
  std::vector<uint16_t> mask;        // per 16-column output vector u, per tap: [u * taps + t]
  // Layout: per channel ldx floats; phase p at p * plane (stride 1: one phase, the image).
  int64_t H = 0, W = 0, sh = 1, sw = 1, OH = 0, OW = 0, plane = 0, ldx = 0;
  int64_t dr_min = 0, dr_max = 0;    // output row oh reads layout rows oh + [dr_min, dr_max]
  std::vector<int32_t> phase;        // [pr * sw + pc]: phase index, -1 where no tap reads
  bool strided() const { return sh > 1 || sw > 1; }
  // The layout rows that output rows [oh0, oh1) read, of every channel: x (C, H, W) -> dst
  // (C * ldx floats). Other rows of dst are left as they are (no tap of those outputs reads them).
  void fill(const float* x, int64_t C, int64_t oh0, int64_t oh1, float* dst) const;
};

// The table of a KH x KW conv with stride (sh, sw) and padding (ph, pw) on H x W planes. False,
// table untouched, when the geometry does not fit (see above) or the table would be larger than
// max_entries.
bool direct_taps(int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t ph,
                 int64_t pw, DirectTaps* out, int64_t max_entries = int64_t(1) << 20);

}  // namespace eo
