// conv2d and linear for the runtime: f32 compute, weights stored f32, f16 or s8 (+ per-output-
// channel scale), with the fused epilogue  y = act(acc * scale[o] + bias[o] (+ residual))  applied
// to each block of the output right after the micro-kernel wrote it (still in L1/L2).
//
//   conv2d  x: (N, Cin, H, W)  w: (Cout, Cin/G, KH, KW)  residual: (N, Cout, OH, OW)  y: like residual
//   linear  x: (N, in)         w: (out, in)                                          y: (N, out)
//
// Lowering (as f32-conv2d/conv2d.cc): per image and group, Y_g (Mg x P) = W_g (Mg x Kg) col_g
// (Kg x P) with col built by im2col straight into the micro-kernel's packed-B layout (a 1x1/s1/p0
// conv packs x_g itself). Weights are pre-packed per ISA (packed-weights/packed_weights.h).
// Convs that are not 1x1/s1 (any kernel, stride, padding) run the implicit GEMM instead when its
// geometry fits (PhaseGeometry below): no im2col matrix, the f32-conv2d shifted micro-kernel
// (8x48 on AVX-512) over zero-bordered phase planes of the image, whole depth per tile, epilogue
// on each finished block. At batch 1 on resnet20 that took the 3x3 layers from ~45 to ~70 GMAC/s
// per core (the 12-row GEMM tile also wasted a third of its FMAs on 16-channel layers).
// Convs whose taps are shifts of the image (stride 1 with output rows as wide as the input: 1x1,
// 3x3/p1, 5x5/p2, ...) or of its phase planes (3x3/s2/p1, 1x1/s2, ...; f32-directconv/taps.h) on
// AVX-512 run the f32-directconv kernel (run_direct) instead: X read in place or from a copy,
// taps outside the image masked off per vector, epilogue in the kernel's store. At batch 1 on
// mobilenet_v2 that took its 1x1 layers from ~1.75 to ~1.1 ms (2 threads, shared machine); on
// resnet20's 3x3 layers it saves the phase-plane fill, the junk columns and the epilogue's round
// trip through a wide buffer of the implicit GEMM (resnet20 fp32 at 2 threads: 0.43 -> 0.35 ms,
// 1 thread: 0.55 -> 0.48 ms). Other paths pack X and run the GEMM as above.
// Depthwise convs (Cin/G == 1) run the f32-dwconv kernels: whole (image, channel) planes, 16
// outputs per vector with masked taps instead of a padded copy, epilogue in the same pass.
//
// Threads (batch-1 latency matters): with at least as many images as threads, images run in
// parallel and each is computed serially from per-thread scratch; with fewer, each image is split.
// The implicit-GEMM path splits it into one part per thread by output rows (by output channels
// for weight-heavy layers), the same part on the same thread in every layer (parallel_parts), each
// part building its own phase-plane rows: a part then reads what its thread wrote one layer
// earlier, from its own core's cache (see run_shifted). The direct path splits by output columns
// or row panels (run_direct), its KxK parts reading a private copy of their input window. The
// packed-GEMM path builds col in parallel column chunks into the call's workspace, then runs
// (row block x column chunk) tasks.
//
// linear puts the images in the micro-kernel's A role and the weights in the B role (weights
// packed in nr-column panels), so batch 1 is one row of C and no FMAs are spent on padding columns.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <mutex>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "packed-weights/packed_weights.h"
#include "f32-conv2d/conv2d.h"
#include "f32-conv2d/im2col.h"
#include "f32-directconv/taps.h"
#include "f32-dwconv/dwconv.h"
#include "f32-gemm/gemm.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "f32-epilogue/epilogue.h"
#include "runtime/op.h"

