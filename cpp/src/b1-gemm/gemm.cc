#include "b1-gemm/gemm.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <utility>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

// b1_epilogue over n dots of one output channel (this file is compiled for the baseline target,
// which has no FMA to contract its multiply and adds into). The bias and the residual are
// compile-time choices so that the loop vectorizes: tested per element, binary resnet20's 1x1
// stride-2 shortcut 16->32 took 34.6 us, 11.3 this way (benchmarks/README.md).
template <bool kBias, bool kRes>
void epilogue_row(const int32_t* dot, int64_t n, float alpha, float b, const float* res, float lo, float hi,
                  float* y) {
  for (int64_t j = 0; j < n; ++j)
    y[j] = b1_epilogue(dot[j], alpha, kBias ? &b : nullptr, kRes ? res + j : nullptr, lo, hi);
}

// bias: this channel's, or nullptr; res: n residual values, or nullptr.
void epilogue_row(const int32_t* dot, int64_t n, float alpha, const float* bias, const float* res, float lo,
                  float hi, float* y) {
  if (bias && res) epilogue_row<true, true>(dot, n, alpha, *bias, res, lo, hi, y);
  else if (bias) epilogue_row<true, false>(dot, n, alpha, *bias, res, lo, hi, y);
  else if (res) epilogue_row<false, true>(dot, n, alpha, 0.f, res, lo, hi, y);
  else epilogue_row<false, false>(dot, n, alpha, 0.f, res, lo, hi, y);
}

// Rows of B (n x kwords, row stride ldb words) into 8-column panels, zero columns past n.
void pack_panels(int64_t n, int64_t kwords, const uint64_t* b, int64_t ldb, uint64_t* panels) {
  const int64_t np = ceil_div(n, 8);
  std::memset(panels, 0, size_t(np * kwords * 8) * sizeof(uint64_t));
  for (int64_t j = 0; j < n; ++j)
    for (int64_t w = 0; w < kwords; ++w) panels[(j / 8) * kwords * 8 + w * 8 + j % 8] = b[j * ldb + w];
}

}  // namespace

void b1_pack_rows(int64_t rows, int64_t k, const float* x, uint64_t* bits) {
  const int64_t kw = ceil_div(k, 64);
  for (int64_t r = 0; r < rows; ++r) {
    uint64_t* d = bits + r * kw;
    for (int64_t w = 0; w < kw; ++w) {
      uint64_t word = 0;
      const int64_t end = std::min<int64_t>(64, k - w * 64);
      for (int64_t t = 0; t < end; ++t) word |= uint64_t(x[r * k + w * 64 + t] >= 0.f) << t;
      d[w] = word;
    }
  }
}

// ------------------------------------------------------------------------------------- linear

B1LinearWeights b1_pack_linear_weights(int64_t n, int64_t k, const float* w, const float* alpha) {
  B1LinearWeights p;
  p.n = n;
  p.k = k;
  p.kwords = ceil_div(k, 64);
  std::vector<uint64_t> rows(size_t(n * p.kwords));
  b1_pack_rows(n, k, w, rows.data());
  p.panels.resize(size_t(ceil_div(n, 8) * p.kwords * 8));
  pack_panels(n, p.kwords, rows.data(), p.kwords, p.panels.data());
  p.alpha.assign(alpha, alpha + n);
  return p;
}

void b1_linear(const B1LinearWeights& wt, int64_t m, const float* x, const float* bias,
               float out_min, float out_max, float* y, bool parallel) {
  const int64_t n = wt.n, kw = wt.kwords;
  if (m <= 0 || n <= 0) return;
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  std::vector<uint64_t> xb(size_t(std::max<int64_t>(1, m * kw)));
  b1_pack_rows(m, wt.k, x, xb.data());
  const int64_t np = ceil_div(n, 8);
  // Panels [q0, q1) of every row; each chunk owns its output columns.
  auto run = [&](int64_t q0, int64_t q1) {
    const int64_t j0 = q0 * 8, nc = std::min(n, q1 * 8) - j0;
    std::vector<int32_t> pc(size_t(m * nc));
    uk.fn(size_t(m), size_t(nc), size_t(kw), xb.data(), size_t(kw), wt.panels.data() + q0 * kw * 8,
          pc.data(), size_t(nc));
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < nc; ++j) {
        const int32_t dot = int32_t(wt.k) - 2 * pc[i * nc + j];
        epilogue_row(&dot, 1, wt.alpha[j0 + j], bias ? bias + j0 + j : nullptr, nullptr, out_min, out_max,
                     y + i * n + j0 + j);
      }
  };
  const int threads = parallel ? get_num_threads() : 1;
  if (threads > 1 && np >= 2 && m * n * kw >= (1 << 14))
    parallel_chunks(np, int(std::min<int64_t>(np, threads)), [&](int, int64_t a, int64_t b) { run(a, b); });
  else
    run(0, np);
}

