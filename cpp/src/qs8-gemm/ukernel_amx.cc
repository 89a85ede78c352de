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
//
// 4-bit weights (c4x2): each 32-column block is widened into the caller's scratch as c4 panels of
// 16 * w (qs8_widen4_avx512; the accumulators shift back by 4 before the bias; past K = 65536,
// where 16 * w could overflow, as plain int8), whole (the next block during the current one's first
// row block) or, for one row block, a 64-deep k-block at a time one block ahead of the tiles that
// load it; then the same tiles.
#include <immintrin.h>
#include <stdint.h>

#include "qs8-gemm/requantize_avx512.h"
#include "qs8-gemm/ukernels.h"
#include "qs8-gemm/widen_avx512.h"

// GCC 12 flags the _mm512_undefined_*() pass-through inside the requantization intrinsics once they
// inline (the known false positive the VNNI kernels also silence).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

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

// The tile configuration, loaded for the duration of one kernel call and released after it.
struct Tiles {
  Tiles() {
    TileConfig cfg;
    __builtin_memset(&cfg, 0, sizeof cfg);
    cfg.palette_id = 1;
    for (int t = 0; t < 8; ++t) {
      cfg.rows[t] = 16;
      cfg.colsb[t] = 64;
    }
    // GCC's _tile_loadconfig declares a read of 8 bytes only: without this barrier the stores to
    // the rows and column widths may be dropped as dead (they were, in a smaller function).
    __asm__ volatile("" ::: "memory");
    _tile_loadconfig(&cfg);
  }
  ~Tiles() { _tile_release(); }
};

// Per-call buffers: the C block's accumulators and the zero-padded partial A blocks.
struct Buffers {
  alignas(64) int32_t c[32 * 32];
  alignas(64) uint8_t a[2][16 * 64];
};

// The weight tiles of a 32-column block: c4 panels in memory (8-bit, or 4-bit widened whole),
// tile(kb, q) the 16 x 64-byte tile of panel q (columns 16q..) at k-block kb.
struct Panels {
  const int8_t* p0;
  size_t panel_stride;
  void prime() const {}
  void prepare(size_t) const {}
  const int8_t* tile(size_t kb, size_t q) const { return p0 + q * panel_stride + kb * 1024; }
};

// One 64-deep k-block (8 pairs of k-groups, 512 packed bytes per panel) of np 4-bit panels at pb
// widened to out (panel stride out_stride).
inline void widen_kblock(const int8_t* pb, size_t panel_stride, size_t np, size_t kb, int8_t* out,
                         size_t out_stride, bool x16) {
  qs8_widen4_avx512(pb + kb * 512, panel_stride, np, 8, out, out_stride, x16);
}

// Panels widened whole into scratch, plus (when next_pb is set) the next column block's 4-bit
// panels widened k-block by k-block into the other scratch slot while these tiles multiply: the
// first row block's pass widens all of it, so the next block starts ready.
struct PanelsAhead {
  Panels cur;
  const int8_t* next_pb;  // or null: nothing to widen
  size_t panel_stride, np, out_stride;
  int8_t* next_out;
  bool x16;
  void prime() const {}
  void prepare(size_t kb) const {
    if (next_pb) widen_kblock(next_pb, panel_stride, np, kb, next_out + kb * 1024, out_stride, x16);
  }
  const int8_t* tile(size_t kb, size_t q) const { return cur.tile(kb, q); }
};

// 4-bit panels widened (to 16 * w) one k-block at a time into a two-slot ring, one block ahead:
// while k-block kb's tiles multiply, the vector units widen kb + 1 (widened just before its own
// loads, the stores and the tile products took turns). For blocks of at most 32 rows, which read
// each weight once.
struct WidenedPanels {
  const int8_t* p0;
  size_t panel_stride, np;
  int8_t* ring;  // 2 slots x 2 panels x 1 KiB
  size_t kblocks;
  void widen(size_t kb) const { widen_kblock(p0, panel_stride, np, kb, ring + (kb & 1) * 2048, 1024, true); }
  void prime() const { widen(0); }
  void prepare(size_t kb) const {
    if (kb + 1 < kblocks) widen(kb + 1);
  }
  const int8_t* tile(size_t kb, size_t q) const { return ring + (kb & 1) * 2048 + q * 1024; }
};

