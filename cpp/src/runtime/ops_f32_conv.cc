// conv2d and linear for the runtime: f32 compute, weights stored f32, f16 or s8 (+ per-output-
// channel scale), with the fused epilogue  y = act(acc * scale[o] + bias[o] (+ residual))  applied
// to each block of the output right after the micro-kernel wrote it (still in L1/L2).
//
//   conv2d  x: (N, Cin, H, W)  w: (Cout, Cin/G, KH, KW)  residual: (N, Cout, OH, OW)  y: like residual
//   linear  x: (N, in)         w: (out, in)                                          y: (N, out)
//
// Lowering (as f32-conv2d/conv2d.cc): per image and group, Y_g (Mg x P) = W_g (Mg x Kg) col_g
// (Kg x P) with col built by im2col straight into the micro-kernel's packed-B layout (a 1x1/s1/p0
// conv packs x_g itself). Weights are pre-packed per ISA (f16-gemm/packed_weights.h).
// Depthwise convs (Cin/G == 1) run direct loops over output rows, one (image, channel) plane per
// task, with the epilogue on the plane it just computed.
//
// Threads (batch-1 latency matters): with at least as many images as threads, images run in
// parallel and each is computed serially from per-thread scratch; with fewer, each image is split:
// col is built in parallel column chunks into the call's workspace, then (row block x column
// chunk) tasks run the micro-kernels. Splitting rows first keeps each task's share of widened
// weights private; columns are split when there are too few row panels to go round.
//
// linear puts the images in the micro-kernel's A role and the weights in the B role (weights
// packed in nr-column panels), so batch 1 is one row of C and no FMAs are spent on padding columns.
#include <algorithm>
#include <cstring>
#include <mutex>

#include "common/parallel.h"
#include "common/scratch.h"
#include "f16-gemm/packed_weights.h"
#include "f32-conv2d/conv2d.h"
#include "f32-conv2d/im2col.h"
#include "f32-gemm/gemm.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "runtime/epilogue.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {

// Per-thread scratch slots of the runtime (f32-gemm uses 0-1, f32-conv2d 2-7).
enum Slot { kSlotCol = 8, kSlotA = 9, kSlotPad = 10 };

constexpr int64_t kL2ChunkBytes = 192 * 1024;  // a column chunk of packed col stays in L2

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

WDtype wdtype_of(const Blob& w) {
  return w.type == BlobType::f16 ? WDtype::f16 : w.type == BlobType::i8 ? WDtype::s8 : WDtype::f32;
}

// Weights in their stored dtype, packed lazily once per ISA (engines survive set_isa).
class WeightCache {
 public:
  WeightCache(WDtype dt, const void* w, int64_t groups, int64_t rows, int64_t cols, bool b_role)
      : dt_(dt), w_(static_cast<const uint8_t*>(w)), groups_(groups), rows_(rows), cols_(cols), b_role_(b_role) {}
  const std::vector<PackedWeights>& get(Isa isa) const {
    const int i = static_cast<int>(isa);
    std::call_once(once_[i], [&] {
      const F32GemmUkernel& uk = f32_gemm_ukernel_for(isa);
      const int64_t tile = b_role_ ? uk.nr : uk.mr;
      const size_t gbytes = static_cast<size_t>(rows_ * cols_) * wdtype_size(dt_);
      for (int64_t g = 0; g < groups_; ++g)
        packed_[i].push_back(pack_weights(dt_, w_ + g * gbytes, rows_, cols_, tile));
    });
    return packed_[i];
  }

 private:
  WDtype dt_;
  const uint8_t* w_;
  int64_t groups_, rows_, cols_;
  bool b_role_;
  mutable std::once_flag once_[3];
  mutable std::vector<PackedWeights> packed_[3];
};

// C (rows [p0, p1) panels x columns of B-chunk panels [q0, q1)) = A B, every depth block.
void gemm_panels(const F32GemmUkernel& uk, const PanelView& A, int64_t M, int64_t p0, int64_t p1,
                 const PackedB& L, const float* pb, int64_t q0, int64_t q1, float* C, int64_t ldc) {
  const int64_t mr = uk.mr, nr = uk.nr;
  for (int64_t q = q0; q < q1; ++q) {
    const size_t cols = static_cast<size_t>(std::min(nr, L.N - q * nr));
    for (int64_t k0 = 0; k0 < L.K; k0 += L.kc) {
      const int64_t kcb = std::min(L.kc, L.K - k0);
      const float* pbq = pb + k0 * L.npad + q * kcb * nr;
      for (int64_t p = p0; p < p1; ++p) {
        const size_t rows = static_cast<size_t>(std::min(mr, M - p * mr));
        uk.fn(rows, cols, static_cast<size_t>(kcb), A.at(k0, kcb, p), pbq, C + p * mr * ldc + q * nr,
              static_cast<size_t>(ldc), k0 > 0 ? 1 : 0);
      }
    }
  }
}

