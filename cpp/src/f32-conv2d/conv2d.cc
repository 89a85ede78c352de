// Convolution as GEMM, one image at a time (im2col lowering, see im2col.h), per group g:
//   forward      y_g (Mg x P)   = W_g (Mg x Kg) col_g (Kg x P)            [+ bias]
//   data grad    dcol (Kg x P)  = W_g^T dY_g,  dx_g = col2im(dcol)
//   weight grad  dW_g (Mg x Kg') += dY_g (Mg x P) colT_g (P x Kg')          (Kg' in (kh, kw, c) order)
// The weights are packed once per call and shared by every image; the patch matrices are written
// straight in packed form. Images run in parallel with serial GEMMs (no synchronisation inside an
// image, per-thread scratch); when the batch is smaller than the thread count the images run in
// turn and each GEMM is parallel instead. The weight gradient is reduced deterministically: each
// of reduction_chunks(N) fixed image ranges accumulates its own partial, summed in chunk order.
// A 1x1, stride-1, unpadded convolution needs no im2col: x_g is already col_g (Cg x P) and dx_g
// is dcol itself.
#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "f32-conv2d/conv2d.h"
#include "f32-conv2d/im2col.h"
#include "f32-directconv/conv.h"
#include "f32-dwconv/train.h"
#include "f32-gemm/gemm.h"
#include "isa/dispatch.h"

namespace eo {
namespace {


// Outputs below this many pixels take the batched path (measured on MobileNetV2's 1x1 shapes, one
// thread: at 4x4 the per-image GEMMs run at half PyTorch's speed and the batched one at 0.9x; at
// 8x8 the per-image ones win, 1.1x against 0.9x).
constexpr int64_t kBatchedBelow = 64;

struct Dims {
  int64_t G, Cg, Mg, Kg, P, HW;
  bool pointwise;
};

Dims dims(const Conv2dShape& s) {
  Dims d;
  d.G = s.groups;
  d.Cg = s.Cin / s.groups;
  d.Mg = s.Cout / s.groups;
  d.Kg = d.Cg * s.KH * s.KW;
  d.P = s.OH() * s.OW();
  d.HW = s.H * s.W;
  d.pointwise = s.KH == 1 && s.KW == 1 && s.sh == 1 && s.sw == 1 && s.ph == 0 && s.pw == 0;
  return d;
}

// Buffers one image needs: per-thread scratch in the image-parallel mode, heap otherwise (a
// thread waiting on a parallel GEMM must not hold scratch, see common/parallel.h).
struct Buffers {
  std::vector<float> heap[kScratchConvDcol - kScratchConvCol + 1];  // one per f32-conv2d slot
  float* get(bool scratch, ScratchSlot slot, int64_t n) {
    if (scratch) return scratch_f32(static_cast<size_t>(n), slot);
    auto& v = heap[slot - kScratchConvCol];
    if (static_cast<int64_t>(v.size()) < n) v.resize(n);
    return v.data();
  }
};

// Runs image(n, scratch, parallel_gemm) for every image, choosing the parallel strategy.
template <class F>
void for_each_image(int64_t N, F image) {
  if (N >= get_num_threads()) {
    parallel_for(N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) image(n, true, false);
    });
  } else {
    for (int64_t n = 0; n < N; ++n) image(n, false, true);
  }
}

// ---------------------------------------------------------------- implicit GEMM (stride 1)
// No im2col matrix: the micro-kernels read B straight from a zero-padded copy of the image (see
// WideGeometry in im2col.h and f32-conv2d/ukernels.h).
//   forward      y_g (Mg x P) = W_g col_g             shifted kernel over the padded x_g
//   data grad    dx_g = conv(dY_g, W_g^T flipped)     the same forward, stride 1, padding K-1-p
//   weight grad  dW_g (Mg x KH*KW*Cp) += dY_g colT_g  strided kernel over an HWC padded x_g
// The A operands (weights, dY) are packed in mr-row panels; the wide output of the forward is
// written to a scratch tile and compacted into y (a few percent of columns are junk).

bool implicit_applies(const Conv2dShape& s) {
  return s.sh == 1 && s.sw == 1 && s.ph < s.KH && s.pw < s.KW && s.N >= get_num_threads() &&
         !(s.KH == 1 && s.KW == 1);
}

// pa[t*K*mr + k*mr + i] = a[(t*mr + i)*rs + k*cs], zero rows past M.
void pack_rows(int64_t M, int64_t K, const float* a, int64_t rs, int64_t cs, int64_t mr, float* pa) {
  for (int64_t t = 0; t * mr < M; ++t, pa += K * mr) {
    const int64_t rows = std::min(mr, M - t * mr);
    for (int64_t k = 0; k < K; ++k) {
      float* d = pa + k * mr;
      const float* src = a + t * mr * rs + k * cs;
      for (int64_t i = 0; i < rows; ++i) d[i] = src[i * rs];
      for (int64_t i = rows; i < mr; ++i) d[i] = 0.f;
    }
  }
}

