#include "qs8-gemm/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "common/int_math.h"
#include "common/parallel.h"
#include "common/scratch.h"

namespace eo {
namespace {


constexpr int64_t kBlock = 32;  // threads split C in multiples of every path's tile (4/8/32 x 16/32)

}  // namespace

Qs8PackedB qs8_pack_b(int64_t K, int64_t N, const int8_t* b, int64_t rs, int64_t cs, int bits) {
  if (bits != 8 && bits != 4) throw std::invalid_argument("qs8 pack: bits must be 8 or 4");
  Qs8PackedB p;
  p.K = K;
  p.N = N;
  p.bits = bits;
  p.kpad = round_up(std::max<int64_t>(K, 1), 64);
  p.npad = round_up(std::max<int64_t>(N, 1), 16);
  p.data.assign(size_t(p.npad / 16 * p.panel_stride()), 0);
  p.colsum.assign(N, 0);
  p.abssum.assign(N, 0);
  for (int64_t j = 0; j < N; ++j) {
    int8_t* panel = p.data.data() + (j / 16) * p.panel_stride() + (j % 16) * 4;
    for (int64_t k = 0; k < K; ++k) {
      const int8_t v = b[k * rs + j * cs];
      if (bits == 8) {
        panel[(k / 4) * 64 + k % 4] = v;
      } else {
        if (v < -8 || v > 7)
          throw std::invalid_argument("qs8 pack: a 4-bit weight must be in [-8, 7], got " + std::to_string(v));
        uint8_t& byte = reinterpret_cast<uint8_t&>(panel[(k / 8) * 64 + k % 4]);
        byte |= uint8_t((uint8_t(v) & 0x0F) << ((k / 4) % 2 ? 4 : 0));
      }
      p.colsum[j] += v;
      p.abssum[j] += std::abs(int(v));
    }
  }
  return p;
}

bool qs8_accumulator_fits(const Qs8PackedB& b, const int32_t* bias) {
  for (int64_t j = 0; j < b.N; ++j) {
    const int64_t bj = bias ? std::abs(int64_t(bias[j])) : 0;
    if (bj + 255 * b.abssum[j] > INT32_MAX) return false;
  }
  return true;
}

int8_t* qs8_gemm4_scratch(size_t bytes) {
  return reinterpret_cast<int8_t*>(scratch_f32((bytes + 3) / 4, kScratchQs8Wide));
}

void qs8_gemm(int64_t M, const uint8_t* a, int64_t lda, int32_t a_zp, const Qs8PackedB& b,
              const Qs8Requant& rq, uint8_t* c, int64_t ldc, Qs8Path path, bool parallel) {
  const int64_t N = b.N, K = b.K;
  if (M <= 0 || N <= 0) return;
  const Qs8GemmUkernel& uk = qs8_gemm_ukernel(path);
  // Per-call column parameters, padded to whole panels. adj folds the activation zero point into
  // the bias (modulo 2^32, like the kernels' accumulation).
  std::vector<int32_t> adj(b.npad, 0);
  std::vector<float> scale(b.npad, 0.0f);
  for (int64_t j = 0; j < N; ++j) {
    const uint32_t bias = rq.bias ? uint32_t(rq.bias[j]) : 0u;
    adj[j] = int32_t(bias - uint32_t(a_zp) * uint32_t(b.colsum[j]));
    scale[j] = rq.scale[j];
  }
  const qs8_gemm_params params{adj.data(), scale.data(), rq.out_zp, rq.qmin, rq.qmax};
  const size_t ps = static_cast<size_t>(b.panel_stride());
  auto run = [&](int64_t i0, int64_t i1, int64_t j0, int64_t j1) {
    qs8_gemm_params pj = params;
    pj.adj += j0;
    pj.scale += j0;
    if (b.bits == 4) {  // scratch: written by the kernel before it is read
      int8_t* scratch = qs8_gemm4_scratch(qs8_gemm4_scratch_bytes(size_t(K)));
      uk.fn4(size_t(i1 - i0), size_t(j1 - j0), size_t(K), a + i0 * lda, size_t(lda),
             b.data.data() + (j0 / 16) * ps, ps, &pj, c + i0 * ldc + j0, size_t(ldc), scratch);
    } else {
      uk.fn(size_t(i1 - i0), size_t(j1 - j0), size_t(K), a + i0 * lda, size_t(lda),
            b.data.data() + (j0 / 16) * ps, ps, &pj, c + i0 * ldc + j0, size_t(ldc));
    }
  };
  const int threads = parallel ? get_num_threads() : 1;
  const int64_t mb = ceil_div(M, kBlock), nb = ceil_div(N, kBlock);
  // Small products are not worth waking a second thread.
  if (threads <= 1 || mb * nb < 2 || M * N * std::max<int64_t>(K, 1) < (int64_t(1) << 18)) {
    run(0, M, 0, N);
    return;
  }
  // Each thread owns a contiguous range of row blocks (or column blocks if there are more of
  // those): outputs are disjoint, results do not depend on the split.
  if (mb >= nb) {
    parallel_chunks(mb, static_cast<int>(std::min<int64_t>(mb, threads)), [&](int, int64_t b0, int64_t b1) {
      run(b0 * kBlock, std::min(M, b1 * kBlock), 0, N);
    });
  } else {
    parallel_chunks(nb, static_cast<int>(std::min<int64_t>(nb, threads)), [&](int, int64_t b0, int64_t b1) {
      run(0, M, b0 * kBlock, std::min(N, b1 * kBlock));
    });
  }
}

}  // namespace eo
