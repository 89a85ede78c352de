// f32 depthwise convolution micro-kernels (CHW planes, one channel = one plane): the inference
// forward and the weight gradient of training.
//
//   y[c][p] = act( sum_t w[c][t] * (bit p%16 of mask[p/16][t] ? src_c[off[t] + p] : 0) + bias[c] )
//
// for p < npix outputs of each channel, flat in the output plane (p = oh * OW + ow). The driver
// (dwconv.h) lays the input out so that every tap t of the whole plane is one constant shift
// off[t] of the flat output index: the input plane itself when stride 1 keeps the width (3x3 p1,
// 5x5 p2), otherwise source planes of pitch OW (stride phases or per-column-tap copies). Lanes
// whose tap falls into the padding have their mask bit clear, so the kernel needs no padded copy
// and no border cases: a 16-lane vector may span several output rows (4x4 and 8x8 planes waste
// no lanes), and the SIMD kernels' masked loads never touch memory of a cleared lane (a clear
// lane's address may lie outside the source). Mask bits of lanes p >= npix are clear.
//
// The split2 helper builds stride-2 column phases for the driver: for each of `rows` rows of x
// (row stride x_stride, w floats), even[i*pitch + C] = x[2C] for C < min(ceil(w/2), pitch) and
// odd[i*pitch + C] = x[2C + 1] for C < min(floor(w/2), pitch); nothing else is written.
//
// The weight-gradient kernel (training) reads the same sources, offsets and masks and adds to
// 16 lane sums per channel and tap (the caller sums the lanes after the whole batch):
//
//   lanes[(c*ntaps + t)*16 + l] += sum_{p < npix, p % 16 = l} dy_c[p] * (bit l of mask[p/16][t] ? src_c[off[t] + p] : 0)
//
// dy_c lanes p >= npix are never read.
//
// The stride-2 data-gradient kernel (training, channel multiplier 1) writes whole dx planes:
//
//   dx_c[ih][iw] = sum of w_c[kh][kw] * dy_c[oh][ow] over ih + ph - kh = 2 oh, iw + pw - kw = 2 ow
//                  (0 <= oh < OH, 0 <= ow < OW), kh ascending, then kw ascending
//
// An output row takes only the kernel rows of its parity, and an even or odd output column only
// the kernel columns of its parity, so it does the forward's FMAs, where the flipped-kernel conv
// over the zero-dilated dy does four times as many. Vectors run along pairs of output columns:
// the even and odd sums are interleaved on the store.
//
// act: F32_DWCONV_CLAMP min(max(v, lo), hi) (none / relu / relu6), F32_DWCONV_HARDSWISH
// v * min(max(v + 3, 0), 6) * (1/6), both in the order of the runtime's scalar epilogue, NaN
// passes through. Kernels trust their inputs. Plain C declarations: included by ISA files.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

enum { F32_DWCONV_CLAMP = 0, F32_DWCONV_HARDSWISH = 1 };

struct f32_dwconv_params {
  size_t npix;              // outputs per channel
  size_t ntaps;             // KH * KW
  const ptrdiff_t* off;     // ntaps shifts from the channel's source base
  const uint16_t* mask;     // ceil(npix / 16) x ntaps lane masks
  int act;
  float lo, hi;             // clamp bounds (F32_DWCONV_CLAMP)
};

// channels planes: source c at src + c * src_stride, weights w + c * ntaps, bias[c] (bias may be
// null), output y + c * y_stride.
typedef void (*f32_dwconv_ukernel_fn)(size_t channels, const float* src, size_t src_stride,
                                      const float* w, const float* bias, float* y, size_t y_stride,
                                      const struct f32_dwconv_params* p);

// channels planes: source c at src + c * src_stride, dy_c at dy + c * dy_stride. Adds to 16 lane
// sums per channel and tap, lanes + (c * ntaps + t) * 16: lane i gets the products of the output
// pixels at i mod 16. The caller sums the lanes once, after the whole batch (a 4x4 plane is one
// vector, so reducing per image would cost more than the products).
typedef void (*f32_dwconv_wgrad_fn)(size_t channels, const float* src, size_t src_stride,
                                    const float* dy, size_t dy_stride, float* lanes,
                                    const struct f32_dwconv_params* p);

struct f32_dwconv_dgrad2_params {
  size_t H, W, OH, OW, KH, KW, ph, pw;
};

// channels planes: dy_c at dy + c * dy_stride, w_c at w + c * KH * KW, dx_c at dx + c * dx_stride;
// KW <= 8.
typedef void (*f32_dwconv_dgrad2_fn)(size_t channels, const float* dy, size_t dy_stride,
                                     const float* w, float* dx, size_t dx_stride,
                                     const struct f32_dwconv_dgrad2_params* p);

typedef void (*f32_dwconv_split2_fn)(size_t rows, size_t w, const float* x, size_t x_stride,
                                     float* even, float* odd, size_t pitch);

void f32_dwconv_ukernel__scalar(size_t channels, const float* src, size_t src_stride,
                                const float* w, const float* bias, float* y, size_t y_stride,
                                const struct f32_dwconv_params* p);
void f32_dwconv_ukernel__avx2(size_t channels, const float* src, size_t src_stride,
                              const float* w, const float* bias, float* y, size_t y_stride,
                              const struct f32_dwconv_params* p);
void f32_dwconv_ukernel__avx512(size_t channels, const float* src, size_t src_stride,
                                const float* w, const float* bias, float* y, size_t y_stride,
                                const struct f32_dwconv_params* p);

void f32_dwconv_dgrad2__scalar(size_t channels, const float* dy, size_t dy_stride, const float* w,
                               float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p);
void f32_dwconv_dgrad2__avx2(size_t channels, const float* dy, size_t dy_stride, const float* w,
                             float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p);
void f32_dwconv_dgrad2__avx512(size_t channels, const float* dy, size_t dy_stride, const float* w,
                               float* dx, size_t dx_stride, const struct f32_dwconv_dgrad2_params* p);
void f32_dwconv_wgrad__scalar(size_t channels, const float* src, size_t src_stride, const float* dy,
                              size_t dy_stride, float* lanes, const struct f32_dwconv_params* p);
void f32_dwconv_wgrad__avx2(size_t channels, const float* src, size_t src_stride, const float* dy,
                            size_t dy_stride, float* lanes, const struct f32_dwconv_params* p);
void f32_dwconv_wgrad__avx512(size_t channels, const float* src, size_t src_stride, const float* dy,
                              size_t dy_stride, float* lanes, const struct f32_dwconv_params* p);

void f32_dwconv_split2__scalar(size_t rows, size_t w, const float* x, size_t x_stride, float* even,
                               float* odd, size_t pitch);
void f32_dwconv_split2__avx512(size_t rows, size_t w, const float* x, size_t x_stride, float* even,
                               float* odd, size_t pitch);

}  // namespace eo