// One stride-1 convolution of one image: y (M, OH, OW) (+ bias) = taps of x (C, H, W) with the
// packed weights pa (M x C*KH*KW, k = (c, kh, kw)). xq and cw are scratch of the sizes given by
// ShiftedConv.
struct ShiftedConv {
  int64_t C, H, W, M, KH, KW, ph, pw;
  WideGeometry g;
  int64_t panels, cols, slack;
  std::vector<int32_t> off;
  ShiftedConv(int64_t C_, int64_t H_, int64_t W_, int64_t M_, int64_t KH_, int64_t KW_, int64_t ph_,
              int64_t pw_, int64_t nr)
      : C(C_), H(H_), W(W_), M(M_), KH(KH_), KW(KW_), ph(ph_), pw(pw_),
        g(WideGeometry::of(H_, W_, KH_, KW_, ph_, pw_)) {
    panels = (g.P + nr - 1) / nr;
    cols = panels * nr;
    // The last panel reads up to cols - 1 past the largest shift.
    const int64_t last = (C - 1) * g.plane + (KH - 1) * g.Wq + KW - 1 + cols;
    slack = std::max<int64_t>(0, last - C * g.plane);
    off.resize(static_cast<size_t>(C * KH * KW));
    int32_t* o = off.data();
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < KH; ++kh)
        for (int64_t kw = 0; kw < KW; ++kw) *o++ = static_cast<int32_t>(c * g.plane + kh * g.Wq + kw);
  }
  int64_t xq_size() const { return C * g.plane + slack; }
  int64_t cw_size() const { return M * cols; }

  void run(const F32Conv2dUkernels& uk, const float* pa, const float* x, const float* bias,
           float* y, float* xq, float* cw) const {
    pad_planes_wide(g, H, W, ph, pw, x, C, slack, xq);
    const int64_t K = C * KH * KW, mr = uk.mr, nr = uk.nr;
    // Row panels outer: the mr x K panel of A stays in L1/L2 while the panels of B stream by.
    // The depth is cut in packed_kc blocks like the packed GEMM's, so that the sums are rounded
    // exactly as by the im2col path (same order, same partial sums).
    const int64_t kc = packed_kc(K);
    for (int64_t i0 = 0; i0 < M; i0 += mr, pa += K * mr) {
      const size_t m = static_cast<size_t>(std::min(mr, M - i0));
      for (int64_t q = 0; q < panels; ++q) {
        const size_t n = static_cast<size_t>(std::min(nr, g.P - q * nr));
        for (int64_t k0 = 0; k0 < K; k0 += kc)
          uk.shifted(m, n, static_cast<size_t>(std::min(kc, K - k0)), pa + k0 * mr, xq + q * nr,
                     off.data() + k0, cw + i0 * cols + q * nr, cols, k0 > 0 ? 1 : 0);
      }
    }
    for (int64_t o = 0; o < M; ++o) {
      const float bo = bias ? bias[o] : 0.f;
      for (int64_t oh = 0; oh < g.OH; ++oh) {
        const float* src = cw + o * cols + oh * g.Wq;
        float* d = y + (o * g.OH + oh) * g.OW;
        for (int64_t ow = 0; ow < g.OW; ++ow) d[ow] = src[ow] + bo;
      }
    }
  }
};

void forward_implicit(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const Dims d = dims(s);
  const F32Conv2dUkernels& uk = f32_conv2d_ukernels();
  const int64_t apanel = (d.Mg + uk.mr - 1) / uk.mr * uk.mr * d.Kg;
  std::vector<float> wp(static_cast<size_t>(d.G * apanel));
  for (int64_t g = 0; g < d.G; ++g)
    pack_rows(d.Mg, d.Kg, w + g * d.Mg * d.Kg, d.Kg, 1, uk.mr, wp.data() + g * apanel);
  const ShiftedConv sc(d.Cg, s.H, s.W, d.Mg, s.KH, s.KW, s.ph, s.pw, uk.nr);
  parallel_for(s.N, 1, [&](int64_t n0, int64_t n1) {
    float* xq = scratch_f32(sc.xq_size(), kScratchConvPad);
    float* cw = scratch_f32(sc.cw_size(), kScratchConvCol);
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < d.G; ++g)
        sc.run(uk, wp.data() + g * apanel, x + (n * s.Cin + g * d.Cg) * d.HW, b ? b + g * d.Mg : nullptr,
               y + (n * s.Cout + g * d.Mg) * d.P, xq, cw);
  });
}

// xh[p*Kp + (c, kh, kw)] = the patch of output pixel p of channels x[0..C) (stride 1), zero past C*KH*KW.
void patch_rows(const Conv2dShape& s, const float* x, int64_t C, int64_t Kp, float* xh) {
  const int64_t OH = s.OH(), OW = s.OW();
  std::memset(xh, 0, static_cast<size_t>(OH * OW * Kp) * sizeof(float));
  for (int64_t oh = 0; oh < OH; ++oh) {
    float* row = xh + oh * OW * Kp;
    for (int64_t c = 0; c < C; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = oh - s.ph + kh;
        if (ih < 0 || ih >= s.H) continue;
        const float* src = x + (c * s.H + ih) * s.W - s.pw;
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          float* d = row + (c * s.KH + kh) * s.KW + kw;
          const int64_t ow0 = std::max<int64_t>(0, s.pw - kw), ow1 = std::min(OW, s.W + s.pw - kw);
          for (int64_t ow = ow0; ow < ow1; ++ow) d[ow * Kp] = src[ow + kw];
        }
      }
  }
}

