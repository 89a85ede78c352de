#include "f32-conv2d/shifted_conv.h"

#include <algorithm>
#include <cstring>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"

namespace eo::rt {
namespace {

// d[0, Ws) = lo zeros, x[0], x[S], ..., x[(hi - lo - 1) * S], then zeros. Rows are short (8-64
// floats) and there are thousands per layer: vector moves and no library call (as plain loops, gcc
// turns the 1-3 zeros at each end into memset calls, ~2x slower per row).
template <int S>
inline void copy_row_padded(const float* __restrict x, float* __restrict d, int64_t lo, int64_t hi,
                            int64_t Ws) {
#if defined(__SSE2__)
  const __m128 zero = _mm_setzero_ps();
  int64_t k = 0;
  for (; k < lo; ++k) _mm_store_ss(d + k, zero);
  for (; k + 8 <= hi; k += 8) {
    const float* s = x + (k - lo) * S;
    if (S == 1) {
      _mm_storeu_ps(d + k, _mm_loadu_ps(s));
      _mm_storeu_ps(d + k + 4, _mm_loadu_ps(s + 4));
    } else {  // S == 2: the even elements of 16
      _mm_storeu_ps(d + k, _mm_shuffle_ps(_mm_loadu_ps(s), _mm_loadu_ps(s + 4), _MM_SHUFFLE(2, 0, 2, 0)));
      _mm_storeu_ps(d + k + 4, _mm_shuffle_ps(_mm_loadu_ps(s + 8), _mm_loadu_ps(s + 12), _MM_SHUFFLE(2, 0, 2, 0)));
    }
  }
  for (; k < hi; ++k) _mm_store_ss(d + k, _mm_load_ss(x + (k - lo) * S));
  for (; k < Ws; ++k) _mm_store_ss(d + k, zero);
#else
  for (int64_t k = 0; k < Ws; ++k) d[k] = k >= lo && k < hi ? x[(k - lo) * S] : 0.f;
#endif
}

inline void zero_rows(float* d, int64_t n) {
  if (n > 0) std::memset(d, 0, static_cast<size_t>(n) * 4);
}

// `rows` rows of Ws floats at d, row r from x + r * ldx with column stride sw (copy_row_padded).
inline void copy_rows_padded(const float* x, int64_t ldx, int64_t sw, float* d, int64_t rows,
                             int64_t lo, int64_t hi, int64_t Ws) {
  for (int64_t r = 0; r < rows; ++r, x += ldx, d += Ws) {
    if (sw == 1) copy_row_padded<1>(x, d, lo, hi, Ws);
    else if (sw == 2) copy_row_padded<2>(x, d, lo, hi, Ws);
    else for (int64_t k = 0; k < Ws; ++k) d[k] = k >= lo && k < hi ? x[(k - lo) * sw] : 0.f;
  }
}

}  // namespace

bool PhaseGeometry::of(const Conv2dShape& s, int64_t C, PhaseGeometry* gp) {
  PhaseGeometry& g = *gp;
  g.C = C; g.H = s.H; g.W = s.W; g.sh = s.sh; g.sw = s.sw;
  g.OH = s.OH(); g.OW = s.OW();
  for (int64_t i = 0; i < 64; ++i) g.rph[i] = g.cph[i] = -1;
  g.nr_ph = g.nc_ph = 0;
  int64_t& dr_min = g.dr_min;
  int64_t& dr_max = g.dr_max;
  int64_t dc_min = 0, dc_max = 0;
  for (int64_t kh = 0; kh < s.KH; ++kh) {
    const int64_t dr = floor_div(kh - s.ph, s.sh), pr = kh - s.ph - dr * s.sh;
    if (g.rph[pr] < 0) g.rph[pr] = g.nr_ph++;
    dr_min = kh ? std::min(dr_min, dr) : dr;
    dr_max = kh ? std::max(dr_max, dr) : dr;
  }
  for (int64_t kw = 0; kw < s.KW; ++kw) {
    const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
    if (g.cph[pc] < 0) g.cph[pc] = g.nc_ph++;
    dc_min = kw ? std::min(dc_min, dc) : dc;
    dc_max = kw ? std::max(dc_max, dc) : dc;
  }
  g.rtop = std::max<int64_t>(0, -dr_min);
  g.ctop = std::max<int64_t>(0, -dc_min);
  g.Hs = g.OH + dr_max + g.rtop;
  const int64_t wfull = g.OW + dc_max + g.ctop;  // every read in its own row
  g.Ws = wfull;
  for (int64_t ws = std::max<int64_t>(1, g.OW); ws < wfull; ++ws)
    if (pitch_ok(s, g, ws)) { g.Ws = ws; break; }
  for (int64_t pc = 0; pc < g.sw; ++pc) {  // iw = (col - ctop) * sw + pc in [0, W)
    int64_t lo = 0, hi;
    while (lo < g.Ws && (lo - g.ctop) * g.sw + pc < 0) ++lo;
    for (hi = lo; hi < g.Ws && (hi - g.ctop) * g.sw + pc < g.W; ++hi) {}
    g.col_lo[pc] = lo;
    g.col_hi[pc] = hi;
  }
  g.plane = g.Hs * g.Ws;
  g.P = g.OH * g.Ws;
  const int64_t nph = g.nr_ph * g.nc_ph;
  g.off.resize(static_cast<size_t>(C * s.KH * s.KW));
  int64_t max_off = 0;
  int32_t* o = g.off.data();
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kh = 0; kh < s.KH; ++kh)
      for (int64_t kw = 0; kw < s.KW; ++kw) {
        const int64_t dr = floor_div(kh - s.ph, s.sh), pr = kh - s.ph - dr * s.sh;
        const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
        const int64_t v = (c * nph + g.rph[pr] * g.nc_ph + g.cph[pc]) * g.plane +
                          (dr + g.rtop) * g.Ws + dc + g.ctop;
        max_off = std::max(max_off, v);
        *o++ = static_cast<int32_t>(v);
      }
  // The last column panel reads up to nr (<= 48) columns past P from the largest shift.
  g.size = std::max(C * nph * g.plane, max_off + round_up(g.P, 48));
  // Worth it unless the junk columns are a large share (e.g. 2x2 outputs of a 3x3 conv).
  return g.size < (int64_t(1) << 31) && g.P * 4 <= g.OH * g.OW * 5;
}

