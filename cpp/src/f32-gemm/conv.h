// The packed-GEMM conv driver of the deploy runtime (f32-conv2d/layer.h), for any conv the other
// drivers do not take. Lowering (as f32-conv2d/conv2d.cc): per image and group,
// Y_g (Mg x P) = W_g (Mg x Kg) col_g (Kg x P), with col built by im2col straight into the
// micro-kernel's packed-B layout (f32-conv2d/im2col.h; a 1x1/s1/p0 conv packs x_g itself), then
// the epilogue on each finished block.
//
// Threads: with at least as many images as threads, images run in parallel and each is computed
// serially from per-thread scratch; with fewer, each image is split: col is built in parallel
// column chunks into the call's workspace, then (row block x column chunk) tasks run.
//
// Weights: per group, MR-row panels of the GEMM's mr in depth blocks of packed_kc (packed-weights/).
#pragma once
#include <cstddef>
#include <vector>

#include "f32-conv2d/layer.h"
#include "isa/dispatch.h"

namespace eo::rt {

// Workspace of the split-image mode (padded planes + one group's packed col).
size_t f32_gemm_conv_workspace_bytes(const F32ConvLayer& cl);
void f32_gemm_conv_run(const F32ConvLayer& cl, Isa isa, const std::vector<PackedWeights>& W,
                       const F32ConvCall& call);

}  // namespace eo::rt
