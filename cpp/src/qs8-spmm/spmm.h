// int8 sparse weights x dense activations (NCHW): the integer counterpart of f32-spmm for pruned
// and quantized (PRQ) 1x1 convolutions and linear layers.
// No compile path reaches this yet (no runtime op): the quantization issue (13) and PRQ in the
// sweeps issue (14: pruned, then int8) own it; until then only tests and benchmarks call it.
//
//   x: (batch, Cin, HW) u8, zero point a_zp    W: (Cout, Cin) s8 sparse, symmetric per channel
//   acc[o][p] = bias[o] + sum_k (x[k][p] - a_zp) * W[o][k]                     exact int32
//   y[o][p]   = qs8_requantize(acc[o][p], scale[o], out_zp, qmin, qmax)   u8 / s8
//
// The requantization is qs8-gemm's (requantize.h, arguments in Qs8Requant), so a layer gives the
// same bytes whether the runtime runs it dense or sparse. Storage is block rows of BR = 1
// (unstructured) or 4 (4x1 blocks) output channels; their nonzeros are walked in pairs (see
// ukernels.h). Per call the activations are widened once to int16 rows padded to 32 pixels.
//
// Exactness: every path returns the reference's bytes provided the accumulator fits int32:
// |bias[o]| + 255 * sum_k |W[o][k]| <= 2^31 - 1 (qs8_spmm_accumulator_fits).
#pragma once
#include <cstdint>
#include <vector>

#include "qs8-gemm/gemm.h"

namespace eo {

struct Qs8SpmmPacked {
  int64_t cout = 0, cin = 0;
  int br = 1;
  int64_t nnz = 0;
  std::vector<int32_t> row_ptr;  // nbr() + 1 pair offsets
  std::vector<int32_t> kidx;     // 2 input channels per pair
  std::vector<int32_t> w;        // br int16 weight pairs per pair (see ukernels.h)
  std::vector<int32_t> rowsum;   // cout: sum_k W[o][k]
  std::vector<int64_t> abssum;   // cout: sum_k |W[o][k]|
  int64_t nbr() const { return (cout + br - 1) / br; }
  int64_t npairs() const { return static_cast<int64_t>(kidx.size() / 2); }
  int64_t nbytes() const {
    return int64_t(4 * (row_ptr.size() + kidx.size() + w.size() + rowsum.size()) + 8 * abssum.size());
  }
};

bool qs8_spmm_block_supported(int br);  // 1 or 4

// w: dense (cout, cin) s8 row-major with row stride ldw; keeps the (br x 1) blocks with a nonzero.
Qs8SpmmPacked qs8_spmm_pack(int64_t cout, int64_t cin, const int8_t* w, int64_t ldw, int br);
std::vector<int8_t> qs8_spmm_unpack(const Qs8SpmmPacked& w);  // dense (cout, cin)

bool qs8_spmm_accumulator_fits(const Qs8SpmmPacked& w, const int32_t* bias);

// x: (batch, cin, hw) u8, y: (batch, cout, hw) bytes (u8, or s8 with a signed qmin/qmax/out_zp),
// contiguous. rq arrays have cout entries. Results do not depend on the thread count.
void qs8_spmm(const Qs8SpmmPacked& w, int64_t batch, int64_t hw, const uint8_t* x, int32_t a_zp,
              const Qs8Requant& rq, uint8_t* y, bool parallel);

}  // namespace eo

namespace eo::reference {

// Plain loops over dense s8 weights w (cout, cin), int64 accumulation, the shared requantization
// (cpp/src/reference/qs8_spmm.cc). x (cin, hw), y (cout, hw).
void qs8_spmm(int64_t cout, int64_t cin, int64_t hw, const int8_t* w, const uint8_t* x,
              int32_t a_zp, const int32_t* bias, const float* scale,
              int32_t out_zp, int32_t qmin, int32_t qmax, uint8_t* y);

}  // namespace eo::reference
