// Splitting the rows of a CSR-style matrix across threads by work (stored entries), not by row
// count, so a thread is not left with all the dense rows of a pruned layer.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace eo {

// cut[t]..cut[t+1] are the rows of part t (parts = threads); row_ptr has nrows + 1 entries and
// row_ptr[nrows] == total entries. Parts are contiguous, non-decreasing and cover [0, nrows).
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

}  // namespace eo
