// f32 sparse weights x dense activations: 1x1 convolutions and linear layers whose weights are
// mostly zero (pruned), in NCHW.
//
//   x: (batch, Cin, HW)  W: (Cout, Cin) sparse  bias: (Cout) or none  y: (batch, Cout, HW)
//   y[n][o][p] = clamp(bias[o] + sum_k W[o][k] x[n][k][p], out_min, out_max)
//
// Why NCHW: with pixels contiguous, one nonzero weight multiplies a contiguous row of x, so the
// kernel streams SIMD vectors of pixels and never gathers (XNNPACK's sparse inference layout).
// The work is nnz * HW multiply-adds instead of Cout * Cin * HW: at 90 % zeros a tenth of the
// dense FLOPs, run at a lower rate (a broadcast and a load per FMA instead of a register tile).
//
// Storage: W is cut into aligned blocks of BR output channels x BC input channels; a block is kept
// if any of its values is nonzero (its zeros are stored). 1x1 is unstructured sparsity (CSR);
// 4x1 / 8x1 blocks (channels pruned in groups of 4 / 8 along Cout) share each x load between 4 / 8
// output channels. Any dense W can be packed with any block shape (the block shape is a speed
// choice, not a precondition). (1x4 blocks, which halve the index traffic, had kernels but no
// lowering ever chose them: deleted. BC stays in the format for a block shape that earns its way.)
// Unstructured weights also come as CSR (row_ptr, col, values) or as a bitmask (one bit per weight,
// row-major, LSB first, rows padded to whole bytes, values of the set bits in row-major order),
// the compact form at moderate sparsity (1 bit per weight vs 32 bits per nonzero).
//
// Exactness: fast paths sum in another order than the reference (FMA, two partial sums), so they
// agree with it to within a few ulps of sum_k |W[o][k] x[k][p]|, not bit for bit.
#pragma once
#include <cstdint>
#include <vector>

namespace eo {

struct F32SpmmPacked {
  int64_t cout = 0, cin = 0;
  int br = 1, bc = 1;
  int64_t nnz = 0;               // nonzero values among the stored ones
  std::vector<int32_t> row_ptr;  // nbr() + 1 block offsets
  std::vector<int32_t> col;      // per block: its first input channel (a multiple of bc)
  std::vector<float> values;     // per block: br*bc values, value (c, i) at [c*br + i]
  int64_t nbr() const { return (cout + br - 1) / br; }
  int64_t nblocks() const { return static_cast<int64_t>(col.size()); }
  int64_t nbytes() const { return int64_t(4 * (row_ptr.size() + col.size() + values.size())); }
};

// Block shapes with a kernel on every path: 1x1, 4x1, 8x1.
bool f32_spmm_block_supported(int br, int bc);

// w: dense (cout, cin) row-major with row stride ldw. Needs a supported block and cin % bc == 0.
F32SpmmPacked f32_spmm_pack_dense(int64_t cout, int64_t cin, const float* w, int64_t ldw, int br,
                                  int bc);
// CSR: row_ptr (cout + 1, non-decreasing from 0), col (row_ptr[cout], each in [0, cin)),
// values (row_ptr[cout]). Repeated (row, col) entries add up. Caller validates.
F32SpmmPacked f32_spmm_pack_csr(int64_t cout, int64_t cin, const int32_t* row_ptr,
                                const int32_t* col, const float* values);
// Bitmask: mask (cout rows of (cin + 7) / 8 bytes), values (one per set bit). Bits past cin in the
// last byte of a row must be zero. Caller validates.
F32SpmmPacked f32_spmm_pack_bitmask(int64_t cout, int64_t cin, const uint8_t* mask,
                                    const float* values);
// The dense (cout, cin) matrix back, for tests and for storing in another layout.
std::vector<float> f32_spmm_unpack(const F32SpmmPacked& w);

// x: (batch, cin, hw), y: (batch, cout, hw), both contiguous; bias: cout entries or nullptr.
// parallel=false keeps the call on this thread. Results do not depend on the thread count.
void f32_spmm(const F32SpmmPacked& w, int64_t batch, int64_t hw, const float* x, const float* bias,
              float out_min, float out_max, float* y, bool parallel);

}  // namespace eo

namespace eo::reference {

// Plain loops over the dense weights w (cout, cin), double accumulation (cpp/src/reference/f32_spmm.cc).
void f32_spmm(int64_t cout, int64_t cin, int64_t hw, const float* w, const float* x,
              const float* bias, float out_min, float out_max, float* y);

}  // namespace eo::reference
