// AVX-512 VNNI int8 depthwise micro-kernel (ukernels.h): per pixel, 64 channels and four taps per
// step. The four taps' 64 input bytes are transposed in registers (unpack bytes, then words, within
// each 128-bit lane) into per-channel dwords of four taps, so one vpdpbusd does 64 multiply-adds
// against weights stored in that order; the four accumulators' requantized bytes are transposed
// back (unpack dwords, then qwords) into channel order for one store. Channels past the last
// whole 64 run 16 at a time (dwconv_avx512.h): a partly empty 64-block measured slower.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-conv2d/dwconv_avx512.h"
#include "qs8-conv2d/ukernels.h"
#include "qs8-gemm/requantize_avx512.h"

namespace eo {

void qs8_dwconv_ukernel__avx512vnni(size_t channels, size_t npix, size_t ntaps,
                                    const uint8_t* const* taps, const struct qs8_dwconv_params* p,
                                    uint8_t* y, size_t y_stride) {
  const size_t ngroups = (ntaps + 3) / 4;
  const size_t whole = channels / 64 * 64;
  for (size_t c0 = whole; c0 < channels; c0 += 16)
    qs8_dwconv16_avx512(c0, channels - c0 < 16 ? channels - c0 : 16, npix, ntaps, taps, p, y, y_stride);
  for (size_t c0 = 0, b = 0; c0 < whole; c0 += 64, ++b) {
    struct qs8_requant16 r[4];
    __m512i adj[4];
    for (int k = 0; k < 4; ++k) {
      r[k] = qs8_dwconv_requant16(p, p->scale_p + (4 * b + (size_t)k) * 16);
      adj[k] = _mm512_loadu_si512(p->adj_p + (4 * b + (size_t)k) * 16);
    }
    const int8_t* wb = p->w8 + b * ngroups * 256;
    for (size_t px = 0; px < npix; ++px) {
      const uint8_t* const* tp = taps + px * ntaps;
      __m512i acc0 = adj[0], acc1 = adj[1], acc2 = adj[2], acc3 = adj[3];
      for (size_t g = 0; g < ngroups; ++g) {
        const uint8_t* row[4];
        for (size_t i = 0; i < 4; ++i) row[i] = 4 * g + i < ntaps ? tp[4 * g + i] + c0 : p->zero_row;
        const __m512i r0 = _mm512_loadu_si512(row[0]), r1 = _mm512_loadu_si512(row[1]);
        const __m512i r2 = _mm512_loadu_si512(row[2]), r3 = _mm512_loadu_si512(row[3]);
        const __m512i lo01 = _mm512_unpacklo_epi8(r0, r1), hi01 = _mm512_unpackhi_epi8(r0, r1);
        const __m512i lo23 = _mm512_unpacklo_epi8(r2, r3), hi23 = _mm512_unpackhi_epi8(r2, r3);
        const int8_t* wg = wb + g * 256;
        acc0 = _mm512_dpbusd_epi32(acc0, _mm512_unpacklo_epi16(lo01, lo23), _mm512_loadu_si512(wg));
        acc1 = _mm512_dpbusd_epi32(acc1, _mm512_unpackhi_epi16(lo01, lo23), _mm512_loadu_si512(wg + 64));
        acc2 = _mm512_dpbusd_epi32(acc2, _mm512_unpacklo_epi16(hi01, hi23), _mm512_loadu_si512(wg + 128));
        acc3 = _mm512_dpbusd_epi32(acc3, _mm512_unpackhi_epi16(hi01, hi23), _mm512_loadu_si512(wg + 192));
      }
      // accumulator k, dword 4 L + j: channel 16 L + 4 k + j; output lane L is dword L of each
      const __m128i b0 = qs8_requant16_bytes(&r[0], acc0), b1 = qs8_requant16_bytes(&r[1], acc1);
      const __m128i b2 = qs8_requant16_bytes(&r[2], acc2), b3 = qs8_requant16_bytes(&r[3], acc3);
      const __m128i t01l = _mm_unpacklo_epi32(b0, b1), t01h = _mm_unpackhi_epi32(b0, b1);
      const __m128i t23l = _mm_unpacklo_epi32(b2, b3), t23h = _mm_unpackhi_epi32(b2, b3);
      __m512i out = _mm512_castsi128_si512(_mm_unpacklo_epi64(t01l, t23l));
      out = _mm512_inserti32x4(out, _mm_unpackhi_epi64(t01l, t23l), 1);
      out = _mm512_inserti32x4(out, _mm_unpacklo_epi64(t01h, t23h), 2);
      out = _mm512_inserti32x4(out, _mm_unpackhi_epi64(t01h, t23h), 3);
      _mm512_storeu_si512(y + px * y_stride + c0, out);
    }
  }
}

}  // namespace eo