// A read past the row end (column cc >= Ws) is only allowed where the wanted input column is
// padding and the column it wraps to (next row) holds padding too.
bool PhaseGeometry::pitch_ok(const Conv2dShape& s, const PhaseGeometry& g, int64_t ws) {
  for (int64_t kw = 0; kw < s.KW; ++kw) {
    const int64_t dc = floor_div(kw - s.pw, s.sw), pc = kw - s.pw - dc * s.sw;
    for (int64_t ow = 0; ow < g.OW; ++ow) {
      const int64_t cc = ow + dc + g.ctop;
      if (cc < ws) continue;
      const int64_t iw = s.sw * ow + kw - s.pw, cc2 = cc - ws;
      const int64_t iw2 = (cc2 - g.ctop) * s.sw + pc;
      if ((iw >= 0 && iw < s.W) || cc2 >= ws || (iw2 >= 0 && iw2 < s.W)) return false;
    }
  }
  return true;
}

// Plane rows [R0, R1) of every channel and phase; the slack after the planes with the last rows.
void PhaseGeometry::fill_rows(const float* x, float* xq, int64_t R0, int64_t R1) const {
  const int64_t nph = nr_ph * nc_ph;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t pr = 0; pr < sh; ++pr) {
      if (rph[pr] < 0) continue;
      // Plane row R holds input row ih = (R - rtop) * sh + pr: rows [Ra, Rb) lie inside the image.
      const int64_t ih0 = pr - rtop * sh;
      const int64_t Ra = std::min(R1, std::max(R0, -floor_div(ih0, sh)));
      const int64_t Rb = std::max(Ra, std::min(R1, ceil_div(H - ih0, sh)));
      for (int64_t pc = 0; pc < sw; ++pc) {
        if (cph[pc] < 0) continue;
        const int64_t lo = col_lo[pc], hi = col_hi[pc];
        float* pl = xq + (c * nph + rph[pr] * nc_ph + cph[pc]) * plane;
        const float* xr = x + c * H * W + (ih0 + Ra * sh) * W + (lo - ctop) * sw + pc;
        zero_rows(pl + R0 * Ws, (Ra - R0) * Ws);
        copy_rows_padded(xr, sh * W, sw, pl + Ra * Ws, Rb - Ra, lo, hi, Ws);
        zero_rows(pl + Rb * Ws, (R1 - Rb) * Ws);
      }
    }
  if (R1 == Hs) zero_rows(xq + C * nph * plane, size - C * nph * plane);
}

