#include "qs8-conv2d/conv2d.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/int_math.h"
#include "common/parallel.h"
#include "isa/isa.h"

namespace eo {
namespace {


constexpr int64_t kRowBlock = 32;          // chunks of output rows are whole multiples of this
constexpr int64_t kSerialMacs = 1 << 19;   // below this many MACs a layer stays on one thread
constexpr int64_t kIm2colBytes = 48 << 10; // im2col block per thread: ~L1/L2-resident
constexpr int kMaxTapPtrs = 1024;          // depthwise indirection pointers on the stack

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("qs8 conv2d: " + what);
}

const Qs8OpUkernels& op_ukernels(const Qs8Conv2d& op) {
  return op.op_isa_override >= 0 ? qs8_op_ukernels(static_cast<Isa>(op.op_isa_override))
                                 : qs8_op_ukernels();
}

// Residual add and table lookup on output rows [r0, r1), channels [j0, j1).
void epilogue(const Qs8Conv2d& op, const Qs8OpUkernels& ouk, int64_t r0, int64_t r1, int64_t j0,
              int64_t j1, const uint8_t* res, uint8_t* y) {
  const Qs8ConvEpilogue& e = op.epi;
  if (!e.residual && !e.has_lut) return;
  const int64_t C = op.s.cout;
  const bool whole = j0 == 0 && j1 == C;
  const int64_t nrows = whole ? 1 : r1 - r0, len = whole ? (r1 - r0) * C : j1 - j0;
  for (int64_t i = 0; i < nrows; ++i) {
    const int64_t off = (r0 + i) * C + j0;
    uint8_t* p = y + off;
    if (e.residual) ouk.add(size_t(len), p, res + off, &e.add, p);
    if (e.has_lut)
      for (int64_t t = 0; t < len; ++t) p[t] = e.lut[p[t]];
  }
}

// im2col of group g for output rows [r0, r1) (row = (n*OH + oh)*OW + ow) into a with row stride
// lda: column (kh*KW + kw)*kc + ci, padding taps filled with in_zp (real 0); channels past Cig
// (kc > Cig) meet zero weights, so they hold in_zp too.
void im2col(const Qs8Conv2d& op, int64_t H, int64_t W, int64_t OH, int64_t OW, const uint8_t* x,
            int64_t g, int64_t r0, int64_t r1, uint8_t* a, int64_t lda) {
  const Qs8ConvShape& s = op.s;
  const int64_t cig = s.cin / s.groups, kc = op.kc;
  const int zp = op.in_zp;
  // a kw window of in-bounds pixels is one memcpy when taps are whole pixels
  const bool whole_pixels = s.groups == 1 && kc == cig;
  const bool pad_channels = kc > cig;  // then the row starts as in_zp and only pixels are copied
  for (int64_t r = r0; r < r1; ++r) {
    const int64_t ow = r % OW, t = r / OW, oh = t % OH, n = t / OH;
    uint8_t* dst = a + (r - r0) * lda;
    if (pad_channels) std::memset(dst, zp, size_t(s.kh * s.kw * kc));
    const int64_t iw0 = ow * s.sw - s.pw;
    for (int64_t i = 0; i < s.kh; ++i) {
      const int64_t ih = oh * s.sh - s.ph + i;
      const uint8_t* src = x + ((n * H + ih) * W) * s.cin + g * cig;
      if (ih < 0 || ih >= H) {
        if (!pad_channels) std::memset(dst, zp, size_t(s.kw * kc));
        dst += s.kw * kc;
        continue;
      }
      if (whole_pixels && iw0 >= 0 && iw0 + s.kw <= W) {
        std::memcpy(dst, src + iw0 * s.cin, size_t(s.kw * cig));
        dst += s.kw * cig;
        continue;
      }
      for (int64_t j = 0; j < s.kw; ++j, dst += kc) {
        const int64_t iw = iw0 + j;
        if (iw >= 0 && iw < W)
          std::memcpy(dst, src + iw * s.cin, size_t(cig));
        else if (!pad_channels)
          std::memset(dst, zp, size_t(kc));
      }
    }
  }
}

// C rows [0, m) x columns [j0, j1) of group g (j0 a multiple of 16) from A (m x k, stride lda).
void gemm_block(const Qs8Conv2d& op, const Qs8GemmUkernel& uk, int64_t g, int64_t m,
                const uint8_t* a, int64_t lda, int64_t k, int64_t j0, int64_t j1, uint8_t* c) {
  const Qs8PackedB& b = op.packed[size_t(g)];
  const int64_t cog = op.s.cout / op.s.groups, off = g * b.npad + j0;
  const qs8_gemm_params p{op.adj.data() + off, op.scale_p.data() + off, op.out_zp, op.qmin, op.qmax};
  const size_t ps = size_t(b.panel_stride());
  if (b.bits == 4) {  // scratch: written by the kernel before it is read, so left uninitialized
    int8_t* scratch = qs8_gemm4_scratch(qs8_gemm4_scratch_bytes(size_t(k)));
    uk.fn4(size_t(m), size_t(j1 - j0), size_t(k), a, size_t(lda), b.data.data() + (j0 / 16) * ps,
           ps, &p, c + g * cog + j0, size_t(op.s.cout), scratch);
  } else {
    uk.fn(size_t(m), size_t(j1 - j0), size_t(k), a, size_t(lda), b.data.data() + (j0 / 16) * ps,
          ps, &p, c + g * cog + j0, size_t(op.s.cout));
  }
}

// Implicit GEMM (VNNI): the input with its padding (and the channels past Cin up to kc)
// materialized as in_zp (xp, N x Hp x Wp x kc; x itself when there is neither), tap t of output
// pixel r at rows(r) + tap_off[t].
struct Implicit {
  const uint8_t* xp;
  int64_t Hp, Wp, OH, OW;
  std::vector<size_t> tap_off;
};

Implicit implicit_input(const Qs8Conv2d& op, int64_t N, int64_t H, int64_t W, const uint8_t* x,
                        uint8_t* ws, int chunks) {
  const Qs8ConvShape& s = op.s;
  const int64_t C = op.kc;  // channels per pixel in xp: cin, or padded up to a multiple of 4
  Implicit im{x, H + 2 * s.ph, W + 2 * s.pw, s.out_h(H), s.out_w(W), {}};
  for (int64_t i = 0; i < s.kh; ++i)
    for (int64_t j = 0; j < s.kw; ++j) im.tap_off.push_back(size_t((i * im.Wp + j) * C));
  if (s.ph == 0 && s.pw == 0 && C == s.cin) return im;
  const int64_t row = im.Wp * C;
  // The copy is split over the threads the conv itself uses (rows of the padded input).
  auto copy = [&](int, int64_t q0, int64_t q1) {
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / im.Hp, r = q % im.Hp;
      uint8_t* d = ws + q * row;
      const int64_t ih = r - s.ph;
      if (ih < 0 || ih >= H || C != s.cin) std::memset(d, op.in_zp, size_t(row));
      if (ih < 0 || ih >= H) continue;
      const uint8_t* src = x + (n * H + ih) * W * s.cin;
      if (C == s.cin) {
        std::memset(d, op.in_zp, size_t(s.pw * C));
        std::memcpy(d + s.pw * C, src, size_t(W * C));
        std::memset(d + (s.pw + W) * C, op.in_zp, size_t(s.pw * C));
      } else {
        for (int64_t w = 0; w < W; ++w) std::memcpy(d + (s.pw + w) * C, src + w * s.cin, size_t(s.cin));
      }
    }
  };
  if (chunks > 1)
    parallel_chunks(N * im.Hp, chunks, copy);
  else
    copy(0, 0, N * im.Hp);
  im.xp = ws;
  return im;
}