void b1_gemm_dots(int64_t m, int64_t n, int64_t k, const uint64_t* a, const uint64_t* b,
                  int32_t* dots) {
  if (m <= 0 || n <= 0) return;
  const int64_t kw = ceil_div(k, 64);
  std::vector<uint64_t> panels(size_t(ceil_div(n, 8) * std::max<int64_t>(kw, 1) * 8));
  pack_panels(n, kw, b, kw, panels.data());
  b1_gemm_ukernel(active_isa()).fn(size_t(m), size_t(n), size_t(kw), a, size_t(kw), panels.data(),
                                   dots, size_t(n));
  for (int64_t e = 0; e < m * n; ++e) dots[e] = int32_t(k) - 2 * dots[e];
}

// --------------------------------------------------------------------------------------- conv

std::vector<float> b1_channel_alpha(const float* w, int64_t cout, int64_t per) {
  std::vector<float> a(static_cast<size_t>(cout));
  for (int64_t o = 0; o < cout; ++o) {
    double s = 0;
    for (int64_t t = 0; t < per; ++t) s += std::fabs(w[o * per + t]);
    a[o] = per ? float(s / per) : 0.f;
  }
  return a;
}

B1ConvWeights b1_pack_conv_weights(int64_t cout, int64_t cin, int64_t kh, int64_t kw,
                                   const float* w, const float* alpha) {
  B1ConvWeights p;
  p.cout = cout;
  p.cin = cin;
  p.kh = kh;
  p.kw = kw;
  p.cw = ceil_div(cin, 64);
  const int64_t taps = kh * kw, kwd = p.kwords();
  p.bits.assign(size_t(cout * kwd), 0);
  p.tapsum.assign(size_t(cout * taps), 0);
  for (int64_t o = 0; o < cout; ++o)
    for (int64_t c = 0; c < cin; ++c)
      for (int64_t t = 0; t < taps; ++t) {
        const bool pos = w[(o * cin + c) * taps + t] >= 0.f;
        if (pos) p.bits[o * kwd + t * p.cw + c / 64] |= uint64_t(1) << (c % 64);
        p.tapsum[o * taps + t] += pos ? 1 : -1;
      }
  p.alpha.assign(alpha, alpha + cout);
  return p;
}