namespace {

// The driver. Implicit GEMM over the phase planes (PhaseGeometry): per image and group, the planes are
// built once, then blocks of (row panels x column panels) of the wide output run the shifted
// micro-kernel over the whole depth into a wide buffer cw (M x Pw), q-major so that the few KB
// of planes a column panel reads stay in L1 while the weight panels go by; then the block's
// valid columns go through the epilogue into y, one call per output row (reading cw after the
// block is done avoids store-forwarding stalls on freshly stored tiles).
int64_t cw_ld(const PhaseGeometry& pg) { return round_up(pg.P, 48); }

// A single image is split into parts by output rows, or by output channels (row panels of 8)
// where the weights are much larger than the input (8x8 planes of 64 channels: each part then
// streams half of the weights, and reading all of a 16 KB input costs little).
// Layers under kShiftedSerialMacs (1x1/s2 shortcuts) run whole on the calling thread.
constexpr int64_t kShiftedSerialMacs = 50000;
bool split_channels(const F32ConvLayer& L) {
  return L.s.sh == 1 && L.s.sw == 1 && L.Mg * L.Kg > 2 * L.Cg * L.s.H * L.s.W;
}
int64_t shifted_parts(const F32ConvLayer& L, const PhaseGeometry& pg) {
  if (L.Mg * L.Kg * pg.P < kShiftedSerialMacs) return 1;
  const int64_t most = split_channels(L) ? ceil_div(L.Mg, 8) : std::max<int64_t>(1, pg.OH / 2);
  return std::min<int64_t>(std::min(get_num_threads(), 64), most);
}
// Per part: phase planes, wide output and widened weights, for rows round_up(Mg, mr) <= Mg + 7
// (every ISA's mr <= 8).
int64_t shifted_part_floats(const F32ConvLayer& L, const PhaseGeometry& pg) {
  return round_up(pg.size, 16) + round_up(L.Mg + 7, 16) * (cw_ld(pg) + (L.wdt == WDtype::f32 ? 0 : L.Kg));
}

// Row panels [p0, p1) x wide output columns [c0, c1), in column panels of nr from c0, then the
// block's epilogue.
void shifted_block(const F32ConvLayer& L, const PhaseGeometry& pg, const F32Conv2dUkernels& uk, const PanelView& A,
                   const float* xq, float* cw, int64_t p0, int64_t p1, int64_t c0, int64_t c1, float* y,
                   const float* res, const Epilogue& ep) {
  if (p0 >= p1 || c0 >= c1) return;
  const int64_t mr = uk.mr, nr = uk.nr, ld = cw_ld(pg), Ws = pg.Ws, OW = pg.OW;
  for (int64_t j0 = c0; j0 < c1; j0 += nr) {
    const int64_t n = std::min(nr, c1 - j0);
    for (int64_t p = p0; p < p1; ++p)
      uk.shifted(static_cast<size_t>(std::min(mr, L.Mg - p * mr)), static_cast<size_t>(n),
                 static_cast<size_t>(L.Kg), A.at(0, L.Kg, p), xq + j0, pg.off.data(), cw + p * mr * ld + j0,
                 static_cast<size_t>(ld), 0);
  }
  // Valid columns of the block: for each output row oh it covers, wide columns [a, b).
  const int64_t r0 = p0 * mr, rows = std::min(p1 * mr, L.Mg) - r0;
  for (int64_t oh = c0 / Ws; oh * Ws < c1; ++oh) {
    const int64_t a = std::max(c0, oh * Ws), b = std::min(c1, oh * Ws + OW);
    if (a >= b) continue;
    const int64_t yo = r0 * L.P + oh * OW + (a - oh * Ws);
    epilogue_tile(ep, cw + r0 * ld + a, ld, y + yo, res ? res + yo : nullptr, L.P, r0, rows, b - a);
  }
}

// Part t of `parts` of one image and group (parts == 1: all of it) with buffers xq (phase
// planes), cw (wide output) and abuf (f16 / s8 weights widened by this part, for the row panels
// it uses; null for f32).
void shifted_part(const F32ConvLayer& L, const PhaseGeometry& pg, const F32Conv2dUkernels& uk, Isa isa,
                  const PackedWeights& Wg, const float* x, float* y, const float* r, const Epilogue& ep,
                  int64_t t, int64_t parts, float* xq, float* cw, float* abuf) {
  const int64_t Mp = ceil_div(L.Mg, uk.mr);
  if (split_channels(L)) {  // whole planes, row panels [p0, p1)
    const int64_t p0 = Mp * t / parts, p1 = Mp * (t + 1) / parts;
    const PanelView A = weight_panels(Wg, p0, p1, abuf, isa);
    pg.fill(x, xq);
    shifted_block(L, pg, uk, A, xq, cw, p0, p1, 0, pg.P, y, r, ep);
    return;
  }
  // Output rows [oh0, oh1) read plane rows R0..R1 - 2, and row R1 - 1 too: a read past a row's
  // end wraps onto the next row's first (zero) column; past the last row of a plane, onto row 0
  // of the next plane. Reads of unfilled rows only reach junk columns (ow >= OW), which the
  // epilogue drops. With one part, [R0, R1) is every row.
  const PanelView A = weight_panels(Wg, 0, Mp, abuf, isa);
  const int64_t oh0 = pg.OH * t / parts, oh1 = pg.OH * (t + 1) / parts;
  const int64_t R0 = std::max<int64_t>(0, oh0 + pg.rtop + pg.dr_min);
  const int64_t R1 = std::min(pg.Hs, oh1 + pg.rtop + pg.dr_max + 1);
  pg.fill_rows(x, xq, R0, R1);
  if (R1 == pg.Hs && R0 > 0) pg.fill_rows(x, xq, 0, 1);
  shifted_block(L, pg, uk, A, xq, cw, 0, Mp, oh0 * pg.Ws, std::min(pg.P, oh1 * pg.Ws), y, r, ep);
}

}  // namespace