class ConvOp : public Op {
 public:
  ConvOp(const OpDef& d, const Conv2dShape& s, const Blob& w, const float* bias, const float* scale,
         Act act, bool residual)
      : Op(d), s_(s), wdt_(wdtype_of(w)), w_(w.data), wbytes_(static_cast<int64_t>(w.bytes)),
        bias_(bias), scale_(scale), act_(act), residual_(residual),
        G_(s.groups), Cg_(s.Cin / s.groups), Mg_(s.Cout / s.groups), Kg_(Cg_ * s.KH * s.KW),
        P_(s.OH() * s.OW()), depthwise_(Cg_ == 1 && s.groups > 1),
        pointwise_(s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0),
        cache_(wdt_, w.data, G_, Mg_, Kg_, false) {
    if (!depthwise_) cache_.get(active_isa());  // pack now, not in the first run
  }

  const char* type_name() const override { return "conv2d"; }
  int64_t macs_per_image() const override { return s_.Cout * P_ * Kg_; }
  int64_t weight_bytes() const override { return wbytes_; }
  std::string info() const override {
    std::string r = std::to_string(s_.KH) + "x" + std::to_string(s_.KW) + " s" + std::to_string(s_.sh) +
                    " p" + std::to_string(s_.ph) + (s_.groups > 1 ? " g" + std::to_string(s_.groups) : "") +
                    " w:" + (wdt_ == WDtype::f32 ? "f32" : wdt_ == WDtype::f16 ? "f16" : "i8");
    if (residual_) r += " +res";
    if (act_ != Act::none) r += std::string(" ") + act_name(act_);
    return r;
  }

  size_t workspace_bytes(int64_t) const override {
    if (depthwise_) return 0;
    // Split-image mode: padded planes + the whole packed col of one group (widest nr: 32).
    const int64_t pad = pointwise_ ? 0 : round_up(Cg_ * (s_.H + 2 * s_.ph) * (s_.W + 2 * s_.pw), 16);
    return static_cast<size_t>((pad + Kg_ * round_up(P_, 32)) * 4);
  }

  void run(const RunContext& ctx) const override {
    if (depthwise_) run_depthwise(ctx);
    else run_gemm(ctx);
  }

 private:
  Epilogue epilogue(int64_t g) const {
    return {bias_ ? bias_ + g * Mg_ : nullptr, scale_ ? scale_ + g * Mg_ : nullptr, act_, false};
  }

  void run_gemm(const RunContext& ctx) const {
    const Isa isa = active_isa();
    const F32GemmUkernel& uk = f32_gemm_ukernel_for(isa);
    const std::vector<PackedWeights>& W = cache_.get(isa);
    const int64_t N = ctx.batch;
    const int threads = get_num_threads();
    if (N >= threads) {
      parallel_for(N, 1, [&](int64_t b, int64_t e) {
        for (int64_t n = b; n < e; ++n) image_serial(ctx, n, isa, uk, W);
      });
    } else {
      for (int64_t n = 0; n < N; ++n) image_split(ctx, n, isa, uk, W, threads);
    }
  }

  // Pointers of image n, group g.
  const float* xg(const RunContext& ctx, int64_t n, int64_t g) const {
    return in(ctx, 0) + (n * s_.Cin + g * Cg_) * s_.H * s_.W;
  }
  float* yg(const RunContext& ctx, int64_t n, int64_t g) const {
    return out(ctx) + (n * s_.Cout + g * Mg_) * P_;
  }
  const float* rg(const RunContext& ctx, int64_t n, int64_t g) const {
    return residual_ ? in(ctx, 1) + (n * s_.Cout + g * Mg_) * P_ : nullptr;
  }

