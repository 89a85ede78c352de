// Binary conv (op id 300, "b1_conv2d"): XNOR-popcount convolution over sign-binarized activations
// and weights (b1-gemm), per-output-channel scale alpha.
// Emitted by scheme "binary" for a conv that reads a binary activation (deploy/lower/dense.py).
//
//   inputs: x f32 NCHW, optional residual f32 shaped like the output   output: f32 NCHW (Cout, OH, OW)
//   attrs: stride (2), padding (2), pad_value (-1, 0, +1; default 0 = zero padding),
//          activation (0 none, 1 relu, 2 relu6; default 0)
//   blobs: weight  bitpacked_b1, dims (Cout, Cin, KH, KW), bytes:
//            float alpha[Cout]
//            then per output channel ceil(Cin*KH*KW / 8) bytes: bit t (LSB first) = 1 where
//            W[o].flat[t] >= 0 (+1), 0 for -1 (edgeopt._core.lowbit_pack(sign(W).reshape(Cout, -1), 1))
//          bias    f32 (Cout), optional
//          threshold f32 (Cin), optional: sign(x[c]) = +1 where x[c] >= threshold[c] (else x >= 0)
//   y[o] = act(alpha[o] * sum sign(x) sign(W[o]) + bias[o] + residual[o])
//   (the lowering fuses a skip connection's add and the activation after it, as conv2d does)
//
// At load, a b1_conv2d whose output only another b1_conv2d reads (as its input 0) hands it bit
// planes instead of f32 values (hand_off_to, b1_link in b1-gemm/gemm.h) where the CPU has the
// direct path: the tensor's buffer then holds the reader's planes, which the writer's epilogue
// sets with one compare per channel, and the reader does not binarize. Both check at every run
// that the active path is still the direct one (set_isa may change it) and otherwise pass f32.
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>

#include "b1-gemm/gemm.h"
#include "isa/dispatch.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {

class B1ConvOp : public Op {
 public:
  B1ConvOp(const OpDef& def, B1ConvWeights w, B1Conv cv, const float* bias, int64_t h, int64_t wd,
           Act act, bool residual, int64_t blob_bytes)
      : Op(def), w_(std::move(w)), plan_(b1_conv_plan(w_, cv, h, wd)), bias_(bias), act_(act),
        residual_(residual), blob_bytes_(blob_bytes) {}
  const char* type_name() const override { return "b1_conv2d"; }
  void run(const RunContext& ctx) const override {
    const B1ConvEpilogue epi{bias_, residual_ ? in(ctx, 1) : nullptr, lo(), hi()};
    const bool direct = b1_gemm_ukernel(active_isa()).direct != nullptr;
    B1ConvSource src{in(ctx, 0)};
    if (in_plane_bytes_ && direct) src = B1ConvSource{nullptr, in<uint32_t>(ctx, 0), in_plane_bytes_};
    B1ConvSink sink{out(ctx)};
    if (link_.reader && direct) sink = B1ConvSink{nullptr, &link_, out<uint32_t>(ctx)};
    b1_conv2d(plan_, ctx.batch, src, epi, sink, true);
  }
  bool hand_off_to(Op& reader_op, int64_t tensor_bytes) override {
    auto* reader = dynamic_cast<B1ConvOp*>(&reader_op);
    if (!reader || residual_ || !plane_links_enabled()) return false;
    B1PlaneLink link;
    if (!b1_link(plan_, bias_, lo(), hi(), reader->plan_, &link) || link.image_bytes > tensor_bytes) return false;
    link_ = std::move(link);
    reader->in_plane_bytes_ = link_.image_bytes;
    return true;
  }
  int64_t macs_per_image() const override { return w_.cout * w_.cin * w_.kh * w_.kw * plan_.oh * plan_.ow; }
  int64_t weight_bytes() const override { return blob_bytes_; }
  std::string info() const override {
    return "1-bit " + std::to_string(w_.kh) + "x" + std::to_string(w_.kw) + " pad_value " +
           std::to_string(plan_.cv.pad_value) + (plan_.cv.threshold ? " threshold" : "") +
           (residual_ ? " +res" : "") +
           (act_ != Act::none ? std::string(" ") + act_name(act_) : "") + (in_plane_bytes_ ? " in:bits" : "") +
           (link_.reader ? " out:bits" : "");
  }