// dW[o, c, kh, kw] += sum over images of dY_g colT_g, and dx (if not null) = the data gradient.
void backward_implicit(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                       float* dw, float* dx) {
  const Dims d = dims(s);
  const F32Conv2dUkernels& uk = f32_conv2d_ukernels();
  const int64_t mr = uk.mr, nr = uk.nr, KK = s.KH * s.KW;
  // Data gradient: stride-1 conv of dY_g (Mg channels) with W'[c, o, kh, kw] = W[o, c, KH-1-kh,
  // KW-1-kw], padding KH-1-ph: rows c, depth (o, kh, kw).
  const int64_t Kd = d.Mg * KK, apd = (d.Cg + mr - 1) / mr * mr * Kd;
  std::vector<float> wtp;
  std::unique_ptr<ShiftedConv> dconv;
  if (dx) {
    std::vector<float> wt(static_cast<size_t>(d.Cg * Kd));
    wtp.resize(static_cast<size_t>(d.G * apd));
    for (int64_t g = 0; g < d.G; ++g) {
      const float* wg = w + g * d.Mg * d.Kg;
      for (int64_t c = 0; c < d.Cg; ++c)
        for (int64_t o = 0; o < d.Mg; ++o)
          for (int64_t k = 0; k < KK; ++k) wt[c * Kd + o * KK + k] = wg[(o * d.Cg + c) * KK + KK - 1 - k];
      pack_rows(d.Cg, Kd, wt.data(), Kd, 1, mr, wtp.data() + g * apd);
    }
    dconv = std::make_unique<ShiftedConv>(d.Mg, s.OH(), s.OW(), d.Cg, s.KH, s.KW, s.KH - 1 - s.ph,
                                          s.KW - 1 - s.pw, nr);
  }
  // Weight gradient over the wide pixels of x's padded geometry, channels padded to Cp (a multiple
  // of 16, the kernel's column group): columns (kh, kw, c) of KK*Cp, depth = wide pixels.
  // With few channels (a stem's 3) that padding would be most of the work: then the columns are
  // the patches themselves, (c, kh, kw) padded once to Kp, and the depth the output pixels.
  const WideGeometry gx = WideGeometry::of(s.H, s.W, s.KH, s.KW, s.ph, s.pw);
  const int64_t Cp = (d.Cg + 15) / 16 * 16, Kp = (d.Kg + 15) / 16 * 16;
  const bool patches = 2 * Kp < KK * Cp;
  const int64_t Kw = patches ? Kp : KK * Cp, ncols = (Kw + nr - 1) / nr * nr;
  const int64_t xslack = (s.KH - 1) * gx.Wq + s.KW;  // pixels read past the plane by the last taps
  std::vector<int32_t> boff(static_cast<size_t>(ncols / 16));
  for (int64_t j = 0; j < ncols; j += 16) {
    const int64_t jj = std::min(j, Kw - 16);  // groups past Kw: any valid address (not stored)
    const int64_t tap = jj / Cp, c = jj % Cp;
    boff[j / 16] = static_cast<int32_t>(patches ? jj : ((tap / s.KW) * gx.Wq + tap % s.KW) * Cp + c);
  }
  const int64_t wsize = s.Cout * Kw;  // one partial dW, (o, (kh, kw, c)) or (o, (c, kh, kw)) order
  const int nchunks = reduction_chunks(s.N);
  std::vector<float> partial(static_cast<size_t>(nchunks * wsize), 0.f);

  parallel_chunks(s.N, nchunks, [&](int ch, int64_t n0, int64_t n1) {
    float* xh = scratch_f32(patches ? d.P * Kp : (gx.plane + xslack) * Cp, kScratchConvHwc);
    float* dq = dx ? scratch_f32(dconv->xq_size(), kScratchConvDyB) : nullptr;
    float* cw = dx ? scratch_f32(dconv->cw_size(), kScratchConvDcol) : nullptr;
    float* dwp = partial.data() + ch * wsize;
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t g = 0; g < d.G; ++g) {
        const float* dyg = dy + (n * s.Cout + g * d.Mg) * d.P;
        const float* xg = x + (n * s.Cin + g * d.Cg) * d.HW;
        if (patches) patch_rows(s, xg, d.Cg, Kp, xh);
        else hwc_planes_wide(gx, s.H, s.W, s.ph, s.pw, xg, d.Cg, Cp, xslack, xh);
        // Patches: one column per (c, kh, kw), pixel pitch Kp; planes: taps as offsets (boff).
        const int64_t ldb = patches ? Kp : Cp, b_row = patches ? gx.OW * Kp : gx.Wq * Cp;
        float* dwg = dwp + g * d.Mg * Kw;
        for (int64_t i0 = 0; i0 < d.Mg; i0 += mr)
          for (int64_t j0 = 0; j0 < Kw; j0 += nr)
            uk.strided(static_cast<size_t>(std::min(mr, d.Mg - i0)), static_cast<size_t>(std::min(nr, Kw - j0)),
                       static_cast<size_t>(gx.OH), static_cast<size_t>(gx.OW), dyg + i0 * d.P,
                       static_cast<size_t>(d.P), static_cast<size_t>(gx.OW), xh, boff.data() + j0 / 16,
                       static_cast<size_t>(ldb), static_cast<size_t>(b_row), dwg + i0 * Kw + j0,
                       static_cast<size_t>(Kw), 1);
        if (dx)
          dconv->run(uk, wtp.data() + g * apd, dyg, nullptr, dx + (n * s.Cin + g * d.Cg) * d.HW, dq, cw);
      }
  });

  // dw[o, c, kh, kw] += sum over chunks (in order) of partial[g, o, (kh, kw, c) or (c, kh, kw)].
  parallel_for(s.Cout, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o) {
      const int64_t base = o * Kw;
      for (int64_t c = 0; c < d.Cg; ++c)
        for (int64_t k = 0; k < KK; ++k) {
          const int64_t col = patches ? c * KK + k : k * Cp + c;
          float sum = 0.f;
          for (int ch = 0; ch < nchunks; ++ch) sum += partial[ch * wsize + base + col];
          dw[(o * d.Cg + c) * KK + k] += sum;
        }
    }
  });
}

// ---------------------------------------------------------------- small images: one GEMM over the batch
// On small images (a VGG's or MobileNet's last stages: 4x4, 2x2) the per-image GEMMs have N = P
// columns, a fraction of a register tile and of a thread's share. There the convolution runs as
// one GEMM over every pixel of the batch, with the patch matrix col channel-major (CNHW):
//   col (Cin*KH*KW x N*P), row (c, kh, kw), column (n, oh, ow) = x[n, c, oh*sh-ph+kh, ow*sw-pw+kw]
//   forward      Y (Cout x NP)   = W (Cout x Cin*KK) col           then back to NCHW (+ bias)
//   weight grad  dW              += dY col^T                        (depth NP: every image at once)
//   data grad    dcol            = W^T dY, dx = col2im(dcol)
// The copies are of tensors that are small exactly when this path is taken. A 1x1 stride-1 conv
// makes none: its col is x itself, read in place as planes (planes_gemm, and the weight gradient
// through gemm.h's depth-plane views). The GEMMs split only rows and columns over threads and
// col2im gives each input channel to one task, so every sum runs in one order: results do not
// depend on the thread count.

bool batched_applies(const Conv2dShape& s) {
  return s.groups == 1 && s.OH() * s.OW() < kBatchedBelow;
}

// Heap buffers without std::vector's zero fill (every element is written before it is read).
// Not per-thread scratch: this thread waits on parallel loops while they live (common/parallel.h).
std::unique_ptr<float[]> uninitialized(int64_t n) { return std::unique_ptr<float[]>(new float[static_cast<size_t>(n)]); }

void im2col_batched(const Conv2dShape& s, const float* x, float* col) {
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, NP = s.N * P, KK = s.KH * s.KW;
  parallel_for(s.Cin, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          float* row = col + (c * KK + kh * s.KW + kw) * NP;
          for (int64_t n = 0; n < s.N; ++n) {
            const float* xc = x + (n * s.Cin + c) * s.H * s.W;
            for (int64_t oh = 0; oh < OH; ++oh) {
              const int64_t ih = oh * s.sh - s.ph + kh;
              float* d = row + n * P + oh * OW;
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t iw = ow * s.sw - s.pw + kw;
                d[ow] = (ih >= 0 && ih < s.H && iw >= 0 && iw < s.W) ? xc[ih * s.W + iw] : 0.f;
              }
            }
          }
        }
  });
}