  // Columns [j0, j0 + L.N) of col_g (packed with layout L) into pb.
  void build_col(const float* x, const float* xp, int64_t j0, const PackedB& L, float* pb) const {
    if (pointwise_) pack_b(L, row_major(x + j0, P_), pb);
    else im2col_packed(s_, xp, Cg_, j0, L, pb);
  }

  PackedB layout(const F32GemmUkernel& uk, int64_t cols) const {
    return {Kg_, cols, packed_kc(Kg_), uk.nr, round_up(cols, uk.nr)};
  }

  // One image on this thread, from per-thread scratch (never waits on a parallel loop). For each
  // column chunk (~64 KB of col, L1/L2), stored-dtype weights are widened a block of row panels
  // at a time right before use, so neither the col chunk nor the widened block leaves cache.
  void image_serial(const RunContext& ctx, int64_t n, Isa isa, const F32GemmUkernel& uk,
                    const std::vector<PackedWeights>& W) const {
    const int64_t chunk = uk.nr * std::max<int64_t>(1, 16384 / (Kg_ * uk.nr));
    for (int64_t g = 0; g < G_; ++g) {
      const PackedWeights& Wg = W[g];
      const int64_t Mp = Wg.panels();
      const int64_t step = Wg.dtype == WDtype::f32 ? Mp : std::max<int64_t>(1, 16384 / (uk.mr * Kg_));
      float* abuf = Wg.dtype == WDtype::f32
                        ? nullptr
                        : scratch_f32(weight_panels_scratch(Wg, 0, std::min(Mp, step)), kSlotA);
      const float* x = xg(ctx, n, g);
      float* xp = nullptr;
      if (!pointwise_) {
        xp = scratch_f32(Cg_ * (s_.H + 2 * s_.ph) * (s_.W + 2 * s_.pw), kSlotPad);
        pad_planes(s_, x, Cg_, xp);
      }
      float* pb = scratch_f32(Kg_ * chunk, kSlotCol);
      float* y = yg(ctx, n, g);
      const float* r = rg(ctx, n, g);
      const Epilogue ep = epilogue(g);
      for (int64_t j0 = 0; j0 < P_; j0 += chunk) {
        const PackedB L = layout(uk, std::min(chunk, P_ - j0));
        build_col(x, xp, j0, L, pb);
        for (int64_t b0 = 0; b0 < Mp; b0 += step) {
          const int64_t b1 = std::min(Mp, b0 + step);
          const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
          gemm_panels(uk, A, Mg_, b0, b1, L, pb, 0, L.npad / uk.nr, y + j0, P_);
          apply_epilogue(ep, y, r, P_, b0 * uk.mr, std::min(b1 * uk.mr, Mg_), j0, j0 + L.N);
        }
      }
    }
  }