B1ConvPlan b1_conv_plan(const B1ConvWeights& wt, const B1Conv& cv, int64_t h, int64_t w) {
  B1ConvPlan p;
  p.wt = &wt;
  p.cv = cv;
  p.h = h;
  p.w = w;
  // none where the kernel does not fit the padded input (truncating division would give 1 row)
  p.oh = std::max<int64_t>(0, floor_div(h + 2 * cv.pad_h - wt.kh, cv.stride_h) + 1);
  p.ow = std::max<int64_t>(0, floor_div(w + 2 * cv.pad_w - wt.kw, cv.stride_w) + 1);
  if (cv.pad_value != -1)
    for (int64_t q = 0; q < p.oh * p.ow; ++q) {
      const int64_t ih0 = (q / p.ow) * cv.stride_h - cv.pad_h, iw0 = (q % p.ow) * cv.stride_w - cv.pad_w;
      uint64_t mask = 0;
      for (int64_t a = 0; a < wt.kh; ++a)
        for (int64_t b = 0; b < wt.kw; ++b)
          if (ih0 + a < 0 || ih0 + a >= h || iw0 + b < 0 || iw0 + b >= w) mask |= uint64_t(1) << (a * wt.kw + b);
      if (mask) p.border.emplace_back(q, mask);
    }
  p.nw = ceil_div(wt.cin, 32);
  // Rows narrower than 16 leave lanes idle; from 3 words per pixel the GEMM's 64-bit words win
  // there (resnet's 256 channels at 8x8 measured level or slower on the direct path).
  p.direct = (cv.stride_h == 1 || cv.stride_h == 2) && cv.stride_w == cv.stride_h && p.oh > 0 && p.ow > 0 &&
             wt.cout > 0 && (p.ow >= 16 || p.nw <= 2);
  if (!p.direct) return p;
  const int64_t kh = wt.kh, kw = wt.kw, taps = kh * kw, cout = wt.cout, stride = cv.stride_h;
  // At most 16 channels fill half of a 32-bit word: 16-bit words put 32 pixels in a vector (resnet's
  // 16-channel stage). Rows of at most 16 pixels would leave half of those lanes idle instead.
  // Rows of at most 8 pixels (resnet's 8x8 stage) fill half of a vector: two rows per vector.
  const bool k3x3 = kh == 3 && kw == 3;
  p.layout = stride == 2                              ? B1_PLANES_32_STRIDE2
             : k3x3 && wt.cin <= 16 && p.ow > 16      ? B1_PLANES_16
             : k3x3 && p.nw <= 2 && p.ow <= 8         ? B1_PLANES_32_ROWS2
                                                      : B1_PLANES_32;
  const int64_t lanes = p.layout == B1_PLANES_16 ? 32 : 16;
  p.ldb = ceil_div(p.ow, lanes) * lanes;
  if (stride == 1) {
    p.ldp = p.ldb + kw;  // covers w + 2 pad_w = ow + kw - 1, plus the last block's slack
  } else {
    // Each half holds its parity's padded columns ((w + 2 pad_w + 1) / 2) and the last block's
    // reads: 16-lane loads from s0 + j / 2 for the taps j of that parity.
    p.ldh = std::max(p.ldb + (kw - 1) / 2, (w + 2 * cv.pad_w + 1) / 2);
    p.ldp = 2 * p.ldh;
  }
  auto word = [&](int64_t o, int64_t i, int64_t j, int64_t c) {
    return uint32_t(wt.bits[o * wt.kwords() + (i * kw + j) * wt.cw + c / 2] >> (32 * (c % 2)));
  };
  p.wstride = kh * p.nw * ((kw / 3) * 4 + kw % 3) + int64_t(b1_direct_sum3_words(kh, kw, p.nw));
  // Channels in groups of 8, word-interleaved (ukernels.h): zero words past cout.
  p.w32.assign(size_t(ceil_div(cout, 8) * p.wstride * 8), 0);
  for (int64_t o = 0; o < cout; ++o) {
    uint32_t* dst = p.w32.data() + (o / 8) * p.wstride * 8 + o % 8;
    int64_t t = 0;
    // 16-bit planes: each word's 16 bits twice, so that a 32-bit broadcast fills every lane
    const bool twice = p.layout == B1_PLANES_16;
    auto put = [&](uint32_t v) { dst[8 * t++] = twice ? v | v << 16 : v; };
    for (int64_t i = 0; i < kh; ++i) {
      int64_t j = 0;
      for (; j + 3 <= kw; j += 3)
        for (int64_t c = 0; c < p.nw; ++c) {
          const uint32_t w1 = word(o, i, j, c), w2 = word(o, i, j + 1, c), w3 = word(o, i, j + 2, c);
          put(w1);
          put(w1 ^ w2);
          put(w1 ^ w3);
          put(w1 ^ w2 ^ w3);
        }
      for (; j < kw; ++j)
        for (int64_t c = 0; c < p.nw; ++c) put(word(o, i, j, c));
    }
    if (b1_direct_sum3_words(kh, kw, p.nw))
      for (int64_t c = 0; c < p.nw; ++c) {
        uint32_t s[3];
        for (int64_t i = 0; i < 3; ++i) s[i] = word(o, i, 0, c) ^ word(o, i, 1, c) ^ word(o, i, 2, c);
        put(s[0] ^ s[1]);
        put(s[0] ^ s[2]);
        put(s[0] ^ s[1] ^ s[2]);
      }
  }
  // Padded taps of output row r / column s (input position `at` = stride r - pad), as kernel-row
  // / kernel-column masks; rows with the same mask share a class.
  auto outside = [](int64_t at, int64_t k, int64_t n) {
    uint64_t m = 0;
    for (int64_t i = 0; i < k; ++i)
      if (at + i < 0 || at + i >= n) m |= uint64_t(1) << i;
    return m;
  };
  std::vector<uint64_t> cls_mask;
  std::vector<int32_t> rowcls(size_t(p.oh));
  for (int64_t r = 0; r < p.oh; ++r) {
    const uint64_t m = outside(r * stride - cv.pad_h, kh, h);
    const auto it = std::find(cls_mask.begin(), cls_mask.end(), m);
    rowcls[size_t(r)] = int32_t(it - cls_mask.begin());
    if (it == cls_mask.end()) cls_mask.push_back(m);
  }
  const int64_t ncls = int64_t(cls_mask.size());
  const int32_t K = int32_t(wt.cin * taps), pad_mult = cv.pad_value + 1;
  std::vector<int32_t> base(size_t(cout * ncls * p.ldb), K);
  for (int64_t s = 0; s < p.ow; ++s) {
    const uint64_t cm = outside(s * stride - cv.pad_w, kw, w);
    for (int64_t k = 0; k < ncls; ++k)
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          if (((cls_mask[k] >> i) | (cm >> j)) & 1)
            for (int64_t o = 0; o < cout; ++o)
              base[(o * ncls + k) * p.ldb + s] += pad_mult * wt.tapsum[o * taps + i * kw + j];
  }
  if (p.layout == B1_PLANES_32_ROWS2) {
    // Classes of row pairs (r, r + 1), the last row paired with itself: lanes 0-7 of a pair's base
    // row are row r's, lanes 8-15 row r + 1's.
    std::vector<std::pair<int32_t, int32_t>> pairs;
    p.rowcls.resize(size_t(p.oh));
    for (int64_t r = 0; r < p.oh; ++r) {
      const std::pair<int32_t, int32_t> pc{rowcls[size_t(r)], rowcls[size_t(std::min(r + 1, p.oh - 1))]};
      const auto it = std::find(pairs.begin(), pairs.end(), pc);
      p.rowcls[size_t(r)] = int32_t(it - pairs.begin());
      if (it == pairs.end()) pairs.push_back(pc);
    }
    p.ncls = int64_t(pairs.size());
    p.base.assign(size_t(cout * p.ncls * p.ldb), 0);
    for (int64_t o = 0; o < cout; ++o)
      for (int64_t k = 0; k < p.ncls; ++k)
        for (int64_t s = 0; s < p.ow; ++s) {
          p.base[size_t((o * p.ncls + k) * p.ldb + s)] = base[size_t((o * ncls + pairs[size_t(k)].first) * p.ldb + s)];
          p.base[size_t((o * p.ncls + k) * p.ldb + 8 + s)] = base[size_t((o * ncls + pairs[size_t(k)].second) * p.ldb + s)];
        }
  } else {
    p.rowcls = std::move(rowcls);
    p.ncls = ncls;
    p.base = std::move(base);
  }
  if (p.layout == B1_PLANES_16) p.base16.assign(p.base.begin(), p.base.end());  // |base| <= 3 K = 432
  return p;
}

