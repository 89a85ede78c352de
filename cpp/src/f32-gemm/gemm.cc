#include "f32-gemm/gemm.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

constexpr int64_t kKC = 320;   // max depth of a packed block: KC x NR x 4 B of B fits L1 with room
constexpr int64_t kNC = 1024;  // columns of a packed B block: KC x NC x 4 B = 1.25 MiB of L2
// Rows of a packed A block (a multiple of every MR). At least 512, so a 512-row A (MobileNet's
// 512-channel 1x1 convs) is one block and threads split its columns instead of each packing all
// of B: 512 x 1024 x 512 at 2 threads 2.56 -> 2.47 ms (480 before; VGG / ResNet shapes level).
constexpr int64_t kMC = 516;


// Depth planes are packed only with a unit stride inside a plane (gemm.h).
void check_planes(const MatRef& M, int64_t stride, const char* what) {
  if (M.kp && stride != 1)
    throw std::invalid_argument(std::string("sgemm: ") + what + " has depth planes with a non-unit stride inside them");
}

// pa[p*kc*mr + k*mr + i] = A(i0 + p*mr + i, k0 + k), zero past row i0 + mc.
void pack_a_block(f32_interleave_fn interleave, MatRef A, int64_t i0, int64_t mc, int64_t k0,
                  int64_t kc, int64_t mr, float* pa) {
  for (int64_t p = 0; p < mc; p += mr, pa += kc * mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - p);
    if (A.cs == 1) {  // each row's k values are contiguous (per depth plane): a transpose per run
      for (int64_t k = k0; k < k0 + kc;) {
        const int64_t len = A.k_run(k, k0 + kc);
        interleave(static_cast<size_t>(rows), static_cast<size_t>(len), A.p + (i0 + p) * A.rs + A.k_offset(k, 1),
                   static_cast<size_t>(A.rs), static_cast<size_t>(mr), pa + (k - k0) * mr);
        k += len;
      }
      continue;
    }
    if (A.rs == 1) {  // A is stored transposed: the mr values of one k are contiguous
      const float* a = A.p + (i0 + p) + k0 * A.cs;
      for (int64_t k = 0; k < kc; ++k) {
        float* d = pa + k * mr;
        const float* s = a + k * A.cs;
        for (int64_t i = 0; i < rows; ++i) d[i] = s[i];
        for (int64_t i = rows; i < mr; ++i) d[i] = 0.f;
      }
      continue;
    }
    for (int64_t i = 0; i < mr; ++i) {
      if (i >= rows) {
        for (int64_t k = 0; k < kc; ++k) pa[k * mr + i] = 0.f;
        continue;
      }
      const float* a = A.p + (i0 + p + i) * A.rs + k0 * A.cs;
      for (int64_t k = 0; k < kc; ++k) pa[k * mr + i] = a[k * A.cs];
    }
  }
}

// pb[q*kc*nr + k*nr + j] = B(k0 + k, j0 + q*nr + j), zero past column j0 + nc.
void pack_b_block(f32_interleave_fn interleave, MatRef B, int64_t k0, int64_t kc, int64_t j0,
                  int64_t nc, int64_t nr, float* pb) {
  for (int64_t q = 0; q < nc; q += nr, pb += kc * nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - q);
    if (B.kp || (B.rs == 1 && B.cs != 1)) {  // each column's k values contiguous (per depth plane)
      for (int64_t k = k0; k < k0 + kc;) {
        const int64_t len = B.k_run(k, k0 + kc);
        interleave(static_cast<size_t>(cols), static_cast<size_t>(len), B.p + B.k_offset(k, 1) + (j0 + q) * B.cs,
                   static_cast<size_t>(B.cs), static_cast<size_t>(nr), pb + (k - k0) * nr);
        k += len;
      }
      continue;
    }
    const float* b = B.p + k0 * B.rs + (j0 + q) * B.cs;
    if (B.cs == 1) {
      for (int64_t k = 0; k < kc; ++k) {
        std::memcpy(pb + k * nr, b + k * B.rs, cols * sizeof(float));
        for (int64_t j = cols; j < nr; ++j) pb[k * nr + j] = 0.f;
      }
    } else {
      for (int64_t j = 0; j < nr; ++j) {
        if (j >= cols) {
          for (int64_t k = 0; k < kc; ++k) pb[k * nr + j] = 0.f;
          continue;
        }
        const float* bj = b + j * B.cs;
        for (int64_t k = 0; k < kc; ++k) pb[k * nr + j] = bj[k * B.rs];
      }
    }
  }
}

// C block (mc x nc at i0, j0) (+)= packed A block (mc_pad x kc) * packed B block (kc x nc_pad).
// Loop order: a B panel (L1) meets every A panel of the block (L2) before the next one loads.
void kernel_block(const F32GemmUkernel& uk, int64_t kc, const float* pa, int64_t mc,
                  const float* pb, int64_t nc, float* C, int64_t ldc, int acc) {
  const int64_t mr = uk.mr, nr = uk.nr;
  for (int64_t q = 0; q < nc; q += nr) {
    const float* pbq = pb + (q / nr) * kc * nr;
    const size_t cols = static_cast<size_t>(std::min(nr, nc - q));
    for (int64_t p = 0; p < mc; p += mr) {
      const size_t rows = static_cast<size_t>(std::min(mr, mc - p));
      uk.fn(rows, cols, kc, pa + (p / mr) * kc * mr, pbq, C + p * ldc + q, ldc, acc);
    }
  }
}