  // One image split over threads: col in parallel chunks into the workspace, then (row block x
  // column chunk) tasks.
  void image_split(const RunContext& ctx, int64_t n, Isa isa, const F32GemmUkernel& uk,
                   const std::vector<PackedWeights>& W, int threads) const {
    const int64_t nr = uk.nr, Np = ceil_div(P_, nr);
    const int64_t max_chunk_panels = std::max<int64_t>(1, kL2ChunkBytes / (4 * Kg_ * nr));
    float* xp = reinterpret_cast<float*>(ctx.workspace);
    float* col = xp + (pointwise_ ? 0 : round_up(Cg_ * (s_.H + 2 * s_.ph) * (s_.W + 2 * s_.pw), 16));
    for (int64_t g = 0; g < G_; ++g) {
      const PackedWeights& Wg = W[g];
      const int64_t Mp = Wg.panels();
      const int64_t mb = std::min<int64_t>(Mp, 2 * threads);
      const int64_t nb = std::min(Np, std::max(ceil_div(Np, max_chunk_panels), ceil_div(2 * threads, mb)));
      const float* x = xg(ctx, n, g);
      if (!pointwise_) pad_planes(s_, x, Cg_, xp);
      // Chunk c covers column panels [Np*c/nb, Np*(c+1)/nb); its packed block starts at
      // Kg * nr * (first panel), so the chunks tile `col` without gaps.
      auto chunk_range = [&](int64_t c, int64_t* q0, int64_t* q1) {
        *q0 = Np * c / nb;
        *q1 = Np * (c + 1) / nb;
      };
      parallel_for(nb, 1, [&](int64_t c0, int64_t c1) {
        for (int64_t c = c0; c < c1; ++c) {
          int64_t q0, q1;
          chunk_range(c, &q0, &q1);
          const PackedB L = layout(uk, std::min(q1 * nr, P_) - q0 * nr);
          build_col(x, xp, q0 * nr, L, col + Kg_ * nr * q0);
        }
      });
      float* y = yg(ctx, n, g);
      const float* r = rg(ctx, n, g);
      const Epilogue ep = epilogue(g);
      parallel_for(mb * nb, 1, [&](int64_t t0, int64_t t1) {
        for (int64_t t = t0; t < t1; ++t) {
          const int64_t mi = t / nb, c = t % nb;
          const int64_t p0 = Mp * mi / mb, p1 = Mp * (mi + 1) / mb;
          if (p0 == p1) continue;
          int64_t q0, q1;
          chunk_range(c, &q0, &q1);
          const PackedB L = layout(uk, std::min(q1 * nr, P_) - q0 * nr);
          // Stored-dtype weights are widened a few panels at a time (~64 KB), used while still
          // in L1/L2, then the next ones: no pass over a large widened copy.
          const int64_t step = Wg.dtype == WDtype::f32 ? p1 - p0
                                                      : std::max<int64_t>(1, 16384 / (uk.mr * Kg_));
          float* abuf = Wg.dtype == WDtype::f32
                            ? nullptr
                            : scratch_f32(weight_panels_scratch(Wg, p0, std::min(p1, p0 + step)), kSlotA);
          for (int64_t b0 = p0; b0 < p1; b0 += step) {
            const int64_t b1 = std::min(p1, b0 + step);
            const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
            gemm_panels(uk, A, Mg_, b0, b1, L, col + Kg_ * nr * q0, 0, q1 - q0, y + q0 * nr, P_);
            apply_epilogue(ep, y, r, P_, b0 * uk.mr, std::min(b1 * uk.mr, Mg_), q0 * nr, q0 * nr + L.N);
          }
        }
      });
    }
  }

  // Direct depthwise: one (image, channel) plane per task. The plane is copied into a zero-
  // bordered buffer first, so the tap loops need no bounds checks; 3x3 and 5x5 at stride 1 / 2
  // have compile-time loops (the ow loop then vectorizes, and 4x4..8x8 planes of the last stages
  // do not drown in loop overhead).
  void run_depthwise(const RunContext& ctx) const {
    const int64_t OH = s_.OH(), OW = s_.OW(), H = s_.H, W = s_.W, KK = s_.KH * s_.KW;
    const int64_t Hp = H + 2 * s_.ph, Wp = W + 2 * s_.pw;
    const int64_t mult = s_.Cout / s_.Cin;
    const float* x = in(ctx, 0);
    float* y = out(ctx);
    const float* res = residual_ ? in(ctx, 1) : nullptr;
    const Isa isa = active_isa();
    const auto plane = pick_plane_kernel();
    parallel_for(ctx.batch * s_.Cout, std::max<int64_t>(1, 2048 / std::max<int64_t>(1, P_ * KK / 9)),
                 [&](int64_t t0, int64_t t1) {
      float* xp = scratch_f32(static_cast<size_t>(Hp * Wp + KK), kSlotPad);
      float* wv = xp + Hp * Wp;
      std::fill(xp, xp + Hp * Wp, 0.f);
      const WeightConvertUkernels& cv = weight_convert_ukernels(isa);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t n = t / s_.Cout, o = t % s_.Cout;
        if (wdt_ == WDtype::f32) std::memcpy(wv, reinterpret_cast<const float*>(w_) + o * KK, KK * 4);
        else if (wdt_ == WDtype::f16) cv.f16_to_f32(reinterpret_cast<const uint16_t*>(w_) + o * KK, wv, KK);
        else cv.s8_to_f32(reinterpret_cast<const int8_t*>(w_) + o * KK, wv, KK);
        const float* xc = x + (n * s_.Cin + o / mult) * H * W;
        for (int64_t h = 0; h < H; ++h) std::memcpy(xp + (h + s_.ph) * Wp + s_.pw, xc + h * W, W * 4);
        float* yo = y + t * P_;
        plane(s_, xp, Wp, wv, yo, OH, OW);
        const Epilogue ep{bias_ ? bias_ + o : nullptr, scale_ ? scale_ + o : nullptr, act_, false};
        apply_epilogue(ep, yo, res ? res + t * P_ : nullptr, P_, 0, 1, 0, P_);
      }
    });
  }

  using PlaneFn = void (*)(const Conv2dShape&, const float*, int64_t, const float*, float*, int64_t, int64_t);
  template <int K, int S>
  static void plane_fixed(const Conv2dShape&, const float* xp, int64_t Wp, const float* w, float* y,
                          int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* yr = y + oh * OW;
      const float* xr = xp + oh * S * Wp;
      for (int64_t ow = 0; ow < OW; ++ow) {
        float acc = 0.f;
        for (int kh = 0; kh < K; ++kh)
          for (int kw = 0; kw < K; ++kw) acc += w[kh * K + kw] * xr[kh * Wp + ow * S + kw];
        yr[ow] = acc;
      }
    }
  }
  static void plane_any(const Conv2dShape& s, const float* xp, int64_t Wp, const float* w, float* y,
                        int64_t OH, int64_t OW) {
    for (int64_t oh = 0; oh < OH; ++oh) {
      float* yr = y + oh * OW;
      for (int64_t ow = 0; ow < OW; ++ow) yr[ow] = 0.f;
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const float wk = w[kh * s.KW + kw];
          const float* xr = xp + (oh * s.sh + kh) * Wp + kw;
          for (int64_t ow = 0; ow < OW; ++ow) yr[ow] += wk * xr[ow * s.sw];
        }
    }
  }
  PlaneFn pick_plane_kernel() const {
    if (s_.KH == s_.KW && s_.sh == s_.sw) {
      const int64_t k = s_.KH, st = s_.sh;
      if (k == 3 && st == 1) return plane_fixed<3, 1>;
      if (k == 3 && st == 2) return plane_fixed<3, 2>;
      if (k == 5 && st == 1) return plane_fixed<5, 1>;
      if (k == 5 && st == 2) return plane_fixed<5, 2>;
    }
    return plane_any;
  }

  Conv2dShape s_;
  WDtype wdt_;
  const uint8_t* w_;
  int64_t wbytes_;
  const float* bias_;
  const float* scale_;
  Act act_;
  bool residual_;
  int64_t G_, Cg_, Mg_, Kg_, P_;
  bool depthwise_, pointwise_;
  WeightCache cache_;
};

