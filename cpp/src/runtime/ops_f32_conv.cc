// conv2d and linear for the runtime: f32 compute, weights stored f32, f16 or s8 (+ per-output-
// channel scale), with the fused epilogue  y = act(acc * scale[o] + bias[o] (+ residual))  applied
// to each block of the output right after the micro-kernel wrote it (still in L1/L2).
//
//   conv2d  x: (N, Cin, H, W)  w: (Cout, Cin/G, KH, KW)  residual: (N, Cout, OH, OW)  y: like residual
//   linear  x: (N, in)         w: (out, in)                                          y: (N, out)
//
// ConvOp reads the layer (f32-conv2d/layer.h), holds its weights pre-packed per ISA
// (packed-weights/packed_weights.h) and picks one of four drivers, each beside its kernels:
//  - depthwise convs (Cin/G == 1): f32-dwconv/conv.h;
//  - on AVX-512, convs whose taps are shifts of the image (stride 1 with output rows as wide as
//    the input: 1x1, 3x3/p1, 5x5/p2, ...) or of its phase planes (3x3/s2/p1, 1x1/s2, ...;
//    f32-directconv/taps.h): the direct conv, f32-directconv/conv.h;
//  - other convs that are not 1x1/s1 (any kernel, stride, padding), when the phase-plane geometry
//    fits: the implicit GEMM, f32-conv2d/shifted_conv.h;
//  - the rest: im2col into packed panels + the packed GEMM, f32-gemm/conv.h.
//
// Threads (batch-1 latency matters): with at least as many images as threads, images run in
// parallel and each is computed serially from per-thread scratch; with fewer, each image is split.
// The implicit-GEMM path splits it into one part per thread by output rows (by output channels
// for weight-heavy layers), the same part on the same thread in every layer (parallel_parts), each
// part building its own phase-plane rows: a part then reads what its thread wrote one layer
// earlier, from its own core's cache (see f32_shifted_conv_run). The direct path splits by output
// columns or row panels (f32_direct_conv_run), its KxK parts reading a private copy of their input
// window. The packed-GEMM path builds col in parallel column chunks into the call's workspace,
// then runs (row block x column chunk) tasks.
//
// linear puts the images in the micro-kernel's A role and the weights in the B role (weights
// packed in nr-column panels), so batch 1 is one row of C and no FMAs are spent on padding columns.
#include <cmath>
#include <mutex>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "f32-conv2d/layer.h"
#include "f32-conv2d/shifted_conv.h"
#include "f32-directconv/conv.h"
#include "f32-dwconv/conv.h"
#include "f32-epilogue/epilogue.h"
#include "f32-gemm/conv.h"
#include "f32-gemm/gemm.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "packed-weights/packed_weights.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {


WDtype wdtype_of(const Blob& w) {
  switch (w.type) {
    case BlobType::f16: return WDtype::f16;
    case BlobType::i8: return WDtype::s8;
    case BlobType::i4: return WDtype::s4;
    case BlobType::i2: return WDtype::s2;
    case BlobType::i1: return WDtype::s1;
    default: return WDtype::f32;
  }
}

const char* wdtype_name(WDtype t) {
  switch (t) {
    case WDtype::f16: return "f16";
    case WDtype::s8: return "i8";
    case WDtype::s4: return "i4";
    case WDtype::s2: return "i2";
    case WDtype::s1: return "i1";
    default: return "f32";
  }
}

// Weight blob types of the f32-compute conv / linear; the integer ones carry per-row scales.
constexpr std::initializer_list<BlobType> kWeightTypes = {BlobType::f32, BlobType::f16, BlobType::i8, BlobType::i4,
                                                          BlobType::i2, BlobType::i1};

// Weights in their stored dtype, packed lazily once per ISA (engines survive set_isa).
// Roles: the GEMM's A operand (mr-row panels, depth blocks of packed_kc), its B operand (nr-column
// panels), the A operand of the implicit-GEMM conv kernels (their mr, one depth block), or of the
// direct conv kernels (their mr, one depth block; the fallback role on paths without one).
enum class WRole { gemm_a, gemm_b, conv_a, direct };