// C rows [r0, r1) x columns [j0, j1) (j0 a multiple of 16) by the implicit GEMM: one kernel call
// over the rows (a 4-bit column block is widened once for all of them).
void implicit_block(const Qs8Conv2d& op, const Qs8GemmUkernel& uk, const Implicit& im, int64_t r0,
                    int64_t r1, int64_t j0, int64_t j1, uint8_t* y) {
  const Qs8ConvShape& s = op.s;
  const Qs8PackedB& b = op.packed[0];
  const qs8_gemm_params p{op.adj.data() + j0, op.scale_p.data() + j0, op.out_zp, op.qmin, op.qmax};
  const size_t ps = size_t(b.panel_stride());
  const int64_t m = r1 - r0;
  std::vector<const uint8_t*> rows(size_t(round_up(m, 8)));
  int64_t ow = r0 % im.OW, oh = (r0 / im.OW) % im.OH, n = r0 / (im.OW * im.OH);
  for (int64_t i = 0; i < m; ++i) {
    rows[size_t(i)] = im.xp + ((n * im.Hp + oh * s.sh) * im.Wp + ow * s.sw) * op.kc;
    if (++ow == im.OW) {
      ow = 0;
      if (++oh == im.OH) oh = 0, ++n;
    }
  }
  for (size_t i = size_t(m); i < rows.size(); ++i) rows[i] = rows[size_t(m - 1)];
  const int8_t* pb = b.data.data() + (j0 / 16) * ps;
  if (b.bits == 4) {  // scratch: written by the kernel before it is read, so left uninitialized
    int8_t* scratch = qs8_gemm4_scratch(qs8_gemm4_scratch_bytes(im.tap_off.size() * size_t(op.kc)));
    uk.igemm4(size_t(m), size_t(j1 - j0), im.tap_off.size(), size_t(op.kc), rows.data(),
              im.tap_off.data(), pb, ps, &p, y + r0 * s.cout + j0, size_t(s.cout), scratch);
  } else {
    uk.igemm(size_t(m), size_t(j1 - j0), im.tap_off.size(), size_t(op.kc), rows.data(),
             im.tap_off.data(), pb, ps, &p, y + r0 * s.cout + j0, size_t(s.cout));
  }
}

