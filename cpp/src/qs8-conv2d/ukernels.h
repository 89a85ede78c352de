// int8 depthwise convolution micro-kernels (NHWC, one output pixel = C channels).
//
//   acc[c] = bias[c] + sum_t (x_t[c] - in_zp) * w[t][c]                         exact int32
//          = adj[c]  + sum_t x_t[c] * w[t][c]      adj[c] = bias[c] - in_zp * sum_t w[t][c]
//   y[c]   = qs8_requantize(acc[c], scale[c], out_zp, qmin, qmax)
//
// The kernels compute the second form, modulo 2^32 (exact whenever acc fits int32, which the
// driver checks: |bias| + 255 * sum |w| <= 2^31 - 1), so the inner loop multiplies raw u8.
// x_t is the input pixel under tap t, given by an indirection buffer (XNNPACK's idea): for pixel p
// of the call, taps[p * ntaps + t] points at that pixel's C channels, or at a row of C bytes all
// equal to in_zp where the tap falls into the padding (so a padded tap adds exactly 0 and the
// kernel has no border cases). Weights are stored tap-major as int32 (w[t * cstride + c], zero for
// c >= C, cstride a multiple of 16): AVX-512 zero-extends 16 input bytes into int32 lanes (high
// halves 0), so one vpmaddwd with 16 weights (low halves w, high halves 0 or -1) is exactly x * w.
// Kernels trust their inputs. Plain C only.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

struct qs8_dwconv_params {
  const int32_t* w;           // ntaps x cstride, each in [-128, 127]
  const int32_t* adj;         // cstride (zero-padded): bias - in_zp * sum_t w
  const float* scale;         // cstride: the float32 requantization factors
  size_t cstride;             // channels rounded up to 16
  int32_t out_zp, qmin, qmax;
  // The VNNI kernel's forms, for the whole blocks of 64 channels (the channels past them use w):
  // taps in groups of four (the last group padded with zero weights, read from zero_row), each
  // channel's four tap weights one dword, dwords in the order the kernel's byte transpose leaves
  // the inputs in: w8[((b * ngroups + g) * 4 + k) * 64 + 16 L + 4 j + i] =
  // w[4 g + i][64 b + 16 L + 4 k + j]; adj_p / scale_p permuted the same way
  // ([(4 b + k) * 16 + 4 L + j] holds channel 64 b + 16 L + 4 k + j).
  const int8_t* w8;
  const int32_t* adj_p;
  const float* scale_p;
  const uint8_t* zero_row;    // >= 64 readable bytes, for the padding taps (their weights are 0)
};

// y[p * y_stride + c] for p < npix, c < channels.
typedef void (*qs8_dwconv_ukernel_fn)(size_t channels, size_t npix, size_t ntaps,
                                      const uint8_t* const* taps,
                                      const struct qs8_dwconv_params* p, uint8_t* y,
                                      size_t y_stride);

void qs8_dwconv_ukernel__scalar(size_t channels, size_t npix, size_t ntaps,
                                const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                uint8_t* y, size_t y_stride);
void qs8_dwconv_ukernel__avx512(size_t channels, size_t npix, size_t ntaps,
                                const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                uint8_t* y, size_t y_stride);
// VNNI: four taps of 64 channels per step, the bytes transposed in registers into per-channel
// dwords for vpdpbusd (256 multiply-adds per 4 loads, 8 unpacks and 4 vpdpbusd).
void qs8_dwconv_ukernel__avx512vnni(size_t channels, size_t npix, size_t ntaps,
                                    const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                    uint8_t* y, size_t y_stride);

}  // namespace eo