class WeightCache {
 public:
  WeightCache(WDtype dt, const void* w, int64_t groups, int64_t rows, int64_t cols, WRole role,
              WRole fallback = WRole::gemm_a)
      : dt_(dt), w_(static_cast<const uint8_t*>(w)), groups_(groups), rows_(rows), cols_(cols),
        role_(role), fallback_(fallback) {}
  const std::vector<PackedWeights>& get(Isa isa) const {
    const int i = static_cast<int>(isa);
    std::call_once(once_[i], [&] {
      const F32GemmUkernel& uk = f32_gemm_ukernel_for(isa);
      const F32DirectConvUkernel* dk = f32_directconv_ukernel(isa);
      const WRole r = role_ == WRole::direct && !dk ? fallback_ : role_;
      const bool one_block = r == WRole::conv_a || r == WRole::direct;
      const int64_t tile = r == WRole::gemm_b ? uk.nr
                           : r == WRole::conv_a ? f32_conv2d_ukernels_for(isa).mr
                           : r == WRole::direct ? dk->mr
                                                : uk.mr;
      const size_t gbytes = static_cast<size_t>(rows_ * wdtype_row_bytes(dt_, cols_));
      for (int64_t g = 0; g < groups_; ++g)
        packed_[i].push_back(pack_weights(dt_, w_ + g * gbytes, rows_, cols_, tile, one_block ? cols_ : 0));
    });
    return packed_[i];
  }

 private:
  WDtype dt_;
  const uint8_t* w_;
  int64_t groups_, rows_, cols_;
  WRole role_, fallback_;
  mutable std::once_flag once_[3];
  mutable std::vector<PackedWeights> packed_[3];
};

class ConvOp : public Op {
 public:
  ConvOp(const OpDef& d, const Conv2dShape& s, const Blob& w, const float* bias, const float* scale,
         Act act, bool residual)
      : Op(d), L_(s, wdtype_of(w), bias, scale, act, residual), wbytes_(static_cast<int64_t>(w.bytes)),
        shifted_(f32_shifted_conv_plan(L_, &pg_)),
        direct_(f32_direct_conv_plan(L_, &taps_)),
        cache_(L_.wdt, w.data, L_.G, L_.Mg, L_.Kg, direct_ ? WRole::direct : shifted_ ? WRole::conv_a : WRole::gemm_a,
               shifted_ ? WRole::conv_a : WRole::gemm_a) {
    if (L_.depthwise) dw_ = f32_depthwise_conv_create(L_, w.data);
    else cache_.get(active_isa());  // pack now, not in the first run
  }

  const char* type_name() const override { return "conv2d"; }
  int64_t macs_per_image() const override { return L_.s.Cout * L_.P * L_.Kg; }
  int64_t weight_bytes() const override { return wbytes_; }
  std::string info() const override {
    const Conv2dShape& s = L_.s;
    std::string r = std::to_string(s.KH) + "x" + std::to_string(s.KW) + " s" + std::to_string(s.sh) +
                    " p" + std::to_string(s.ph) + (s.groups > 1 ? " g" + std::to_string(s.groups) : "") +
                    " w:" + wdtype_name(L_.wdt);
    if (L_.residual) r += " +res";
    if (L_.act != Act::none) r += std::string(" ") + act_name(L_.act);
    return r;
  }

  size_t workspace_bytes(int64_t) const override {
    if (L_.depthwise) return 0;
    if (shifted_) return f32_shifted_conv_workspace_bytes(L_, pg_);
    return f32_gemm_conv_workspace_bytes(L_);
  }

  void run(const RunContext& ctx) const override {
    const Isa isa = active_isa();
    const F32ConvCall call{ctx.batch, in(ctx, 0), L_.residual ? in(ctx, 1) : nullptr, out(ctx), ctx.workspace};
    const F32DirectConvUkernel* dk = direct_ ? f32_directconv_ukernel(isa) : nullptr;
    if (L_.depthwise) f32_depthwise_conv_run(L_, dw_, call);
    else if (dk) f32_direct_conv_run(L_, taps_, *dk, isa, cache_.get(isa), call);
    else if (shifted_) f32_shifted_conv_run(L_, pg_, isa, cache_.get(isa), call);
    else f32_gemm_conv_run(L_, isa, cache_.get(isa), call);
  }

