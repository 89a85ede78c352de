// int8-full ops other than conv: the graph's edges (quantize f32 NCHW -> u8 NHWC, dequantize back),
// add, table lookup, squeeze-excitation scale, pools and flatten (an alias: NHWC bytes unchanged).
// Formulas: qs8-elementwise/elementwise.h, qs8-pool/pool.h. Zero points come from the tensors'
// descriptions (and must agree with any zero point stored in an attribute).
//
// File attrs: quantize: scale (float). dequantize: none (input scale / zero point).
// add: add (floats a_scale, b_scale, offset) and add_clamp (qmin, qmax), as conv's. lut: blob table
// u8 (256). channel_scale: inputs x, s (C, 1, 1); scale (float), clamp (qmin, qmax). maxpool2d:
// kernel, stride, padding. avgpool2d: + count_include_pad, scale (kh*kw floats, by divisor - 1),
// clamp (qmin, qmax). global_avgpool2d: scale (float), clamp (qmin, qmax).
#include <cmath>
#include <limits>

#include "qs8-elementwise/elementwise.h"
#include "qs8-pool/pool.h"
#include "runtime/op.h"
#include "runtime/ops_qs8.h"

namespace eo::rt {

const TensorDesc& qs8_expect_u8_input(const BuildContext& ctx, size_t i) {
  const TensorDesc& d = ctx.input(i);
  if (d.dtype != DType::u8 || d.layout != Layout::nhwc)
    ctx.fail("input " + std::to_string(i) + ": expected u8 nhwc, got " + d.str());
  if (d.zero_point < 0 || d.zero_point > 255)
    ctx.fail("input " + std::to_string(i) + ": zero point " + std::to_string(d.zero_point) +
             " outside [0, 255]");
  return d;
}

constexpr double kFloatMax = std::numeric_limits<float>::max();

void qs8_reject_fixed_point(const BuildContext& ctx, std::initializer_list<const char*> old_keys) {
  for (const char* k : old_keys)
    if (ctx.def.attrs.has(k))
      ctx.fail(std::string("has '") + k + "', the fixed-point requantization of int8-full files " +
               "written before float32 requantization: compile the model again");
}

qs8_add_params qs8_add_params_from(const BuildContext& ctx) {
  const Attrs& at = ctx.def.attrs;
  if (!at.has("add_clamp")) qs8_reject_fixed_point(ctx, {"add"});  // the old 11-int form
  const auto f = at.get_floats("add", 3, -kFloatMax, kFloatMax);
  const auto c = at.get_ints("add_clamp", 2, 0, 255);
  const qs8_add_params p{float(f[0]), float(f[1]), float(f[2]), int32_t(c[0]), int32_t(c[1])};
  if (!qs8_add_params_valid(&p)) ctx.fail("add: " QS8_ADD_PARAMS_RULE);
  return p;
}

float qs8_scale_attr(const BuildContext& ctx, double v) {
  const float s = float(v);
  if (!(s > 0.0f) || !std::isfinite(s)) ctx.fail("scale: expected finite float32 values > 0");
  return s;
}

namespace {

TensorDesc u8_like(const TensorDesc& x) {
  TensorDesc y = x;
  y.dtype = DType::u8;
  y.layout = Layout::nhwc;
  return y;
}

class QuantizeOp : public Op {
 public:
  QuantizeOp(const OpDef& d, const TensorDesc& x, float scale, int32_t zp)
      : Op(d), C_(x.c), HW_(x.h * x.w), scale_(scale), zp_(zp) {}
  const char* type_name() const override { return "qs8_quantize"; }
  void run(const RunContext& ctx) const override {
    qs8_quantize(ctx.batch, C_, HW_, in(ctx, 0), scale_, zp_, out<uint8_t>(ctx));
  }

 private:
  int64_t C_, HW_;
  float scale_;
  int32_t zp_;
};

class DequantizeOp : public Op {
 public:
  DequantizeOp(const OpDef& d, const TensorDesc& x)
      : Op(d), C_(x.c), HW_(x.h * x.w), scale_(x.scale), zp_(x.zero_point) {}
  const char* type_name() const override { return "qs8_dequantize"; }
  void run(const RunContext& ctx) const override {
    qs8_dequantize(ctx.batch, C_, HW_, in<uint8_t>(ctx, 0), scale_, zp_, out<float>(ctx));
  }

 private:
  int64_t C_, HW_;
  float scale_;
  int32_t zp_;
};

class AddOp : public Op {
 public:
  AddOp(const OpDef& d, int64_t elems, const qs8_add_params& p) : Op(d), n_(elems), p_(p) {}
  const char* type_name() const override { return "qs8_add"; }
  void run(const RunContext& ctx) const override {
    qs8_add(qs8_op_ukernels(), ctx.batch * n_, in<uint8_t>(ctx, 0), in<uint8_t>(ctx, 1), p_,
            out<uint8_t>(ctx));
  }

