// Sparse fp32 weights in the runtime: pruned 1x1 convolutions (op 200, "sparse_conv1x1") and
// linear layers (op 201, "sparse_linear") run by f32-spmm, which does nnz * HW multiply-adds
// instead of Cout * Cin * HW (spmm.h explains the NCHW / pixel-vector design).
//
//   sparse_conv1x1  x f32 NCHW (Cin, H, W) [, residual f32 NCHW (Cout, OH, OW)] -> (Cout, OH, OW)
//                   attrs: stride (2, optional, default 1 1; padding is always 0, groups 1),
//                          activation (0 none, 1 relu, 2 relu6, 3 hardswish; default 0)
//   sparse_linear   x f32 (in) rank 2 -> (out) rank 2;  attrs: activation as above
//   y = act(W x + bias (+ residual))
//
//   blobs: weight  sparse_f32, dims (Cout, Cin), bytes:
//            int32 br, bc, nblocks, 0                       (block shape: 1x1, 1x4, 4x1 or 8x1)
//            int32 row_ptr[ceil(Cout/br) + 1]               (0, non-decreasing, last = nblocks)
//            int32 col[nblocks]                             (first input channel, multiple of bc,
//                                                            col + bc <= Cin)
//            float values[nblocks * br * bc]                (block b: value (c, i) at [c*br + i])
//          bias    f32 (Cout), optional
// The arrays are SpmmPacked's (edgeopt._core.spmm_pack(w, block).row_ptr / .col / .values);
// python/edgeopt/deploy/sparse.py writes them.
//
// Epilogue: relu / relu6 without a residual are the kernel's output clamp (free). A residual or a
// hardswish needs the sum before the activation, so the kernel then writes the unclamped
// W x + bias and one more pass over the output (still warm for small layers) adds the residual
// and applies the activation.
// Stride: a strided 1x1 conv is the same matrix product over the subsampled input, gathered into
// the workspace first (1/(sh*sw) of the input; cheap next to the product).
// Linear: the kernel vectorizes over pixels, so a batch of B vectors runs as one image of B
// pixels: x (B, in) is transposed into the workspace, and the (out, B) result transposed back.
#include <algorithm>
#include <cstring>
#include <limits>

#include "common/parallel.h"
#include "f32-spmm/spmm.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {

constexpr int64_t kGrain = 16384;  // elements per task of the elementwise passes

inline float hardswish(float v) { return v * std::min(std::max(v + 3.f, 0.f), 6.f) * (1.f / 6.f); }

// y[i] = act(y[i] + res[i]) for i in [0, n); res may be null.
void finish(float* y, const float* res, int64_t n, Act act) {
  parallel_for(n, kGrain, [&](int64_t b, int64_t e) {
    if (res)
      for (int64_t i = b; i < e; ++i) y[i] += res[i];
    switch (act) {
      case Act::relu:
        for (int64_t i = b; i < e; ++i) y[i] = std::max(y[i], 0.f);
        break;
      case Act::relu6:
        for (int64_t i = b; i < e; ++i) y[i] = std::min(std::max(y[i], 0.f), 6.f);
        break;
      case Act::hardswish:
        for (int64_t i = b; i < e; ++i) y[i] = hardswish(y[i]);
        break;
      default:
        break;
    }
  });
}

// Output clamp done by the kernel itself (none when the epilogue needs a second pass).
struct Clamp {
  float lo, hi;
  bool post;  // a second pass applies residual and / or activation
};

Clamp clamp_for(Act act, bool residual) {
  const float inf = std::numeric_limits<float>::infinity();
  if (residual || act == Act::hardswish) return {-inf, inf, true};
  return {act == Act::none ? -inf : 0.f, act == Act::relu6 ? 6.f : inf, false};
}

