#include "f32-conv2d/im2col.h"

#include <algorithm>
#include <cstring>

#include "isa/dispatch.h"

namespace eo {
namespace {

// Copies n floats of row k starting at column j into the packed layout, splitting at panels.
inline void put_row(const PackedB& L, float* pb, int64_t k, int64_t j, const float* src, int64_t n) {
  const int64_t k0 = k / L.kc * L.kc, kcb = std::min(L.kc, L.K - k0);
  float* row = pb + k0 * L.npad + (k - k0) * L.nr;
  const int64_t step = kcb * L.nr;
  while (n > 0) {
    const int64_t q = j / L.nr, off = j - q * L.nr, len = std::min(n, L.nr - off);
    std::memcpy(row + q * step + off, src, len * sizeof(float));
    src += len;
    j += len;
    n -= len;
  }
}

inline void zero_row_tail(const PackedB& L, float* pb, int64_t k) {
  if (L.npad == L.N) return;
  const int64_t k0 = k / L.kc * L.kc, kcb = std::min(L.kc, L.K - k0);
  float* row = pb + k0 * L.npad + (k - k0) * L.nr + (L.N / L.nr) * kcb * L.nr;
  for (int64_t j = L.N % L.nr; j < L.nr; ++j) row[j] = 0.f;
}

}  // namespace

void pad_planes(const Conv2dShape& s, const float* x, int64_t C, float* xp) {
  const int64_t Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw;
  for (int64_t c = 0; c < C; ++c, x += s.H * s.W, xp += Hp * Wp) {
    std::memset(xp, 0, s.ph * Wp * sizeof(float));
    for (int64_t h = 0; h < s.H; ++h) {
      float* d = xp + (h + s.ph) * Wp;
      for (int64_t w = 0; w < s.pw; ++w) d[w] = 0.f;
      std::memcpy(d + s.pw, x + h * s.W, s.W * sizeof(float));
      for (int64_t w = s.pw + s.W; w < Wp; ++w) d[w] = 0.f;
    }
    std::memset(xp + (s.ph + s.H) * Wp, 0, s.ph * Wp * sizeof(float));
  }
}

void pad_planes_wide(const WideGeometry& g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                     const float* x, int64_t C, int64_t slack, float* xq) {
  const int64_t Wq = g.Wq;
  for (int64_t c = 0; c < C; ++c, x += H * W, xq += g.plane) {
    std::memset(xq, 0, (ph * Wq + pw) * sizeof(float));
    // Row h's data, then the zeros between it and row h + 1's data.
    for (int64_t h = 0; h < H; ++h) {
      float* d = xq + (h + ph) * Wq + pw;
      std::memcpy(d, x + h * W, W * sizeof(float));
      const int64_t gap = h + 1 < H ? Wq - W : g.plane - ((h + ph) * Wq + pw + W);
      std::memset(d + W, 0, gap * sizeof(float));
    }
  }
  std::memset(xq, 0, slack * sizeof(float));
}

void hwc_planes_wide(const WideGeometry& g, int64_t H, int64_t W, int64_t ph, int64_t pw,
                     const float* x, int64_t C, int64_t Cp, int64_t slack, float* xh) {
  const int64_t Wq = g.Wq, HW = H * W;
  // Each image row is a transpose of C rows (channels, HW apart) by W values into pixels of Cp
  // floats, zeros past C: the GEMM packers' per-ISA transpose (a scalar copy per value was 4 % of
  // a resnet20 step). Only the border pixels are zeroed apart.
  const f32_interleave_fn interleave = f32_gemm_ukernel().interleave;
  std::memset(xh, 0, (ph * Wq + pw) * Cp * sizeof(float));
  for (int64_t h = 0; h < H; ++h) {
    float* d = xh + ((h + ph) * Wq + pw) * Cp;
    interleave(static_cast<size_t>(C), static_cast<size_t>(W), x + h * W, static_cast<size_t>(HW),
               static_cast<size_t>(Cp), d);
    const int64_t gap = h + 1 < H ? Wq - W : g.plane - ((h + ph) * Wq + pw + W);
    std::memset(d + W * Cp, 0, gap * Cp * sizeof(float));
  }
  std::memset(xh + g.plane * Cp, 0, slack * Cp * sizeof(float));
}

void im2col_packed(const Conv2dShape& s, const float* xp, int64_t Cg, int64_t j0, const PackedB& L,
                   float* pb) {
  const int64_t OW = s.OW(), Hp = s.H + 2 * s.ph, Wp = s.W + 2 * s.pw;
  const int64_t nr = L.nr, sw = s.sw;
  const int64_t oh0 = j0 / OW, ow0 = j0 % OW;
  int64_t k0 = 0, kcb = std::min(L.kc, L.K), r = 0;  // depth block of row r (no division per row)
  for (int64_t c = 0; c < Cg; ++c)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw, ++r) {
        if (r == k0 + kcb) {
          k0 += kcb;
          kcb = std::min(L.kc, L.K - k0);
        }
        const float* src = xp + (c * Hp + kh) * Wp + kw;  // output (oh, ow) reads src[oh*sh*Wp + ow*sw]
        float* d = pb + k0 * L.npad + (r - k0) * nr;  // panel q of this row: + q*kcb*nr
        const int64_t step = kcb * nr;
        int64_t off = 0;  // column within the current panel
        int64_t oh = oh0, ow = ow0;
        for (int64_t left = L.N; left > 0;) {
          const int64_t len = std::min(std::min(OW - ow, nr - off), left);
          const float* sr = src + oh * s.sh * Wp + ow * sw;
          float* dd = d + off;
          if (sw == 1) {
            // Constant-size copies of the common segment lengths inline as vector moves; a
            // variable-length loop becomes a memmove call, which dominates at 8-32 floats.
            if (len == 32) std::memcpy(dd, sr, 32 * sizeof(float));
            else if (len == 16) std::memcpy(dd, sr, 16 * sizeof(float));
            else if (len == 8) std::memcpy(dd, sr, 8 * sizeof(float));
            else std::memcpy(dd, sr, len * sizeof(float));
          } else {
            for (int64_t i = 0; i < len; ++i) dd[i] = sr[i * sw];
          }
          left -= len;
          ow += len;
          if (ow == OW) {
            ow = 0;
            ++oh;
          }
          off += len;
          if (off == nr) {
            off = 0;
            d += step;
          }
        }
        for (; off > 0 && off < nr; ++off) d[off] = 0.f;  // zero columns past the last
      }
}