 private:
  int64_t n_;
  qs8_add_params p_;
};

class LutOp : public Op {
 public:
  LutOp(const OpDef& d, int64_t elems, const uint8_t* table) : Op(d), n_(elems), t_(table) {}
  const char* type_name() const override { return "qs8_lut"; }
  void run(const RunContext& ctx) const override {
    qs8_lut(ctx.batch * n_, in<uint8_t>(ctx, 0), t_, out<uint8_t>(ctx));
  }

 private:
  int64_t n_;
  const uint8_t* t_;
};

class ChannelScaleOp : public Op {
 public:
  ChannelScaleOp(const OpDef& d, const TensorDesc& x, int32_t s_zp, const qs8_channel_scale_params& p)
      : Op(d), C_(x.c), HW_(x.h * x.w), s_zp_(s_zp), p_(p) {}
  const char* type_name() const override { return "qs8_channel_scale"; }
  void run(const RunContext& ctx) const override {
    qs8_channel_scale(qs8_op_ukernels(), ctx.batch, HW_, C_, in<uint8_t>(ctx, 0),
                      in<uint8_t>(ctx, 1), s_zp_, p_, out<uint8_t>(ctx));
  }

 private:
  int64_t C_, HW_;
  int32_t s_zp_;
  qs8_channel_scale_params p_;
};

class PoolOp : public Op {
 public:
  PoolOp(const OpDef& d, const TensorDesc& x, const Qs8PoolShape& s, int kind, bool cip,
         std::vector<float> scale, int32_t out_zp, int32_t qmin, int32_t qmax)
      : Op(d), x_(x), s_(s), kind_(kind), cip_(cip), scale_(std::move(scale)), out_zp_(out_zp),
        qmin_(qmin), qmax_(qmax) {}
  const char* type_name() const override {
    return kind_ == 0 ? "qs8_maxpool2d" : kind_ == 1 ? "qs8_avgpool2d" : "qs8_global_avgpool2d";
  }
  void run(const RunContext& ctx) const override {
    const uint8_t* x = in<uint8_t>(ctx, 0);
    uint8_t* y = out<uint8_t>(ctx);
    if (kind_ == 0)
      qs8_maxpool2d(s_, ctx.batch, x_.h, x_.w, x_.c, x, y);
    else if (kind_ == 1)
      qs8_avgpool2d(s_, cip_, ctx.batch, x_.h, x_.w, x_.c, x, x_.zero_point, scale_.data(),
                    out_zp_, qmin_, qmax_, y);
    else
      qs8_global_avgpool2d(ctx.batch, x_.h * x_.w, x_.c, x, x_.zero_point, scale_[0], out_zp_,
                           qmin_, qmax_, y);
  }

