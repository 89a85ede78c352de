// x, dx: (N, C, H, W)  y, dy, argmax: (N, C, OH, OW)  with OH = (H + 2*ph - kh) / sh + 1
// (floor; no ceil_mode), OW likewise.
//
// maxpool2d:  y = max over the window, padding counts as -inf; argmax = ih * W + iw, the flat
//             index of the (first) maximum in its input plane. NaN wins, as in PyTorch.
//             backward: dx[argmax] += dy (overlapping windows add up).
// avgpool2d:  y = sum over the window's in-bounds values / divisor, divisor = kh*kw when
//             count_include_pad (PyTorch's default), else the number of in-bounds values.
//             backward: every in-bounds x of the window gets dy / divisor.
// global avg: y (N, C, 1, 1) = mean over H*W; backward dx = dy / (H*W).
// The caller guarantees padding <= kernel / 2 (so every window holds an input value) and OH, OW
// >= 1. Parallel over (n, c) planes, each plane handled by one thread in a fixed order, so the
// results do not depend on the thread count. Input gradients are assigned.
#pragma once
#include <cstdint>

namespace eo {

struct Pool2d {
  int64_t N, C, H, W;  // input
  int64_t kh, kw, sh, sw, ph, pw;
  int64_t OH() const { return (H + 2 * ph - kh) / sh + 1; }
  int64_t OW() const { return (W + 2 * pw - kw) / sw + 1; }
};

void maxpool2d_forward(const float* x, float* y, int32_t* argmax, const Pool2d& p);
// dy, argmax: (planes, OHW)  dx: (planes, HW). Returns false (dx then holds garbage) if an argmax
// entry is outside [0, HW): argmax comes from Python and is not trusted.
bool maxpool2d_backward(const float* dy, const int32_t* argmax, float* dx, int64_t planes,
                        int64_t OHW, int64_t HW);

void avgpool2d_forward(const float* x, float* y, const Pool2d& p, bool count_include_pad);
void avgpool2d_backward(const float* dy, float* dx, const Pool2d& p, bool count_include_pad);

// x: (N, C, HW)  y: (N, C)
void global_avgpool2d_forward(const float* x, float* y, int64_t N, int64_t C, int64_t HW);
void global_avgpool2d_backward(const float* dy, float* dx, int64_t N, int64_t C, int64_t HW);

}  // namespace eo