 private:
  F32ConvLayer L_;
  int64_t wbytes_;
  PhaseGeometry pg_;
  bool shifted_;
  DirectTaps taps_;  // empty for 1x1
  bool direct_;
  WeightCache cache_;
  F32DepthwiseConv dw_;
};

class LinearOp : public Op {
 public:
  LinearOp(const OpDef& d, int64_t in, int64_t out, const Blob& w, const float* bias,
           const float* scale, Act act)
      : Op(d), in_(in), out_(out), wdt_(wdtype_of(w)), wbytes_(static_cast<int64_t>(w.bytes)),
        bias_(bias), scale_(scale), act_(act), cache_(wdt_, w.data, 1, out, in, WRole::gemm_b) {
    cache_.get(active_isa());
  }
  const char* type_name() const override { return "linear"; }
  int64_t macs_per_image() const override { return in_ * out_; }
  int64_t weight_bytes() const override { return wbytes_; }
  std::string info() const override {
    return std::string("w:") + wdtype_name(wdt_) +
           (act_ != Act::none ? std::string(" ") + act_name(act_) : "");
  }
  size_t workspace_bytes(int64_t batch) const override {
    return static_cast<size_t>((batch + 16) * in_ * 4);  // x packed as A: round_up(batch, mr), mr <= 16
  }

  void run(const RunContext& ctx) const override {
    const Isa isa = active_isa();
    const F32GemmUkernel& uk = f32_gemm_ukernel_for(isa);
    const PackedWeights& W = cache_.get(isa)[0];
    const int64_t N = ctx.batch, nr = uk.nr, mr = uk.mr;
    const PackedA LA{N, in_, packed_kc(in_), mr, round_up(N, mr)};
    float* pa = reinterpret_cast<float*>(ctx.workspace);
    pack_a(LA, row_major(in(ctx, 0), in_), pa);
    const int64_t Np = W.panels();  // weight panels of nr output columns
    const int64_t nb = std::min<int64_t>(Np, 2 * get_num_threads());
    float* y = out(ctx);
    const Epilogue ep{bias_, scale_, act_, true};
    parallel_for(nb, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        const int64_t q0 = Np * c / nb, q1 = Np * (c + 1) / nb;
        if (q0 == q1) continue;
        float* bbuf = W.dtype == WDtype::f32 ? nullptr : scratch_f32(weight_panels_scratch(W, q0, q1), kScratchRtA);
        const PanelView B = weight_panels(W, q0, q1, bbuf, isa);
        for (int64_t q = q0; q < q1; ++q) {
          const size_t cols = static_cast<size_t>(std::min(nr, out_ - q * nr));
          for (int64_t k0 = 0; k0 < in_; k0 += LA.kc) {
            const int64_t kcb = std::min(LA.kc, in_ - k0);
            for (int64_t p = 0; p < LA.mpad / mr; ++p) {
              const size_t rows = static_cast<size_t>(std::min(mr, N - p * mr));
              uk.fn(rows, cols, static_cast<size_t>(kcb), pa + k0 * LA.mpad + p * kcb * mr,
                    B.at(k0, kcb, q), y + p * mr * out_ + q * nr, static_cast<size_t>(out_), k0 > 0 ? 1 : 0);
            }
          }
        }
        apply_epilogue(ep, y, nullptr, out_, 0, N, q0 * nr, std::min(q1 * nr, out_));
      }
    });
  }

 private:
  int64_t in_, out_;
  WDtype wdt_;
  int64_t wbytes_;
  const float* bias_;
  const float* scale_;
  Act act_;
  WeightCache cache_;
};

