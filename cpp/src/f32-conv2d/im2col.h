// Lowering a convolution to GEMM: the patch matrices of one image, written straight into the
// packed-panel layout the GEMM micro-kernel reads (f32-gemm/gemm.h), so each patch element is
// written once instead of being stored by im2col and copied again by the packer.
//
// For one group of one image (Cg channels, P = OH*OW output pixels, Kg = Cg*KH*KW):
//   col   (Kg x P): col[(c, kh, kw), (oh, ow)] = x[c, oh*sh - ph + kh, ow*sw - pw + kw]  (0 outside)
//   colT  (P x Kg'): the same values transposed, columns ordered (kh, kw, c) so that each pixel's
//                    row is built from contiguous channel vectors of an HWC copy of the image.
// Forward and the data gradient use col (its rows are contiguous along ow, cheap to build from
// NCHW); the weight gradient dW += dY colT uses colT so that no operand needs a transposing pack.
#pragma once
#include <cstdint>

#include "f32-conv2d/conv2d.h"
#include "f32-gemm/gemm.h"

namespace eo {

// Output columns ow whose input column ow*stride - pad + k lies in [0, W): [lo, hi).
inline void valid_range(int64_t OW, int64_t W, int64_t stride, int64_t pad, int64_t k,
                        int64_t* lo, int64_t* hi) {
  const int64_t a = pad - k, b = W - 1 + pad - k;  // stride*ow in [a, b]
  *lo = a <= 0 ? 0 : (a + stride - 1) / stride;
  *hi = b < 0 ? 0 : (b / stride + 1 < OW ? b / stride + 1 : OW);
  if (*lo > *hi) *lo = *hi;
}

// Geometry of the implicit-GEMM path of stride-1 convolutions (no im2col matrix at all). Each
// channel plane is copied with a zero border onto a row pitch Wq = W + max(pw, KW-1-pw): the right
// border of a row doubles as the left border of the next, so one pad column per row suffices for
// a 3x3/pad-1 conv. Input (ih, iw) sits at (ih + ph) * Wq + iw + pw of its plane (Hq = H + 2ph
// rows), and output pixel (oh, ow) is given the "wide" index oh*Wq + ow, ow < Wq: tap (kh, kw) of
// every output pixel then reads the plane at wide index + kh*Wq + kw, so row (c, kh, kw) of the
// im2col matrix is the plane shifted by c*plane + kh*Wq + kw. Wide columns with ow >= OW are junk
// and dropped. Valid for stride 1, ph < KH and pw < KW.
// One of four layouts that turn conv taps into shifts; used by training (conv2d.cc: forward and
// data gradient, and the HWC twin hwc_planes_wide for the weight gradient). The runtime's
// PhaseGeometry (f32-conv2d/shifted_conv.h) is its generalization to any stride, with the
// smallest pitch that works (can be narrower than Wq, e.g. padding 0) and row-range fills per
// thread; moving training onto it would change training's pitch and buffers, so both stay. See
// DirectTaps and DwconvPlan for the unpadded, masked layouts.
struct WideGeometry {
  int64_t Hq, Wq, plane;  // padded rows, row pitch, plane size (Hq * Wq)
  int64_t OH, OW, P;      // output rows, columns, wide output size OH * Wq
  static WideGeometry of(int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ph, int64_t pw) {
    WideGeometry g;
    g.Hq = H + 2 * ph;
    g.Wq = W + (pw > KW - 1 - pw ? pw : KW - 1 - pw);
    g.plane = g.Hq * g.Wq;
    g.OH = H + 2 * ph - KH + 1;
    g.OW = W + 2 * pw - KW + 1;
    g.P = g.OH * g.Wq;
    return g;
  }
};

// xq (C planes of g, then `slack` zeros) = x (C, H, W) with the zero border of WideGeometry.
void pad_planes_wide(const WideGeometry& g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                     const float* x, int64_t C, int64_t slack, float* xq);

// The same image in HWC order with the channels padded to Cp >= C (zeros):
//   xh[((ih + ph) * Wq + iw + pw) * Cp + c] = x[c, ih, iw], zero elsewhere, plus `slack` zero pixels.
void hwc_planes_wide(const WideGeometry& g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                     const float* x, int64_t C, int64_t Cp, int64_t slack, float* xh);

// xp (C, H + 2ph, W + 2pw) = x (C, H, W) with a zero border: im2col then needs no bounds checks.
void pad_planes(const Conv2dShape& s, const float* x, int64_t C, float* xp);

// Columns [j0, j0 + L.N) of col of the padded channels xp[0..Cg) (from pad_planes) into L
// (K = Kg). Building col a panel at a time keeps it in L1 for the GEMM that reads it next.
void im2col_packed(const Conv2dShape& s, const float* xp, int64_t Cg, int64_t j0, const PackedB& L,
                   float* pb);

// xh[p*C + c] = x[c*HW + p]: one image from CHW to HWC.
void chw_to_hwc(int64_t C, int64_t HW, const float* x, float* xh);

// Rows [p0, p0 + L.K) of colT of channels xh[0..Cg) of an HWC image with pixel stride ldc into L
// (N = Kg). The weight gradient builds colT a few dozen pixels at a time so it stays in L1.
void im2row_packed(const Conv2dShape& s, const float* xh, int64_t ldc, int64_t Cg, int64_t p0,
                   const PackedB& L, float* pb);

// dxg[c, ih, iw] += sum of the col entries that read it: the adjoint of im2col.
void col2im_add(const Conv2dShape& s, const float* col, int64_t Cg, float* dxg);

}  // namespace eo