// dx[n, c] = the sum of dcol's entries that read each of its pixels (each channel by one task).
void col2im_batched(const Conv2dShape& s, const float* col, float* dx) {
  const int64_t OH = s.OH(), OW = s.OW(), P = OH * OW, NP = s.N * P, KK = s.KH * s.KW;
  parallel_for(s.Cin, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      for (int64_t n = 0; n < s.N; ++n) std::memset(dx + (n * s.Cin + c) * s.H * s.W, 0, s.H * s.W * sizeof(float));
      for (int64_t kh = 0; kh < s.KH; ++kh)
        for (int64_t kw = 0; kw < s.KW; ++kw) {
          const float* row = col + (c * KK + kh * s.KW + kw) * NP;
          for (int64_t n = 0; n < s.N; ++n) {
            float* xc = dx + (n * s.Cin + c) * s.H * s.W;
            for (int64_t oh = 0; oh < OH; ++oh) {
              const int64_t ih = oh * s.sh - s.ph + kh;
              if (ih < 0 || ih >= s.H) continue;
              const float* d = row + n * P + oh * OW;
              for (int64_t ow = 0; ow < OW; ++ow) {
                const int64_t iw = ow * s.sw - s.pw + kw;
                if (iw >= 0 && iw < s.W) xc[ih * s.W + iw] += d[ow];
              }
            }
          }
        }
    }
  });
}

// dst[c][n*P + p] = src[n][c][p] (to CNHW) or the reverse (im2col'd convs).
void nchw_to_cnhw(int64_t N, int64_t C, int64_t P, const float* src, float* dst) {
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n = 0; n < N; ++n)
        std::memcpy(dst + (c * N + n) * P, src + (n * C + c) * P, static_cast<size_t>(P) * sizeof(float));
  });
}
void cnhw_to_nchw(int64_t N, int64_t C, int64_t P, const float* src, float* dst) {
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t c = 0; c < C; ++c)
        std::memcpy(dst + (n * C + c) * P, src + (c * N + n) * P, static_cast<size_t>(P) * sizeof(float));
  });
}

std::unique_ptr<float[]> batched_col(const Conv2dShape& s, const float* x) {
  const Dims d = dims(s);
  std::unique_ptr<float[]> col = uninitialized(d.Kg * s.N * d.P);
  im2col_batched(s, x, col.get());
  return col;
}

// Row blocks and column chunks of planes_gemm: at most 512 x 256, a result of 512 KB in L2.
// (Measured against 256 x 256, 1024 x 128 and 128 x 512 on MobileNet's 4x4 and 2x2 1x1 convs.)
constexpr int64_t kPlanesRows = 512, kPlanesCols = 256;

// Columns [j0, j0 + L.N) of the (K x N*P) matrix whose column (n, p) is pixel p of image n of the
// planes src (N, K, P), into L (K = L.K). A panel's columns are runs of one image's pixels.
void pack_plane_columns(const PackedB& L, const float* src, int64_t P, int64_t j0, float* pb) {
  const int64_t K = L.K, nr = L.nr;
  for (int64_t q = 0; q < L.npad / nr; ++q) {
    int64_t run[64][3], nruns = 0;  // (source offset, first column, length); at most nr <= 32 runs
    const int64_t filled = std::min(nr, L.N - q * nr);
    for (int64_t jj = 0; jj < filled; ++nruns) {
      const int64_t j = j0 + q * nr + jj, len = std::min(P - j % P, filled - jj);
      run[nruns][0] = j / P * K * P + j % P;
      run[nruns][1] = jj;
      run[nruns][2] = len;
      jj += len;
    }
    for (int64_t k = 0; k < K; ++k) {
      float* d = pb + L.panel_row(k, q);
      for (int64_t r = 0; r < nruns; ++r) {  // a loop, not copy_n: a memmove call per run of 4 costs 3 %
        const float* sp = src + run[r][0] + k * P;
        for (int64_t i = 0; i < run[r][2]; ++i) d[run[r][1] + i] = sp[i];
      }
      for (int64_t jj = filled; jj < nr; ++jj) d[jj] = 0.f;
    }
  }
}

// dst planes (N, M, P) = A src planes (N, K, P) (+ bias), A (M x K) a plain strided view (no depth
// planes): the batched GEMM of a pointwise conv straight from and to NCHW. Tasks are (row block,
// column chunk) pairs: each packs its chunk of the columns (the batch's pixels) from the planes,
// multiplies it by its row block of A (packed once) into a result of at most kPlanesRows x
// kPlanesCols values and copies that into the planes
// while it is in cache, so no tensor-sized CNHW copy goes through memory. (perf put 8 % of a
// mobilenet_v1 step's samples in those copies, but the packing now takes their cache misses: the
// step gained ~0.5 %, its 4x4 1x1 layers 5-10 % each.) Every output is one dot product in the same depth order whatever the
// blocking: results do not depend on the thread count.
void planes_gemm(MatRef A, int64_t M, int64_t K, const float* src, int64_t N, int64_t P, float* dst,
                 const float* bias) {
  const F32GemmUkernel& uk = f32_gemm_ukernel();
  const int64_t NP = N * P, nr = uk.nr, threads = get_num_threads();
  if (NP <= 0 || M <= 0) return;
  const int64_t rows = round_up(ceil_div(M, ceil_div(M, kPlanesRows)), uk.mr), mb = ceil_div(M, rows);
  int64_t nb = std::max(ceil_div(NP, kPlanesCols), ceil_div(2 * threads, mb));
  const int64_t cols = round_up(ceil_div(NP, nb), nr);
  nb = ceil_div(NP, cols);
  const PackedA LA = packed_a_layout(rows, K);  // the layout of every row block (the last one padded)
  const std::unique_ptr<float[]> pa = uninitialized(mb * LA.size());
  parallel_for(mb, 1, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const PackedA Lb = packed_a_layout(std::min(rows, M - b * rows), K);
      pack_a(Lb, {A.p + b * rows * A.rs, A.rs, A.cs}, pa.get() + b * LA.size());
    }
  });
  parallel_for(mb * nb, 1, [&](int64_t t0, int64_t t1) {
    int64_t packed = -1;  // the column chunk now in pb (a thread's tasks run chunk by chunk)
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t ci = t / mb, bi = t % mb;
      const int64_t j0 = ci * cols, nc = std::min(cols, NP - j0), r0 = bi * rows, nrows = std::min(rows, M - r0);
      const PackedB L{K, nc, LA.kc, nr, round_up(nc, nr)};
      float* pb = scratch_f32(static_cast<size_t>(K * round_up(cols, nr)), kScratchConvCol);
      if (packed != ci) {
        packed = ci;
        pack_plane_columns(L, src, P, j0, pb);
      }
      const PackedA Lb{nrows, K, LA.kc, LA.mr, round_up(nrows, LA.mr)};
      float* c = scratch_f32(static_cast<size_t>(rows * cols), kScratchConvDcol);
      sgemm_packed(Lb, pa.get() + bi * LA.size(), L, pb, c, nc, false, false);
      for (int64_t j = 0; j < nc;) {  // one run of pixels of one image at a time
        const int64_t n = (j0 + j) / P, p = (j0 + j) % P, len = std::min(P - p, nc - j);
        for (int64_t m = 0; m < nrows; ++m) {
          const float* cs = c + m * nc + j;
          float* d = dst + (n * M + r0 + m) * P + p;
          if (bias) {
            for (int64_t r = 0; r < len; ++r) d[r] = cs[r] + bias[r0 + m];
          } else {
            std::copy_n(cs, len, d);  // (adding 0 would turn -0 into +0, unlike the other paths)
          }
        }
        j += len;
      }
    }
  });
}

