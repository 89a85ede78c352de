// Depthwise convolution for training (Cin/G == 1, channel multiplier M = Cout/Cin), a batch of
// images at a time, on the f32-dwconv micro-kernels and the DwconvPlan layout (dwconv.h):
//   forward      y = the plane kernel with bias and no activation
//   weight grad  dw[o][t] += sum over images of the wgrad kernel's plane sums, read through the
//                forward's own sources and masks; images are added in double, in order
//   data grad    dx = a stride-1 depthwise conv of dy with the kernel flipped (padding K-1-p).
//                With stride 1 and "same" padding (2p = K-1) it reads dy in place through a plan
//                of the forward's geometry; otherwise dy is first zero-dilated by the stride (and
//                padded or cropped) into a per-thread plane. A stride-2 layer then spends 3/4 of
//                its dx FMAs on zeros, which costs less than a second kernel family would.
// Parallel over blocks of input channels, each task running every image in order: each dw entry
// is summed by one thread in one fixed order, so results do not depend on the thread count.
// Shapes and the gradient policy are those of f32-conv2d/conv2d.h.
#pragma once
#include "f32-conv2d/conv2d.h"

namespace eo {

void dwconv_train_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
// dw (+=), dx (=, may be null).
void dwconv_train_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                           float* dw, float* dx);

}  // namespace eo