namespace {

// A plan's planes: nplanes of hp rows, plane words each (word_bytes wide: 16-bit words for
// B1_PLANES_16, which has one plane), words 32-bit words in all; bytes with the row of slack
// B1_PLANES_32_ROWS2 loads past the last pair's.
struct PlaneGeometry {
  int64_t hp, plane, nplanes, word_bytes, words, bytes;
  explicit PlaneGeometry(const B1ConvPlan& p)
      : hp(p.h + 2 * p.cv.pad_h), plane(hp * p.ldp), nplanes(p.layout == B1_PLANES_16 ? 1 : p.nw),
        word_bytes(p.layout == B1_PLANES_16 ? 2 : 4), words(ceil_div(nplanes * plane * word_bytes, 4)),
        bytes(4 * (words + p.ldp)) {}
};

// The direct path (ukernels.h), one image at a time: binarize into the zero-bordered planes (or
// take the planes the writer of a link left), then the kernel, into y (or the reader's planes).
// Threads split the output rows (each writes its own rows of every channel).
void direct_conv(const B1ConvPlan& p, const B1GemmUkernel& uk, int64_t batch, const B1ConvSource& in,
                 const B1ConvEpilogue& epi, const B1ConvSink& out, bool parallel) {
  const B1ConvWeights& wt = *p.wt;
  const bool half = p.layout == B1_PLANES_16;
  const PlaneGeometry g(p);
  // Below this many popcount vectors per image a second thread costs more than it saves: a split
  // pays a hand-off (0.5-0.85 us on the Xeon KVM guests) and reads its halo rows from the other
  // core. resnet20's 32->32 at 16x16 (4608) took 2-22 % less time in the Engine on one thread
  // there (twelfth session); splitting all of binary resnet20's convs made it 1.29x slower when
  // the host ran fast, 0.91-1.01x when slow (benchmarks/README.md, sixteenth session).
  // steps: the kernel's row steps (row pairs for B1_PLANES_32_ROWS2), which parts split whole
  const int64_t unit = p.layout == B1_PLANES_32_ROWS2 ? 2 : 1, steps = ceil_div(p.oh, unit);
  const int64_t vectors = wt.cout * steps * ceil_div(p.ow, half ? 32 : 16) * wt.kh * wt.kw * p.nw;
  const int parts = parallel && vectors >= 8192 ? int(std::min<int64_t>(get_num_threads(), steps)) : 1;
  const B1ConvPlan* reader = out.link ? out.link->reader : nullptr;
  const std::optional<PlaneGeometry> rg = reader ? std::optional<PlaneGeometry>(*reader) : std::nullopt;
  // Part `part` computes output rows [r0, r1) of every image, binarizing into planes of its own
  // only the input rows those read. Split this way a part reads the rows that the same thread
  // wrote one layer earlier (parallel_parts), and binarizes about half the image instead of all
  // of it, as a split by output channels did.
  auto run = [&](int part, int64_t n) {
    const int64_t r0 = std::min(p.oh, unit * (steps * part / parts));
    const int64_t r1 = std::min(p.oh, unit * (steps * (part + 1) / parts));
    const uint32_t* pl = in.planes + n * in.image_bytes / 4;
    if (!in.planes) {
      // The part's planes in its thread's scratch (no allocation per call), zeroed for the first
      // image, whose binarized rows every later image overwrites.
      uint32_t* own = reinterpret_cast<uint32_t*>(scratch_f32(size_t(g.bytes / 4), kScratchB1Planes));
      if (n == 0) std::memset(own, 0, size_t(g.bytes));
      pl = own;
      // Input rows [i0, i1) (empty where the part's rows see only padding).
      const int64_t sh = p.cv.stride_h;
      const int64_t i0 = std::max<int64_t>(0, r0 * sh - p.cv.pad_h);
      const int64_t i1 = std::max(i0, std::min(p.h, (r1 - 1) * sh - p.cv.pad_h + wt.kh));
      const auto binarize = [&](int64_t from, int64_t to) {
        uk.binarize(in.x + n * wt.cin * p.h * p.w, size_t(wt.cin), size_t(p.h), size_t(p.w), size_t(from),
                    size_t(to), own, size_t(g.plane), size_t(p.ldp), size_t(p.cv.pad_h), size_t(p.cv.pad_w),
                    p.layout, size_t(p.ldh), p.cv.threshold);
      };
      if (wt.kh == 1 && sh == 2)  // reads the rows of even padded index only; the others stay zero
        for (int64_t ih = i0 + (i0 + p.cv.pad_h) % 2; ih < i1; ih += 2) binarize(ih, ih + 1);
      else
        binarize(i0, i1);
    }
    const int64_t image = n * wt.cout * p.oh * p.ow;
    b1_direct_params prm{pl, size_t(g.plane), size_t(p.ldp), size_t(p.nw), size_t(wt.kh),
                         size_t(wt.kw), p.layout, size_t(p.ldh), p.w32.data(), size_t(p.wstride),
                         p.base.data(), p.base16.data(), size_t(p.ncls),
                         size_t(p.ldb), p.rowcls.data(), wt.alpha.data(), epi.bias, epi.out_min,
                         epi.out_max, out.y ? out.y + image : nullptr, size_t(p.oh), size_t(p.ow),
                         epi.residual ? epi.residual + image : nullptr,
                         nullptr, 0, 0, 0, 0, 0, B1_PLANES_32, nullptr};
    if (reader) {
      // The reader's planes: this part's rows of each, the border rows above the first part's and
      // below the last's, and the slack, zeroed; the kernel then writes the interior words.
      uint8_t* img = reinterpret_cast<uint8_t*>(out.planes) + n * out.link->image_bytes;
      const int64_t top = part == 0 ? 0 : r0 + reader->cv.pad_h;
      const int64_t bottom = part == parts - 1 ? rg->hp : r1 + reader->cv.pad_h;
      for (int64_t k = 0; k < rg->nplanes; ++k)
        std::memset(img + (k * rg->plane + top * reader->ldp) * rg->word_bytes, 0,
                    size_t((bottom - top) * reader->ldp * rg->word_bytes));
      if (part == parts - 1) std::memset(img + 4 * rg->words, 0, size_t(rg->bytes - 4 * rg->words));
      prm.out_plane = reinterpret_cast<uint32_t*>(img);
      prm.out_plane_stride = size_t(rg->plane);
      prm.out_ldp = size_t(reader->ldp);
      prm.out_ldh = size_t(reader->ldh);
      prm.out_pad_h = size_t(reader->cv.pad_h);
      prm.out_pad_w = size_t(reader->cv.pad_w);
      prm.out_layout = reader->layout;
      prm.dmin = out.link->dmin.data();
    }
    uk.direct(&prm, 0, size_t(wt.cout), size_t(r0), size_t(r1));
  };
  if (parts > 1)
    parallel_parts(parts, [&](int part) {
      for (int64_t n = 0; n < batch; ++n) run(part, n);
    });
  else
    for (int64_t n = 0; n < batch; ++n) run(0, n);
}

// Bits of channels [64 wd, 64 wd + 64) at N pixels from (r, s0) into their words dst[s * cw]; N a
// constant, so the words are built in registers and stored once.
template <int N>
void binarize_words(const float* x, int64_t cin, int64_t h, int64_t w, const float* threshold, int64_t r,
                    int64_t s0, int64_t wd, uint64_t* dst, int64_t cw) {
  uint64_t acc[N] = {};
  for (int64_t c = wd * 64; c < std::min(cin, wd * 64 + 64); ++c) {
    const float* xr = x + (c * h + r) * w + s0;
    const float t = threshold ? threshold[c] : 0.f;
    for (int s = 0; s < N; ++s) acc[s] |= uint64_t(xr[s] >= t) << (c % 64);
  }
  for (int s = 0; s < N; ++s) dst[s * cw] = acc[s];
}

// One image x (cin x h x w) into the zero-bordered NHWC words xb (h + 2 pad_h rows of
// w + 2 pad_w pixels, cw words each): bit c % 64 of word c / 64 where x[c] >= threshold[c] (or 0).
void binarize_nhwc(const B1GemmUkernel& uk, const float* x, int64_t cin, int64_t h, int64_t w, const B1Conv& cv,
                   int64_t cw, uint64_t* xb) {
  const int64_t wp = w + 2 * cv.pad_w, pixels = (h + 2 * cv.pad_h) * wp;
  if (uk.binarize) {
    // The direct path's AVX-512 binarizer into 32-bit planes (one per 32 channels, zero border),
    // then each pair of planes interleaved into 64-bit words.
    std::vector<uint32_t> pl(size_t(2 * cw * pixels), 0);
    uk.binarize(x, size_t(cin), size_t(h), size_t(w), 0, size_t(h), pl.data(), size_t(pixels), size_t(wp),
                size_t(cv.pad_h), size_t(cv.pad_w), B1_PLANES_32, 0, cv.threshold);
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t k = 0; k < cw; ++k)
        xb[p * cw + k] = pl[size_t(2 * k * pixels + p)] | uint64_t(pl[size_t((2 * k + 1) * pixels + p)]) << 32;
    return;
  }
  // Elsewhere: words built in registers. Or-ing into memory channel by channel chained every
  // update through a store, and a branch per sign mispredicted half the time: a 576->96 1x1 conv
  // at 8x8 took 325 us on the AVX2 path, 60-81 us this way (16-18 us with the AVX-512 binarizer).
  std::fill(xb, xb + pixels * cw, 0);
  if (cw == 1) {  // contiguous words: a select-or per pixel, which vectorizes
    for (int64_t c = 0; c < cin; ++c) {
      const uint64_t bit = uint64_t(1) << c;
      const float t = cv.threshold ? cv.threshold[c] : 0.f;
      for (int64_t r = 0; r < h; ++r) {
        const float* xr = x + (c * h + r) * w;
        uint64_t* dst = xb + (r + cv.pad_h) * wp + cv.pad_w;
        for (int64_t s = 0; s < w; ++s) dst[s] |= xr[s] >= t ? bit : 0;
      }
    }
    return;
  }
  for (int64_t r = 0; r < h; ++r)
    for (int64_t wd = 0; wd < cw; ++wd) {
      uint64_t* dst = xb + ((r + cv.pad_h) * wp + cv.pad_w) * cw + wd;
      int64_t s0 = 0;
      for (; s0 + 8 <= w; s0 += 8) binarize_words<8>(x, cin, h, w, cv.threshold, r, s0, wd, dst + s0 * cw, cw);
      for (; s0 < w; ++s0) binarize_words<1>(x, cin, h, w, cv.threshold, r, s0, wd, dst + s0 * cw, cw);
    }
}