void forward_batched(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const Dims d = dims(s);
  if (d.pointwise) {
    planes_gemm(row_major(w, s.Cin), s.Cout, s.Cin, x, s.N, d.P, y, b);
    return;
  }
  const int64_t NP = s.N * d.P;
  const std::unique_ptr<float[]> col = batched_col(s, x), yt = uninitialized(s.Cout * NP);
  sgemm(s.Cout, NP, d.Kg, row_major(w, d.Kg), row_major(col.get(), NP), yt.get(), NP, false, true);
  cnhw_to_nchw(s.N, s.Cout, d.P, yt.get(), y);
  if (b)
    parallel_for(s.N * s.Cout, 64, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t)
        for (int64_t p = 0; p < d.P; ++p) y[t * d.P + p] += b[t % s.Cout];
    });
}

void backward_batched(const Conv2dShape& s, const float* dy, const float* x, const float* w, float* dw,
                      float* dx) {
  const Dims d = dims(s);
  const int64_t NP = s.N * d.P;
  if (d.pointwise) {  // dW += dY X^T over the batch's pixels, dX = W^T dY: both read in place
    sgemm(s.Cout, s.Cin, NP, nchw_channels_by_pixels(dy, s.Cout, d.P), nchw_pixels_by_channels(x, s.Cin, d.P), dw,
          s.Cin, true, true);
    if (!dx) return;
    planes_gemm(transposed(w, s.Cin), s.Cin, s.Cout, dy, s.N, d.P, dx, nullptr);
    return;
  }
  std::unique_ptr<float[]> col = batched_col(s, x);
  const std::unique_ptr<float[]> dyt = uninitialized(s.Cout * NP);
  nchw_to_cnhw(s.N, s.Cout, d.P, dy, dyt.get());
  // dw is (Cout, Cin, KH, KW): its rows are col's rows in the same (c, kh, kw) order.
  sgemm(s.Cout, d.Kg, NP, row_major(dyt.get(), NP), transposed(col.get(), NP), dw, d.Kg, true, true);
  if (!dx) return;
  float* dcol = col.get();  // col is no longer needed
  sgemm(d.Kg, NP, s.Cout, transposed(w, d.Kg), row_major(dyt.get(), NP), dcol, NP, false, true);
  col2im_batched(s, dcol, dx);
}

// ---------------------------------------------------------------- small images: GEMMs by kernel column
// A stride-1 convolution on a small image is mostly border: on 4x4 with a 3x3 kernel and padding 1,
// 31 % of the taps read padding, on 2x2 56 %. Here the tensors are transposed to HCWN (batch
// innermost, image rows outermost), where the rows kh = kh0..kh1-1 of the kernel, over all input
// channels, are one matrix with a uniform row stride (W*N) and the output columns (ow, n) of an
// image row are contiguous. So one output row and one kernel column kw are one GEMM over the batch
// that touches only the pixels they really read:
//   forward      Y_i[:, (j, n)] += W_kw[:, (kh, c)] X[(i + kh - ph, c), (j + kw - pw, n)]
//   data grad    the same forward of dY with W flipped and transposed, padding K - 1 - p
//   weight grad  W_kw[:, (kh, c)] += sum over rows i of Y_i X_i,kw^T
// with j and kh cut to where the source is inside the image. No patch matrix is built. The GEMMs
// split rows and columns only, so the sums do not depend on the thread count.

// Measured on VGG-11's and ResNet-20's 3x3 layers (one thread, batch 128): below 64 output pixels
// this path beats the batched im2col GEMM 1.5-2x; at 8x8 it beats the implicit GEMM from 128 input
// channels (128 -> 256: 47 against 54 ms forward) but loses at 64 (8.4 against 6.9 ms), and at
// 16x16 it loses (64 -> 128: 55 against 46 ms).
bool rows_apply(const Conv2dShape& s) {
  const int64_t P = s.OH() * s.OW();
  return s.groups == 1 && s.sh == 1 && s.sw == 1 && !(s.KH == 1 && s.KW == 1) &&
         (P < 64 || (P == 64 && s.Cin >= 128));
}

// dst[h][c][w][n] = src[n][c][h][w] (to HCWN) and the reverse, plus an optional per-channel bias.
void nchw_to_hcwn(int64_t N, int64_t C, int64_t H, int64_t W, const float* src, float* dst) {
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c)
      for (int64_t n0 = 0; n0 < N; n0 += 16) {
        const int64_t n1 = std::min(N, n0 + 16);
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) {
            float* d = dst + ((h * C + c) * W + w) * N;
            for (int64_t n = n0; n < n1; ++n) d[n] = src[((n * C + c) * H + h) * W + w];
          }
      }
  });
}
void hcwn_to_nchw(int64_t N, int64_t C, int64_t H, int64_t W, const float* src, const float* bias, float* dst) {
  parallel_for(N, 1, [&](int64_t n0, int64_t n1) {
    for (int64_t n = n0; n < n1; ++n)
      for (int64_t c = 0; c < C; ++c) {
        const float b = bias ? bias[c] : 0.f;
        float* d = dst + (n * C + c) * H * W;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) d[h * W + w] = src[((h * C + c) * W + w) * N + n] + b;
      }
  });
}

