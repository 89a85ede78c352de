#include "f32-gemm/gemm.h"

#include <algorithm>
#include <cstring>

#include "common/parallel.h"
#include "common/scratch.h"
#include "isa/dispatch.h"

namespace eo {
namespace {

constexpr int64_t kKC = 256;   // depth of a packed block: KC x NR x 4 B of B fits L1 with room
constexpr int64_t kNC = 1024;  // columns of a packed B block: KC x NC x 4 B = 1 MiB of L2
constexpr int64_t kMC = 480;   // rows of a packed A block (a multiple of every MR)

// pa[p*kc*mr + k*mr + i] = A(i0 + p*mr + i, k0 + k), zero past row M.
void pack_a(MatRef A, int64_t i0, int64_t mc, int64_t k0, int64_t kc, int mr, float* pa) {
  for (int64_t p = 0; p < mc; p += mr, pa += kc * mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - p);
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

// pb[q*kc*nr + k*nr + j] = B(k0 + k, j0 + q*nr + j), zero past column N.
void pack_b(MatRef B, int64_t k0, int64_t kc, int64_t j0, int64_t nc, int nr, float* pb) {
  for (int64_t q = 0; q < nc; q += nr, pb += kc * nr) {
    const int64_t cols = std::min<int64_t>(nr, nc - q);
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

// One (mc x nc) block of C over the whole depth K. Uses this thread's scratch only.
void gemm_block(const F32GemmUkernel& uk, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
                bool accumulate, int64_t i0, int64_t mc, int64_t j0, int64_t nc) {
  const int mr = uk.mr, nr = uk.nr;
  const int64_t mc_pad = (mc + mr - 1) / mr * mr, nc_pad = (nc + nr - 1) / nr * nr;
  const int64_t kc_max = std::min(K, kKC);
  float* pa = scratch_f32(mc_pad * kc_max, 0);
  float* pb = scratch_f32(nc_pad * kc_max, 1);
  alignas(64) float tile[12 * 32];  // >= every mr * nr
  for (int64_t k0 = 0; k0 < K; k0 += kKC) {
    const int64_t kc = std::min(kKC, K - k0);
    const int acc = (accumulate || k0 > 0) ? 1 : 0;
    pack_b(B, k0, kc, j0, nc, nr, pb);
    pack_a(A, i0, mc, k0, kc, mr, pa);
    for (int64_t q = 0; q < nc; q += nr) {
      const float* pbq = pb + (q / nr) * kc * nr;
      const int64_t cols = std::min<int64_t>(nr, nc - q);
      for (int64_t p = 0; p < mc; p += mr) {
        const float* pap = pa + (p / mr) * kc * mr;
        const int64_t rows = std::min<int64_t>(mr, mc - p);
        float* c = C + (i0 + p) * ldc + (j0 + q);
        if (rows == mr && cols == nr) {
          uk.fn(kc, pap, pbq, c, ldc, acc);
        } else {  // edge tile: compute into a full tile, then copy the valid part
          uk.fn(kc, pap, pbq, tile, nr, 0);
          for (int64_t i = 0; i < rows; ++i)
            for (int64_t j = 0; j < cols; ++j)
              c[i * ldc + j] = acc ? c[i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
        }
      }
    }
  }
}

}  // namespace

void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate, bool parallel) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    if (!accumulate)
      for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, N * sizeof(float));
    return;
  }
  const F32GemmUkernel& uk = f32_gemm_ukernel();
  int64_t nc = kNC, mc = kMC;
  const int threads = parallel ? get_num_threads() : 1;
  if (threads > 1) {
    // Enough blocks to keep every thread busy: split N first (B packing is the cheaper side).
    const int64_t want = 2 * threads;
    const int64_t mblocks = (M + mc - 1) / mc;
    if (mblocks < want) {
      const int64_t per = (N + (want / mblocks) - 1) / (want / mblocks);
      nc = std::max<int64_t>(uk.nr, std::min(kNC, (per + uk.nr - 1) / uk.nr * uk.nr));
    }
  }
  const int64_t nb = (N + nc - 1) / nc, mb = (M + mc - 1) / mc;
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
