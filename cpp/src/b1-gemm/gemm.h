// Binary (1-bit) inference: weights and activations in {-1, +1}, bit-packed, XNOR-popcount
// products (ukernels.h) scaled per output channel (XNOR-Net's alpha = mean |w| of the channel).
// The runtime op (runtime/ops_binary_b1.cc) runs the convs that scheme "binary" lowers.
//
//   sign(v) = +1 if v >= 0 else -1          (0 maps to +1; stored as bit 1, -1 as bit 0); a conv's
//             input may instead compare with a per-channel threshold: +1 if x[c] >= threshold[c]
//   linear: x (M, K) f32    W (N, K)             y[m][j] = clamp(alpha[j] * dot(sign x[m], sign W[j]) + bias[j])
//   conv:   x (N, C, H, W)  W (Cout, C, KH, KW)  y (N, Cout, OH, OW) NCHW, stride, zero padding
//           y[n][o][p] = clamp(alpha[o] * sum_{c,kh,kw} sign(x)[...] * sign(W)[o][c][kh][kw] + bias[o]
//                              + residual[n][o][p])
//
// Padding: positions outside the input contribute pad_value * sign(W) with pad_value in
// {-1, 0, +1}; 0 (the default) matches a float conv over sign(x) with zero padding, which is what
// a model trained with binarized activations computed. The packed im2col holds -1 (bit 0) at
// padded taps; border pixels then add (pad_value + 1) * (sum of sign(W) over their padded taps),
// from per-tap weight sums kept with the packed weights.
//
// Layouts: activations are binarized per call into NHWC words (ceil(C / 64) words per pixel,
// channel c at bit c % 64 of word c / 64, zero bits past C); the conv im2col copies whole words per
// tap, so K = KH*KW*ceil(C/64) words (the bits past C are zero in weights and activations alike).
// The int dot is exact; the epilogue y = alpha * float(dot) + bias (+ residual) is a separate multiply
// and adds (never fused), the same instructions on every path and in the reference: bit-for-bit results.
#pragma once
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

#include "b1-gemm/ukernels.h"