void run_depthwise(const Qs8Conv2d& op, const Qs8OpUkernels& ouk, int64_t N, int64_t H, int64_t W,
                   const uint8_t* x, const uint8_t* res, uint8_t* y) {
  const Qs8ConvShape& s = op.s;
  const int64_t OH = s.out_h(H), OW = s.out_w(W), C = s.cin, ntaps = s.kh * s.kw;
  const qs8_dwconv_params p{op.dw_w.data(),      op.dw_adj.data(),   op.dw_scale.data(),
                            size_t(op.cstride),   op.out_zp,          op.qmin,
                            op.qmax,              op.dw_w8.data(),    op.dw_adj_p.data(),
                            op.dw_scale_p.data(), op.zp_row.data()};
  const int64_t rows = N * OH;
  auto work = [&](int, int64_t q0, int64_t q1) {
    const uint8_t* stack_ptrs[kMaxTapPtrs];
    std::vector<const uint8_t*> heap_ptrs;
    const uint8_t** ptrs = stack_ptrs;
    if (ntaps > kMaxTapPtrs) {
      heap_ptrs.resize(size_t(ntaps));
      ptrs = heap_ptrs.data();
    }
    const int64_t P = std::max<int64_t>(1, kMaxTapPtrs / ntaps);
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t n = q / OH, oh = q % OH;
      for (int64_t ow0 = 0; ow0 < OW; ow0 += P) {
        const int64_t np = std::min(P, OW - ow0);
        const uint8_t** t = ptrs;
        for (int64_t ow = ow0; ow < ow0 + np; ++ow)
          for (int64_t i = 0; i < s.kh; ++i) {
            const int64_t ih = oh * s.sh - s.ph + i;
            for (int64_t j = 0; j < s.kw; ++j) {
              const int64_t iw = ow * s.sw - s.pw + j;
              *t++ = (ih < 0 || ih >= H || iw < 0 || iw >= W) ? op.zp_row.data()
                                                              : x + ((n * H + ih) * W + iw) * C;
            }
          }
        ouk.dwconv(size_t(C), size_t(np), size_t(ntaps), ptrs, &p, y + (q * OW + ow0) * C,
                   size_t(C));
      }
      epilogue(op, ouk, q * OW, (q + 1) * OW, 0, C, res, y);
    }
  };
  const int threads = get_num_threads();
  // The direct kernel does fewer MACs per cycle than the GEMM: split earlier.
  if (threads <= 1 || rows < 2 || rows * OW * C * ntaps * 4 < kSerialMacs)
    work(0, 0, rows);
  else
    parallel_chunks(rows, int(std::min<int64_t>(rows, threads)), work);
}

}  // namespace

// A 1x1 stride-1 unpadded one-group conv: the GEMM reads x as it is.
static bool direct_gemm(const Qs8ConvShape& s) {
  return s.groups == 1 && s.kh == 1 && s.kw == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 &&
         s.pw == 0;
}

