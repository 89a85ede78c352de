// The fp32 runtime ops other than conv2d / linear: pooling, add, channel_scale, activations,
// flatten, channel_affine. All over f32 NCHW tensors; they call the training kernels (f32-pool,
// f32-activation, f32-elementwise), which are already parallel over planes / element blocks.
//
//   maxpool2d / avgpool2d   x (N, C, H, W) -> (N, C, OH, OW); kernel, stride, padding (h, w),
//                           count_include_pad (avg); padding <= kernel / 2 as PyTorch requires
//   global_avgpool2d        x (N, C, H, W) -> (N, C, 1, 1)
//   add                     a + b (same shape) [-> activation]
//   channel_scale           x (N, C, H, W) * s (N, C, 1, 1)  (squeeze-excitation)
//   activation              kind: relu | relu6 | hardswish | hardsigmoid | sigmoid
//   flatten                 (N, C, H, W) -> (N, C*H*W): the same bytes, aliased by the planner
//   channel_affine          x * scale[c] + shift[c]  (a BatchNorm that could not be folded)
#include <algorithm>

#include "common/parallel.h"
#include "f32-activation/activation.h"
#include "f32-elementwise/elementwise.h"
#include "f32-pool/pool.h"
#include "f32-epilogue/epilogue.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {

class PoolOp : public Op {
 public:
  PoolOp(const OpDef& d, bool max, const Pool2d& p, bool count_include_pad)
      : Op(d), max_(max), p_(p), cip_(count_include_pad) {}
  const char* type_name() const override { return max_ ? "maxpool2d" : "avgpool2d"; }
  std::string info() const override {
    return std::to_string(p_.kh) + "x" + std::to_string(p_.kw) + " s" + std::to_string(p_.sh) + " p" +
           std::to_string(p_.ph);
  }
  size_t workspace_bytes(int64_t batch) const override {
    return max_ ? static_cast<size_t>(batch * p_.C * p_.OH() * p_.OW() * 4) : 0;  // argmax
  }
  void run(const RunContext& ctx) const override {
    Pool2d p = p_;
    p.N = ctx.batch;
    if (max_) maxpool2d_forward(in(ctx, 0), out(ctx), reinterpret_cast<int32_t*>(ctx.workspace), p);
    else avgpool2d_forward(in(ctx, 0), out(ctx), p, cip_);
  }

 private:
  bool max_;
  Pool2d p_;
  bool cip_;
};

class GlobalAvgPoolOp : public Op {
 public:
  GlobalAvgPoolOp(const OpDef& d, int64_t C, int64_t HW) : Op(d), C_(C), HW_(HW) {}
  const char* type_name() const override { return "global_avgpool2d"; }
  void run(const RunContext& ctx) const override {
    global_avgpool2d_forward(in(ctx, 0), out(ctx), ctx.batch, C_, HW_);
  }

 private:
  int64_t C_, HW_;
};

class AddOp : public Op {
 public:
  AddOp(const OpDef& d, int64_t elems, Act act) : Op(d), elems_(elems), act_(act) {}
  const char* type_name() const override { return "add"; }
  std::string info() const override { return act_ == Act::none ? "" : act_name(act_); }
  void run(const RunContext& ctx) const override {
    const int64_t n = elems_ * ctx.batch;
    float* y = out(ctx);
    add_forward(in(ctx, 0), in(ctx, 1), y, n);
    if (act_ != Act::none)
      parallel_for(n, 32768, [&](int64_t b, int64_t e) { activate_inplace(act_, y + b, e - b); });
  }

 private:
  int64_t elems_;
  Act act_;
};

class ChannelScaleOp : public Op {
 public:
  ChannelScaleOp(const OpDef& d, int64_t C, int64_t HW) : Op(d), C_(C), HW_(HW) {}
  const char* type_name() const override { return "channel_scale"; }
  void run(const RunContext& ctx) const override {
    channel_scale_forward(in(ctx, 0), in(ctx, 1), out(ctx), ctx.batch, C_, HW_);
  }

 private:
  int64_t C_, HW_;
};

class ActivationOp : public Op {
 public:
  ActivationOp(const OpDef& d, Act act, int64_t elems) : Op(d), act_(act), elems_(elems) {}
  const char* type_name() const override { return act_name(act_); }
  void run(const RunContext& ctx) const override {
    const float* x = in(ctx, 0);
    float* y = out(ctx);
    const int64_t n = elems_ * ctx.batch;
    switch (act_) {
      case Act::relu: relu_forward(x, y, n); break;
      case Act::relu6: relu6_forward(x, y, n); break;
      case Act::hardswish: hardswish_forward(x, y, n); break;
      case Act::hardsigmoid: hardsigmoid_forward(x, y, n); break;
      case Act::sigmoid: sigmoid_forward(x, y, n); break;
      case Act::none: break;
    }
  }

 private:
  Act act_;
  int64_t elems_;
};

class FlattenOp : public Op {
 public:
  explicit FlattenOp(const OpDef& d) : Op(d) {}
  const char* type_name() const override { return "flatten"; }
  bool is_alias() const override { return true; }
  void run(const RunContext&) const override {}
};