namespace eo::rt {
namespace {


constexpr int64_t kL2ChunkBytes = 192 * 1024;  // a column chunk of packed col stays in L2


WDtype wdtype_of(const Blob& w) {
  return w.type == BlobType::f16 ? WDtype::f16 : w.type == BlobType::i8 ? WDtype::s8 : WDtype::f32;
}

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
      const size_t gbytes = static_cast<size_t>(rows_ * cols_) * wdtype_size(dt_);
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



// Geometry of the implicit-GEMM ("shifted") conv path, any stride. The image is copied once into
// zero-bordered *phase planes*: for stride (sh, sw), phase (pr, pc) holds the input rows
// ih = R*sh + pr - rtop*sh and columns iw = C*sw + pc - ctop*sw (zero outside the image), on a row
// pitch Ws. Tap (kh, kw) of output (oh, ow) reads input (sh*oh + kh - ph, sw*ow + kw - pw), i.e.
// phase ((kh-ph) mod sh, (kw-pw) mod sw) at row oh + floor((kh-ph)/sh) + rtop and column
// ow + floor((kw-pw)/sw) + ctop. Giving output (oh, ow) the wide index j = oh*Ws + ow, every tap
// reads the planes at j + off[tap]: row k = (c, kh, kw) of the im2col matrix is the phase planes
// shifted by off[k], which is what the shifted micro-kernel computes on (f32-conv2d/ukernels.h),
// with no im2col matrix and no stride in the inner loop. Stride 1 has one phase (the padded image
// of f32-conv2d's WideGeometry); a 3x3/s2 conv reads 4 quarter-size phases with 9 real taps (no
// zero taps, unlike a space-to-depth rewrite); a 1x1/s2 conv one subsampled phase.
// Wide columns with ow >= OW are junk and dropped by the epilogue. Ws is the smallest pitch for
// which every valid read lands in its own row, or wraps onto a zero of the next row (3x3/p1 at
// stride 1: the right border of a row doubles as the left border of the next, Ws = W + 1).
// The fill of the planes is a real share of the layer (up to a third for 3x3/s2), hence the
// hand-vectorized row copies below.

// d[0, Ws) = lo zeros, x[0], x[S], ..., x[(hi - lo - 1) * S], then zeros. Rows are short (8-64
// floats) and there are thousands per layer: vector moves and no library call (as plain loops, gcc
// turns the 1-3 zeros at each end into memset calls, ~2x slower per row).
template <int S>
inline void copy_row_padded(const float* __restrict x, float* __restrict d, int64_t lo, int64_t hi,
                            int64_t Ws) {
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  int64_t k = 0;
  for (; k < lo; ++k) _mm_store_ss(d + k, zero);
  for (; k + 8 <= hi; k += 8) {
    const float* s = x + (k - lo) * S;
    if (S == 1) {
      _mm_storeu_ps(d + k, _mm_loadu_ps(s));
      _mm_storeu_ps(d + k + 4, _mm_loadu_ps(s + 4));
    } else {  // S == 2: the even elements of 16
      _mm_storeu_ps(d + k, _mm_shuffle_ps(_mm_loadu_ps(s), _mm_loadu_ps(s + 4), _MM_SHUFFLE(2, 0, 2, 0)));
      _mm_storeu_ps(d + k + 4, _mm_shuffle_ps(_mm_loadu_ps(s + 8), _mm_loadu_ps(s + 12), _MM_SHUFFLE(2, 0, 2, 0)));
    }
  }
  for (; k < hi; ++k) _mm_store_ss(d + k, _mm_load_ss(x + (k - lo) * S));
  for (; k < Ws; ++k) _mm_store_ss(d + k, zero);
#else
  for (int64_t k = 0; k < Ws; ++k) d[k] = k >= lo && k < hi ? x[(k - lo) * S] : 0.f;
#endif
}

inline void zero_rows(float* d, int64_t n) {
  if (n > 0) std::memset(d, 0, static_cast<size_t>(n) * 4);
}

// `rows` rows of Ws floats at d, row r from x + r * ldx with column stride sw (copy_row_padded).
inline void copy_rows_padded(const float* x, int64_t ldx, int64_t sw, float* d, int64_t rows,
                             int64_t lo, int64_t hi, int64_t Ws) {
  for (int64_t r = 0; r < rows; ++r, x += ldx, d += Ws) {
    if (sw == 1) copy_row_padded<1>(x, d, lo, hi, Ws);
    else if (sw == 2) copy_row_padded<2>(x, d, lo, hi, Ws);
    else for (int64_t k = 0; k < Ws; ++k) d[k] = k >= lo && k < hi ? x[(k - lo) * sw] : 0.f;
  }
}

struct PhaseGeometry {
  int64_t C = 0, H = 0, W = 0, sh = 1, sw = 1;
  int64_t nr_ph = 1, nc_ph = 1;      // phase rows / columns stored
  int64_t rph[64] = {}, cph[64] = {};  // residue -> phase index (-1: not read)
  int64_t rtop = 0, ctop = 0, Hs = 0, Ws = 0, plane = 0;
  int64_t dr_min = 0, dr_max = 0;    // output row oh reads plane rows oh + rtop + [dr_min, dr_max]
  int64_t col_lo[64] = {}, col_hi[64] = {};  // column phase pc: plane columns [lo, hi) are inside the image
  int64_t OH = 0, OW = 0, P = 0;     // P = OH * Ws wide outputs
  int64_t size = 0;                  // floats of the copy, slack for the last panel's reads included
  std::vector<int32_t> off;          // per k = (c, kh, kw)

