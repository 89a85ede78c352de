// f32 sparse x dense micro-kernels (SpMM) for 1x1 convolutions and linear layers in NCHW.
//
//   y[o][p] = clamp(bias[o] + sum_{k : W[o][k] != 0} W[o][k] * x[k][p], min, max)
//
// W (Cout x Cin) is stored as blocks of BR output channels x BC consecutive input channels
// (BR x BC = 1x1 unstructured, 4x1, 8x1; BC stays a parameter of the layout, always 1 today). Block row r covers output channels r*BR ..
// r*BR + BR - 1; its blocks are row_ptr[r] .. row_ptr[r+1] - 1, block b starts at input channel
// col[b] and holds BR*BC values at w[b*BR*BC + c*BR + i] (input channel col[b] + c, output
// channel r*BR + i). Output channels past `cout` in the last block row are padded with zero
// weights; they are computed but never stored.
//
// Loop order (XNNPACK's): a tile of pixels outer, output channels inner. For one tile the kernel
// reads a Cin x tile slice of x (Cin=256, 32 pixels: 32 KiB, L1) once per nonzero block that
// touches it, and the weights stream through once per tile. The pixel tile lives in registers:
// per nonzero, one broadcast of the weight and one FMA per vector of pixels; the kernels keep at
// least 8 independent accumulator chains to hide FMA latency (two sets of accumulators for
// 1-row blocks, summed at the end).
//
// x: input rows of x_stride floats (row k = input channel k), mc pixels used (any mc >= 1, tails
// are masked); y: output rows of y_stride floats. bias has nbr*BR entries (padded with zeros).
// Kernels trust their inputs. Plain C declarations only: included by ISA-specific files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct f32_spmm_params {
  float min, max;  // output clamp: fused ReLU (0, inf) / ReLU6 (0, 6) / none (-inf, inf)
};

typedef void (*f32_spmm_ukernel_fn)(size_t mc, size_t nbr, size_t cout, const float* x,
                                    size_t x_stride, const float* w, const int32_t* col,
                                    const int32_t* row_ptr, const float* bias, float* y,
                                    size_t y_stride, const struct f32_spmm_params* p);

#define EO_F32_SPMM_DECL(name)                                                                    \
  void name(size_t mc, size_t nbr, size_t cout, const float* x, size_t x_stride, const float* w, \
            const int32_t* col, const int32_t* row_ptr, const float* bias, float* y,            \
            size_t y_stride, const struct f32_spmm_params* p);

// <pixels per tile>x<block rows>x<block cols>
EO_F32_SPMM_DECL(f32_spmm_ukernel_8x1x1__scalar)
EO_F32_SPMM_DECL(f32_spmm_ukernel_8x4x1__scalar)
EO_F32_SPMM_DECL(f32_spmm_ukernel_8x8x1__scalar)
EO_F32_SPMM_DECL(f32_spmm_ukernel_32x1x1__avx2)
EO_F32_SPMM_DECL(f32_spmm_ukernel_16x4x1__avx2)
EO_F32_SPMM_DECL(f32_spmm_ukernel_8x8x1__avx2)
EO_F32_SPMM_DECL(f32_spmm_ukernel_64x1x1__avx512)
EO_F32_SPMM_DECL(f32_spmm_ukernel_32x4x1__avx512)
EO_F32_SPMM_DECL(f32_spmm_ukernel_32x8x1__avx512)

}  // namespace eo