// C rows [0, mc) x columns [0, nc) (mc, nc <= 32) from A (row stride lda) and the weight tiles w
// (panel 1, columns 16-31, read only when nc > 16), columns j0.. of the parameters; shift 4 for
// weights of 16 * w (the accumulators are 16 times the sums).
template <class W>
inline void block(size_t mc, size_t nc, size_t k, const uint8_t* a, size_t lda, const W& w,
                  const struct qs8_gemm_params* p, size_t j0, uint8_t* c, size_t ldc, int shift,
                  Buffers& buf) {
  const size_t kblocks = (k + 63) / 64;
  const bool two_cols = nc > 16, two_rows = mc > 16;
  const uint8_t* a1 = a + 16 * lda;
  const size_t rows0 = mc < 16 ? mc : 16, rows1 = two_rows ? mc - 16 : 0;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  w.prime();
  for (size_t kb = 0; kb < kblocks; ++kb) {
    const size_t k0 = kb * 64, cols = k - k0 < 64 ? k - k0 : 64;
    // First every buffer the tiles below read: the partial A blocks and the weights' k-block.
    const bool whole0 = rows0 == 16 && cols == 64, whole1 = rows1 == 16 && cols == 64;
    if (!whole0) copy_a_block(a + k0, lda, rows0, cols, buf.a[0]);
    if (two_rows && !whole1) copy_a_block(a1 + k0, lda, rows1, cols, buf.a[1]);
    w.prepare(kb);
    // GCC's tile loads are asm statements that do not tell the compiler they read memory: this
    // barrier keeps the writes above (and the next k-blocks' ring writes) on their side of them.
    __asm__ volatile("" ::: "memory");
    _tile_loadd(4, whole0 ? a + k0 : buf.a[0], whole0 ? lda : 64);
    _tile_loadd(6, w.tile(kb, 0), 64);
    _tile_dpbusd(0, 4, 6);
    if (two_cols) {
      _tile_loadd(7, w.tile(kb, 1), 64);
      _tile_dpbusd(1, 4, 7);
    }
    if (two_rows) {
      _tile_loadd(5, whole1 ? a1 + k0 : buf.a[1], whole1 ? lda : 64);
      _tile_dpbusd(2, 5, 6);
      if (two_cols) _tile_dpbusd(3, 5, 7);
    }
    // And the next k-block's ring writes (to the slot these tiles came from two blocks ago, or,
    // widened one block ahead, the slot loaded just above) stay after these loads.
    __asm__ volatile("" ::: "memory");
  }
  _tile_stored(0, buf.c, 128);
  if (two_cols) _tile_stored(1, buf.c + 16, 128);
  if (two_rows) {
    _tile_stored(2, buf.c + 16 * 32, 128);
    if (two_cols) _tile_stored(3, buf.c + 16 * 32 + 16, 128);
  }
  for (size_t q = 0; q < (two_cols ? 2u : 1u); ++q) {
    const struct qs8_requant16 r = qs8_requant16_make(p->scale + j0 + 16 * q, p->out_zp, p->qmin, p->qmax);
    const __m512i adj = _mm512_loadu_si512(p->adj + j0 + 16 * q);
    const __mmask16 mask = qs8_store_mask(nc - 16 * q);
    for (size_t i = 0; i < mc; ++i) {
      const __m512i x = _mm512_add_epi32(_mm512_srai_epi32(_mm512_load_si512(buf.c + i * 32 + 16 * q), shift), adj);
      qs8_requant16_store(&r, x, c + i * ldc + 16 * q, mask);
    }
  }
}

}  // namespace

void qs8_gemm_ukernel_32x32c4__amx(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                   const int8_t* pb, size_t panel_stride,
                                   const struct qs8_gemm_params* p, uint8_t* c, size_t ldc) {
  const Tiles tiles;
  Buffers buf;
  // Rows outer: a 32-row block of A (32 x K bytes) stays in L1 while the contiguous 1 KiB tiles
  // of the packed weights stream past it (hardware prefetch friendly).
  for (size_t i0 = 0; i0 < m; i0 += 32)
    for (size_t j0 = 0; j0 < n; j0 += 32) {
      const Panels w{pb + (j0 / 16) * panel_stride, panel_stride};
      block(m - i0 < 32 ? m - i0 : 32, n - j0 < 32 ? n - j0 : 32, k, a + i0 * lda, lda, w, p, j0,
            c + i0 * ldc + j0, ldc, 0, buf);
    }
}

void qs8_gemm4_ukernel_32x32c4x2__amx(size_t m, size_t n, size_t k, const uint8_t* a, size_t lda,
                                      const int8_t* pb, size_t panel_stride,
                                      const struct qs8_gemm_params* p, uint8_t* c, size_t ldc,
                                      int8_t* scratch) {
  const Tiles tiles;
  Buffers buf;
  // Columns outer: each 32-column block is widened once (whole 64-deep tiles: the packed panels
  // are zero past K) and serves every row; as 16 * w where that is exact.
  const size_t kpairs = (k + 63) / 64 * 8, ps = kpairs * 128;
  const bool x16 = k <= kQs8MaxX16K;
  // One row block reads each weight once, so the block need not be widened whole: the ring, one
  // k-block ahead, brought mobilenet_v2's 4x4 1x1 convs to 0.97-1.01x the 8-bit time (from 1.1-1.3x
  // widened whole at 320-576 deep; Xeon, benchmarks/README.md twelfth session). Two row blocks
  // would widen every weight twice.
  const bool ring = m <= 32 && x16;
  for (size_t j0 = 0; j0 < n; j0 += 32, pb += 2 * panel_stride) {
    const size_t nc = n - j0 < 32 ? n - j0 : 32, np = nc > 16 ? 2 : 1;
    if (ring) {
      block(m, nc, k, a, lda, WidenedPanels{pb, panel_stride, np, scratch, (k + 63) / 64}, p, j0, c + j0,
            ldc, 4, buf);
      continue;
    }
    // Two slots of 2 panels: block j0 / 32 in slot (j0 / 32) & 1, the first one widened here and
    // each later one during the first row block of the block before it.
    int8_t* slot = scratch + ((j0 / 32) & 1) * 2 * ps;
    if (j0 == 0) qs8_widen4_avx512(pb, panel_stride, np, kpairs, slot, ps, x16);
    const size_t nn = n - j0 > 32 ? (n - j0 - 32 > 16 ? 2 : 1) : 0;  // panels of the next block
    for (size_t i0 = 0; i0 < m; i0 += 32) {
      const PanelsAhead w{{slot, ps}, i0 == 0 && nn ? pb + 2 * panel_stride : nullptr, panel_stride, nn, ps,
                          scratch + (((j0 / 32) + 1) & 1) * 2 * ps, x16};
      block(m - i0 < 32 ? m - i0 : 32, nc, k, a + i0 * lda, lda, w, p, j0, c + i0 * ldc + j0, ldc,
            x16 ? 4 : 0, buf);
    }
  }
}

}  // namespace eo
