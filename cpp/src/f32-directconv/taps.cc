#include "f32-directconv/taps.h"

#include <algorithm>
#include <cstddef>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/int_math.h"

namespace eo {
namespace {


// d0[k] = x[2k] for k < n0, d1[k] = x[2k + 1] for k < n1 (n0 + n1 <= the row's length): the two
// column phases of a stride-2 row in one pass, SSE2 shuffles for whole groups of 8 inputs.
void split_row2(const float* x, float* d0, int64_t n0, float* d1, int64_t n1) {
  int64_t k = 0;
#if defined(__SSE2__)
  for (; 2 * k + 8 <= n0 + n1; k += 4) {
    const __m128 a = _mm_loadu_ps(x + 2 * k), b = _mm_loadu_ps(x + 2 * k + 4);
    _mm_storeu_ps(d0 + k, _mm_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
    _mm_storeu_ps(d1 + k, _mm_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
  }
#endif
  for (int64_t j = k; j < n0; ++j) d0[j] = x[2 * j];
  for (int64_t j = k; j < n1; ++j) d1[j] = x[2 * j + 1];
}

}  // namespace

bool direct_taps(int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t sh, int64_t sw, int64_t ph,
                 int64_t pw, DirectTaps* out, int64_t max_entries) {
  if (H < 1 || W < 1 || KH < 1 || KW < 1 || sh < 1 || sw < 1 || ph < 0 || pw < 0) return false;
  const int64_t OH = (H + 2 * ph - KH) / sh + 1, OW = (W + 2 * pw - KW) / sw + 1;
  if (OH < 1 || OW < 1 || H + 2 * ph < KH || W + 2 * pw < KW) return false;
  const bool strided = sh > 1 || sw > 1;
  if (!strided && OW != W) return false;  // stride 1 reads the image in place: its pitch is W
  const int64_t rows = strided ? ceil_div(H, sh) : H;  // rows of the tallest phase
  const int64_t P = OH * OW, taps = KH * KW, nv = (P + 15) / 16;
  if (nv * taps > max_entries || sh * sw > 64 || rows * OW * sh * sw >= (int64_t(1) << 30)) return false;
  DirectTaps d;
  d.taps = taps;
  d.H = H, d.W = W, d.sh = sh, d.sw = sw, d.OH = OH, d.OW = OW;
  d.phase.assign(static_cast<size_t>(sh * sw), -1);
  d.off.resize(static_cast<size_t>(taps));
  d.mask.assign(static_cast<size_t>(nv * taps), 0);
  d.plane = rows * OW;
  int32_t nph = 0;
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t dr = floor_div(kh - ph, sh), pr = kh - ph - dr * sh;
      const int64_t dc = floor_div(kw - pw, sw), pc = kw - pw - dc * sw;
      const int64_t prows = ceil_div(H - pr, sh), pcols = ceil_div(W - pc, sw);  // of this phase
      if (strided && dc > 0 && pcols > OW) return false;  // a valid read would wrap to the next row
      int32_t& p = d.phase[pr * sw + pc];
      if (p < 0) p = nph++;
      const int64_t t = kh * KW + kw;
      d.off[t] = static_cast<int32_t>(p * d.plane + dr * OW + dc);
      d.dr_min = t ? std::min(d.dr_min, dr) : dr;
      d.dr_max = t ? std::max(d.dr_max, dr) : dr;
      for (int64_t j = 0; j < P; ++j) {
        const int64_t R = j / OW + dr, C = j % OW + dc;
        if (R >= 0 && R < prows && C >= 0 && C < pcols) d.mask[(j / 16) * taps + t] |= uint16_t(1u << (j % 16));
      }
    }
  d.min_off = *std::min_element(d.off.begin(), d.off.end());
  d.max_off = *std::max_element(d.off.begin(), d.off.end());
  d.ldx = strided ? nph * d.plane : H * W;
  *out = std::move(d);
  return true;
}

void DirectTaps::fill(const float* x, int64_t C, int64_t oh0, int64_t oh1, float* dst) const {
  if (oh0 >= oh1) return;
  for (int64_t pr = 0; pr < sh; ++pr) {
    const int64_t prows = ceil_div(H - pr, sh);
    const int64_t R0 = std::max<int64_t>(0, oh0 + dr_min), R1 = std::min(prows, oh1 + dr_max);
    for (int64_t c = 0; c < C; ++c) {
      const float* xc = x + c * H * W;
      float* dc = dst + c * ldx;
      if (!strided()) {  // whole rows of the image
        if (R1 > R0) std::memcpy(dc + R0 * W, xc + R0 * W, static_cast<size_t>((R1 - R0) * W) * 4);
        continue;
      }
      const int32_t* ph = phase.data() + pr * sw;
      if (sw == 2 && ph[0] >= 0 && ph[1] >= 0) {  // both column phases from one pass over the row
        const int64_t n0 = std::min(ceil_div(W, 2), OW), n1 = std::min(W / 2, OW);
        for (int64_t R = R0; R < R1; ++R)
          split_row2(xc + (sh * R + pr) * W, dc + ph[0] * plane + R * OW, n0, dc + ph[1] * plane + R * OW, n1);
        continue;
      }
      for (int64_t pc = 0; pc < sw; ++pc) {
        if (ph[pc] < 0) continue;
        const int64_t cols = std::min(ceil_div(W - pc, sw), OW);
        for (int64_t R = R0; R < R1; ++R) {
          const float* xr = xc + (sh * R + pr) * W + pc;
          float* d = dc + ph[pc] * plane + R * OW;
          for (int64_t k = 0; k < cols; ++k) d[k] = xr[k * sw];
        }
      }
    }
  }
}

}  // namespace eo
