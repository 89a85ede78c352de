// One f32 conv2d layer of the deploy runtime, as its four drivers see it (runtime/ops_f32_conv.cc
// reads the layer, picks the driver and calls it):
//
//   x: (N, Cin, H, W)  w: (Cout, Cin/G, KH, KW)  residual: (N, Cout, OH, OW)  y: like residual
//   y = act(conv(x, w) * scale[o] + bias[o] (+ residual))   scale: s8 weights' per-channel scale
//
//   f32-directconv/conv.h    direct conv, taps as masked shifts of the image (AVX-512)
//   f32-conv2d/shifted_conv.h implicit GEMM over zero-bordered phase planes
//   f32-gemm/conv.h          im2col straight into packed panels + the packed GEMM
//   f32-dwconv/conv.h        depthwise (Cin/G == 1)
//
// The layer is immutable after load; a call brings the batch's tensors and the workspace.
#pragma once
#include <cstdint>

#include "f32-conv2d/conv2d.h"
#include "f32-epilogue/epilogue.h"
#include "packed-weights/packed_weights.h"

namespace eo::rt {

struct F32ConvCall {
  int64_t batch;
  const float* x;
  const float* residual;  // null without a residual input
  float* y;
  void* workspace;        // the driver's workspace_bytes(batch), 64-byte aligned
};

struct F32ConvLayer {
  Conv2dShape s;
  WDtype wdt;                 // stored weight dtype
  const float* bias;          // (Cout) or null
  const float* scale;         // (Cout), s8 weights only
  Act act;
  bool residual;
  int64_t G, Cg, Mg, Kg, P;   // groups; per group: in / out channels, depth Cg*KH*KW; OH*OW
  bool depthwise, pointwise;  // Cin/G == 1 (G > 1); 1x1/s1/p0

  F32ConvLayer(const Conv2dShape& s_, WDtype wdt_, const float* bias_, const float* scale_, Act act_,
               bool residual_)
      : s(s_), wdt(wdt_), bias(bias_), scale(scale_), act(act_), residual(residual_),
        G(s.groups), Cg(s.Cin / s.groups), Mg(s.Cout / s.groups), Kg(Cg * s.KH * s.KW),
        P(s.OH() * s.OW()), depthwise(Cg == 1 && s.groups > 1),
        pointwise(s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0) {}

  Epilogue epilogue(int64_t g) const {
    return {bias ? bias + g * Mg : nullptr, scale ? scale + g * Mg : nullptr, act, false};
  }
  // Pointers of image n, group g.
  const float* xg(const F32ConvCall& c, int64_t n, int64_t g) const {
    return c.x + (n * s.Cin + g * Cg) * s.H * s.W;
  }
  float* yg(const F32ConvCall& c, int64_t n, int64_t g) const {
    return c.y + (n * s.Cout + g * Mg) * P;
  }
  const float* rg(const F32ConvCall& c, int64_t n, int64_t g) const {
    return c.residual ? c.residual + (n * s.Cout + g * Mg) * P : nullptr;
  }
};

}  // namespace eo::rt
