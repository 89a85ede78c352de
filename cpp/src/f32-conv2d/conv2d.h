// f32 2-D convolution (cross-correlation, as PyTorch), forward and backward.
//
// x: (N, Cin, H, W)  w: (Cout, Cin/G, KH, KW)  b: (Cout,) or null  y: (N, Cout, OH, OW)
//   y[n, o, oh, ow] = b[o] + sum_{c, kh, kw} w[o, c, kh, kw] * x[n, g*Cg + c, oh*sh - ph + kh, ow*sw - pw + kw]
// with G groups, Cg = Cin/G input and Mg = Cout/G output channels per group, g = o / Mg, and x
// zero outside the image. OH = (H + 2 ph - KH) / sh + 1, OW likewise.
//
// Gradient policy (stated once for the whole family): parameter gradients dw, db are accumulated
// into (+=); the input gradient dx is assigned. Results are deterministic for a given thread count.
#pragma once
#include <cstdint>

namespace eo {

struct Conv2dShape {
  int64_t N, Cin, H, W;
  int64_t Cout, KH, KW;
  int64_t sh, sw, ph, pw;
  int64_t groups;
  int64_t OH() const { return (H + 2 * ph - KH) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - KW) / sw + 1; }
};

// Fast paths: im2col + packed GEMM (any shape), implicit GEMM (stride 1), GEMMs over the batch for
// small images (by kernel column when stride 1, else one im2col GEMM), the deploy runtime's direct
// conv (AVX-512: 3x3/s2 and 8x8 images, f32-directconv/conv.h), the f32-dwconv kernels for
// depthwise (Cin/G == 1, f32-dwconv/train.h).
void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y);
// dw (+=), db (+=, may be null), dx (=, may be null to skip the input gradient).
void conv2d_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                     float* dw, float* db, float* dx);

// db[o] += sum over n, oh, ow of dy[n, o, oh, ow] (double accumulation, parallel over channels).
void conv2d_bias_backward(int64_t N, int64_t C, int64_t P, const float* dy, float* db);

}  // namespace eo