class LinearOp : public Op {
 public:
  LinearOp(const OpDef& d, int64_t in, int64_t out, const Blob& w, const float* bias,
           const float* scale, Act act)
      : Op(d), in_(in), out_(out), wdt_(wdtype_of(w)), wbytes_(static_cast<int64_t>(w.bytes)),
        bias_(bias), scale_(scale), act_(act), cache_(wdt_, w.data, 1, out, in, true) {
    cache_.get(active_isa());
  }
  const char* type_name() const override { return "linear"; }
  int64_t macs_per_image() const override { return in_ * out_; }
  int64_t weight_bytes() const override { return wbytes_; }
  std::string info() const override {
    return std::string("w:") + (wdt_ == WDtype::f32 ? "f32" : wdt_ == WDtype::f16 ? "f16" : "i8") +
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
        float* bbuf = W.dtype == WDtype::f32 ? nullptr : scratch_f32(weight_panels_scratch(W, q0, q1), kSlotA);
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

// The weight blob (f32 | f16 | i8 with dims `dims`), its scale (f32 (rows), required for i8 and
// only then), and an optional f32 bias (rows).
struct Weights {
  const Blob* w;
  const float* scale;
  const float* bias;
};
Weights read_weights(const BuildContext& ctx, std::initializer_list<int64_t> dims, int64_t rows) {
  Weights r;
  r.w = &ctx.blob("weight", {BlobType::f32, BlobType::f16, BlobType::i8}, dims);
  const Blob* s = ctx.optional_blob("weight_scale", {BlobType::f32}, {rows});
  if ((r.w->type == BlobType::i8) != (s != nullptr))
    ctx.fail("blob 'weight_scale' is required with i8 weights and only with them");
  r.scale = s ? s->as<float>() : nullptr;
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
  const Blob& wb = ctx.blob("weight", {BlobType::f32, BlobType::f16, BlobType::i8}, {cout, x.c / groups, -1, -1});
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
  const bool residual = ctx.num_inputs() == 2;
  if (residual) {
    ctx.expect_f32_input(1);
    if (!ctx.input(1).same_shape(y)) ctx.fail("residual " + ctx.input(1).str() + " does not match the output " + y.str());
  }
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