  static bool of(const Conv2dShape& s, int64_t C, PhaseGeometry* gp) {
    PhaseGeometry& g = *gp;
    g.C = C; g.H = s.H; g.W = s.W; g.sh = s.sh; g.sw = s.sw;
    g.OH = s.OH(); g.OW = s.OW();
    for (int64_t i = 0; i < 64; ++i) g.rph[i] = g.cph[i] = -1;
    g.nr_ph = g.nc_ph = 0;
    int64_t& dr_min = g.dr_min;
    int64_t& dr_max = g.dr_max;
    int64_t dc_min = 0, dc_max = 0;
    for (int64_t kh = 0; kh < s.KH; ++kh) {
      const int64_t dr = floor_div(kh - s.ph, s.sh), pr = kh - s.ph - dr * s.sh;
      if (g.rph[pr] < 0) g.rph[pr] = g.nr_ph++;
      dr_min = kh ? std::min(dr_min, dr) : dr;
      dr_max = kh ? std::max(dr_max, dr) : dr;
    }
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
      if (g.cph[pc] < 0) g.cph[pc] = g.nc_ph++;
      dc_min = kw ? std::min(dc_min, dc) : dc;
      dc_max = kw ? std::max(dc_max, dc) : dc;
    }
    g.rtop = std::max<int64_t>(0, -dr_min);
    g.ctop = std::max<int64_t>(0, -dc_min);
    g.Hs = g.OH + dr_max + g.rtop;
    const int64_t wfull = g.OW + dc_max + g.ctop;  // every read in its own row
    g.Ws = wfull;
    for (int64_t ws = std::max<int64_t>(1, g.OW); ws < wfull; ++ws)
      if (pitch_ok(s, g, ws)) { g.Ws = ws; break; }
    for (int64_t pc = 0; pc < g.sw; ++pc) {  // iw = (col - ctop) * sw + pc in [0, W)
      int64_t lo = 0, hi;
      while (lo < g.Ws && (lo - g.ctop) * g.sw + pc < 0) ++lo;
      for (hi = lo; hi < g.Ws && (hi - g.ctop) * g.sw + pc < g.W; ++hi) {}
      g.col_lo[pc] = lo;
      g.col_hi[pc] = hi;
    }
    g.plane = g.Hs * g.Ws;
    g.P = g.OH * g.Ws;
    const int64_t nph = g.nr_ph * g.nc_ph;
    g.off.resize(static_cast<size_t>(C * s.KH * s.KW));
    int64_t max_off = 0;
    int32_t* o = g.off.data();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const int64_t dr = floor_div(kh - s.ph, s.sh), pr = kh - s.ph - dr * s.sh;
          const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
          const int64_t v = (c * nph + g.rph[pr] * g.nc_ph + g.cph[pc]) * g.plane +
                            (dr + g.rtop) * g.Ws + dc + g.ctop;
          max_off = std::max(max_off, v);
          *o++ = static_cast<int32_t>(v);
        }
    // The last column panel reads up to nr (<= 48) columns past P from the largest shift.
    g.size = std::max(C * nph * g.plane, max_off + round_up(g.P, 48));
    // Worth it unless the junk columns are a large share (e.g. 2x2 outputs of a 3x3 conv).
    return g.size < (int64_t(1) << 31) && g.P * 4 <= g.OH * g.OW * 5;
  }

  // A read past the row end (column cc >= Ws) is only allowed where the wanted input column is
  // padding and the column it wraps to (next row) holds padding too.
  static bool pitch_ok(const Conv2dShape& s, const PhaseGeometry& g, int64_t ws) {
    for (int64_t kw = 0; kw < s.KW; ++kw) {
      const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
      for (int64_t ow = 0; ow < g.OW; ++ow) {
        const int64_t cc = ow + dc + g.ctop;
        if (cc < ws) continue;
        const int64_t iw = s.sw * ow + kw - s.pw, cc2 = cc - ws;
        const int64_t iw2 = (cc2 - g.ctop) * s.sw + pc;
        if ((iw >= 0 && iw < s.W) || cc2 >= ws || (iw2 >= 0 && iw2 < s.W)) return false;
      }
    }
    return true;
  }

  // xq (size floats) = the phase planes of x (C, H, W), zero padding and slack included.
  void fill(const float* x, float* xq) const { fill_rows(x, xq, 0, Hs); }