 private:
  float lo() const { return act_ == Act::none ? -std::numeric_limits<float>::infinity() : 0.f; }
  float hi() const { return act_ == Act::relu6 ? 6.f : std::numeric_limits<float>::infinity(); }

  B1ConvWeights w_;
  B1ConvPlan plan_;  // points at w_ (declared after it)
  const float* bias_;
  Act act_;
  bool residual_;
  int64_t blob_bytes_;
  B1PlaneLink link_;        // to the reader of the output, if it takes planes (link_.reader set)
  int64_t in_plane_bytes_ = 0;  // > 0: the input is this op's planes (bytes per image), from its writer
};

std::atomic<bool> g_plane_links{true};

}  // namespace

bool plane_links_enabled() { return g_plane_links.load(); }
bool set_plane_links_enabled(bool on) { return g_plane_links.exchange(on); }

std::unique_ptr<Op> make_b1_conv2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 2);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 4) ctx.fail("input: expected a rank-4 tensor");
  const Attrs& a = ctx.def.attrs;
  const auto stride = a.get_ints("stride", 2, 1, 64);
  const auto pad = a.get_ints("padding", 2, 0, 64);
  const int pad_value = int(a.get_int("pad_value", -1, 1, 0));
  const int64_t act = a.get_int("activation", 0, 2, 0);
  const int64_t cout = ctx.output().c;
  const Blob& b = ctx.blob("weight", {BlobType::bitpacked_b1}, {cout, x.c, -1, -1});
  const int64_t kh = b.dims[2], kw = b.dims[3];
  if (kh < 1 || kw < 1 || kh > 64 || kw > 64) ctx.fail("kernel size out of range");
  if (x.h + 2 * pad[0] < kh || x.w + 2 * pad[1] < kw) ctx.fail("kernel larger than the padded input");
  const int64_t per = x.c * kh * kw, row_bytes = (per + 7) / 8;
  if (int64_t(b.bytes) != 4 * cout + cout * row_bytes) ctx.fail("bit-packed weight: blob size mismatch");
  std::vector<float> alpha(cout), signs(cout * per);
  std::memcpy(alpha.data(), b.data, 4 * cout);
  for (float v : alpha)
    if (!std::isfinite(v)) ctx.fail("bit-packed weight: alpha is not finite");
  const uint8_t* bits = b.data + 4 * cout;
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t t = 0; t < per; ++t)
      signs[o * per + t] = (bits[o * row_bytes + t / 8] >> (t % 8)) & 1 ? 1.f : -1.f;
  const Blob* bias = ctx.optional_blob("bias", {BlobType::f32}, {cout});
  const Blob* threshold = ctx.optional_blob("threshold", {BlobType::f32}, {x.c});
  if (threshold)
    for (int64_t c = 0; c < x.c; ++c)
      if (!std::isfinite(threshold->as<float>()[c])) ctx.fail("threshold: not finite at channel " + std::to_string(c));
  TensorDesc y;
  y.c = cout;
  y.h = (x.h + 2 * pad[0] - kh) / stride[0] + 1;
  y.w = (x.w + 2 * pad[1] - kw) / stride[1] + 1;
  ctx.expect_output(y);
  const bool residual = ctx.f32_residual_input();
  B1Conv cv{stride[0], stride[1], pad[0], pad[1], pad_value, threshold ? threshold->as<float>() : nullptr};
  return std::make_unique<B1ConvOp>(ctx.def, b1_pack_conv_weights(cout, x.c, kh, kw, signs.data(), alpha.data()),
                                    cv, bias ? bias->as<float>() : nullptr, x.h, x.w,
                                    static_cast<Act>(act), residual, int64_t(b.bytes));
}

}  // namespace eo::rt