// The weight blob: every count against the blob size, every index in range, before anything is
// copied or trusted.
F32SpmmPacked read_weight(const BuildContext& ctx, const Blob& b, int64_t cout, int64_t cin) {
  if (b.bytes < 16) ctx.fail("sparse weight: blob shorter than its 16-byte header");
  int32_t hdr[4];
  std::memcpy(hdr, b.data, sizeof hdr);
  const int br = hdr[0], bc = hdr[1];
  const int64_t nblocks = hdr[2];
  if (hdr[3] != 0) ctx.fail("sparse weight: header word 3 must be 0");
  if (!f32_spmm_block_supported(br, bc))
    ctx.fail("sparse weight: block shape " + std::to_string(br) + "x" + std::to_string(bc) +
             " is not one of 1x1, 1x4, 4x1, 8x1");
  if (cin % bc != 0) ctx.fail("sparse weight: Cin is not a multiple of the block width");
  const int64_t nbr = (cout + br - 1) / br;
  if (nblocks < 0 || nblocks > nbr * (cin / bc))
    ctx.fail("sparse weight: block count " + std::to_string(nblocks) + " out of range [0, " +
             std::to_string(nbr * (cin / bc)) + "]");
  const int64_t need = 16 + 4 * (nbr + 1) + 4 * nblocks + 4 * nblocks * br * bc;
  if (int64_t(b.bytes) != need)
    ctx.fail("sparse weight: blob holds " + std::to_string(b.bytes) + " bytes, its header implies " +
             std::to_string(need));
  F32SpmmPacked w;
  w.cout = cout;
  w.cin = cin;
  w.br = br;
  w.bc = bc;
  const uint8_t* p = b.data + 16;
  w.row_ptr.resize(size_t(nbr + 1));
  std::memcpy(w.row_ptr.data(), p, size_t(4 * (nbr + 1)));
  p += 4 * (nbr + 1);
  w.col.resize(size_t(nblocks));
  if (nblocks) std::memcpy(w.col.data(), p, size_t(4 * nblocks));
  p += 4 * nblocks;
  w.values.resize(size_t(nblocks * br * bc));
  if (nblocks) std::memcpy(w.values.data(), p, size_t(4 * nblocks * br * bc));
  if (w.row_ptr[0] != 0 || w.row_ptr[nbr] != nblocks)
    ctx.fail("sparse weight: row_ptr must start at 0 and end at the block count");
  for (int64_t r = 0; r < nbr; ++r)
    if (w.row_ptr[r + 1] < w.row_ptr[r]) ctx.fail("sparse weight: row_ptr decreases at row " + std::to_string(r));
  for (int32_t c : w.col)
    if (c < 0 || c % bc != 0 || int64_t(c) + bc > cin)
      ctx.fail("sparse weight: column index " + std::to_string(c) + " out of range for Cin " + std::to_string(cin));
  for (float v : w.values) w.nnz += v != 0.f;
  return w;
}

std::string describe(const F32SpmmPacked& w, Act act) {
  const int64_t dense = w.cout * w.cin;
  const int zero_pct = dense ? int(100.0 * double(dense - w.nnz) / double(dense) + 0.5) : 0;
  return "sparse " + std::to_string(w.br) + "x" + std::to_string(w.bc) + ", nnz " + std::to_string(w.nnz) +
         "/" + std::to_string(dense) + " (" + std::to_string(zero_pct) + "% zero)" +
         (act != Act::none ? std::string(" ") + act_name(act) : "");
}

class SparseConv1x1Op : public Op {
 public:
  SparseConv1x1Op(const OpDef& def, F32SpmmPacked w, const float* bias, int64_t h, int64_t wd,
                  int64_t sh, int64_t sw, int64_t oh, int64_t ow, Act act, bool residual, int64_t blob_bytes)
      : Op(def), w_(std::move(w)), bias_(bias), h_(h), w__(wd), sh_(sh), sw_(sw), oh_(oh), ow_(ow),
        act_(act), residual_(residual), clamp_(clamp_for(act, residual)), blob_bytes_(blob_bytes) {}
  const char* type_name() const override { return "sparse_conv1x1"; }

  size_t workspace_bytes(int64_t batch) const override {
    return strided() ? size_t(4 * batch * w_.cin * oh_ * ow_) : 0;
  }

  void run(const RunContext& ctx) const override {
    const int64_t n = ctx.batch, cin = w_.cin, ohw = oh_ * ow_;
    const float* x = in(ctx, 0);
    if (strided()) {  // x[:, :, ::sh, ::sw] into the workspace
      float* xs = reinterpret_cast<float*>(ctx.workspace);
      const float* src = x;
      parallel_for(n * cin, std::max<int64_t>(1, kGrain / std::max<int64_t>(1, ohw)), [&](int64_t b, int64_t e) {
        for (int64_t plane = b; plane < e; ++plane) {
          const float* s = src + plane * h_ * w__;
          float* d = xs + plane * ohw;
          for (int64_t i = 0; i < oh_; ++i)
            for (int64_t j = 0; j < ow_; ++j) d[i * ow_ + j] = s[i * sh_ * w__ + j * sw_];
        }
      });
      x = xs;
    }
    float* y = out(ctx);
    f32_spmm(w_, n, ohw, x, bias_, clamp_.lo, clamp_.hi, y, true);
    if (clamp_.post) finish(y, residual_ ? in(ctx, 1) : nullptr, n * w_.cout * ohw, act_);
  }

  int64_t macs_per_image() const override { return w_.nblocks() * w_.br * w_.bc * oh_ * ow_; }
  int64_t weight_bytes() const override { return blob_bytes_; }
  std::string info() const override {
    return describe(w_, act_) + (strided() ? " stride " + std::to_string(sh_) + "x" + std::to_string(sw_) : "") +
           (residual_ ? " +residual" : "");
  }

