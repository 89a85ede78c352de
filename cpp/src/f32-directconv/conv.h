// The direct conv driver of the deploy runtime (f32-conv2d/layer.h): per image and group
// Y_g = W_g (*) X_g with the f32-directconv micro-kernel (ukernels.h), X read in place or from a
// copy on the tap layout of taps.h, taps outside the image masked off per vector, the epilogue in
// the kernel's store. Taps are shifts of the image (stride 1 with output rows as wide as the
// input: 1x1, 3x3/p1, 5x5/p2, ...) or of its phase planes (3x3/s2/p1, 1x1/s2, ...).
// At batch 1 on mobilenet_v2 that took its 1x1 layers from ~1.75 to ~1.1 ms (2 threads, shared
// machine); on resnet20's 3x3 layers it saves the phase-plane fill, the junk columns and the
// epilogue's round trip through a wide buffer of the implicit GEMM (resnet20 fp32 at 2 threads:
// 0.43 -> 0.35 ms, 1 thread: 0.55 -> 0.48 ms).
//
// Weights: per group, MR-row panels of dk.mr over the whole depth (packed-weights/, kc = Kg).
// Workspace: none (per-thread scratch only).
#pragma once
#include <vector>

#include "f32-conv2d/layer.h"
#include "f32-directconv/taps.h"
#include "isa/dispatch.h"

namespace eo::rt {

// True if the layer runs as a direct conv on ISAs that have the kernel: 1x1/s1 (taps left empty)
// or a tap table that fits (direct_taps).
bool f32_direct_conv_plan(const F32ConvLayer& L, DirectTaps* taps);

void f32_direct_conv_run(const F32ConvLayer& L, const DirectTaps& taps, const F32DirectConvUkernel& dk,
                         Isa isa, const std::vector<PackedWeights>& W, const F32ConvCall& c);

}  // namespace eo::rt