// The (output row, kernel column) products of a stride-1 conv from a (Cs, Hs, Ws) source to a
// (Cd, Hd, Wd) destination with padding (ph, pw): calls f(i, kw, kh0, kh1, j0, j1) for output row
// i, kernel column kw, the kernel rows [kh0, kh1) and output columns [j0, j1) whose source is inside.
struct RowGeometry {
  int64_t Hs, Ws, Hd, Wd, KH, KW, ph, pw;
  template <class F>
  void each(F f) const {
    for (int64_t i = 0; i < Hd; ++i) {
      const int64_t kh0 = std::max<int64_t>(0, ph - i), kh1 = std::min(KH, Hs + ph - i);
      for (int64_t kw = 0; kw < KW && kh0 < kh1; ++kw) {
        const int64_t j0 = std::max<int64_t>(0, pw - kw), j1 = std::min(Wd, Ws + pw - kw);
        if (j0 < j1) f(i, kw, kh0, kh1, j0, j1);
      }
    }
  }
};

// dst (HCWN, Cd x Hd x Wd) = the stride-1 conv of src (HCWN, Cs x Hs x Ws) with wk[kw][d][kh][c].
void conv_rows(int64_t N, const RowGeometry& g, int64_t Cs, const float* src, int64_t Cd, const float* wk,
               float* dst) {
  std::memset(dst, 0, static_cast<size_t>(g.Hd * Cd * g.Wd * N) * sizeof(float));
  const int64_t lda = g.KH * Cs;
  g.each([&](int64_t i, int64_t kw, int64_t kh0, int64_t kh1, int64_t j0, int64_t j1) {
    const float* b = src + ((i + kh0 - g.ph) * Cs * g.Ws + j0 + kw - g.pw) * N;
    sgemm(Cd, (j1 - j0) * N, (kh1 - kh0) * Cs, row_major(wk + kw * Cd * lda + kh0 * Cs, lda),
          row_major(b, g.Ws * N), dst + (i * Cd * g.Wd + j0) * N, g.Wd * N, true, true);
  });
}

// wk[kw][o][kh][c] = w[o][c][kh][kw] (forward), or wk[kw][c][kh][o] = w[o][c][KH-1-kh][KW-1-kw]
// (data gradient: the kernel flipped, channels swapped).
std::unique_ptr<float[]> weights_by_column(const Conv2dShape& s, const float* w, bool flipped) {
  const int64_t KH = s.KH, KW = s.KW, KK = KH * KW;
  std::unique_ptr<float[]> wk = uninitialized(KK * s.Cout * s.Cin);
  parallel_for(s.Cout, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < s.Cin; ++c)
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw) {
            const float v = w[((o * s.Cin + c) * KH + kh) * KW + kw];
            if (flipped) wk[(((KW - 1 - kw) * s.Cin + c) * KH + KH - 1 - kh) * s.Cout + o] = v;
            else wk[((kw * s.Cout + o) * KH + kh) * s.Cin + c] = v;
          }
  });
  return wk;
}

void forward_rows(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const int64_t OH = s.OH(), OW = s.OW(), N = s.N;
  const std::unique_ptr<float[]> xt = uninitialized(s.Cin * s.H * s.W * N),
                                 yt = uninitialized(s.Cout * OH * OW * N), wk = weights_by_column(s, w, false);
  nchw_to_hcwn(N, s.Cin, s.H, s.W, x, xt.get());
  conv_rows(N, {s.H, s.W, OH, OW, s.KH, s.KW, s.ph, s.pw}, s.Cin, xt.get(), s.Cout, wk.get(), yt.get());
  hcwn_to_nchw(N, s.Cout, OH, OW, yt.get(), b, y);
}

void backward_rows(const Conv2dShape& s, const float* dy, const float* x, const float* w, float* dw,
                   float* dx) {
  const int64_t OH = s.OH(), OW = s.OW(), N = s.N, KH = s.KH, KW = s.KW, lda = KH * s.Cin;
  const std::unique_ptr<float[]> xt = uninitialized(s.Cin * s.H * s.W * N),
                                 dyt = uninitialized(s.Cout * OH * OW * N), dwk = uninitialized(KW * s.Cout * lda);
  nchw_to_hcwn(N, s.Cin, s.H, s.W, x, xt.get());
  nchw_to_hcwn(N, s.Cout, OH, OW, dy, dyt.get());
  std::memset(dwk.get(), 0, static_cast<size_t>(KW * s.Cout * lda) * sizeof(float));
  const RowGeometry g{s.H, s.W, OH, OW, KH, KW, s.ph, s.pw};
  g.each([&](int64_t i, int64_t kw, int64_t kh0, int64_t kh1, int64_t j0, int64_t j1) {
    const float* xb = xt.get() + ((i + kh0 - s.ph) * s.Cin * s.W + j0 + kw - s.pw) * N;
    sgemm(s.Cout, (kh1 - kh0) * s.Cin, (j1 - j0) * N, row_major(dyt.get() + (i * s.Cout * OW + j0) * N, OW * N),
          transposed(xb, s.W * N), dwk.get() + kw * s.Cout * lda + kh0 * s.Cin, lda, true, true);
  });
  parallel_for(s.Cout, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < s.Cin; ++c)
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw)
            dw[((o * s.Cin + c) * KH + kh) * KW + kw] += dwk[((kw * s.Cout + o) * KH + kh) * s.Cin + c];
  });
  if (!dx) return;
  float* dxt = xt.get();  // x's transpose is no longer needed
  conv_rows(N, {OH, OW, s.H, s.W, KH, KW, KH - 1 - s.ph, KW - 1 - s.pw}, s.Cout, dyt.get(), s.Cin,
            weights_by_column(s, w, true).get(), dxt);
  hcwn_to_nchw(N, s.Cin, s.H, s.W, dxt, nullptr, dx);
}