namespace eo {

// What a conv does with its dots besides the scale alpha (which the weights hold).
struct B1ConvEpilogue {
  const float* bias = nullptr;      // per output channel, or nullptr
  const float* residual = nullptr;  // shaped like y, or nullptr: a fused skip connection's input
  float out_min = -std::numeric_limits<float>::infinity();
  float out_max = std::numeric_limits<float>::infinity();
};

// Conv weights: rows of kwords() words (tap-major: word (kh*kw_ + kw)*cw + cw_index).
struct B1ConvWeights {
  int64_t cout = 0, cin = 0, kh = 0, kw = 0;
  int64_t cw = 0;                 // words per tap: ceil(cin / 64)
  std::vector<uint64_t> bits;     // cout x kwords()
  std::vector<int32_t> tapsum;    // cout x (kh*kw): sum_c sign(W[o][c][tap]), for padding
  std::vector<float> alpha;       // cout
  int64_t kwords() const { return kh * kw * cw; }
  int64_t nbytes() const { return int64_t(8 * bits.size() + 4 * tapsum.size() + 4 * alpha.size()); }
};

// XNOR-Net's per-output-channel scale of binarized weights: alpha[o] = mean_t |w[o][t]| over the
// `per` weights of channel o (0 for an empty channel), summed in double.
std::vector<float> b1_channel_alpha(const float* w, int64_t cout, int64_t per);

// w: OIHW float (only signs are kept), alpha: cout scales.
B1ConvWeights b1_pack_conv_weights(int64_t cout, int64_t cin, int64_t kh, int64_t kw,
                                   const float* w, const float* alpha);

struct B1Conv {
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
  int pad_value = 0;                 // -1, 0 or +1
  const float* threshold = nullptr;  // per input channel (nn.BinarySign's learned one), or 0
};

// A conv bound to its input size. Convs of stride 1 or 2 (both directions) also get the direct
// path's tables (ukernels.h: 32-bit weight words, for 16-bit planes with their 16 bits twice, and
// the padding corrections per row class, or per class of row pair), used where the CPU has Ice
// Lake's AVX-512 set (cpu_has_avx512icl); other convs, and other paths, run the im2col + GEMM
// driver. A kernel larger than the padded input gives no output (oh or ow 0). The runtime op builds one at load; `wt` must outlive it.
struct B1ConvPlan {
  const B1ConvWeights* wt = nullptr;
  B1Conv cv;
  int64_t h = 0, w = 0, oh = 0, ow = 0;
  // The GEMM path's padding corrections: the output pixels whose window reaches the padding, each
  // with its padded-tap mask (empty when pad_value is -1: padded taps hold -1 already).
  std::vector<std::pair<int64_t, uint64_t>> border;
  bool direct = false;
  int64_t nw = 0, ldp = 0, ldb = 0, ncls = 0;  // words per pixel, plane row, base row, row classes
  b1_plane_layout layout = B1_PLANES_32;
  int64_t ldh = 0;                             // stride 2: where a plane row's odd columns start
  std::vector<uint32_t> w32;                   // as b1_direct_params::w
  int64_t wstride = 0;
  std::vector<int32_t> base;                   // cout x ncls x ldb
  std::vector<int16_t> base16;                 // the same, for B1_PLANES_16
  std::vector<int32_t> rowcls;                 // oh
};
B1ConvPlan b1_conv_plan(const B1ConvWeights& wt, const B1Conv& cv, int64_t h, int64_t w);

// x: (batch, cin, h, w) f32; y: (batch, cout, oh, ow). Results do not depend on the path or the
// thread count.
void b1_conv2d(const B1ConvPlan& plan, int64_t batch, const float* x, const B1ConvEpilogue& epi,
               float* y, bool parallel);

// The epilogue of one dot, as every path computes it: a multiply, then the adds, then the clamp
// (NaN passes through both bounds).
inline float b1_epilogue(int64_t dot, float alpha, const float* bias, const float* residual, float lo, float hi) {
  float v = alpha * static_cast<float>(dot);
  if (bias) v = v + *bias;
  if (residual) v = v + *residual;
  v = v < lo ? lo : v;
  return v > hi ? hi : v;
}

// The bit-plane hand-off. When a direct-path conv (the writer) is the only input of another (the
// reader), the writer can store the reader's binarized planes instead of f32 values: the reader's
// bit for channel o is clamp(alpha dot + bias) >= threshold[o], a nondecreasing function of the
// integer dot, so it is dot >= dmin[o]. Bit for bit what the reader would binarize from the f32
// output, without the f32 stores, their loads and the binarizing.
struct B1PlaneLink {
  const B1ConvPlan* reader = nullptr;
  std::vector<int32_t> dmin;  // per writer output channel
  int64_t image_bytes = 0;    // one image's planes (b1_plane_bytes of the reader)
};
// One image's planes of `reader` (with the slack row two-row readers load).
int64_t b1_plane_bytes(const B1ConvPlan& reader);
// The link, if the two can hand off planes: both on the direct path (and the CPU has it), the
// reader's input shaped as the writer's output, and each channel's bit monotone in its dot
// (alpha >= 0). The writer's epilogue has no residual (then the bit would depend on it).
bool b1_link(const B1ConvPlan& writer, const float* bias, float out_min, float out_max, const B1ConvPlan& reader,
             B1PlaneLink* link);
// Where a conv reads its input and writes its output: f32 tensors, or the planes of a link
// (images b1_plane_bytes apart). in.planes: written by this conv's writer (in.image_bytes:
// b1_plane_bytes of this conv's plan); out.link: this conv's link to its reader, made with the
// bias and bounds of the epilogue this call passes.
struct B1ConvSource {
  const float* x = nullptr;
  const uint32_t* planes = nullptr;
  int64_t image_bytes = 0;
};
struct B1ConvSink {
  float* y = nullptr;
  const B1PlaneLink* link = nullptr;
  uint32_t* planes = nullptr;
};
void b1_conv2d(const B1ConvPlan& plan, int64_t batch, const B1ConvSource& in, const B1ConvEpilogue& epi,
               const B1ConvSink& out, bool parallel);
// The same with a plan made for this call (tests, bindings).
void b1_conv2d(const B1ConvWeights& wt, const B1Conv& cv, int64_t batch, int64_t h, int64_t w,
               const float* x, const B1ConvEpilogue& epi, float* y, bool parallel);

// Linear weights (N, K) as 8-column panels of the B operand (ukernels.h).
struct B1LinearWeights {
  int64_t n = 0, k = 0, kwords = 0;
  std::vector<uint64_t> panels;  // ceil(n/8) panels x kwords x 8
  std::vector<float> alpha;      // n
  int64_t nbytes() const { return int64_t(8 * panels.size() + 4 * alpha.size()); }
};

B1LinearWeights b1_pack_linear_weights(int64_t n, int64_t k, const float* w, const float* alpha);

// x: (m, k) f32, y: (m, n).
void b1_linear(const B1LinearWeights& wt, int64_t m, const float* x, const float* bias,
               float out_min, float out_max, float* y, bool parallel);

// Bit-level entry (tests): dots[i][j] = K - 2 popcount(a_i XOR b_j) for rows a (m x kwords) and
// b (n x kwords), both row-major words with zero bits past k.
void b1_gemm_dots(int64_t m, int64_t n, int64_t k, const uint64_t* a, const uint64_t* b,
                  int32_t* dots);

// sign-binarize f32 rows: rows x k -> rows x ceil(k/64) words.
void b1_pack_rows(int64_t rows, int64_t k, const float* x, uint64_t* bits);

}  // namespace eo

namespace eo::reference {

// Plain loops over sign values (cpp/src/reference/b1_gemm.cc), same epilogue.
// residual: like y (one image), or nullptr; threshold: per input channel, or nullptr (0).
void b1_conv2d(int64_t cout, int64_t cin, int64_t kh, int64_t kw, const float* w, const float* alpha,
               const float* bias, const float* residual, int64_t stride_h, int64_t stride_w, int64_t pad_h,
               int64_t pad_w, int pad_value, const float* threshold, int64_t h, int64_t wd, const float* x,
               float out_min, float out_max, float* y);
void b1_linear(int64_t n, int64_t k, const float* w, const float* alpha, const float* bias,
               int64_t m, const float* x, float out_min, float out_max, float* y);

}  // namespace eo::reference
