// The fused output pass of conv2d / linear:  y = act(acc * scale + bias (+ residual)).
// scale (s8 weights: the per-output-channel weight scale) and bias are per row of the block
// (conv: rows are output channels) or per column (linear: columns are output features); either
// may be null. residual has the layout of y. Elementwise, so any blocking gives the same result.
#pragma once
#include <cstdint>

#include "runtime/op.h"

namespace eo::rt {

struct Epilogue {
  const float* bias;
  const float* scale;
  Act act;
  bool per_col;
};

// Rows [r0, r1), columns [c0, c1) of y (row stride ld); res the same (or null).
void apply_epilogue(const Epilogue& e, float* y, const float* res, int64_t ld, int64_t r0, int64_t r1,
                    int64_t c0, int64_t c1);

// From an accumulator tile: y[r*ldy + j] = act(acc[r*lda + j] * scale[r0 + r] + bias[r0 + r]
// (+ res[r*ldy + j])) for r < rows, j < n (per-row parameters only).
void epilogue_tile(const Epilogue& e, const float* acc, int64_t lda, float* y, const float* res,
                   int64_t ldy, int64_t r0, int64_t rows, int64_t n);

// true (and the bounds) if act(v) = min(max(v, lo), hi): none, relu, relu6.
bool act_is_clamp(Act a, float* lo, float* hi);

// In-place activation of n values (the standalone activation op uses the f32-activation kernels;
// this is for epilogues of other ops, e.g. add).
void activate_inplace(Act act, float* y, int64_t n);

}  // namespace eo::rt
