// int8-full convolution op (id 102; linear layers are 1x1 convs over (N, 1, 1, F)): u8 NHWC in and
// out, weights s8 OHWI with per-channel float32 requantization, optional fused residual add and table
// (qs8-conv2d/conv2d.h). Weights are packed once at load; run() is const and takes its im2col rows
// from the engine's workspace.
//
// File: inputs x [, residual]; ints stride (2), padding (2), groups, requant (out_zp, qmin, qmax) of
// the conv's own requantization, optional add (floats a_scale, b_scale, offset) and add_clamp
// (qmin, qmax), which need the residual input; blobs weight i8 or i4 (cout, kh, kw, cin/groups;
// i4: 4-bit codes in [-8, 7], kept 4-bit in memory and widened inside the kernels), bias i32
// (cout), scale f32 (cout, finite and > 0), optional lut u8 (256). The input's zero point comes from its tensor description.
#include <stdexcept>

#include "lowbit/lowbit.h"
#include "qs8-conv2d/conv2d.h"
#include "runtime/op.h"
#include "runtime/ops_qs8.h"

namespace eo::rt {
namespace {

class Qs8ConvOp : public Op {
 public:
  Qs8ConvOp(const OpDef& d, Qs8Conv2d conv, int64_t H, int64_t W)
      : Op(d), conv_(std::move(conv)), H_(H), W_(W) {}
  const char* type_name() const override { return "qs8_conv2d"; }
  size_t workspace_bytes(int64_t batch) const override {
    return qs8_conv2d_workspace_bytes(conv_, batch, H_, W_);
  }
  int64_t macs_per_image() const override {
    const Qs8ConvShape& s = conv_.s;
    return s.out_h(H_) * s.out_w(W_) * s.cout * s.kh * s.kw * (s.cin / s.groups);
  }
  int64_t weight_bytes() const override {
    const Qs8ConvShape& s = conv_.s;
    const int64_t n = s.cout * s.kh * s.kw * (s.cin / s.groups);
    return (bits() == 4 ? (n + 1) / 2 : n) + 12 * s.cout;
  }
  int bits() const { return !conv_.packed.empty() && conv_.packed[0].bits == 4 ? 4 : 8; }
  std::string info() const override {
    const Qs8ConvShape& s = conv_.s;
    std::string r = std::to_string(s.kh) + "x" + std::to_string(s.kw) + " s" + std::to_string(s.sh) +
                    (s.groups > 1 ? " g" + std::to_string(s.groups) : "");
    if (bits() == 4) r += " w4";
    if (conv_.epi.residual) r += " +res";
    if (conv_.epi.has_lut) r += " +lut";
    return r;
  }
  void run(const RunContext& ctx) const override {
    qs8_conv2d_run(conv_, ctx.batch, H_, W_, in<uint8_t>(ctx, 0),
                   inputs_.size() > 1 ? in<uint8_t>(ctx, 1) : nullptr, out<uint8_t>(ctx),
                   ctx.workspace);
  }

 private:
  Qs8Conv2d conv_;
  int64_t H_, W_;
};

}  // namespace

std::unique_ptr<Op> make_qs8_conv2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 2);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  const Attrs& at = ctx.def.attrs;
  const auto stride = at.get_ints("stride", 2, 1, 1024);
  const auto padding = at.get_ints("padding", 2, 0, 1024);
  const int64_t groups = at.get_int("groups", 1, x.c);
  const Blob& wb = ctx.blob("weight", {BlobType::i8, BlobType::i4}, {-1, -1, -1, -1});
  Qs8ConvShape s;
  s.cout = wb.dims[0];
  s.kh = wb.dims[1];
  s.kw = wb.dims[2];
  s.cin = x.c;
  s.sh = stride[0];
  s.sw = stride[1];
  s.ph = padding[0];
  s.pw = padding[1];
  s.groups = groups;
  if (s.cout < 1 || s.kh < 1 || s.kw < 1 || x.c % groups || s.cout % groups || wb.dims[3] * groups != x.c)
    ctx.fail("weight: expected (cout, kh, kw, cin/groups) with groups = " + std::to_string(groups) +
             " dividing cin = " + std::to_string(x.c) + " and cout");
  if (s.ph >= s.kh || s.pw >= s.kw || x.h + 2 * s.ph < s.kh || x.w + 2 * s.pw < s.kw)
    ctx.fail("padding must be smaller than the kernel and the padded input must hold the kernel");
  const Blob& bias = ctx.blob("bias", {BlobType::i32}, {s.cout});
  qs8_reject_fixed_point(ctx, {"multiplier", "shift"});
  const Blob& scale = ctx.blob("scale", {BlobType::f32}, {s.cout});
  for (int64_t j = 0; j < s.cout; ++j) qs8_scale_attr(ctx, scale.as<float>()[j]);
  const auto rq = at.get_ints("requant", 3, 0, 255);
  if (rq[1] > rq[2]) ctx.fail("requant: qmin > qmax");
  Qs8ConvEpilogue epi;
  if (at.has("add")) {
    if (ctx.num_inputs() != 2) ctx.fail("add: needs the residual as input 1");
    epi.residual = true;
    epi.add = qs8_add_params_from(ctx);  // the zero points are folded into its offset
    qs8_expect_u8_input(ctx, 1);
  } else if (ctx.num_inputs() != 1) {
    ctx.fail("a residual input needs the 'add' attribute");
  }
  if (const Blob* t = ctx.optional_blob("lut", {BlobType::u8}, {256})) {
    epi.has_lut = true;
    std::copy(t->data, t->data + 256, epi.lut.begin());
  }
  TensorDesc y;
  y.dtype = DType::u8;
  y.layout = Layout::nhwc;
  y.c = s.cout;
  y.h = s.out_h(x.h);
  y.w = s.out_w(x.w);
  y.rank = 0;  // rank 2 (linear) or 4
  ctx.expect_output(y);
  if (epi.residual) {
    const TensorDesc& r = ctx.input(1);
    if (!r.same_shape(y)) ctx.fail("residual " + r.str() + " must have the output's shape " + y.str());
  }
  if (!epi.has_lut && !epi.residual && ctx.output().zero_point != rq[0])
    ctx.fail("the output's zero point must be the last requantization's");
  // 4-bit codes unpacked for packing only: the op keeps the 4-bit panels
  std::vector<int8_t> codes;
  const int8_t* w = wb.as<int8_t>();
  if (wb.type == BlobType::i4) {
    const int64_t row = s.kh * s.kw * (s.cin / s.groups);
    codes.resize(size_t(s.cout * row));
    lowbit_unpack_s8(s.cout, row, 4, wb.data, codes.data());
    w = codes.data();
  }
  Qs8Conv2d conv;
  try {
    conv = qs8_conv2d_create(s, w, bias.as<int32_t>(), scale.as<float>(), x.zero_point, int32_t(rq[0]), int32_t(rq[1]), int32_t(rq[2]), epi,
                             wb.type == BlobType::i4 ? 4 : 8);
  } catch (const std::invalid_argument& e) {
    ctx.fail(e.what());
  }
  return std::make_unique<Qs8ConvOp>(ctx.def, std::move(conv), x.h, x.w);
}

}  // namespace eo::rt
