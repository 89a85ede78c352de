// The depthwise conv driver of the deploy runtime (f32-conv2d/layer.h; Cin/G == 1): the plan and
// f32 weights (s8 scales folded in) are built once; whole (image, channel) planes go through the
// f32-dwconv kernels (dwconv.h), 16 outputs per vector with masked taps instead of a padded copy,
// the micro-kernel applying bias and clamp / hardswish in the same pass; a residual then goes
// through the ordinary epilogue (act((acc + bias) + residual)). Chunks of (image, channel) planes
// over the threads, fewer when the layer is too small to pay for a parallel loop.
#pragma once
#include <vector>

#include "f32-conv2d/layer.h"
#include "f32-dwconv/dwconv.h"

namespace eo::rt {

struct F32DepthwiseConv {
  DwconvPlan plan;
  std::vector<float> w;  // (Cout, KH*KW) f32, s8 scales folded in
};

// w: the stored weights (Cout, 1, KH, KW) in cl.wdt.
F32DepthwiseConv f32_depthwise_conv_create(const F32ConvLayer& cl, const void* w);
// Workspace: none (per-thread scratch only).
void f32_depthwise_conv_run(const F32ConvLayer& cl, const F32DepthwiseConv& dw, const F32ConvCall& call);

}  // namespace eo::rt