// One (mc x nc) block of C over the whole depth K. Uses this thread's scratch only.
void gemm_block(const F32GemmUkernel& uk, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
                bool accumulate, int64_t i0, int64_t mc, int64_t j0, int64_t nc) {
  const int64_t mr = uk.mr, nr = uk.nr;
  const int64_t kc_max = packed_kc(K);
  float* pa = scratch_f32(round_up(mc, mr) * kc_max, kScratchGemmA);
  float* pb = scratch_f32(round_up(nc, nr) * kc_max, kScratchGemmB);
  for (int64_t k0 = 0; k0 < K; k0 += kc_max) {
    const int64_t kc = std::min(kc_max, K - k0);
    pack_b_block(uk.interleave, B, k0, kc, j0, nc, nr, pb);
    pack_a_block(uk.interleave, A, i0, mc, k0, kc, mr, pa);
    kernel_block(uk, kc, pa, mc, pb, nc, C + i0 * ldc + j0, ldc, (accumulate || k0 > 0) ? 1 : 0);
  }
}

}  // namespace

int64_t packed_kc(int64_t K) {
  if (K <= kKC) return std::max<int64_t>(K, 1);
  return ceil_div(K, ceil_div(K, kKC));
}

PackedA packed_a_layout(int64_t M, int64_t K) {
  const int64_t mr = f32_gemm_ukernel().mr;
  return {M, K, packed_kc(K), mr, round_up(M, mr)};
}

PackedB packed_b_layout(int64_t K, int64_t N) {
  const int64_t nr = f32_gemm_ukernel().nr;
  return {K, N, packed_kc(K), nr, round_up(N, nr)};
}

// (Any ISA's interleave writes the same bytes, so the layout's ISA need not match the active one.)
void pack_a(const PackedA& L, MatRef A, float* pa) {
  check_planes(A, A.cs, "A");
  for (int64_t k0 = 0; k0 < L.K; k0 += L.kc)
    pack_a_block(f32_gemm_ukernel().interleave, A, 0, L.M, k0, std::min(L.kc, L.K - k0), L.mr,
                 pa + k0 * L.mpad);
}

void pack_b(const PackedB& L, MatRef B, float* pb) {
  check_planes(B, B.rs, "B");
  for (int64_t k0 = 0; k0 < L.K; k0 += L.kc)
    pack_b_block(f32_gemm_ukernel().interleave, B, k0, std::min(L.kc, L.K - k0), 0, L.N, L.nr,
                 pb + k0 * L.npad);
}

void sgemm_packed(const PackedA& LA, const float* pa, const PackedB& LB, const float* pb, float* C,
                  int64_t ldc, bool accumulate, bool parallel) {
  const F32GemmUkernel& uk = f32_gemm_ukernel();
  const int64_t M = LA.M, N = LB.N, K = LA.K;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  // Columns [q0, q1) of panels, whole depth: each task owns its columns of C, so no reduction.
  auto run = [&](int64_t q0, int64_t q1) {
    const int64_t j0 = q0 * uk.nr, nc = std::min(N, q1 * uk.nr) - j0;
    for (int64_t k0 = 0; k0 < K; k0 += LA.kc) {
      const int64_t kcb = std::min(LA.kc, K - k0);
      kernel_block(uk, kcb, pa + k0 * LA.mpad, M, pb + k0 * LB.npad + q0 * kcb * uk.nr, nc,
                   C + j0, ldc, (accumulate || k0 > 0) ? 1 : 0);
    }
  };
  const int64_t panels = LB.npad / uk.nr;
  const int threads = parallel ? get_num_threads() : 1;
  if (threads > 1 && panels > 1) {
    const int64_t chunks = std::min<int64_t>(panels, threads);
    parallel_chunks(panels, static_cast<int>(chunks),
                    [&](int, int64_t b, int64_t e) { run(b, e); });
  } else {
    run(0, panels);
  }
}

void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate, bool parallel) {
  check_planes(A, A.cs, "A");
  check_planes(B, B.rs, "B");
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  const F32GemmUkernel& uk = f32_gemm_ukernel();
  const int threads = parallel ? get_num_threads() : 1;
  int64_t mb = ceil_div(M, kMC), nb = ceil_div(N, kNC);
  if (threads > 1) {
    // Enough equal blocks that every thread gets the same share: split N further first (packing
    // B is the cheaper side), then M, until the block count is a multiple of the thread count.
    const int64_t max_nb = ceil_div(N, uk.nr), max_mb = ceil_div(M, uk.mr);
    for (int it = 0; it < 64 && (mb * nb < threads || (mb * nb) % threads != 0); ++it) {
      if (nb < max_nb && (ceil_div(N, nb + 1) >= 4 * uk.nr || mb >= max_mb)) ++nb;
      else if (mb < max_mb) ++mb;
      else break;
    }
  }
  const int64_t nc = round_up(ceil_div(N, nb), uk.nr), mc = round_up(ceil_div(M, mb), uk.mr);
  nb = ceil_div(N, nc);
  mb = ceil_div(M, mc);
  auto run = [&](int64_t t) {
    const int64_t bi = t / nb, bj = t % nb;
    const int64_t i0 = bi * mc, j0 = bj * nc;
    gemm_block(uk, K, A, B, C, ldc, accumulate, i0, std::min(mc, M - i0), j0, std::min(nc, N - j0));
  };
  if (threads > 1 && nb * mb > 1) {
    parallel_for(nb * mb, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) run(t);
    });
  } else {
    for (int64_t t = 0; t < nb * mb; ++t) run(t);
  }
}

}  // namespace eo