// ---------------------------------------------------------------- the deploy runtime's direct conv
// On AVX-512, strided convs (2, 2) with 64+ output pixels and stride-1 ones with 64 (8x8; 4x16 or
// 1x64 alike; below 128 input channels, which take the GEMMs by kernel column) run faster through
// the runtime's direct conv
// (f32-directconv/conv.h: taps as masked shifts of the image or of its phase planes, no im2col)
// than through the im2col GEMM or the implicit GEMM here. ResNet-20 at batch 128, one thread
// (bench_conv_shapes.py): 16->32/s2 forward 6.7 -> 3.5 ms, 32->64/s2 4.9 -> 3.3 ms, 64->64 at 8x8
// 7.0 -> 6.1 ms and its data gradient (a stride-1 conv of dY) with it; at 32x32 and 16x16 the
// drivers here were as fast or faster. The weights are packed per call; every output sums its
// taps in one order on any thread count.
bool direct_applies(const Conv2dShape& s, DirectTaps* taps) {
  if (s.groups != 1 || (s.KH == 1 && s.KW == 1) || f32_directconv_ukernel(active_isa()) == nullptr) return false;
  if (!((s.sh == 2 && s.sw == 2) || (s.sh == 1 && s.sw == 1 && s.OH() * s.OW() == 64))) return false;
  return rt::f32_direct_conv_plan(rt::F32ConvLayer(s, WDtype::f32, nullptr, nullptr, rt::Act::none, false), taps);
}

void forward_direct(const Conv2dShape& s, const DirectTaps& taps, const float* x, const float* w,
                    const float* b, float* y) {
  const rt::F32ConvLayer L(s, WDtype::f32, b, nullptr, rt::Act::none, false);
  const Isa isa = active_isa();
  const F32DirectConvUkernel& dk = *f32_directconv_ukernel(isa);
  std::vector<PackedWeights> W;
  W.push_back(pack_weights(WDtype::f32, w, L.Mg, L.Kg, dk.mr, L.Kg));
  rt::f32_direct_conv_run(L, taps, dk, isa, W, rt::F32ConvCall{s.N, x, nullptr, y, nullptr});
}

// The data gradient of a stride-1 conv is the stride-1 conv of dY with W'[c, o] = W[o, c] flipped
// and padding K-1-p (see backward_implicit); its shape, and whether the direct conv takes it.
Conv2dShape data_grad_shape(const Conv2dShape& s) {
  return {s.N, s.Cout, s.OH(), s.OW(), s.Cin, s.KH, s.KW, 1, 1, s.KH - 1 - s.ph, s.KW - 1 - s.pw, 1};
}

void data_grad_direct(const Conv2dShape& s, const DirectTaps& taps, const float* dy, const float* w, float* dx) {
  const int64_t KK = s.KH * s.KW;
  std::vector<float> wt(static_cast<size_t>(s.Cin * s.Cout * KK));
  for (int64_t c = 0; c < s.Cin; ++c)
    for (int64_t o = 0; o < s.Cout; ++o)
      for (int64_t k = 0; k < KK; ++k) wt[(c * s.Cout + o) * KK + k] = w[(o * s.Cin + c) * KK + KK - 1 - k];
  forward_direct(data_grad_shape(s), taps, dy, wt.data(), nullptr, dx);
}

// ---------------------------------------------------------------- im2col + packed GEMM

void forward_gemm(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  const Dims d = dims(s);
  const PackedA LA = packed_a_layout(d.Mg, d.Kg);
  const PackedB LB = packed_b_layout(d.Kg, d.P);
  std::vector<float> wp(static_cast<size_t>(d.G * LA.size()));
  for (int64_t g = 0; g < d.G; ++g)
    pack_a(LA, row_major(w + g * d.Mg * d.Kg, d.Kg), wp.data() + g * LA.size());
  // Columns of col per block: one micro-kernel panel, so the block just written is still in L1
  // when the GEMM reads it (a whole-image col is up to MBs and would make im2col store-bound).
  // When images run in turn (par: batch < threads), the whole col is built and the GEMM is split
  // over threads instead.
  const PackedB LBb = packed_b_layout(d.Kg, std::min(LB.nr, d.P));
  Buffers heap;
  for_each_image(s.N, [&](int64_t n, bool scratch, bool par) {
    const int64_t block = par ? d.P : LB.nr;
    float* pb = heap.get(scratch, kScratchConvCol, d.pointwise || par ? LB.size() : LBb.size());
    float* xp = d.pointwise ? nullptr : heap.get(scratch, kScratchConvPad, d.Cg * (s.H + 2 * s.ph) * (s.W + 2 * s.pw));
    for (int64_t g = 0; g < d.G; ++g) {
      const float* xg = x + (n * s.Cin + g * d.Cg) * d.HW;
      float* yg = y + (n * s.Cout + g * d.Mg) * d.P;
      const float* wg = wp.data() + g * LA.size();
      if (d.pointwise) {
        pack_b(LB, row_major(xg, d.P), pb);
        sgemm_packed(LA, wg, LB, pb, yg, d.P, false, par);
      } else {
        pad_planes(s, xg, d.Cg, xp);
        for (int64_t j0 = 0; j0 < d.P; j0 += block) {
          const PackedB Lj = packed_b_layout(d.Kg, std::min(block, d.P - j0));
          im2col_packed(s, xp, d.Cg, j0, Lj, pb);
          sgemm_packed(LA, wg, Lj, pb, yg + j0, d.P, false, par);
        }
      }
      if (b)
        for (int64_t o = 0; o < d.Mg; ++o) {
          const float bo = b[g * d.Mg + o];
          float* row = yg + o * d.P;
          for (int64_t p = 0; p < d.P; ++p) row[p] += bo;
        }
    }
  });
}