bool f32_shifted_conv_plan(const F32ConvLayer& L, PhaseGeometry* pg) {
  // 1x1/s1: f32-directconv, or the packed GEMM (faster than shifted there)
  return !L.depthwise && !L.pointwise && PhaseGeometry::of(L.s, L.Cg, pg);
}

size_t f32_shifted_conv_workspace_bytes(const F32ConvLayer& L, const PhaseGeometry& pg) {
  return static_cast<size_t>(shifted_parts(L, pg) * shifted_part_floats(L, pg) * 4);
}

void f32_shifted_conv_run(const F32ConvLayer& L, const PhaseGeometry& pg, Isa isa,
                          const std::vector<PackedWeights>& W, const F32ConvCall& c) {
  const F32Conv2dUkernels& uk = f32_conv2d_ukernels_for(isa);
  const int64_t N = c.batch;
  const int threads = get_num_threads();
  const int64_t Mp = ceil_div(L.Mg, uk.mr);
  const int64_t abuf_floats = L.wdt == WDtype::f32 ? 0 : Mp * uk.mr * L.Kg;
  const int64_t cw_floats = Mp * uk.mr * cw_ld(pg);
  if (N >= threads && threads > 1) {
    parallel_for(N, 1, [&](int64_t b, int64_t e) {
      float* xq = scratch_f32(static_cast<size_t>(pg.size), kScratchRtPad);
      float* cw = scratch_f32(static_cast<size_t>(cw_floats), kScratchRtCol);
      float* abuf = abuf_floats ? scratch_f32(static_cast<size_t>(abuf_floats), kScratchRtA) : nullptr;
      for (int64_t n = b; n < e; ++n)
        for (int64_t g = 0; g < L.G; ++g)
          shifted_part(L, pg, uk, isa, W[g], L.xg(c, n, g), L.yg(c, n, g), L.rg(c, n, g), L.epilogue(g), 0, 1,
                       xq, cw, abuf);
    });
    return;
  }
  // Fewer images than threads: each image is split into parts, the same split in every layer
  // and on the same threads (parallel_parts), so a part reads mostly rows that the same thread
  // wrote in the previous layer, from its own core's cache (reading them from the other core's
  // made each part ~20 % slower in isolation, up to 2x inside the engine). Each part fills the
  // phase-plane rows it reads into its own buffer, so the parts never wait on each other.
  const int64_t parts = shifted_parts(L, pg);
  float* wsp = reinterpret_cast<float*>(c.workspace);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t g = 0; g < L.G; ++g) {
      const float* x = L.xg(c, n, g);
      float* y = L.yg(c, n, g);
      const float* r = L.rg(c, n, g);
      const Epilogue ep = L.epilogue(g);
      parallel_parts(static_cast<int>(parts), [&](int t) {
        float* xq = wsp + t * shifted_part_floats(L, pg);
        float* cw = xq + round_up(pg.size, 16);
        shifted_part(L, pg, uk, isa, W[g], x, y, r, ep, t, parts, xq, cw, abuf_floats ? cw + cw_floats : nullptr);
      });
    }
}

}  // namespace eo::rt
