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
