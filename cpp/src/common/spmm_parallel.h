// How a sparse x dense product is cut over threads, shared by the f32 and int8 sparse drivers
// (f32-spmm, qs8-spmm). The sparse operand is CSR-style: nbr block rows of output channels, row_ptr
// counting stored entries; the dense operand is `batch` images of hw pixels.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "common/parallel.h"

namespace eo {

// cut[t]..cut[t+1] are the rows of part t; row_ptr has nrows + 1 entries and row_ptr[nrows] ==
// total entries. Rows are split by work (stored entries), not by row count, so a thread is not
// left with all the dense rows of a pruned layer. Parts are contiguous, non-decreasing and cover
// [0, nrows).
inline std::vector<int64_t> balanced_row_cuts(const std::vector<int32_t>& row_ptr, int64_t nrows,
                                              int parts) {
  const int64_t total = row_ptr[nrows];
  std::vector<int64_t> cut(parts + 1, nrows);
  cut[0] = 0;
  for (int t = 1; t < parts; ++t)
    cut[t] = std::upper_bound(row_ptr.begin(), row_ptr.begin() + nrows, int32_t(total * t / parts)) -
             row_ptr.begin() - 1;
  for (int t = 1; t <= parts; ++t) cut[t] = std::max(cut[t], cut[t - 1]);
  return cut;
}

// Runs block(n, r0, r1, p0, p1) (block rows [r0, r1) x pixels [p0, p1) of image n) over the whole
// product, after prepare(n) for each image (e.g. widening it), in parallel when `parallel` and
// `work` (multiply-adds + stores) pays for it:
//   batch >= threads        whole images per thread;
//   else, per image:        whole register tiles of `tile` pixels per thread when there are at
//                           least two per thread (every thread reads all the weights), else block
//                           rows with equal stored entries per thread (deep layers, few pixels).
template <class Prepare, class Block>
void spmm_parallel(int64_t batch, int64_t hw, int64_t tile, int64_t nbr, const std::vector<int32_t>& row_ptr,
                   int64_t work, bool parallel, Prepare prepare, Block block) {
  const int threads = parallel ? get_num_threads() : 1;
  if (threads <= 1 || work < (int64_t(1) << 16)) {
    for (int64_t n = 0; n < batch; ++n) {
      prepare(n);
      block(n, 0, nbr, 0, hw);
    }
    return;
  }
  if (batch >= threads) {
    parallel_chunks(batch, threads, [&](int, int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n) {
        prepare(n);
        block(n, 0, nbr, 0, hw);
      }
    });
    return;
  }
  const int64_t tiles = (hw + tile - 1) / tile;
  for (int64_t n = 0; n < batch; ++n) {
    prepare(n);
    if (tiles >= 2 * threads) {
      parallel_chunks(tiles, threads, [&](int, int64_t t0, int64_t t1) {
        block(n, 0, nbr, t0 * tile, std::min(hw, t1 * tile));
      });
    } else {
      const std::vector<int64_t> cut = balanced_row_cuts(row_ptr, nbr, threads);
      parallel_chunks(threads, threads, [&](int, int64_t t0, int64_t t1) { block(n, cut[t0], cut[t1], 0, hw); });
    }
  }
}

}  // namespace eo