  // Plane rows [R0, R1) of every channel and phase; the slack after the planes with the last rows.
  void fill_rows(const float* x, float* xq, int64_t R0, int64_t R1) const {
    const int64_t nph = nr_ph * nc_ph;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t pr = 0; pr < sh; ++pr) {
        if (rph[pr] < 0) continue;
        // Plane row R holds input row ih = (R - rtop) * sh + pr: rows [Ra, Rb) lie inside the image.
        const int64_t ih0 = pr - rtop * sh;
        const int64_t Ra = std::min(R1, std::max(R0, -floor_div(ih0, sh)));
        const int64_t Rb = std::max(Ra, std::min(R1, ceil_div(H - ih0, sh)));
        for (int64_t pc = 0; pc < sw; ++pc) {
          if (cph[pc] < 0) continue;
          const int64_t lo = col_lo[pc], hi = col_hi[pc];
          float* pl = xq + (c * nph + rph[pr] * nc_ph + cph[pc]) * plane;
          const float* xr = x + c * H * W + (ih0 + Ra * sh) * W + (lo - ctop) * sw + pc;
          zero_rows(pl + R0 * Ws, (Ra - R0) * Ws);
          copy_rows_padded(xr, sh * W, sw, pl + Ra * Ws, Rb - Ra, lo, hi, Ws);
          zero_rows(pl + Rb * Ws, (R1 - Rb) * Ws);
        }
      }
    if (R1 == Hs) zero_rows(xq + C * nph * plane, size - C * nph * plane);
  }
};

class ConvOp : public Op {
 public:
  ConvOp(const OpDef& d, const Conv2dShape& s, const Blob& w, const float* bias, const float* scale,
         Act act, bool residual)
      : Op(d), s_(s), wdt_(wdtype_of(w)), w_(w.data), wbytes_(static_cast<int64_t>(w.bytes)),
        bias_(bias), scale_(scale), act_(act), residual_(residual),
        G_(s.groups), Cg_(s.Cin / s.groups), Mg_(s.Cout / s.groups), Kg_(Cg_ * s.KH * s.KW),
        P_(s.OH() * s.OW()), depthwise_(Cg_ == 1 && s.groups > 1),
        pointwise_(s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0),
        shifted_(!depthwise_ && use_shifted(s, Cg_, pointwise_, &pg_)),
        direct_(!depthwise_ && (pointwise_ || direct_taps(s.H, s.W, s.KH, s.KW, s.sh, s.sw, s.ph, s.pw, &taps_))),
        cache_(wdt_, w.data, G_, Mg_, Kg_, direct_ ? WRole::direct : shifted_ ? WRole::conv_a : WRole::gemm_a,
               shifted_ ? WRole::conv_a : WRole::gemm_a) {
    if (depthwise_) init_depthwise(w);
    else cache_.get(active_isa());  // pack now, not in the first run
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
    if (shifted_) return static_cast<size_t>(shifted_parts() * shifted_part_floats() * 4);
    // Split-image mode: padded planes + the whole packed col of one group (widest nr: 32).
    const int64_t pad = pointwise_ ? 0 : round_up(Cg_ * (s_.H + 2 * s_.ph) * (s_.W + 2 * s_.pw), 16);
    return static_cast<size_t>((pad + Kg_ * round_up(P_, 32)) * 4);
  }

  void run(const RunContext& ctx) const override {
    const F32DirectConvUkernel* dk = direct_ ? f32_directconv_ukernel(active_isa()) : nullptr;
    if (depthwise_) run_depthwise(ctx);
    else if (dk) run_direct(ctx, *dk);
    else if (shifted_) run_shifted(ctx);
    else run_gemm(ctx);
  }

 private:
  static bool use_shifted(const Conv2dShape& s, int64_t Cg, bool pointwise, PhaseGeometry* g) {
    if (pointwise) return false;  // 1x1/s1: f32-directconv, or the packed GEMM (faster than shifted there)
    return PhaseGeometry::of(s, Cg, g);
  }