 private:
  TensorDesc x_;
  Qs8PoolShape s_;
  int kind_;
  bool cip_;
  std::vector<float> scale_;
  int32_t out_zp_, qmin_, qmax_;
};

class FlattenOp : public Op {
 public:
  explicit FlattenOp(const OpDef& d) : Op(d) {}
  const char* type_name() const override { return "qs8_flatten"; }
  bool is_alias() const override { return true; }
  void run(const RunContext&) const override {}
};

int32_t out_zp(const BuildContext& ctx) {
  const int32_t z = ctx.output().zero_point;
  if (z < 0 || z > 255) ctx.fail("output zero point " + std::to_string(z) + " outside [0, 255]");
  return z;
}

Qs8PoolShape pool_shape(const BuildContext& ctx, const TensorDesc& x) {
  const Attrs& at = ctx.def.attrs;
  const auto k = at.get_ints("kernel", 2, 1, 1024);
  const auto st = at.get_ints("stride", 2, 1, 1024);
  const auto p = at.get_ints("padding", 2, 0, 512);
  Qs8PoolShape s{k[0], k[1], st[0], st[1], p[0], p[1]};
  if (2 * s.ph > s.kh || 2 * s.pw > s.kw || x.h + 2 * s.ph < s.kh || x.w + 2 * s.pw < s.kw)
    ctx.fail("pool: padding must be at most half the kernel and the padded input hold the kernel");
  return s;
}

}  // namespace

std::unique_ptr<Op> make_qs8_quantize(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  TensorDesc y = u8_like(x);
  y.rank = 0;
  ctx.expect_output(y);
  qs8_reject_fixed_point(ctx, {"inv_scale"});
  const float scale = qs8_scale_attr(ctx, ctx.def.attrs.get_float("scale", 0.0, kFloatMax));
  return std::make_unique<QuantizeOp>(ctx.def, x, scale, out_zp(ctx));
}

std::unique_ptr<Op> make_qs8_dequantize(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  if (!(x.scale > 0.f) || !std::isfinite(x.scale)) ctx.fail("input scale must be finite and > 0");
  TensorDesc y = x;
  y.dtype = DType::f32;
  y.layout = Layout::nchw;
  y.rank = 0;
  ctx.expect_output(y);
  return std::make_unique<DequantizeOp>(ctx.def, x);
}

std::unique_ptr<Op> make_qs8_add(const BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  const TensorDesc& a = qs8_expect_u8_input(ctx, 0);
  const TensorDesc& b = qs8_expect_u8_input(ctx, 1);
  if (!a.same_shape(b)) ctx.fail("inputs " + a.str() + " and " + b.str() + " differ in shape");
  TensorDesc y = a;
  y.rank = 0;
  ctx.expect_output(y);
  const qs8_add_params p = qs8_add_params_from(ctx);
  return std::make_unique<AddOp>(ctx.def, a.elems(), p);
}

std::unique_ptr<Op> make_qs8_lut(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  TensorDesc y = x;
  y.rank = 0;
  ctx.expect_output(y);
  const Blob& t = ctx.blob("table", {BlobType::u8}, {256});
  return std::make_unique<LutOp>(ctx.def, x.elems(), t.as<uint8_t>());
}

std::unique_ptr<Op> make_qs8_channel_scale(const BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  const TensorDesc& s = qs8_expect_u8_input(ctx, 1);
  if (s.c != x.c || s.h != 1 || s.w != 1)
    ctx.fail("s: expected (" + std::to_string(x.c) + ", 1, 1), got " + s.str());
  TensorDesc y = x;
  y.rank = 0;
  ctx.expect_output(y);
  qs8_reject_fixed_point(ctx, {"params"});
  const float scale = qs8_scale_attr(ctx, ctx.def.attrs.get_float("scale", 0.0, kFloatMax));
  const auto cl = ctx.def.attrs.get_ints("clamp", 2, 0, 255);
  if (cl[0] > cl[1]) ctx.fail("clamp: qmin > qmax");
  const qs8_channel_scale_params cp{x.zero_point, scale, out_zp(ctx), int32_t(cl[0]), int32_t(cl[1])};
  return std::make_unique<ChannelScaleOp>(ctx.def, x, s.zero_point, cp);
}

std::unique_ptr<Op> make_qs8_maxpool2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  const Qs8PoolShape s = pool_shape(ctx, x);
  TensorDesc y = x;
  y.h = s.out_h(x.h);
  y.w = s.out_w(x.w);
  ctx.expect_output(y);
  if (out_zp(ctx) != x.zero_point) ctx.fail("max pool keeps the input's zero point");
  return std::make_unique<PoolOp>(ctx.def, x, s, 0, false, std::vector<float>{}, 0, 0, 255);
}

std::unique_ptr<Op> make_qs8_avgpool2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  const Qs8PoolShape s = pool_shape(ctx, x);
  TensorDesc y = x;
  y.h = s.out_h(x.h);
  y.w = s.out_w(x.w);
  ctx.expect_output(y);
  const Attrs& at = ctx.def.attrs;
  const bool cip = at.get_int("count_include_pad", 0, 1, 1) != 0;
  const size_t taps = size_t(s.kh * s.kw);
  qs8_reject_fixed_point(ctx, {"multiplier", "shift"});
  std::vector<float> scale;
  for (double v : at.get_floats("scale", taps, 0.0, kFloatMax)) scale.push_back(qs8_scale_attr(ctx, v));
  const auto cl = at.get_ints("clamp", 2, 0, 255);
  if (cl[0] > cl[1]) ctx.fail("clamp: qmin > qmax");
  return std::make_unique<PoolOp>(ctx.def, x, s, 1, cip, std::move(scale), out_zp(ctx),
                                  int32_t(cl[0]), int32_t(cl[1]));
}

std::unique_ptr<Op> make_qs8_global_avgpool2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  TensorDesc y = x;
  y.h = y.w = 1;
  y.rank = 0;
  ctx.expect_output(y);
  qs8_reject_fixed_point(ctx, {"requant"});
  const float scale = qs8_scale_attr(ctx, ctx.def.attrs.get_float("scale", 0.0, kFloatMax));
  const auto cl = ctx.def.attrs.get_ints("clamp", 2, 0, 255);
  if (cl[0] > cl[1]) ctx.fail("clamp: qmin > qmax");
  return std::make_unique<PoolOp>(ctx.def, x, Qs8PoolShape{}, 2, false, std::vector<float>{scale},
                                  out_zp(ctx), int32_t(cl[0]), int32_t(cl[1]));
}

std::unique_ptr<Op> make_qs8_flatten(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  const TensorDesc& x = qs8_expect_u8_input(ctx, 0);
  TensorDesc y = x;
  y.rank = 2;
  y.c = x.elems();
  y.h = y.w = 1;
  ctx.expect_output(y);
  if (out_zp(ctx) != x.zero_point) ctx.fail("flatten keeps the input's zero point");
  return std::make_unique<FlattenOp>(ctx.def);
}

}  // namespace eo::rt
