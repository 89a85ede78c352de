// Elementwise layers that are not activations.
//
// add:            a, b, y: (n)                     y = a + b (residual connections)
// channel_scale:  x, y, dy, dx: (N, C, HW)  s, ds: (N, C)
//                 y = x * s[n, c] (squeeze-and-excitation); dx = dy * s, ds = sum_hw dy * x
// dropout:        x, y, dy, dx, mask: (n)
//                 keep_i = u_i >= p with u_i = splitmix64(key(seed), i) / 2^64 in 24-bit steps,
//                 mask_i = keep_i (uint8), y = x * mask / (1 - p), dx = dy * mask / (1 - p).
//                 The mask is a counter-based hash of (seed, element index), so it is the same
//                 whatever the thread count or the blocking.
// Input gradients are assigned (ds included: s is an activation, not a parameter).
#pragma once
#include <cstdint>

namespace eo {

void add_forward(const float* a, const float* b, float* y, int64_t n);

void channel_scale_forward(const float* x, const float* s, float* y, int64_t N, int64_t C,
                           int64_t HW);
void channel_scale_backward(const float* dy, const float* x, const float* s, float* dx, float* ds,
                            int64_t N, int64_t C, int64_t HW);

// 0 <= p < 1 (checked by the caller).
void dropout_forward(const float* x, float* y, uint8_t* mask, int64_t n, float p, uint64_t seed);
void dropout_backward(const float* dy, const uint8_t* mask, float* dx, int64_t n, float p);

}  // namespace eo