Qs8Conv2d qs8_conv2d_create(const Qs8ConvShape& s, const int8_t* w, const int32_t* bias,
                            const float* scale, int32_t in_zp,
                            int32_t out_zp, int32_t qmin, int32_t qmax,
                            const Qs8ConvEpilogue& epi, int weight_bits) {
  require(weight_bits == 8 || weight_bits == 4, "weight_bits must be 8 or 4");
  require(s.cin >= 1 && s.cout >= 1 && s.kh >= 1 && s.kw >= 1 && s.sh >= 1 && s.sw >= 1 &&
              s.ph >= 0 && s.pw >= 0 && s.groups >= 1,
          "sizes, kernel and stride must be positive and padding non-negative");
  require(s.cin % s.groups == 0 && s.cout % s.groups == 0,
          "cin (" + std::to_string(s.cin) + ") and cout (" + std::to_string(s.cout) +
              ") must be divisible by groups (" + std::to_string(s.groups) + ")");
  require(in_zp >= 0 && in_zp <= 255, "in_zp must be in [0, 255]");
  require(out_zp >= 0 && out_zp <= 255, "out_zp must be in [0, 255]");
  require(0 <= qmin && qmin <= qmax && qmax <= 255, "need 0 <= qmin <= qmax <= 255");
  for (int64_t j = 0; j < s.cout; ++j)
    require(std::isfinite(scale[j]) && scale[j] > 0.0f,
            "scale must be finite and > 0 (channel " + std::to_string(j) + ")");
  if (epi.residual) {
    const qs8_add_params& a = epi.add;
    require(qs8_add_params_valid(&a), "residual add: " QS8_ADD_PARAMS_RULE);
  }
  Qs8Conv2d op;
  op.s = s;
  op.in_zp = in_zp;
  op.out_zp = out_zp;
  op.qmin = qmin;
  op.qmax = qmax;
  op.bias.assign(size_t(s.cout), 0);
  if (bias) op.bias.assign(bias, bias + s.cout);
  op.epi = epi;
  const int64_t ntaps = s.kh * s.kw;
  if (s.depthwise()) {
    const int64_t C = s.cin;
    op.cstride = round_up(C, 16);
    op.dw_w.assign(size_t(ntaps * op.cstride), 0);
    op.dw_adj.assign(size_t(op.cstride), 0);
    op.dw_scale.assign(size_t(op.cstride), 0.0f);
    for (int64_t c = 0; c < C; ++c) {
      int64_t abssum = 0, sum = 0;
      for (int64_t t = 0; t < ntaps; ++t) {
        op.dw_w[size_t(t * op.cstride + c)] = w[c * ntaps + t];
        abssum += std::abs(int(w[c * ntaps + t]));
        sum += w[c * ntaps + t];
      }
      require(std::abs(int64_t(op.bias[c])) + 255 * abssum <= INT32_MAX,
              "|bias| + 255 * sum |w| must fit int32 (channel " + std::to_string(c) + ")");
      // bias - in_zp * sum w, modulo 2^32 like the kernels' accumulation
      op.dw_adj[c] = int32_t(uint32_t(op.bias[c]) - uint32_t(in_zp) * uint32_t(int32_t(sum)));
      op.dw_scale[c] = scale[c];
    }
    op.zp_row.assign(size_t(std::max<int64_t>(C, 64)), uint8_t(in_zp));
    // the VNNI kernel's layout (ukernels.h): whole 64-channel blocks, taps in groups of four
    const int64_t nb = C / 64, ng = ceil_div(ntaps, 4);
    op.dw_w8.assign(size_t(nb * ng * 256), 0);
    op.dw_adj_p.assign(size_t(nb * 64), 0);
    op.dw_scale_p.assign(size_t(nb * 64), 0.0f);
    for (int64_t b = 0; b < nb; ++b)
      for (int64_t k = 0; k < 4; ++k)
        for (int64_t L = 0; L < 4; ++L)
          for (int64_t j = 0; j < 4; ++j) {
            const int64_t c = 64 * b + 16 * L + 4 * k + j;
            const size_t at = size_t((4 * b + k) * 16 + 4 * L + j);
            op.dw_adj_p[at] = op.dw_adj[c];
            op.dw_scale_p[at] = scale[c];
            for (int64_t g = 0; g < ng; ++g)
              for (int64_t i = 0; i < 4 && 4 * g + i < ntaps; ++i)
                op.dw_w8[size_t(((b * ng + g) * 4 + k) * 64 + 16 * L + 4 * j + i)] = w[c * ntaps + 4 * g + i];
          }
    return op;
  }
  const int64_t G = s.groups, cig = s.cin / G, cog = s.cout / G;
  op.kc = G == 1 && !direct_gemm(s) ? round_up(cig, 4) : cig;
  const int64_t K = ntaps * op.kc;
  std::vector<int8_t> wpad;  // OHWI with kc channels per tap, zero weights in the padding ones
  if (op.kc != cig) {
    wpad.assign(size_t(s.cout * K), 0);
    for (int64_t o = 0; o < s.cout; ++o)
      for (int64_t t = 0; t < ntaps; ++t)
        std::memcpy(&wpad[size_t((o * ntaps + t) * op.kc)], w + (o * ntaps + t) * cig, size_t(cig));
    w = wpad.data();
  }
  for (int64_t g = 0; g < G; ++g) {
    op.packed.push_back(qs8_pack_b(K, cog, w + g * cog * K, 1, K, weight_bits));
    require(qs8_accumulator_fits(op.packed.back(), op.bias.data() + g * cog),
            "|bias| + 255 * sum |w| must fit int32 for every output channel (group " +
                std::to_string(g) + ")");
  }
  const int64_t npad = op.packed[0].npad;
  op.adj.assign(size_t(G * npad), 0);
  op.scale_p.assign(size_t(G * npad), 0.0f);
  for (int64_t g = 0; g < G; ++g)
    for (int64_t j = 0; j < cog; ++j) {
      const int64_t co = g * cog + j, at = g * npad + j;
      // bias - in_zp * colsum, modulo 2^32 like the micro-kernels' accumulation
      op.adj[at] = int32_t(uint32_t(op.bias[co]) -
                           uint32_t(in_zp) * uint32_t(op.packed[size_t(g)].colsum[j]));
      op.scale_p[at] = scale[co];
    }
  return op;
}



