#include "f32-gemm/conv.h"

#include <algorithm>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "f32-conv2d/im2col.h"

namespace eo::rt {
namespace {

constexpr int64_t kL2ChunkBytes = 192 * 1024;  // a column chunk of packed col stays in L2

// C (rows [p0, p1) panels x columns of B-chunk panels [q0, q1)) = A B, every depth block.
void gemm_panels(const F32GemmUkernel& uk, const PanelView& A, int64_t M, int64_t p0, int64_t p1,
                 const PackedB& L, const float* pb, int64_t q0, int64_t q1, float* C, int64_t ldc) {
  const int64_t mr = uk.mr, nr = uk.nr;
  for (int64_t q = q0; q < q1; ++q) {
    const size_t cols = static_cast<size_t>(std::min(nr, L.N - q * nr));
    for (int64_t k0 = 0; k0 < L.K; k0 += L.kc) {
      const int64_t kcb = std::min(L.kc, L.K - k0);
      const float* pbq = pb + k0 * L.npad + q * kcb * nr;
      for (int64_t p = p0; p < p1; ++p) {
        const size_t rows = static_cast<size_t>(std::min(mr, M - p * mr));
        uk.fn(rows, cols, static_cast<size_t>(kcb), A.at(k0, kcb, p), pbq, C + p * mr * ldc + q * nr,
              static_cast<size_t>(ldc), k0 > 0 ? 1 : 0);
      }
    }
  }
}

// Columns [j0, j0 + L.N) of col_g (packed with layout L) into pb.
void build_col(const F32ConvLayer& cl, const float* x, const float* xp, int64_t j0, const PackedB& L, float* pb) {
  if (cl.pointwise) pack_b(L, row_major(x + j0, cl.P), pb);
  else im2col_packed(cl.s, xp, cl.Cg, j0, L, pb);
}

PackedB layout(const F32ConvLayer& cl, const F32GemmUkernel& uk, int64_t cols) {
  return {cl.Kg, cols, packed_kc(cl.Kg), uk.nr, round_up(cols, uk.nr)};
}

// One image on this thread, from per-thread scratch (never waits on a parallel loop). For each
// column chunk (~64 KB of col, L1/L2), stored-dtype weights are widened a block of row panels
// at a time right before use, so neither the col chunk nor the widened block leaves cache.
void image_serial(const F32ConvLayer& cl, const F32ConvCall& call, int64_t n, Isa isa, const F32GemmUkernel& uk,
                  const std::vector<PackedWeights>& W) {
  const int64_t chunk = uk.nr * std::max<int64_t>(1, 16384 / (cl.Kg * uk.nr));
  for (int64_t g = 0; g < cl.G; ++g) {
    const PackedWeights& Wg = W[g];
    const int64_t Mp = Wg.panels();
    const int64_t step = Wg.dtype == WDtype::f32 ? Mp : std::max<int64_t>(1, 16384 / (uk.mr * cl.Kg));
    float* abuf = Wg.dtype == WDtype::f32
                      ? nullptr
                      : scratch_f32(weight_panels_scratch(Wg, 0, std::min(Mp, step)), kScratchRtA);
    const float* x = cl.xg(call, n, g);
    float* xp = nullptr;
    if (!cl.pointwise) {
      xp = scratch_f32(cl.Cg * (cl.s.H + 2 * cl.s.ph) * (cl.s.W + 2 * cl.s.pw), kScratchRtPad);
      pad_planes(cl.s, x, cl.Cg, xp);
    }
    float* pb = scratch_f32(cl.Kg * chunk, kScratchRtCol);
    float* y = cl.yg(call, n, g);
    const float* r = cl.rg(call, n, g);
    const Epilogue ep = cl.epilogue(g);
    for (int64_t j0 = 0; j0 < cl.P; j0 += chunk) {
      const PackedB L = layout(cl, uk, std::min(chunk, cl.P - j0));
      build_col(cl, x, xp, j0, L, pb);
      for (int64_t b0 = 0; b0 < Mp; b0 += step) {
        const int64_t b1 = std::min(Mp, b0 + step);
        const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
        gemm_panels(uk, A, cl.Mg, b0, b1, L, pb, 0, L.npad / uk.nr, y + j0, cl.P);
        apply_epilogue(ep, y, r, cl.P, b0 * uk.mr, std::min(b1 * uk.mr, cl.Mg), j0, j0 + L.N);
      }
    }
  }
}

// One image split over threads: col in parallel chunks into the workspace, then (row block x
// column chunk) tasks.
void image_split(const F32ConvLayer& cl, const F32ConvCall& call, int64_t n, Isa isa, const F32GemmUkernel& uk,
                 const std::vector<PackedWeights>& W, int threads) {
  const int64_t nr = uk.nr, Np = ceil_div(cl.P, nr);
  const int64_t max_chunk_panels = std::max<int64_t>(1, kL2ChunkBytes / (4 * cl.Kg * nr));
  float* xp = reinterpret_cast<float*>(call.workspace);
  float* col = xp + (cl.pointwise ? 0 : round_up(cl.Cg * (cl.s.H + 2 * cl.s.ph) * (cl.s.W + 2 * cl.s.pw), 16));
  for (int64_t g = 0; g < cl.G; ++g) {
    const PackedWeights& Wg = W[g];
    const int64_t Mp = Wg.panels();
    const int64_t mb = std::min<int64_t>(Mp, 2 * threads);
    const int64_t nb = std::min(Np, std::max(ceil_div(Np, max_chunk_panels), ceil_div(2 * threads, mb)));
    const float* x = cl.xg(call, n, g);
    if (!cl.pointwise) pad_planes(cl.s, x, cl.Cg, xp);
    // Chunk c covers column panels [Np*c/nb, Np*(c+1)/nb); its packed block starts at
    // Kg * nr * (first panel), so the chunks tile `col` without gaps.
    auto chunk_range = [&](int64_t c, int64_t* q0, int64_t* q1) {
      *q0 = Np * c / nb;
      *q1 = Np * (c + 1) / nb;
    };
    parallel_for(nb, 1, [&](int64_t c0, int64_t c1) {
      for (int64_t c = c0; c < c1; ++c) {
        int64_t q0, q1;
        chunk_range(c, &q0, &q1);
        const PackedB L = layout(cl, uk, std::min(q1 * nr, cl.P) - q0 * nr);
        build_col(cl, x, xp, q0 * nr, L, col + cl.Kg * nr * q0);
      }
    });
    float* y = cl.yg(call, n, g);
    const float* r = cl.rg(call, n, g);
    const Epilogue ep = cl.epilogue(g);
    parallel_for(mb * nb, 1, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t mi = t / nb, c = t % nb;
        const int64_t p0 = Mp * mi / mb, p1 = Mp * (mi + 1) / mb;
        if (p0 == p1) continue;
        int64_t q0, q1;
        chunk_range(c, &q0, &q1);
        const PackedB L = layout(cl, uk, std::min(q1 * nr, cl.P) - q0 * nr);
        // Stored-dtype weights are widened a few panels at a time (~64 KB), used while still
        // in L1/L2, then the next ones: no pass over a large widened copy.
        const int64_t step = Wg.dtype == WDtype::f32 ? p1 - p0
                                                    : std::max<int64_t>(1, 16384 / (uk.mr * cl.Kg));
        float* abuf = Wg.dtype == WDtype::f32
                          ? nullptr
                          : scratch_f32(weight_panels_scratch(Wg, p0, std::min(p1, p0 + step)), kScratchRtA);
        for (int64_t b0 = p0; b0 < p1; b0 += step) {
          const int64_t b1 = std::min(p1, b0 + step);
          const PanelView A = weight_panels(Wg, b0, b1, abuf, isa);
          gemm_panels(uk, A, cl.Mg, b0, b1, L, col + cl.Kg * nr * q0, 0, q1 - q0, y + q0 * nr, cl.P);
          apply_epilogue(ep, y, r, cl.P, b0 * uk.mr, std::min(b1 * uk.mr, cl.Mg), q0 * nr, q0 * nr + L.N);
        }
      }
    });
  }
}

}  // namespace

size_t f32_gemm_conv_workspace_bytes(const F32ConvLayer& cl) {
  // Split-image mode: padded planes + the whole packed col of one group (widest nr: 32).
  const int64_t pad = cl.pointwise ? 0 : round_up(cl.Cg * (cl.s.H + 2 * cl.s.ph) * (cl.s.W + 2 * cl.s.pw), 16);
  return static_cast<size_t>((pad + cl.Kg * round_up(cl.P, 32)) * 4);
}

void f32_gemm_conv_run(const F32ConvLayer& cl, Isa isa, const std::vector<PackedWeights>& W, const F32ConvCall& call) {
  const F32GemmUkernel& uk = f32_gemm_ukernel_for(isa);
  const int64_t N = call.batch;
  const int threads = get_num_threads();
  if (N >= threads) {
    parallel_for(N, 1, [&](int64_t b, int64_t e) {
      for (int64_t n = b; n < e; ++n) image_serial(cl, call, n, isa, uk, W);
    });
  } else {
    for (int64_t n = 0; n < N; ++n) image_split(cl, call, n, isa, uk, W, threads);
  }
}

}  // namespace eo::rt