// im2col + GEMM: any stride, every path.
void gemm_conv(const B1ConvPlan& plan, const B1GemmUkernel& uk, int64_t batch, const float* x,
               const B1ConvEpilogue& epi, float* y, bool parallel) {
  const B1ConvWeights& wt = *plan.wt;
  const B1Conv& cv = plan.cv;
  const int64_t h = plan.h, w = plan.w, oh = plan.oh, ow = plan.ow;
  const int64_t cout = wt.cout, cin = wt.cin, kh = wt.kh, kw = wt.kw, cw = wt.cw;
  const int64_t kwd = wt.kwords(), taps = kh * kw, K = cin * taps;
  const int64_t P = oh * ow, np = ceil_div(P, 8);
  const int32_t pad_mult = cv.pad_value + 1;  // padded taps hold -1; add (pad_value + 1) * sum w

  // The binarized image sits in a plane with a zero-word border (bit 0 = -1, as padded taps are
  // in the im2col), so the im2col copies words without bounds checks.
  const int64_t hp = h + 2 * cv.pad_h, wp = w + 2 * cv.pad_w;
  const auto& border = plan.border;  // padded-tap masks, found once per plan

  // One image: binarized NHWC words, then panels [q0, q1) of its im2col, kernel and epilogue.
  auto image = [&](int64_t n, std::vector<uint64_t>& xb, std::vector<uint64_t>& col, int64_t q0,
                   int64_t q1, bool binarize) {
    const float* xn = x + n * cin * h * w;
    if (binarize) binarize_nhwc(uk, xn, cin, h, w, cv, cw, xb.data());
    for (int64_t p = q0 * 8; p < q1 * 8; ++p) {
      uint64_t* dst = col.data() + (p / 8) * kwd * 8 + p % 8;
      if (p >= P) {
        for (int64_t t = 0; t < kwd; ++t) dst[t * 8] = 0;
        continue;
      }
      const uint64_t* src = xb.data() + ((p / ow) * cv.stride_h * wp + (p % ow) * cv.stride_w) * cw;
      for (int64_t i = 0; i < kh; ++i)
        for (int64_t j = 0; j < kw; ++j)
          for (int64_t c = 0; c < cw; ++c) dst[((i * kw + j) * cw + c) * 8] = src[(i * wp + j) * cw + c];
    }
    constexpr int64_t kRows = 64, kPanels = 8;
    int32_t pc[kRows * kPanels * 8];
    float* yn = y + n * cout * P;
    const float* rn = epi.residual ? epi.residual + n * cout * P : nullptr;
    for (int64_t qb = q0; qb < q1; qb += kPanels) {
      const int64_t j0 = qb * 8, nc = std::min(P, std::min(q1, qb + kPanels) * 8) - j0;
      if (nc <= 0) break;
      const auto b0 = std::lower_bound(border.begin(), border.end(), std::make_pair(j0, uint64_t(0)));
      for (int64_t o0 = 0; o0 < cout; o0 += kRows) {
        const int64_t mc = std::min(kRows, cout - o0);
        uk.fn(size_t(mc), size_t(nc), size_t(kwd), wt.bits.data() + o0 * kwd, size_t(kwd),
              col.data() + qb * kwd * 8, pc, size_t(nc));
        for (int64_t i = 0; i < mc; ++i) {
          int32_t* pci = pc + i * nc;
          for (int64_t j = 0; j < nc; ++j) pci[j] = int32_t(K) - 2 * pci[j];   // popcounts -> dots
          const int32_t* ts = wt.tapsum.data() + (o0 + i) * taps;
          for (auto it = b0; it != border.end() && it->first < j0 + nc; ++it) {
            int32_t s = 0;
            for (uint64_t m = it->second; m; m &= m - 1) s += ts[__builtin_ctzll(m)];
            pci[it->first - j0] += pad_mult * s;
          }
          float* yo = yn + (o0 + i) * P + j0;
          epilogue_row(pci, nc, wt.alpha[o0 + i], epi.bias ? epi.bias + o0 + i : nullptr,
                       rn ? rn + (o0 + i) * P + j0 : nullptr, epi.out_min, epi.out_max, yo);
        }
      }
    }
  };

  const int threads = parallel ? get_num_threads() : 1;
  const bool big = cout * P * kwd >= (1 << 14);
  if (threads > 1 && big && batch >= threads) {
    parallel_chunks(batch, threads, [&](int, int64_t n0, int64_t n1) {
      std::vector<uint64_t> xb(size_t(hp * wp * cw)), col(size_t(np * kwd * 8));
      for (int64_t n = n0; n < n1; ++n) image(n, xb, col, 0, np, true);
    });
    return;
  }
  std::vector<uint64_t> xb(size_t(hp * wp * cw)), col(size_t(np * kwd * 8));
  for (int64_t n = 0; n < batch; ++n) {
    if (threads > 1 && big && np >= 2) {
      image(n, xb, col, 0, 0, true);  // binarize once; each chunk builds its own panels
      parallel_chunks(np, int(std::min<int64_t>(np, threads)),
                      [&](int, int64_t q0, int64_t q1) { image(n, xb, col, q0, q1, false); });
    } else {
      image(n, xb, col, 0, np, true);
    }
  }
}

}  // namespace