// The weight blob (f32 | f16 | i8 | i4 | i2 | i1 with dims `dims`), its scale (f32 (rows), required for
// the integer types and only then), and an optional f32 bias (rows).
struct Weights {
  const Blob* w;
  const float* scale;
  const float* bias;
};
Weights read_weights(const BuildContext& ctx, std::initializer_list<int64_t> dims, int64_t rows) {
  Weights r;
  r.w = &ctx.blob("weight", kWeightTypes, dims);
  const Blob* s = ctx.optional_blob("weight_scale", {BlobType::f32}, {rows});
  const bool integer = r.w->type == BlobType::i8 || r.w->type == BlobType::i4 || r.w->type == BlobType::i2 ||
                       r.w->type == BlobType::i1;
  if (integer != (s != nullptr))
    ctx.fail("blob 'weight_scale' is required with i8 / i4 / i2 / i1 weights and only with them");
  r.scale = s ? s->as<float>() : nullptr;
  // a scale multiplies every weight of its row: a non-finite one would make the whole output channel
  // NaN / inf without a word (the writer stores max|w| / 127, or 1 for an all-zero row)
  for (int64_t i = 0; r.scale && i < rows; ++i)
    if (!std::isfinite(r.scale[i]) || !(r.scale[i] > 0.f))
      ctx.fail("blob 'weight_scale': row " + std::to_string(i) + " scale " + std::to_string(r.scale[i]) +
               " is not finite and > 0");
  const Blob* b = ctx.optional_blob("bias", {BlobType::f32}, {rows});
  r.bias = b ? b->as<float>() : nullptr;
  return r;
}

Act read_act(const BuildContext& ctx, bool allow_sigmoids) {
  const int64_t a = ctx.def.attrs.get_int("activation", 0, allow_sigmoids ? 5 : 3, 0);
  return static_cast<Act>(a);
}

}  // namespace

std::unique_ptr<Op> make_conv2d(const BuildContext& ctx) {
  ctx.expect_inputs(1, 2);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.rank != 4) ctx.fail("input: expected a rank-4 tensor");
  const Attrs& a = ctx.def.attrs;
  const auto stride = a.get_ints("stride", 2, 1, 64);
  const auto pad = a.get_ints("padding", 2, 0, 64);
  const int64_t groups = a.get_int("groups", 1, x.c);
  if (x.c % groups != 0) ctx.fail("groups " + std::to_string(groups) + " does not divide Cin " + std::to_string(x.c));
  const int64_t cout = ctx.output().c;
  if (cout % groups != 0) ctx.fail("groups does not divide Cout");
  const Blob& wb = ctx.blob("weight", kWeightTypes, {cout, x.c / groups, -1, -1});
  const int64_t kh = wb.dims[2], kw = wb.dims[3];
  if (kh > 64 || kw > 64) ctx.fail("kernel larger than 64");
  const Weights w = read_weights(ctx, {cout, x.c / groups, kh, kw}, cout);
  Conv2dShape s{0, x.c, x.h, x.w, cout, kh, kw, stride[0], stride[1], pad[0], pad[1], groups};
  if (x.h + 2 * s.ph < kh || x.w + 2 * s.pw < kw) ctx.fail("kernel larger than the padded input");
  TensorDesc y;
  y.c = cout;
  y.h = s.OH();
  y.w = s.OW();
  ctx.expect_output(y);
  const bool residual = ctx.f32_residual_input();
  // Scratch of one image must stay reasonable (padded planes, one group's col).
  if (s.Cin / groups * kh * kw * y.h * y.w > (int64_t(1) << 28)) ctx.fail("im2col matrix too large");
  return std::make_unique<ConvOp>(ctx.def, s, *w.w, w.bias, w.scale, read_act(ctx, false), residual);
}

std::unique_ptr<Op> make_linear(const BuildContext& ctx) {
  ctx.expect_inputs(1, 1);
  ctx.expect_f32_input(0);
  const TensorDesc& x = ctx.input(0);
  if (x.h != 1 || x.w != 1) ctx.fail("input: expected (N, features), got " + x.str());
  const int64_t out = ctx.output().c;
  const Weights w = read_weights(ctx, {out, x.c}, out);
  TensorDesc y;
  y.rank = 2;
  y.c = out;
  ctx.expect_output(y);
  return std::make_unique<LinearOp>(ctx.def, x.c, out, *w.w, w.bias, w.scale, read_act(ctx, false));
}

}  // namespace eo::rt
