// int8 convolution, NHWC u8 activations, per-output-channel symmetric s8 weights:
//
//   acc[n,oh,ow,co] = bias[co] + sum_{kh,kw,ci} (x[n, oh*sh-ph+kh, ow*sw-pw+kw, g*Cig+ci] - in_zp)
//                                               * w[co, kh, kw, ci]            (co in group g)
//   y0 = qs8_requantize(acc, scale[co], out_zp, qmin, qmax)   (requantize.h)
//
// Padding reads as in_zp (real 0), so it adds exactly 0. Then an optional epilogue, applied to each
// block of output rows right after it is computed (while it is in cache):
//   residual: y1 = qs8 add(y0, r) (qs8-elementwise/ukernels.h), r has the output's shape
//   lut:      y2 = table[y1]       (hardswish, hardsigmoid, sigmoid... as a 256-entry table)
// A fused ReLU/ReLU6 is the final clamp [qmin, qmax] of the last requantizing step.
//
// Paths: groups == 1 (and any other non-depthwise grouping, one GEMM per group) run the qs8 GEMM
// micro-kernels on A = im2col(x) (rows = output pixels, K = KH*KW*Cin/groups, NHWC tap order
// matching OHWI weights); a 1x1 stride-1 unpadded conv uses x itself as A (no copy). On the VNNI
// path any other one-group conv skips the im2col (Cin padded to a multiple of 4 where needed): the implicit-GEMM kernel reads each
// tap straight from the input (with its padding materialized once per call, a copy of the input
// instead of one KH*KW times its size). Depthwise
// (groups == Cin == Cout) runs the direct kernels of ukernels.h. The GEMM path is
// qs8_gemm_default_path(K) (AMX only for K >= 64), except that one-group convs with taps of at
// most 16 bytes keep VNNI's implicit GEMM on AMX CPUs (conv2d.cc conv_path); read at run time so
// set_isa applies.
//
// Threads: output rows are split into contiguous chunks of whole 32-row blocks (every GEMM tile
// divides 32), each chunk doing im2col -> GEMM -> epilogue on its own rows, so no chunk waits on
// another; when there are too few rows (small feature maps, linear layers) the output channels are
// split instead. Small layers stay on the calling thread. Results never depend on the split.
//
// A Qs8Conv2d is immutable after creation; run() is const and takes its im2col workspace from the
// caller (qs8_conv2d_workspace_bytes, independent of the thread count), so concurrent runs of one
// object are safe.
#pragma once
#include <array>
#include <cstdint>
#include <vector>

#include "isa/dispatch.h"
#include "qs8-gemm/gemm.h"

namespace eo {

struct Qs8ConvShape {
  int64_t cin = 0, cout = 0, kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, groups = 1;
  int64_t out_h(int64_t h) const { return (h + 2 * ph - kh) / sh + 1; }
  int64_t out_w(int64_t w) const { return (w + 2 * pw - kw) / sw + 1; }
  bool depthwise() const { return groups > 1 && groups == cin && cout == cin; }
};

struct Qs8ConvEpilogue {
  bool residual = false;
  qs8_add_params add{};  // a = the conv's requantized output, b = the residual input
  bool has_lut = false;
  std::array<uint8_t, 256> lut{};
};

struct Qs8Conv2d {
  Qs8ConvShape s;
  int32_t in_zp = 0, out_zp = 0, qmin = 0, qmax = 255;
  std::vector<int32_t> bias;  // cout
  Qs8ConvEpilogue epi;
  int path_override = -1;  // >= 0: force this Qs8Path (tests, benchmarks); -1: conv2d.cc conv_path
  int op_isa_override = -1;  // >= 0: force this Isa for the depthwise/elementwise kernels (tests)

  // Derived at creation.
  // Channels per tap in the packed K order: cin / groups, rounded up to 4 for a one-group conv
  // (the padding channels' weights are 0) so every tap is whole 4-byte k-groups and the implicit
  // GEMM covers stems (Cin = 3) too; a 1x1 unpadded stride-1 conv reads x as it is (kc = cin).
  int64_t kc = 0;
  std::vector<Qs8PackedB> packed;           // GEMM path: one per group
  std::vector<int32_t> adj;                  // GEMM path: per group, padded to packed npad
  std::vector<float> scale_p;                // the same
  std::vector<int32_t> dw_w;                 // depthwise: taps x cstride
  std::vector<int32_t> dw_adj;               // depthwise: cstride (adj: ukernels.h)
  std::vector<float> dw_scale;               // the same
  std::vector<int8_t> dw_w8;                 // depthwise, the VNNI kernel's layout (ukernels.h)
  std::vector<int32_t> dw_adj_p;
  std::vector<float> dw_scale_p;
  std::vector<uint8_t> zp_row;               // depthwise: cin (at least 64) bytes of in_zp
  int64_t cstride = 0;
};

// w: (cout, kh, kw, cin/groups) s8 (OHWI); bias/scale: cout entries (bias may be nullptr;
// scales finite and > 0). weight_bits 4 (values in [-8, 7]) keeps GEMM weights 4-bit packed (c4x2, read by the
// 4-bit kernels; depthwise weights are few and stay in their int32 form). Throws
// std::invalid_argument on inconsistent settings or an accumulator that could leave int32 (see
// qs8_accumulator_fits).
Qs8Conv2d qs8_conv2d_create(const Qs8ConvShape& s, const int8_t* w, const int32_t* bias,
                            const float* scale, int32_t in_zp,
                            int32_t out_zp, int32_t qmin, int32_t qmax,
                            const Qs8ConvEpilogue& epi = {}, int weight_bits = 8);

// x: (N, H, W, cin) u8; residual: (N, OH, OW, cout) u8 if epi.residual, else ignored;
// y: (N, OH, OW, cout) u8 (must not overlap x or residual); workspace: at least
// qs8_conv2d_workspace_bytes(op, N, H, W) bytes (nullptr if that is 0).
size_t qs8_conv2d_workspace_bytes(const Qs8Conv2d& op, int64_t N, int64_t H, int64_t W);
void qs8_conv2d_run(const Qs8Conv2d& op, int64_t N, int64_t H, int64_t W, const uint8_t* x,
                    const uint8_t* residual, uint8_t* y, uint8_t* workspace);

}  // namespace eo
