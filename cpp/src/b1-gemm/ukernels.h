// Binary (1-bit) GEMM micro-kernels: XNOR-popcount over bit-packed {-1, +1} operands.
//
// With +1 stored as bit 1 and -1 as bit 0, the product of two such values is +1 where the bits
// agree and -1 where they differ, so a dot product over K bits is
//     dot = K - 2 * popcount(a XOR b)
// and 64 multiply-adds cost one XOR and one popcount. Kernels return the popcount part only:
//     c[i*ldc + j] = sum_{w < kw} popcount(a[i*lda + w] XOR b_j[w])
// (the driver turns it into dot, adds padding corrections and scales). Bits past K must be zero in
// both operands so they never differ.
//
// A: m rows of kw 64-bit words (row stride lda words), each word broadcast against a panel.
// B: panels of 8 columns, word-major: column j of panel q, word w at b[q*kw*8 + w*8 + j%8]
// (one zmm of 8 words per k step for vpopcntq; zero columns pad the last panel). n columns of c
// are written. Kernels trust their inputs. Plain C declarations only.
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace eo {

typedef void (*b1_gemm_ukernel_fn)(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                   const uint64_t* b, int32_t* c, size_t ldc);

// Scalar: __builtin_popcountll. AVX2: nibble lookup (vpshufb) + vpsadbw. AVX-512: vpopcntq.
void b1_gemm_ukernel_4x8__scalar(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                                 const uint64_t* b, int32_t* c, size_t ldc);
void b1_gemm_ukernel_4x8__avx2(size_t m, size_t n, size_t kw, const uint64_t* a, size_t lda,
                               const uint64_t* b, int32_t* c, size_t ldc);
void b1_gemm_ukernel_4x16__avx512vpopcntdq(size_t m, size_t n, size_t kw, const uint64_t* a,
                                           size_t lda, const uint64_t* b, int32_t* c, size_t ldc);

// Direct binary conv (no im2col), stride 1 or 2: 16 output pixels of one row per vector, one 32-bit
// word of channels per pixel and tap (other forms below). The binarized input sits in nw word
// planes (channel c at bit c % 32 of plane c / 32), each hp x ldp words with a zero border of the
// padding and slack columns past the row, so the 16-lane loads at every tap need no bounds checks
// (B1_PLANES_32_ROWS2 also needs a slack row past the planes). With column stride 2 a
// plane row holds the even padded columns, then from word ldh the odd ones (padded column pc at
// (pc % 2) ldh + pc / 2), so that the 16 pixels of a tap are again one contiguous load: tap j of
// output column s reads word (j % 2) ldh + j / 2 + s (stride 1: j + s). Output row r reads plane
// rows stride r + i. A 3x3 stride-1 conv of at most 16 input channels may use 16-bit words
// instead (one plane of uint16, 32 pixels per vector; its weight words hold their 16 bits twice,
// and its base is int16), and one with rows of at most 8 pixels two rows per vector. For output
// channel o:
//   acc = sum_{tap, word} popcount(x word XOR w word)   (disagreeing signs)
//   dot = base[o][rowcls[r]][s] - 2 acc                 (base: K plus the padding corrections of
//                                                        row class rowcls[r], column s)
//   y[o][r][s] = clamp(alpha[o] * float(dot) + bias[o] + residual[o][r][s])
//                                                       (separate multiply and adds, as everywhere)
enum b1_plane_layout {
  B1_PLANES_32 = 0,          // stride 1, 32-bit words
  B1_PLANES_32_STRIDE2 = 1,  // stride 2, 32-bit words, odd columns from word ldh
  B1_PLANES_16 = 2,          // stride 1, 16-bit words (3x3, nw = 1, at most 16 channels)
  B1_PLANES_32_ROWS2 = 3,    // planes as B1_PLANES_32; rows of at most 8 output pixels (3x3,
                             // nw <= 2), two per vector: lanes 0-7 row r, lanes 8-15 row r + 1;
                             // base row k of a row pair's class: row r's class in lanes 0-7, row
                             // r + 1's in lanes 8-15 (rowcls[r]: the class of the pair (r, r + 1));
                             // the planes need one row of slack past their end
};
struct b1_direct_params {
  const uint32_t* plane;   // B1_PLANES_16: uint16 words (plane_stride, ldp and ldb count them)
  size_t plane_stride, ldp, nw, kh, kw;
  enum b1_plane_layout layout;
  size_t ldh;              // B1_PLANES_32_STRIDE2: where a row's odd columns start
  const uint32_t* w;       // output channels in groups of 8, each group wstride x 8 words: word t
                           // of channel o at w[((o / 8) * wstride + t) * 8 + o % 8] (one
                           // broadcast base for a whole group). The wstride words of a channel:
                           // for each kernel row i, the kernel columns in groups of three (then
                           // 1-2 single columns), for each word c: a group is w1, w1^w2, w1^w3,
                           // w1^w2^w3 of its three taps, a single column its word; then, for
                           // a 3x3 kernel of at most 2 words per pixel (b1_direct_sum3_words),
                           // for each word c the XORs of the three rows' w1^w2^w3 words s0, s1,
                           // s2: s0^s1, s0^s2, s0^s1^s2
  size_t wstride;
  const int32_t* base;     // cout x ncls x ldb
  const int16_t* base16;   // the same for B1_PLANES_16 (else unused)
  size_t ncls, ldb;
  const int32_t* rowcls;   // per output row
  const float* alpha;
  const float* bias;       // or NULL
  float lo, hi;
  float* y;                // cout x oh x ow
  size_t oh, ow;
  const float* residual;   // cout x oh x ow like y, or NULL
  // Or, where the only reader of the output is another direct conv (b1_link, gemm.h), that
  // conv's bit planes instead of y: bit o % 32 of output pixel (r, s)'s word in plane o / 32 is
  // 1 where dot >= dmin[o] (which stands for "clamp(alpha dot + bias) >= the reader's
  // threshold"). The planes are laid out for the reader (out_layout, out_ldp, out_ldh, its
  // padding), pixel (r, s) at padded row r + out_pad_h, column s + out_pad_w; only interior words
  // are written (the driver zeroes the border). NULL: y.
  uint32_t* out_plane;     // B1_PLANES_16: uint16 words (out_plane_stride and out_ldp count them)
  size_t out_plane_stride, out_ldp, out_ldh, out_pad_h, out_pad_w;
  enum b1_plane_layout out_layout;
  const int32_t* dmin;     // cout
};
// Extra weight words per output channel that the direct kernel's 3x3 form reads (above).
static inline size_t b1_direct_sum3_words(size_t kh, size_t kw, size_t nw) {
  return kh == 3 && kw == 3 && nw <= 2 ? 3 * nw : 0;
}
// Output channels [o0, o1) of output rows [r0, r1); o0 a multiple of 8 (writing out_plane: a
// multiple of 32, and [o0, o1) whole groups of 32 channels up to cout, since each group's words
// are stored whole). This and the binarizer
// need Ice Lake's AVX-512 set (cpu_has_avx512icl).
void b1_direct_conv_rows__avx512vpopcntdq(const struct b1_direct_params* p, size_t o0, size_t o1,
                                          size_t r0, size_t r1);
// Rows [r0, r1) of x (c x h x w f32) into the planes above (interior at row pad_h, column pad_w;
// the border is left as it is): bit 1 where x >= threshold[channel] (threshold 0 if it is NULL).
// The words are laid out as `layout` says (ldh: B1_PLANES_32_STRIDE2's odd-column start).
void b1_binarize_planes__avx512(const float* x, size_t c, size_t h, size_t w, size_t r0, size_t r1,
                                uint32_t* plane, size_t plane_stride, size_t ldp, size_t pad_h,
                                size_t pad_w, enum b1_plane_layout layout, size_t ldh,
                                const float* threshold);

}  // namespace eo