 private:
  bool strided() const { return sh_ != 1 || sw_ != 1; }
  F32SpmmPacked w_;
  const float* bias_;
  int64_t h_, w__, sh_, sw_, oh_, ow_;
  Act act_;
  bool residual_;
  Clamp clamp_;
  int64_t blob_bytes_;
};

class SparseLinearOp : public Op {
 public:
  SparseLinearOp(const OpDef& def, F32SpmmPacked w, const float* bias, Act act, int64_t blob_bytes)
      : Op(def), w_(std::move(w)), bias_(bias), act_(act), clamp_(clamp_for(act, false)),
        blob_bytes_(blob_bytes) {}
  const char* type_name() const override { return "sparse_linear"; }

  size_t workspace_bytes(int64_t batch) const override {
    return batch > 1 ? size_t(4 * batch * (w_.cin + w_.cout)) : 0;
  }

  void run(const RunContext& ctx) const override {
    const int64_t n = ctx.batch, cin = w_.cin, cout = w_.cout;
    const float* x = in(ctx, 0);
    float* y = out(ctx);
    if (n == 1) {
      f32_spmm(w_, 1, 1, x, bias_, clamp_.lo, clamp_.hi, y, true);
    } else {
      float* xt = reinterpret_cast<float*>(ctx.workspace);  // (cin, n)
      float* yt = xt + cin * n;                              // (cout, n)
      for (int64_t i = 0; i < n; ++i)
        for (int64_t k = 0; k < cin; ++k) xt[k * n + i] = x[i * cin + k];
      f32_spmm(w_, 1, n, xt, bias_, clamp_.lo, clamp_.hi, yt, true);
      for (int64_t i = 0; i < n; ++i)
        for (int64_t j = 0; j < cout; ++j) y[i * cout + j] = yt[j * n + i];
    }
    if (clamp_.post) finish(y, nullptr, n * cout, act_);
  }

  int64_t macs_per_image() const override { return w_.nblocks() * w_.br * w_.bc; }
  int64_t weight_bytes() const override { return blob_bytes_; }
  std::string info() const override { return describe(w_, act_); }

 private:
  F32SpmmPacked w_;
  const float* bias_;
  Act act_;
  Clamp clamp_;
  int64_t blob_bytes_;
};

}  // namespace

std::unique_ptr<Op> make_sparse_conv1x1(const BuildContext& ctx) {
  ctx.expect_inputs(1, 2);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 4) ctx.fail("input: expected a rank-4 tensor");
  const Attrs& a = ctx.def.attrs;
  std::vector<int64_t> stride = {1, 1};
  if (a.has("stride")) stride = a.get_ints("stride", 2, 1, 64);
  const Act act = static_cast<Act>(a.get_int("activation", 0, 3, 0));
  const int64_t cin = x.c, cout = ctx.output().c;
  const Blob& b = ctx.blob("weight", {BlobType::sparse_f32}, {cout, cin});
  const Blob* bias = ctx.optional_blob("bias", {BlobType::f32}, {cout});
  F32SpmmPacked w = read_weight(ctx, b, cout, cin);
  TensorDesc y;
  y.c = cout;
  y.h = (x.h - 1) / stride[0] + 1;
  y.w = (x.w - 1) / stride[1] + 1;
  ctx.expect_output(y);
  const bool residual = ctx.num_inputs() == 2;
  if (residual) {
    ctx.expect_f32_input(1);
    if (!ctx.input(1).same_shape(y)) ctx.fail("residual: expected " + y.str() + ", got " + ctx.input(1).str());
  }
  return std::make_unique<SparseConv1x1Op>(ctx.def, std::move(w), bias ? bias->as<float>() : nullptr, x.h, x.w,
                                           stride[0], stride[1], y.h, y.w, act, residual, int64_t(b.bytes));
}

std::unique_ptr<Op> make_sparse_linear(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 2) ctx.fail("input: expected a rank-2 tensor (N, features)");
  const Act act = static_cast<Act>(ctx.def.attrs.get_int("activation", 0, 3, 0));
  const int64_t cin = x.c, cout = ctx.output().c;
  const Blob& b = ctx.blob("weight", {BlobType::sparse_f32}, {cout, cin});
  const Blob* bias = ctx.optional_blob("bias", {BlobType::f32}, {cout});
  F32SpmmPacked w = read_weight(ctx, b, cout, cin);
  TensorDesc y;
  y.rank = 2;
  y.c = cout;
  ctx.expect_output(y);
  return std::make_unique<SparseLinearOp>(ctx.def, std::move(w), bias ? bias->as<float>() : nullptr, act,
                                          int64_t(b.bytes));
}

}  // namespace eo::rt
