// Batch assembly for edgeopt.data.DataLoader: one pass per batch that gathers the batch's images
// from the dataset's storage, converts them to float32, normalizes per channel and applies the
// random crop (zero padding) and horizontal flip. The dataset is never copied as a whole.
//
// Per output element (b, c, i, j), with n = idx[b] and (oy, ox, f) = crop_flip(seed, epoch, n):
//   jj = f ? W-1-j : j                    (flip after crop)
//   v  = x[n, c, i+oy-pad, jj+ox-pad]     (0 when outside the image: padding is in pixel space,
//                                          like torchvision's RandomCrop(fill=0) before Normalize)
//   y  = v * in_scale / stdev[c] - mean[c] / stdev[c]
// in_scale is 1/255 for uint8 storage (pixels scaled to [0, 1]) and 1 for float32 storage.
// oy, ox are uniform in [0, 2*pad]; pad = 0 means no crop. All randomness is counter-based
// (counter_rng.h), so a batch does not depend on the thread count or on the batch composition.
//
// Kernels trust their inputs (indices in range, std > 0); bindings validate.
#pragma once
#include <cstdint>

namespace eo::data {

struct BatchGeometry {
  int64_t C, H, W;  // one image is (C, H, W)
  int64_t pad;      // crop padding; 0 disables the crop
  bool flip;        // random horizontal flip with probability 1/2
  uint64_t seed, epoch;
};

struct CropFlip {
  int64_t oy, ox;  // top-left corner of the crop inside the padded image, in [0, 2*pad]
  bool flip;
};

// The augmentation decision for dataset image `index` (what the batch kernels apply).
CropFlip crop_flip(const BatchGeometry& g, uint64_t index);

// x: (N, C, H, W) storage  idx: (B,)  mean, std: (C,)  out: (B, C, H, W)
void assemble_batch_u8(const uint8_t* x, const int64_t* idx, int64_t B, const BatchGeometry& g,
                       const float* mean, const float* stdev, float* out);
void assemble_batch_f32(const float* x, const int64_t* idx, int64_t B, const BatchGeometry& g,
                        const float* mean, const float* stdev, float* out);

// out: (n,) a uniform random permutation of [0, n) determined by (seed, epoch) alone
// (Fisher-Yates over the counter-based stream).
void permutation(int64_t n, uint64_t seed, uint64_t epoch, int64_t* out);

// Per-channel mean and (population) std of x: (N, C, S) with S = H*W, in storage units.
// uint8 sums are exact integers, so the result is the same for every thread count; float32 sums
// use double partials over a fixed number of chunks, also independent of the thread count.
void channel_stats_u8(const uint8_t* x, int64_t N, int64_t C, int64_t S, double* mean, double* stdev);
void channel_stats_f32(const float* x, int64_t N, int64_t C, int64_t S, double* mean, double* stdev);

}  // namespace eo::data
