// AMX-int8 GEMM: 32 x 32 blocks of C as 2 x 2 tiles of 16 x 16 int32, accumulated by TDPBUSD.
//
// Tiles: 0-3 accumulators C(r, q), 4-5 activations (16 rows x 64 k-bytes, loaded in place from A
// with stride lda), 6-7 weights (16 k-groups x 16 columns x 4 bytes = 16 rows of the c4 panel,
// stride 64: the packed layout is already the VNNI-4 interleave TDPBUSD wants). Per 64-deep step:
// 4 tile loads and 4 TDPBUSD of 16 x 16 x 64 MACs. TDPBUSD accumulates u8 x s8 products into int32
// without saturation, so the result is exact modulo 2^32 like the other paths. Partial row tiles
// and the last partial k-block of A are copied into a zero-padded 16 x 64 buffer (never read past A).
// The tile configuration is loaded once per call and released at the end. The caller must have
// obtained the OS permission for tile data (isa.cc: cpu_has_amx_int8).
#include <immintrin.h>
#include <stdint.h>

#include "qs8-gemm/requantize_avx512.h"
#include "qs8-gemm/ukernels.h"

namespace eo {
namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id;
  uint8_t start_row;
  uint8_t reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

// Rows [0, rows) and bytes [0, cols) of A into a 16 x 64 buffer, zero elsewhere.
inline void copy_a_block(const uint8_t* a, size_t lda, size_t rows, size_t cols, uint8_t* buf) {
  for (size_t i = 0; i < 16; ++i) {
    const size_t len = i < rows ? cols : 0;
    __builtin_memcpy(buf + i * 64, a + i * lda, len);
    __builtin_memset(buf + i * 64 + len, 0, 64 - len);
  }
}

}  // namespace

void qs8_gemm_ukernel_32x32c4__amx(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                   const int8_t* pb, size_t panel_stride,
                                   const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  TileConfig cfg;
  __builtin_memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  _tile_loadconfig(&cfg);
  alignas(64) int32_t cbuf[32 * 32];
  alignas(64) uint8_t abuf[2][16 * 64];
  const size_t kblocks = (k + 63) / 64;
  // Rows outer: a 32-row block of A (32 x K bytes) stays in L1 while the contiguous 1 KiB tiles
  // of the packed weights stream past it (hardware prefetch friendly).
  for (size_t i0 = 0; i0 < m; i0 += 32) {
    const size_t mc = m - i0 < 32 ? m - i0 : 32;
    for (size_t j0 = 0; j0 < n; j0 += 32) {
      const size_t nc = n - j0 < 32 ? n - j0 : 32;
      const bool two_cols = nc > 16;
      const int8_t* pb0 = pb + (j0 / 16) * panel_stride;
      const int8_t* pb1 = pb0 + panel_stride;
      const bool two_rows = mc > 16;
      const uint8_t* a0 = a + i0 * lda;
      const uint8_t* a1 = a0 + 16 * lda;
      const size_t rows0 = mc < 16 ? mc : 16, rows1 = two_rows ? mc - 16 : 0;
      _tile_zero(0);
      _tile_zero(1);
      _tile_zero(2);
      _tile_zero(3);
      for (size_t kb = 0; kb < kblocks; ++kb) {
        const size_t k0 = kb * 64, cols = k - k0 < 64 ? k - k0 : 64;
        if (rows0 == 16 && cols == 64) {
          _tile_loadd(4, a0 + k0, lda);
        } else {
          copy_a_block(a0 + k0, lda, rows0, cols, abuf[0]);
          _tile_loadd(4, abuf[0], 64);
        }
        _tile_loadd(6, pb0 + kb * 1024, 64);
        _tile_dpbusd(0, 4, 6);
        if (two_cols) {
          _tile_loadd(7, pb1 + kb * 1024, 64);
          _tile_dpbusd(1, 4, 7);
        }
        if (two_rows) {
          if (rows1 == 16 && cols == 64) {
            _tile_loadd(5, a1 + k0, lda);
          } else {
            copy_a_block(a1 + k0, lda, rows1, cols, abuf[1]);
            _tile_loadd(5, abuf[1], 64);
          }
          _tile_dpbusd(2, 5, 6);
          if (two_cols) _tile_dpbusd(3, 5, 7);
        }
      }
      _tile_stored(0, cbuf, 128);
      if (two_cols) _tile_stored(1, cbuf + 16, 128);
      if (two_rows) {
        _tile_stored(2, cbuf + 16 * 32, 128);
        if (two_cols) _tile_stored(3, cbuf + 16 * 32 + 16, 128);
      }
      for (size_t q = 0; q < (two_cols ? 2u : 1u); ++q) {
        const struct qs8_requant16 r = qs8_requant16_make(p->scale + j0 + 16 * q, p->out_zp, p->qmin, p->qmax);
        const __m512i adj = _mm512_loadu_si512(p->adj + j0 + 16 * q);
        const __mmask16 mask = qs8_store_mask(nc - 16 * q);
        for (size_t i = 0; i < mc; ++i) {
          const __m512i x = _mm512_add_epi32(_mm512_load_si512(cbuf + i * 32 + 16 * q), adj);
          qs8_requant16_store(&r, x, c + (i0 + i) * ldc + j0 + 16 * q, mask);
        }
      }
    }
  }
  _tile_release();
}

}  // namespace eo