void chw_to_hwc(int64_t C, int64_t HW, const float* x, float* xh) {
  f32_gemm_ukernel().interleave(static_cast<size_t>(C), static_cast<size_t>(HW), x, static_cast<size_t>(HW),
                                static_cast<size_t>(C), xh);
}

void im2row_packed(const Conv2dShape& s, const float* xh, int64_t ldc, int64_t Cg, int64_t p0,
                   const PackedB& L, float* pb) {
  const int64_t OW = s.OW(), H = s.H, W = s.W;
  const int64_t KW = s.KW;
  int64_t k0 = 0, kcb = std::min(L.kc, L.K);  // depth block of row p (no division per row)
  int64_t oh = p0 / OW, ow = p0 % OW;
  for (int64_t p = 0; p < L.K; ++p, ++ow) {
      if (ow == OW) {
        ow = 0;
        ++oh;
      }
      if (p == k0 + kcb) {
        k0 += kcb;
        kcb = std::min(L.kc, L.K - k0);
      }
      float* row = pb + k0 * L.npad + (p - k0) * L.nr;
      const int64_t step = kcb * L.nr;
      int64_t j = 0;
      for (int64_t kh = 0; kh < s.KH; ++kh) {
        const int64_t ih = oh * s.sh - s.ph + kh;
        for (int64_t kw = 0; kw < KW; ++kw) {
          const int64_t iw = ow * s.sw - s.pw + kw;
          const bool inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
          const float* src = inside ? xh + (ih * W + iw) * ldc : nullptr;
          int64_t n = Cg;
          while (n > 0) {
            const int64_t q = j / L.nr, off = j - q * L.nr, len = std::min(n, L.nr - off);
            float* d = row + q * step + off;
            if (src) {
              if (len == 16) std::memcpy(d, src, 16 * sizeof(float));  // inlined, see im2col_packed
              else if (len == 32) std::memcpy(d, src, 32 * sizeof(float));
              else std::memcpy(d, src, len * sizeof(float));
              src += len;
            } else {
              std::memset(d, 0, len * sizeof(float));
            }
            j += len;
            n -= len;
          }
        }
      }
      if (L.npad != L.N) {
        float* d = row + (L.N / L.nr) * step;
        for (int64_t jj = L.N % L.nr; jj < L.nr; ++jj) d[jj] = 0.f;
      }
    }
}

void col2im_add(const Conv2dShape& s, const float* col, int64_t Cg, float* dxg) {
  const int64_t OH = s.OH(), OW = s.OW(), H = s.H, W = s.W;
  for (int64_t c = 0; c < Cg; ++c) {
    float* dxc = dxg + c * H * W;
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw, col += OH * OW) {
        int64_t lo, hi;
        valid_range(OW, W, s.sw, s.pw, kw, &lo, &hi);
        for (int64_t oh = 0; oh < OH; ++oh) {
          const int64_t ih = oh * s.sh - s.ph + kh;
          if (ih < 0 || ih >= H) continue;
          float* d = dxc + ih * W;  // column ow adds into d[ow*sw - pw + kw]
          const float* src = col + oh * OW;
          if (s.sw == 1) {
            if (hi <= lo) continue;
            float* dd = d + (lo - s.pw + kw);
            const float* ss = src + lo;
            for (int64_t i = 0; i < hi - lo; ++i) dd[i] += ss[i];
          } else {
            for (int64_t ow = lo; ow < hi; ++ow) d[ow * s.sw - s.pw + kw] += src[ow];
          }
        }
      }
  }
}

}  // namespace eo
