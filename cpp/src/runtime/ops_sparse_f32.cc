// Sparse fp32 1x1 convolution (op id 200, "sparse_conv1x1"): a pruned pointwise conv run by
// f32-spmm on NCHW activations.
//
//   input: x f32 NCHW (C = Cin)            output: f32 NCHW (Cout, H, W)
//   attrs: activation (0 none, 1 relu, 2 relu6; default 0)
//   blobs: weight  sparse_f32, dims (Cout, Cin), bytes:
//            int32 br, bc, nblocks, 0                       (block shape: 1x1, 1x4, 4x1 or 8x1)
//            int32 row_ptr[ceil(Cout/br) + 1]               (0, non-decreasing, last = nblocks)
//            int32 col[nblocks]                             (first input channel, multiple of bc,
//                                                            col + bc <= Cin)
//            float values[nblocks * br * bc]                (block b: value (c, i) at [c*br + i])
//          bias    f32 (Cout), optional
// The arrays are SpmmPacked's (edgeopt._core.spmm_pack(w, block).row_ptr / .col / .values).
#include <cstring>
#include <limits>

#include "f32-spmm/spmm.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {

class SparseConv1x1Op : public Op {
 public:
  SparseConv1x1Op(const OpDef& def, F32SpmmPacked w, const float* bias, int64_t hw, Act act,
                  int64_t blob_bytes)
      : Op(def), w_(std::move(w)), bias_(bias), hw_(hw), act_(act), blob_bytes_(blob_bytes) {}
  const char* type_name() const override { return "sparse_conv1x1"; }
  void run(const RunContext& ctx) const override {
    const float inf = std::numeric_limits<float>::infinity();
    const float lo = act_ == Act::none ? -inf : 0.f, hi = act_ == Act::relu6 ? 6.f : inf;
    f32_spmm(w_, ctx.batch, hw_, in(ctx, 0), bias_, lo, hi, out(ctx), true);
  }
  int64_t macs_per_image() const override { return w_.nblocks() * w_.br * w_.bc * hw_; }
  int64_t weight_bytes() const override { return blob_bytes_; }
  std::string info() const override {
    return "block " + std::to_string(w_.br) + "x" + std::to_string(w_.bc) + ", nnz " +
           std::to_string(w_.nnz) + "/" + std::to_string(w_.cout * w_.cin) +
           (act_ != Act::none ? std::string(" ") + act_name(act_) : "");
  }

 private:
  F32SpmmPacked w_;
  const float* bias_;
  int64_t hw_;
  Act act_;
  int64_t blob_bytes_;
};

}  // namespace

std::unique_ptr<Op> make_sparse_conv1x1(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 4) ctx.fail("input: expected a rank-4 tensor");
  const int64_t cin = x.c, cout = ctx.output().c;
  const int64_t a = ctx.def.attrs.get_int("activation", 0, 2, 0);
  const Blob& b = ctx.blob("weight", {BlobType::sparse_f32}, {cout, cin});
  const Blob* bias = ctx.optional_blob("bias", {BlobType::f32}, {cout});
  // Layout checks: every count against the blob size, every index in range.
  if (b.bytes < 16) ctx.fail("sparse weight blob shorter than its header");
  int32_t hdr[4];
  std::memcpy(hdr, b.data, sizeof hdr);
  const int br = hdr[0], bc = hdr[1];
  const int64_t nblocks = hdr[2];
  if (!f32_spmm_block_supported(br, bc)) ctx.fail("sparse weight: unsupported block shape");
  if (cin % bc != 0) ctx.fail("sparse weight: Cin is not a multiple of the block width");
  const int64_t nbr = (cout + br - 1) / br;
  if (nblocks < 0 || nblocks > nbr * (cin / bc)) ctx.fail("sparse weight: bad block count");
  const int64_t need = 16 + 4 * (nbr + 1) + 4 * nblocks + 4 * nblocks * br * bc;
  if (int64_t(b.bytes) != need) ctx.fail("sparse weight: blob size does not match its header");
  F32SpmmPacked w;
  w.cout = cout;
  w.cin = cin;
  w.br = br;
  w.bc = bc;
  const uint8_t* p = b.data + 16;
  w.row_ptr.resize(nbr + 1);
  std::memcpy(w.row_ptr.data(), p, 4 * (nbr + 1));
  p += 4 * (nbr + 1);
  w.col.resize(nblocks);
  std::memcpy(w.col.data(), p, 4 * nblocks);
  p += 4 * nblocks;
  w.values.resize(nblocks * br * bc);
  std::memcpy(w.values.data(), p, 4 * nblocks * br * bc);
  if (w.row_ptr[0] != 0 || w.row_ptr[nbr] != nblocks) ctx.fail("sparse weight: bad row_ptr ends");
  for (int64_t r = 0; r < nbr; ++r)
    if (w.row_ptr[r + 1] < w.row_ptr[r]) ctx.fail("sparse weight: row_ptr decreases");
  for (int32_t c : w.col)
    if (c < 0 || c % bc != 0 || c + bc > cin) ctx.fail("sparse weight: column index out of range");
  for (float v : w.values) w.nnz += v != 0.f;
  TensorDesc y;
  y.c = cout;
  y.h = x.h;
  y.w = x.w;
  ctx.expect_output(y);
  return std::make_unique<SparseConv1x1Op>(ctx.def, std::move(w), bias ? bias->as<float>() : nullptr,
                                           x.h * x.w, static_cast<Act>(a), int64_t(b.bytes));
}

}  // namespace eo::rt
