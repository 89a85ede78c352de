#include <algorithm>

#include "common/parallel.h"
#include "data/counter_rng.h"
#include "data/data.h"

namespace eo::data {

CropFlip crop_flip(const BatchGeometry& g, uint64_t index) {
  const uint64_t key = counter_key(Stream::kAugment, g.seed, g.epoch, index);
  CropFlip cf{g.pad, g.pad, false};  // pad offsets = the uncropped image
  if (g.pad > 0) {
    const uint64_t range = 2 * static_cast<uint64_t>(g.pad) + 1;
    cf.oy = static_cast<int64_t>(bounded(mix64(key ^ 1), range));
    cf.ox = static_cast<int64_t>(bounded(mix64(key ^ 2), range));
  }
  if (g.flip) cf.flip = (mix64(key ^ 3) >> 63) != 0;
  return cf;
}

namespace {

// One output row: dst[j] = a * src[sx(j)] + s, with sx(j) = j + dx (no flip) or W-1-j + dx (flip),
// and the padding value s wherever sx(j) falls outside [0, W).
template <typename T>
inline void crop_row(const T* src, int64_t W, int64_t dx, bool flip, float a, float s, float* dst) {
  int64_t j0, j1;  // output columns whose source column is inside the image
  if (!flip) {
    j0 = std::max<int64_t>(0, -dx);
    j1 = std::min<int64_t>(W, W - dx);
  } else {
    j0 = std::max<int64_t>(0, dx);
    j1 = std::min<int64_t>(W, W + dx);
  }
  if (j1 <= j0) {
    std::fill(dst, dst + W, s);
    return;
  }
  std::fill(dst, dst + j0, s);
  if (!flip) {
    const T* p = src + dx;
    for (int64_t j = j0; j < j1; ++j) dst[j] = static_cast<float>(p[j]) * a + s;
  } else {
    const T* p = src + (W - 1 + dx);
    for (int64_t j = j0; j < j1; ++j) dst[j] = static_cast<float>(p[-j]) * a + s;
  }
  std::fill(dst + j1, dst + W, s);
}

template <typename T>
void assemble_batch(const T* x, const int64_t* idx, int64_t B, const BatchGeometry& g,
                    const float* mean, const float* stdev, double in_scale, float* out) {
  const int64_t C = g.C, H = g.H, W = g.W, plane = H * W, image = C * plane;
  const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, image));
  parallel_for(B, grain, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t n = idx[b];
      const CropFlip cf = crop_flip(g, static_cast<uint64_t>(n));
      const int64_t dy = cf.oy - g.pad, dx = cf.ox - g.pad;
      for (int64_t c = 0; c < C; ++c) {
        // Scale and shift in double, then one float multiply-add per pixel.
        const double inv = 1.0 / static_cast<double>(stdev[c]);
        const float a = static_cast<float>(in_scale * inv);
        const float s = static_cast<float>(0.0 - static_cast<double>(mean[c]) * inv);  // +0, not -0
        const T* src = x + n * image + c * plane;
        float* dst = out + b * image + c * plane;
        for (int64_t i = 0; i < H; ++i) {
          const int64_t sy = i + dy;
          if (sy < 0 || sy >= H) std::fill(dst + i * W, dst + (i + 1) * W, s);
          else crop_row(src + sy * W, W, dx, cf.flip, a, s, dst + i * W);
        }
      }
    }
  });
}

}  // namespace

void assemble_batch_u8(const uint8_t* x, const int64_t* idx, int64_t B, const BatchGeometry& g,
                       const float* mean, const float* stdev, float* out) {
  assemble_batch(x, idx, B, g, mean, stdev, 1.0 / 255.0, out);
}

void assemble_batch_f32(const float* x, const int64_t* idx, int64_t B, const BatchGeometry& g,
                        const float* mean, const float* stdev, float* out) {
  assemble_batch(x, idx, B, g, mean, stdev, 1.0, out);
}

}  // namespace eo::data