  // Implicit GEMM over the phase planes (PhaseGeometry): per image and group, the planes are
  // built once, then blocks of (row panels x column panels) of the wide output run the shifted
  // micro-kernel over the whole depth into a wide buffer cw (M x Pw), q-major so that the few KB
  // of planes a column panel reads stay in L1 while the weight panels go by; then the block's
  // valid columns go through the epilogue into y, one call per output row (reading cw after the
  // block is done avoids store-forwarding stalls on freshly stored tiles).
  int64_t cw_ld() const { return round_up(pg_.P, 48); }
  void run_shifted(const RunContext& ctx) const {
    const Isa isa = active_isa();
    const F32Conv2dUkernels& uk = f32_conv2d_ukernels_for(isa);
    const std::vector<PackedWeights>& W = cache_.get(isa);
    const int64_t N = ctx.batch;
    const int threads = get_num_threads();
    const int64_t Mp = ceil_div(Mg_, uk.mr);
    const int64_t abuf_floats = wdt_ == WDtype::f32 ? 0 : Mp * uk.mr * Kg_;
    const int64_t cw_floats = Mp * uk.mr * cw_ld();
    if (N >= threads && threads > 1) {
      parallel_for(N, 1, [&](int64_t b, int64_t e) {
        float* xq = scratch_f32(static_cast<size_t>(pg_.size), kScratchRtPad);
        float* cw = scratch_f32(static_cast<size_t>(cw_floats), kScratchRtCol);
        float* abuf = abuf_floats ? scratch_f32(static_cast<size_t>(abuf_floats), kScratchRtA) : nullptr;
        for (int64_t n = b; n < e; ++n)
          for (int64_t g = 0; g < G_; ++g)
            shifted_part(uk, isa, W[g], xg(ctx, n, g), yg(ctx, n, g), rg(ctx, n, g), epilogue(g), 0, 1,
                         xq, cw, abuf);
      });
      return;
    }
    // Fewer images than threads: each image is split into parts, the same split in every layer
    // and on the same threads (parallel_parts), so a part reads mostly rows that the same thread
    // wrote in the previous layer, from its own core's cache (reading them from the other core's
    // made each part ~20 % slower in isolation, up to 2x inside the engine). Each part fills the
    // phase-plane rows it reads into its own buffer, so the parts never wait on each other.
    const int64_t parts = shifted_parts();
    float* wsp = reinterpret_cast<float*>(ctx.workspace);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t g = 0; g < G_; ++g) {
        const float* x = xg(ctx, n, g);
        float* y = yg(ctx, n, g);
        const float* r = rg(ctx, n, g);
        const Epilogue ep = epilogue(g);
        parallel_parts(static_cast<int>(parts), [&](int t) {
          float* xq = wsp + t * shifted_part_floats();
          float* cw = xq + round_up(pg_.size, 16);
          shifted_part(uk, isa, W[g], x, y, r, ep, t, parts, xq, cw, abuf_floats ? cw + cw_floats : nullptr);
        });
      }
  }

  // Part t of `parts` of one image and group (parts == 1: all of it) with buffers xq (phase
  // planes), cw (wide output) and abuf (f16 / s8 weights widened by this part, for the row panels
  // it uses; null for f32).
  void shifted_part(const F32Conv2dUkernels& uk, Isa isa, const PackedWeights& Wg, const float* x,
                    float* y, const float* r, const Epilogue& ep, int64_t t, int64_t parts, float* xq,
                    float* cw, float* abuf) const {
    const int64_t Mp = ceil_div(Mg_, uk.mr);
    if (split_channels()) {  // whole planes, row panels [p0, p1)
      const int64_t p0 = Mp * t / parts, p1 = Mp * (t + 1) / parts;
      const PanelView A = weight_panels(Wg, p0, p1, abuf, isa);
      pg_.fill(x, xq);
      shifted_block(uk, A, xq, cw, p0, p1, 0, pg_.P, y, r, ep);
      return;
    }
    // Output rows [oh0, oh1) read plane rows R0..R1 - 2, and row R1 - 1 too: a read past a row's
    // end wraps onto the next row's first (zero) column; past the last row of a plane, onto row 0
    // of the next plane. Reads of unfilled rows only reach junk columns (ow >= OW), which the
    // epilogue drops. With one part, [R0, R1) is every row.
    const PanelView A = weight_panels(Wg, 0, Mp, abuf, isa);
    const int64_t oh0 = pg_.OH * t / parts, oh1 = pg_.OH * (t + 1) / parts;
    const int64_t R0 = std::max<int64_t>(0, oh0 + pg_.rtop + pg_.dr_min);
    const int64_t R1 = std::min(pg_.Hs, oh1 + pg_.rtop + pg_.dr_max + 1);
    pg_.fill_rows(x, xq, R0, R1);
    if (R1 == pg_.Hs && R0 > 0) pg_.fill_rows(x, xq, 0, 1);
    shifted_block(uk, A, xq, cw, 0, Mp, oh0 * pg_.Ws, std::min(pg_.P, oh1 * pg_.Ws), y, r, ep);
  }

  // A single image is split into parts by output rows, or by output channels (row panels of 8)
  // where the weights are much larger than the input (8x8 planes of 64 channels: each part then
  // streams half of the weights, and reading all of a 16 KB input costs little).
  // Layers under kShiftedSerialMacs (1x1/s2 shortcuts) run whole on the calling thread.
  static constexpr int64_t kShiftedSerialMacs = 50000;
  bool split_channels() const { return s_.sh == 1 && s_.sw == 1 && Mg_ * Kg_ > 2 * Cg_ * s_.H * s_.W; }
  int64_t shifted_parts() const {
    if (Mg_ * Kg_ * pg_.P < kShiftedSerialMacs) return 1;
    const int64_t most = split_channels() ? ceil_div(Mg_, 8) : std::max<int64_t>(1, pg_.OH / 2);
    return std::min<int64_t>(std::min(get_num_threads(), 64), most);
  }
  // Per part: phase planes, wide output and widened weights, for rows round_up(Mg, mr) <= Mg + 7
  // (every ISA's mr <= 8).
  int64_t shifted_part_floats() const {
    return round_up(pg_.size, 16) + round_up(Mg_ + 7, 16) * (cw_ld() + (wdt_ == WDtype::f32 ? 0 : Kg_));
  }

  // Row panels [p0, p1) x wide output columns [c0, c1), in column panels of nr from c0, then the
  // block's epilogue.
  void shifted_block(const F32Conv2dUkernels& uk, const PanelView& A, const float* xq, float* cw,
                     int64_t p0, int64_t p1, int64_t c0, int64_t c1, float* y, const float* res,
                     const Epilogue& ep) const {
    if (p0 >= p1 || c0 >= c1) return;
    const int64_t mr = uk.mr, nr = uk.nr, ld = cw_ld(), Ws = pg_.Ws, OW = pg_.OW;
    for (int64_t j0 = c0; j0 < c1; j0 += nr) {
      const int64_t n = std::min(nr, c1 - j0);
      for (int64_t p = p0; p < p1; ++p)
        uk.shifted(static_cast<size_t>(std::min(mr, Mg_ - p * mr)), static_cast<size_t>(n),
                   static_cast<size_t>(Kg_), A.at(0, Kg_, p), xq + j0, pg_.off.data(), cw + p * mr * ld + j0,
                   static_cast<size_t>(ld), 0);
    }
    // Valid columns of the block: for each output row oh it covers, wide columns [a, b).
    const int64_t r0 = p0 * mr, rows = std::min(p1 * mr, Mg_) - r0;
    for (int64_t oh = c0 / Ws; oh * Ws < c1; ++oh) {
      const int64_t a = std::max(c0, oh * Ws), b = std::min(c1, oh * Ws + OW);
      if (a >= b) continue;
      const int64_t yo = r0 * P_ + oh * OW + (a - oh * Ws);
      epilogue_tile(ep, cw + r0 * ld + a, ld, y + yo, res ? res + yo : nullptr, P_, r0, rows, b - a);
    }
  }

  // Direct convs (f32-directconv): per image and group Y_g = W_g (*) X_g with X_g read in place
  // and the epilogue in the micro-kernel's store. Tasks are (image, group, row panels, column
  // tiles) blocks. Batch 1 is split by columns where the input outweighs the weights (3x3 layers
  // on 32x32 / 16x16 planes, 1x1 layers whose plane is at least as large as Cout: each thread
  // reads all of the small W, half of X and a row of halo), by row panels otherwise (8x8 and 4x4
  // planes, wide layers: each thread streams half of the weights, which is what those layers wait
  // on). Layers under kSerialMacs run on the calling thread: a parallel loop costs more than it
  // saves there.
  static constexpr int64_t kSerialMacs = 50000;
  bool split_columns() const {
    return taps_.taps ? Mg_ * Kg_ <= 2 * Cg_ * s_.H * s_.W : P_ >= Mg_;
  }
  void run_direct(const RunContext& ctx, const F32DirectConvUkernel& dk) const {
    const Isa isa = active_isa();
    const std::vector<PackedWeights>& W = cache_.get(isa);
    const int64_t N = ctx.batch, images = N * G_, mr = dk.mr;
    const int64_t Mp = ceil_div(Mg_, mr);
    // Column tiles of at most nr columns, in whole vectors of 16, balanced (64 -> 32 + 32).
    const int64_t nv = ceil_div(P_, 16), Nt = ceil_div(nv, dk.nr / 16);
    const int threads = get_num_threads();
    int64_t nbr = 1, nbc = 1;
    if (threads > 1 && images < threads && Mg_ * Kg_ * P_ * images >= kSerialMacs) {
      const int64_t parts = ceil_div(threads, images);
      if (split_columns() && Nt >= parts) nbc = parts;
      else nbr = std::min(Mp, parts);
    }
    const int64_t per_image = nbr * nbc, tasks = images * per_image;
    auto task = [&](int64_t t) {
      const int64_t ig = t / per_image, b = t % per_image, br = b / nbc, bc = b % nbc;
      const int64_t n = ig / G_, g = ig % G_;
      direct_block(dk, isa, W[g], xg(ctx, n, g), yg(ctx, n, g), rg(ctx, n, g), epilogue(g),
                   Mp * br / nbr, Mp * (br + 1) / nbr, Nt * bc / nbc, Nt * (bc + 1) / nbc, nv, Nt,
                   per_image > 1);
    };
    if (tasks == 1 || threads == 1 || Mg_ * Kg_ * P_ * N < kSerialMacs) {
      for (int64_t t = 0; t < tasks; ++t) task(t);
      return;
    }
    parallel_for(tasks, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) task(t);
    });
  }

  // Row panels [p0, p1) x column tiles [q0, q1) (tile q: vectors [nv*q/Nt, nv*(q+1)/Nt)) of one
  // image and group. Panels go in blocks whose f32 weights fit ~32 KB (L1): stored-dtype weights
  // are widened a block at a time into per-thread scratch, and a block's panels are reused across
  // every column tile while in L1 (K = 24: all panels at once; K = 960: one panel at a time).
  // Strided convs first copy the rows of X their outputs read into phase planes in per-thread
  // scratch (DirectTaps::fill). So do stride-1 KxK convs when split (the image is shared with
  // other threads' blocks at batch 1): the kernel reading X in place, where the previous layer's
  // parts wrote it, ran each tile ~30 % slower at 2 threads (16x16 planes) while the copy costs a
  // tenth of that. 1x1/s1 convs read in place at full speed.
  void direct_block(const F32DirectConvUkernel& dk, Isa isa, const PackedWeights& Wg, const float* x,
                    float* y, const float* res, const Epilogue& ep, int64_t p0, int64_t p1,
                    int64_t q0, int64_t q1, int64_t nv, int64_t Nt, bool split) const {
    if (p0 >= p1 || q0 >= q1) return;
    const int64_t mr = dk.mr, step = std::max<int64_t>(1, 8192 / (mr * Kg_));
    const size_t taps = taps_.taps ? static_cast<size_t>(taps_.taps) : 1;
    const int32_t* toff = taps_.taps ? taps_.off.data() : nullptr;
    const int64_t c0 = 16 * (nv * q0 / Nt), c1 = std::min(P_, 16 * (nv * q1 / Nt));
    int64_t ldx = s_.H * s_.W;
    if (taps_.taps && (split || taps_.strided())) {
      float* xp = scratch_f32(static_cast<size_t>(Cg_ * taps_.ldx), kScratchRtPad);
      taps_.fill(x, Cg_, c0 / taps_.OW, ceil_div(c1, taps_.OW), xp);
      x = xp;
      ldx = taps_.ldx;
    }
    float lo, hi;
    const bool clamp = act_is_clamp(ep.act, &lo, &hi);
    if (!clamp) act_is_clamp(Act::none, &lo, &hi);
    float* abuf = Wg.dtype == WDtype::f32
                      ? nullptr
                      : scratch_f32(weight_panels_scratch(Wg, p0, std::min(p1, p0 + step)), kScratchRtA);
    for (int64_t b0 = p0; b0 < p1; b0 += step) {
      const int64_t b1 = std::min(p1, b0 + step);
      const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
      for (int64_t q = q0; q < q1; ++q) {
        const int64_t j0 = 16 * (nv * q / Nt), j1 = std::min(P_, 16 * (nv * (q + 1) / Nt));
        const uint16_t* tmask = taps_.taps ? taps_.mask.data() + (j0 / 16) * taps_.taps : nullptr;
        for (int64_t p = b0; p < b1; ++p) {
          const int64_t r0 = p * mr, o = r0 * P_ + j0;
          dk.fn(static_cast<size_t>(std::min(mr, Mg_ - r0)), static_cast<size_t>(j1 - j0),
                static_cast<size_t>(Cg_), taps, A.at(0, Kg_, p), x + j0, static_cast<size_t>(ldx),
                toff, tmask, ep.scale ? ep.scale + r0 : nullptr, ep.bias ? ep.bias + r0 : nullptr,
                res ? res + o : nullptr, y + o, static_cast<size_t>(P_), lo, hi);
        }
      }
      if (!clamp) {  // the kernel stored (acc * scale + bias) (+ res): now the activation
        const Epilogue act_only{nullptr, nullptr, ep.act, false};
        apply_epilogue(act_only, y, nullptr, P_, b0 * mr, std::min(b1 * mr, Mg_), c0, c1);
      }
    }
  }

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
                        : scratch_f32(weight_panels_scratch(Wg, 0, std::min(Mp, step)), kScratchRtA);
      const float* x = xg(ctx, n, g);
      float* xp = nullptr;
      if (!pointwise_) {
        xp = scratch_f32(Cg_ * (s_.H + 2 * s_.ph) * (s_.W + 2 * s_.pw), kScratchRtPad);
        pad_planes(s_, x, Cg_, xp);
      }
      float* pb = scratch_f32(Kg_ * chunk, kScratchRtCol);
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
                            : scratch_f32(weight_panels_scratch(Wg, p0, std::min(p1, p0 + step)), kScratchRtA);
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

  // Depthwise (f32-dwconv): the plan and f32 weights (s8 scales folded in) are built once, the
  // micro-kernel applies bias and clamp / hardswish in the same pass; a residual then goes through
  // the ordinary epilogue (act((acc + bias) + residual)). Chunks of (image, channel) planes over
  // the threads, fewer when the layer is too small to pay for a parallel loop.
  void init_depthwise(const Blob& w) {
    const int64_t KK = s_.KH * s_.KW, n = s_.Cout * KK;
    dw_ = DwconvPlan::make(s_);
    dw_w_.resize(static_cast<size_t>(n));
    const WeightConvertUkernels& cv = weight_convert_ukernels(Isa::scalar);
    if (wdt_ == WDtype::f32) std::memcpy(dw_w_.data(), w.data, static_cast<size_t>(n) * 4);
    else if (wdt_ == WDtype::f16) cv.f16_to_f32(w.as<uint16_t>(), dw_w_.data(), static_cast<size_t>(n));
    else cv.s8_to_f32(w.as<int8_t>(), dw_w_.data(), static_cast<size_t>(n));
    if (scale_)
      for (int64_t i = 0; i < n; ++i) dw_w_[i] *= scale_[i / KK];
  }

  void run_depthwise(const RunContext& ctx) const {
    float lo = 0.f, hi = 0.f;
    const bool clamp = act_is_clamp(residual_ ? Act::none : act_, &lo, &hi);
    const f32_dwconv_params p = dw_.params(clamp ? F32_DWCONV_CLAMP : F32_DWCONV_HARDSWISH, lo, hi);
    const F32DwconvUkernels& uk = f32_dwconv_ukernels(active_isa());
    const int64_t Cout = s_.Cout, mult = Cout / s_.Cin, n = ctx.batch * Cout;
    const float* x = in(ctx, 0);
    float* y = out(ctx);
    const float* res = residual_ ? in(ctx, 1) : nullptr;
    const int64_t work = n * P_ * s_.KH * s_.KW;
    const int chunks = static_cast<int>(std::min<int64_t>(get_num_threads(), std::max<int64_t>(1, work / 32768)));
    parallel_chunks(n, chunks, [&](int, int64_t t0, int64_t t1) {
      float* scratch = dw_.direct ? nullptr : scratch_f32(static_cast<size_t>(dw_.scratch_floats()), kScratchRtPad);
      for (int64_t t = t0; t < t1;) {  // per image: [o0, o1) of image b
        const int64_t b = t / Cout, o0 = t % Cout, o1 = std::min(Cout, o0 + (t1 - t));
        f32_dwconv_forward(dw_, uk, p, mult, x + b * s_.Cin * s_.H * s_.W, dw_w_.data(), bias_,
                           y + b * Cout * P_, o0, o1, scratch);
        if (res) {
          const Epilogue ep{nullptr, nullptr, act_, false};
          apply_epilogue(ep, y + b * Cout * P_, res + b * Cout * P_, P_, o0, o1, 0, P_);
        }
        t += o1 - o0;
      }
    });
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
  PhaseGeometry pg_;
  bool shifted_;
  DirectTaps taps_;  // empty for 1x1
  bool direct_;
  WeightCache cache_;
  DwconvPlan dw_;
  std::vector<float> dw_w_;
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
