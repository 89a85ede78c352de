// The tap table of a direct conv (f32-directconv/ukernels.h): shifts and per-vector masks.
#pragma once
#include <cstdint>
#include <vector>

namespace eo {

struct DirectTaps {
  int64_t taps = 0;             // KH * KW
  std::vector<int32_t> off;     // per tap: (kh - ph) * W + (kw - pw)
  int64_t min_off = 0, max_off = 0;  // of off: output pixel j reads input pixels [j + min, j + max]
  std::vector<uint16_t> mask;   // per 16-column output vector u, per tap: [u * taps + t]
};

// The table of a stride-1 KH x KW conv with padding (ph, pw) on H x W planes, whose output rows are
// as wide as the input (KW == 2 pw + 1). False, table untouched, for any other geometry or when
// the table would be larger than max_entries.
bool direct_taps(int64_t H, int64_t W, int64_t KH, int64_t KW, int64_t ph, int64_t pw,
                 DirectTaps* out, int64_t max_entries = int64_t(1) << 20);

}  // namespace eo