// The implicit GEMM (VNNI): one group, whole 4-byte k-groups in every tap.
static bool implicit_gemm(const Qs8Conv2d& op, const Qs8GemmUkernel& uk) {
  const bool four = !op.packed.empty() && op.packed[0].bits == 4;
  return (four ? uk.igemm4 != nullptr : uk.igemm != nullptr) && op.s.groups == 1 &&
         op.kc % 4 == 0 && !direct_gemm(op.s);
}

// The GEMM path for this conv: the default for its K, except that AMX needs an im2col copy, and
// with taps of at most 16 bytes that copy (a short memcpy per tap and pixel) costs more than the
// tiles save: 1.7x slower than VNNI's implicit GEMM on resnet20's 16-channel 3x3 convs at 32x32
// (Xeon, AMX), so those take VNNI.
static Qs8Path conv_path(const Qs8Conv2d& op, int64_t K) {
  if (op.path_override >= 0) return static_cast<Qs8Path>(op.path_override);
  const Qs8Path path = qs8_gemm_default_path(K);
  if (path == Qs8Path::amx && op.kc <= 16 && qs8_gemm_path_supported(Qs8Path::avx512vnni) &&
      implicit_gemm(op, qs8_gemm_ukernel(Qs8Path::avx512vnni)))
    return Qs8Path::avx512vnni;
  return path;
}

size_t qs8_conv2d_workspace_bytes(const Qs8Conv2d& op, int64_t N, int64_t H, int64_t W) {
  const Qs8ConvShape& s = op.s;
  if (s.depthwise() || direct_gemm(s)) return 0;
  const int64_t M = N * s.out_h(H) * s.out_w(W);
  if (M <= 0) return 0;
  // whichever path runs (set_isa may change it after planning): an im2col or the padded input
  const int64_t im2col = M * round_up(s.kh * s.kw * op.kc, 64);
  const int64_t padded = s.ph || s.pw || op.kc != s.cin ? N * (H + 2 * s.ph) * (W + 2 * s.pw) * op.kc : 0;
  return size_t(std::max(im2col, padded));
}