class ChannelAffineOp : public Op {
 public:
  ChannelAffineOp(const OpDef& d, int64_t C, int64_t HW, const float* scale, const float* shift)
      : Op(d), C_(C), HW_(HW), scale_(scale), shift_(shift) {}
  const char* type_name() const override { return "channel_affine"; }
  int64_t weight_bytes() const override { return 8 * C_; }
  void run(const RunContext& ctx) const override {
    const float* x = in(ctx, 0);
    float* y = out(ctx);
    parallel_for(ctx.batch * C_, std::max<int64_t>(1, 16384 / HW_), [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        const int64_t c = t % C_;
        const float s = scale_[c], h = shift_[c];
        const float* xp = x + t * HW_;
        float* yp = y + t * HW_;
        for (int64_t i = 0; i < HW_; ++i) yp[i] = xp[i] * s + h;
      }
    });
  }

 private:
  int64_t C_, HW_;
  const float* scale_;
  const float* shift_;
};

TensorDesc nchw(int64_t c, int64_t h, int64_t w) {
  TensorDesc t;
  t.c = c;
  t.h = h;
  t.w = w;
  return t;
}

std::unique_ptr<Op> make_pool(const BuildContext& ctx, bool max) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 4) ctx.fail("input: expected a rank-4 tensor");
  const Attrs& a = ctx.def.attrs;
  const auto k = a.get_ints("kernel", 2, 1, 1024);
  const auto s = a.get_ints("stride", 2, 1, 1024);
  const auto p = a.get_ints("padding", 2, 0, 512);
  if (p[0] > k[0] / 2 || p[1] > k[1] / 2) ctx.fail("padding must be at most half the kernel");
  if (x.h + 2 * p[0] < k[0] || x.w + 2 * p[1] < k[1]) ctx.fail("kernel larger than the padded input");
  const bool cip = max ? true : a.get_int("count_include_pad", 0, 1, 1) != 0;
  Pool2d pp{0, x.c, x.h, x.w, k[0], k[1], s[0], s[1], p[0], p[1]};
  ctx.expect_output(nchw(x.c, pp.OH(), pp.OW()));
  return std::make_unique<PoolOp>(ctx.def, max, pp, cip);
}

}  // namespace

std::unique_ptr<Op> make_maxpool2d(const BuildContext& ctx) { return make_pool(ctx, true); }
std::unique_ptr<Op> make_avgpool2d(const BuildContext& ctx) { return make_pool(ctx, false); }

std::unique_ptr<Op> make_global_avgpool2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  ctx.expect_output(nchw(x.c, 1, 1));
  return std::make_unique<GlobalAvgPoolOp>(ctx.def, x.c, x.h * x.w);
}

std::unique_ptr<Op> make_add(const BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_f32_input(0);
  ctx.expect_f32_input(1);
  const TensorDesc& a = ctx.input(0);
  if (!a.same_shape(ctx.input(1))) ctx.fail("inputs " + a.str() + " and " + ctx.input(1).str() + " differ");
  TensorDesc y = a;
  y.rank = 0;
  ctx.expect_output(y);
  const Act act = static_cast<Act>(ctx.def.attrs.get_int("activation", 0, 3, 0));
  return std::make_unique<AddOp>(ctx.def, a.elems(), act);
}

std::unique_ptr<Op> make_channel_scale(const BuildContext& ctx) {
  ctx.expect_inputs(2, 2);
  ctx.expect_f32_input(0);
  ctx.expect_f32_input(1);
  const TensorDesc& x = ctx.input(0);
  const TensorDesc& s = ctx.input(1);
  if (s.c != x.c || s.h != 1 || s.w != 1) ctx.fail("scale " + s.str() + " must be (C, 1, 1) for input " + x.str());
  TensorDesc y = x;
  y.rank = 0;
  ctx.expect_output(y);
  return std::make_unique<ChannelScaleOp>(ctx.def, x.c, x.h * x.w);
}

std::unique_ptr<Op> make_activation(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  TensorDesc y = ctx.input(0);
  y.rank = 0;
  ctx.expect_output(y);
  const Act act = static_cast<Act>(ctx.def.attrs.get_int("kind", 1, 5));
  return std::make_unique<ActivationOp>(ctx.def, act, y.elems());
}

std::unique_ptr<Op> make_flatten(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  TensorDesc y;
  y.rank = 2;
  y.c = ctx.input(0).elems();
  ctx.expect_output(y);
  return std::make_unique<FlattenOp>(ctx.def);
}

std::unique_ptr<Op> make_channel_affine(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  TensorDesc y = x;
  y.rank = 0;
  ctx.expect_output(y);
  const Blob& s = ctx.blob("scale", {BlobType::f32}, {x.c});
  const Blob& h = ctx.blob("shift", {BlobType::f32}, {x.c});
  return std::make_unique<ChannelAffineOp>(ctx.def, x.c, x.h * x.w, s.as<float>(), h.as<float>());
}

}  // namespace eo::rt