void backward_gemm(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                   float* dw, float* dx) {
  const Dims d = dims(s);
  // dY_g as the A operand of the weight gradient, colT_g as its B operand, a block of pixels (the
  // GEMM depth) at a time: the block of colT just written is still in L1 when the GEMM reads it.
  const int64_t pblock = s.N >= get_num_threads() ? 64 : d.P;
  const PackedA LAy = packed_a_layout(d.Mg, std::min(pblock, d.P));
  const PackedB LBx = packed_b_layout(std::min(pblock, d.P), d.Kg);
  // W_g^T as the A operand of the data gradient, dY_g as its B operand.
  const PackedA LAw = packed_a_layout(d.Kg, d.Mg);
  const PackedB LBy = packed_b_layout(d.Mg, d.P);
  std::vector<float> wtp;
  if (dx) {
    wtp.resize(static_cast<size_t>(d.G * LAw.size()));
    for (int64_t g = 0; g < d.G; ++g)
      pack_a(LAw, transposed(w + g * d.Mg * d.Kg, d.Kg), wtp.data() + g * LAw.size());
  }
  const int64_t wsize = s.Cout * d.Kg;  // one partial dW, (o, (kh, kw, c)) order
  const bool image_parallel = s.N >= get_num_threads();
  const int nchunks = image_parallel ? reduction_chunks(s.N) : 1;
  std::vector<float> partial(static_cast<size_t>(nchunks * wsize), 0.f);

  // A 1x1 conv's weight gradient needs no patch matrix: dW_g += dY_g x_g^T in one GEMM as deep as
  // the image (x_g read transposed while packing).
  const PackedA LAp = packed_a_layout(d.Mg, d.P);
  const PackedB LBp = packed_b_layout(d.P, d.Kg);
  auto image = [&](int64_t n, bool scratch, bool par, float* dwp, Buffers& heap) {
    float* xh = d.pointwise ? nullptr : heap.get(scratch, kScratchConvHwc, s.Cin * d.HW);
    float* pbx = heap.get(scratch, kScratchConvCol, d.pointwise ? LBp.size() : LBx.size());
    float* pay = heap.get(scratch, kScratchConvDyA, d.pointwise ? LAp.size() : LAy.size());
    if (!d.pointwise) chw_to_hwc(s.Cin, d.HW, x + n * s.Cin * d.HW, xh);
    for (int64_t g = 0; g < d.G; ++g) {
      const float* dyg = dy + (n * s.Cout + g * d.Mg) * d.P;
      if (d.pointwise) {
        pack_a(LAp, row_major(dyg, d.P), pay);
        pack_b(LBp, transposed(x + (n * s.Cin + g * d.Cg) * d.HW, d.P), pbx);
        sgemm_packed(LAp, pay, LBp, pbx, dwp + g * d.Mg * d.Kg, d.Kg, true, par);
      }
      for (int64_t p0 = 0; p0 < (d.pointwise ? 0 : d.P); p0 += pblock) {
        const int64_t len = std::min(pblock, d.P - p0);
        const PackedA La = packed_a_layout(d.Mg, len);
        const PackedB Lb = packed_b_layout(len, d.Kg);
        im2row_packed(s, xh + g * d.Cg, s.Cin, d.Cg, p0, Lb, pbx);
        pack_a(La, row_major(dyg + p0, d.P), pay);
        sgemm_packed(La, pay, Lb, pbx, dwp + g * d.Mg * d.Kg, d.Kg, true, par);
      }
      if (!dx) continue;
      float* pby = heap.get(scratch, kScratchConvDyB, LBy.size());
      pack_b(LBy, row_major(dyg, d.P), pby);
      float* dxg = dx + (n * s.Cin + g * d.Cg) * d.HW;
      const float* wtg = wtp.data() + g * LAw.size();
      if (d.pointwise) {
        sgemm_packed(LAw, wtg, LBy, pby, dxg, d.P, false, par);
      } else {
        float* dcol = heap.get(scratch, kScratchConvDcol, d.Kg * d.P);
        sgemm_packed(LAw, wtg, LBy, pby, dcol, d.P, false, par);
        std::memset(dxg, 0, d.Cg * d.HW * sizeof(float));
        col2im_add(s, dcol, d.Cg, dxg);
      }
    }
  };

  if (image_parallel) {
    parallel_chunks(s.N, nchunks, [&](int c, int64_t b, int64_t e) {
      Buffers none;
      for (int64_t n = b; n < e; ++n) image(n, true, false, partial.data() + c * wsize, none);
    });
  } else {
    Buffers heap;
    for (int64_t n = 0; n < s.N; ++n) image(n, false, true, partial.data(), heap);
  }

  // dw[o, c, kh, kw] += sum over chunks (in order) of partial[o, (kh, kw, c)].
  const int64_t KK = s.KH * s.KW;
  parallel_for(s.Cout, 1, [&](int64_t o0, int64_t o1) {
    for (int64_t o = o0; o < o1; ++o)
      for (int64_t c = 0; c < d.Cg; ++c)
        for (int64_t k = 0; k < KK; ++k) {
          float sum = 0.f;
          for (int ch = 0; ch < nchunks; ++ch) sum += partial[ch * wsize + o * d.Kg + k * d.Cg + c];
          dw[(o * d.Cg + c) * KK + k] += sum;
        }
  });
}

}  // namespace

void conv2d_bias_backward(int64_t N, int64_t C, int64_t P, const float* dy, float* db) {
  parallel_for(C, 1, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double total = 0;
      for (int64_t n = 0; n < N; ++n) {
        const float* row = dy + (n * C + c) * P;
        // One image's plane in 8 float lanes (vectorises; fixed order), the batch in double.
        float lane[8] = {};
        int64_t p = 0;
        for (; p + 8 <= P; p += 8)
          for (int i = 0; i < 8; ++i) lane[i] += row[p + i];
        double sum = 0;
        for (; p < P; ++p) sum += row[p];
        for (int i = 0; i < 8; ++i) sum += lane[i];
        total += sum;
      }
      db[c] += static_cast<float>(total);
    }
  });
}

void conv2d_forward(const Conv2dShape& s, const float* x, const float* w, const float* b, float* y) {
  if (s.N <= 0 || s.Cout <= 0) return;
  DirectTaps taps;
  if (s.Cin == s.groups) dwconv_train_forward(s, x, w, b, y);
  else if (rows_apply(s)) forward_rows(s, x, w, b, y);
  else if (batched_applies(s)) forward_batched(s, x, w, b, y);
  else if (direct_applies(s, &taps)) forward_direct(s, taps, x, w, b, y);
  else if (implicit_applies(s)) forward_implicit(s, x, w, b, y);
  else forward_gemm(s, x, w, b, y);
}

void conv2d_backward(const Conv2dShape& s, const float* dy, const float* x, const float* w,
                     float* dw, float* db, float* dx) {
  if (s.N <= 0 || s.Cout <= 0) return;
  if (db) conv2d_bias_backward(s.N, s.Cout, s.OH() * s.OW(), dy, db);
  if (s.Cin == s.groups) dwconv_train_backward(s, dy, x, w, dw, dx);
  else if (rows_apply(s)) backward_rows(s, dy, x, w, dw, dx);
  else if (batched_applies(s)) backward_batched(s, dy, x, w, dw, dx);
  else if (implicit_applies(s)) {
    DirectTaps taps;
    const bool direct_dx = dx && s.groups == 1 && direct_applies(data_grad_shape(s), &taps);
    backward_implicit(s, dy, x, w, dw, direct_dx ? nullptr : dx);
    if (direct_dx) data_grad_direct(s, taps, dy, w, dx);
  } else {
    backward_gemm(s, dy, x, w, dw, dx);
  }
}

}  // namespace eo