void qs8_conv2d_run(const Qs8Conv2d& op, int64_t N, int64_t H, int64_t W, const uint8_t* x,
                    const uint8_t* res, uint8_t* y, uint8_t* ws) {
  const Qs8ConvShape& s = op.s;
  const int64_t OH = s.out_h(H), OW = s.out_w(W), M = N * OH * OW;
  if (N <= 0 || OH <= 0 || OW <= 0) return;
  const Qs8OpUkernels& ouk = op_ukernels(op);
  if (s.depthwise()) {
    run_depthwise(op, ouk, N, H, W, x, res, y);
    return;
  }
  const int64_t G = s.groups, cog = s.cout / G, K = s.kh * s.kw * op.kc;
  const Qs8Path path = conv_path(op, K);
  const Qs8GemmUkernel& uk = qs8_gemm_ukernel(path);
  const bool direct = direct_gemm(s);
  const bool implicit = implicit_gemm(op, uk);
  // im2col rows are padded so the kernels never see a partial k-group: whole 64-byte AMX tiles
  // (no copy into the zero-padded tile buffer) or whole 4-byte VNNI groups. The packed weights are
  // zero there, so whatever the padding holds adds 0.
  const int64_t lda = direct ? s.cin : round_up(K, path == Qs8Path::amx ? 64 : 4);
  const int64_t kcall = direct ? K : lda;
  const int64_t mb = ceil_div(M, kRowBlock), nb = ceil_div(cog, kRowBlock);
  const int threads = get_num_threads();
  const int64_t T = threads;
  bool cols = false;
  int chunks = 1;
  if (threads > 1 && M * s.cout * K >= kSerialMacs) {
    const double row_eff = double(mb) / double(T * ceil_div(mb, T));
    const double col_eff = double(nb) / double(T * ceil_div(nb, T));
    cols = G == 1 && nb >= 2 && col_eff > row_eff + 0.1;
    chunks = int(std::min<int64_t>(T, cols ? nb : mb));
  }
  if (implicit) {
    const Implicit im = implicit_input(op, N, H, W, x, ws, chunks);
    if (cols)
      parallel_chunks(nb, chunks, [&](int, int64_t b0, int64_t b1) {
        const int64_t j0 = b0 * kRowBlock, j1 = std::min(cog, b1 * kRowBlock);
        implicit_block(op, uk, im, 0, M, j0, j1, y);
        epilogue(op, ouk, 0, M, j0, j1, res, y);
      });
    else
      parallel_chunks(mb, chunks, [&](int, int64_t b0, int64_t b1) {
        const int64_t R0 = b0 * kRowBlock, R1 = std::min(M, b1 * kRowBlock);
        // the epilogue while the rows are in cache: blocks of ~32 KB of output (one kernel call
        // each, so a 4-bit column block is widened once per block)
        const int64_t MB = std::max<int64_t>(256, round_up((int64_t(1) << 15) / s.cout, kRowBlock));
        for (int64_t r = R0; r < R1; r += MB) {
          const int64_t r1 = std::min(R1, r + MB);
          implicit_block(op, uk, im, r, r1, 0, cog, y);
          epilogue(op, ouk, r, r1, 0, s.cout, res, y);
        }
      });
    return;
  }
  if (cols) {
    const uint8_t* a = x;
    if (!direct) {
      uint8_t* buf = ws;
      parallel_chunks(mb, chunks, [&](int, int64_t b0, int64_t b1) {
        const int64_t r0 = b0 * kRowBlock, r1 = std::min(M, b1 * kRowBlock);
        im2col(op, H, W, OH, OW, x, 0, r0, r1, buf + r0 * lda, lda);
      });
      a = buf;
    }
    parallel_chunks(nb, chunks, [&](int, int64_t b0, int64_t b1) {
      const int64_t j0 = b0 * kRowBlock, j1 = std::min(cog, b1 * kRowBlock);
      gemm_block(op, uk, 0, M, a, lda, kcall, j0, j1, y);
      epilogue(op, ouk, 0, M, j0, j1, res, y);
    });
    return;
  }
  const int64_t MB = direct ? 256 : std::clamp<int64_t>(kIm2colBytes / lda / kRowBlock * kRowBlock,
                                                         kRowBlock, 256);
  // Each chunk writes its im2col blocks into its own rows of the workspace (M x lda bytes).
  auto work = [&](int, int64_t b0, int64_t b1) {
    const int64_t R0 = b0 * kRowBlock, R1 = std::min(M, b1 * kRowBlock);
    for (int64_t r = R0; r < R1; r += MB) {
      const int64_t r1 = std::min(R1, r + MB);
      uint8_t* buf = direct ? nullptr : ws + r * lda;
      for (int64_t g = 0; g < G; ++g) {
        const uint8_t* a = x + r * s.cin;
        if (!direct) {
          im2col(op, H, W, OH, OW, x, g, r, r1, buf, lda);
          a = buf;
        }
        gemm_block(op, uk, g, r1 - r, a, lda, kcall, 0, cog, y + r * s.cout);
      }
      epilogue(op, ouk, r, r1, 0, s.cout, res, y);
    }
  };
  if (chunks <= 1)
    work(0, 0, mb);
  else
    parallel_chunks(mb, chunks, work);
}

}  // namespace eo