void b1_conv2d(const B1ConvPlan& plan, int64_t batch, const float* x, const B1ConvEpilogue& epi,
               float* y, bool parallel) {
  b1_conv2d(plan, batch, B1ConvSource{x}, epi, B1ConvSink{y}, parallel);
}

void b1_conv2d(const B1ConvPlan& plan, int64_t batch, const B1ConvSource& in, const B1ConvEpilogue& epi,
               const B1ConvSink& out, bool parallel) {
  if (batch <= 0 || plan.wt->cout <= 0 || plan.oh <= 0 || plan.ow <= 0) return;
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  const bool direct = plan.direct && uk.direct;
  if ((in.planes || out.link) && !direct)
    throw std::logic_error("b1_conv2d: bit planes in or out need the direct path (see b1_link)");
  if (out.link && epi.residual) throw std::logic_error("b1_conv2d: a conv writing planes takes no residual");
  if (direct)
    direct_conv(plan, uk, batch, in, epi, out, parallel);
  else
    gemm_conv(plan, uk, batch, in.x, epi, out.y, parallel);
}

int64_t b1_plane_bytes(const B1ConvPlan& reader) {
  return PlaneGeometry(reader).bytes;
}

bool b1_link(const B1ConvPlan& writer, const float* bias, float out_min, float out_max, const B1ConvPlan& reader,
             B1PlaneLink* link) {
  const B1GemmUkernel& uk = b1_gemm_ukernel(active_isa());
  if (!uk.direct || !writer.direct || !reader.direct) return false;
  const B1ConvWeights& wt = *writer.wt;
  if (reader.wt->cin != wt.cout || reader.h != writer.oh || reader.w != writer.ow || writer.oh <= 0 ||
      writer.ow <= 0)
    return false;
  // |dot| <= K; scan every value: the bit must switch on once and stay on.
  const int64_t K = wt.cin * wt.kh * wt.kw;
  std::vector<int32_t> dmin(size_t(wt.cout));
  for (int64_t o = 0; o < wt.cout; ++o) {
    const float t = reader.cv.threshold ? reader.cv.threshold[o] : 0.f;
    int64_t first = K + 1;
    for (int64_t d = -K; d <= K; ++d) {
      const bool bit = b1_epilogue(d, wt.alpha[size_t(o)], bias ? bias + o : nullptr, nullptr, out_min, out_max) >= t;
      if (bit && first > K) first = d;
      if (!bit && first <= K) return false;  // off again: not monotone (alpha < 0)
    }
    dmin[size_t(o)] = int32_t(first);
  }
  link->reader = &reader;
  link->dmin = std::move(dmin);
  link->image_bytes = b1_plane_bytes(reader);
  return true;
}

void b1_conv2d(const B1ConvWeights& wt, const B1Conv& cv, int64_t batch, int64_t h, int64_t w,
               const float* x, const B1ConvEpilogue& epi, float* y, bool parallel) {
  b1_conv2d(b1_conv_plan(wt, cv, h, w), batch, x, epi, y, parallel);
}

}  // namespace eo
