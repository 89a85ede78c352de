#include "f32-directconv/taps.h"
#include <algorithm>
#include <cstddef>

namespace eo {

bool direct_taps(int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                 DirectTaps* out, int64_t max_entries) {
  if (H < 1 || W < 1 || KH < 1 || KW != 2 * pw + 1 || ph < 0) return false;
  const int64_t OH = H + 2 * ph - KH + 1, P = OH * W, taps = KH * KW, nv = (P + 15) / 16;
  if (OH < 1 || nv * taps > max_entries || (H + KH) * W >= (int64_t(1) << 31)) return false;
  DirectTaps& d = *out;
  d.taps = taps;
  d.off.resize(static_cast<size_t>(taps));
  d.mask.assign(static_cast<size_t>(nv * taps), 0);
  for (int64_t kh = 0; kh < KH; ++kh)
    for (int64_t kw = 0; kw < KW; ++kw) {
      const int64_t t = kh * KW + kw, dr = kh - ph, dc = kw - pw;
      d.off[t] = static_cast<int32_t>(dr * W + dc);
      d.min_off = t ? std::min<int64_t>(d.min_off, d.off[t]) : d.off[t];
      d.max_off = t ? std::max<int64_t>(d.max_off, d.off[t]) : d.off[t];
      for (int64_t j = 0; j < P; ++j) {
        const int64_t ih = j / W + dr, iw = j % W + dc;
        if (ih >= 0 && ih < H && iw >= 0 && iw < W) d.mask[(j / 16) * taps + t] |= uint16_t(1u << (j % 16));
      }
    }
  return true;
}

}  // namespace eo
