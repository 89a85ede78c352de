#include "f32-gemm/gemm.h"

#include <stdexcept>
#include "harness.h"
#include "f32-gemm/ukernels.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "reference/reference.h"

using namespace eo;

// Edge sizes around every register tile (4x8, 6x16, 12x32) and the KC block (256).
static const int kSizes[] = {1, 2, 3, 5, 7, 11, 12, 13, 16, 17, 31, 32, 33, 65};

TEST(f32_gemm_matches_reference_on_every_isa_and_transpose) {
  std::mt19937 rng(1);
  const Isa saved = active_isa();
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    set_isa(static_cast<Isa>(isa));
    for (int M : kSizes)
      for (int N : kSizes)
        for (int K : {1, 7, 64, 300}) {
          if ((M * N * K) % 3 != 0 && M > 13 && N > 13) continue;  // keep the sweep quick
          for (int t = 0; t < 4; ++t) {
            const bool ta = t & 1, tb = t & 2;
            auto a = test::random_vec(size_t(M) * K, rng), b = test::random_vec(size_t(K) * N, rng);
            MatRef A = ta ? transposed(a.data(), M) : row_major(a.data(), K);
            MatRef B = tb ? transposed(b.data(), K) : row_major(b.data(), N);
            const int ldc = N + 3;  // C with padding: the kernel must not touch it
            auto c = test::random_vec(size_t(M) * ldc, rng), ref = c;
            const bool acc = (M + N + K + t) % 2;
            sgemm(M, N, K, A, B, c.data(), ldc, acc, (M + N) % 2);
            reference::sgemm(M, N, K, A, B, ref.data(), ldc, acc);
            test::expect_close(c.data(), ref.data(), c.size(), 1e-4f, 1e-4f * K,
                               std::string("gemm ") + isa_name(static_cast<Isa>(isa)) + " M=" +
                                   std::to_string(M) + " N=" + std::to_string(N) +
                                   " K=" + std::to_string(K) + " t=" + std::to_string(t));
          }
        }
  }
  set_isa(saved);
}

// Depth-plane views (a conv's NCHW tensors as GEMM operands whose depth is the batch's pixels)
// change only where packing reads: the product must equal, bit for bit, the same GEMM on the
// channel-major copies, on every ISA; and the reference, which reads the views itself. Planes
// that do not divide the depth blocks (P = 7, 9) split packing runs across blocks.
TEST(f32_gemm_depth_plane_views_match_channel_major_copies) {
  std::mt19937 rng(5);
  const Isa saved = active_isa();
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    set_isa(static_cast<Isa>(isa));
    for (int P : {1, 4, 7, 9, 16})
      for (int N : {1, 3, 51})
        for (auto [Cm, Cn] : {std::pair<int, int>{5, 13}, {33, 40}}) {
          // dW (Cm x Cn) = dY (Cm x NP) X^T (NP x Cn), dY and X as (N, C, P) planes
          const int K = N * P;
          auto dy = test::random_vec(size_t(N) * Cm * P, rng), x = test::random_vec(size_t(N) * Cn * P, rng);
          std::vector<float> dyt(dy.size()), xt(x.size());  // channel-major copies (C, N * P)
          for (int n = 0; n < N; ++n)
            for (int p = 0; p < P; ++p) {
              for (int c = 0; c < Cm; ++c) dyt[size_t(c) * K + n * P + p] = dy[(size_t(n) * Cm + c) * P + p];
              for (int c = 0; c < Cn; ++c) xt[size_t(c) * K + n * P + p] = x[(size_t(n) * Cn + c) * P + p];
            }
          std::vector<float> got(size_t(Cm) * Cn), want(got.size()), ref(got.size());
          const std::string what = std::string("plane views ") + isa_name(static_cast<Isa>(isa)) + " P=" +
                                   std::to_string(P) + " N=" + std::to_string(N) + " Cm=" + std::to_string(Cm);
          sgemm(Cm, Cn, K, nchw_channels_by_pixels(dy.data(), Cm, P), nchw_pixels_by_channels(x.data(), Cn, P),
                got.data(), Cn, false, true);
          sgemm(Cm, Cn, K, row_major(dyt.data(), K), transposed(xt.data(), K), want.data(), Cn, false, true);
          reference::sgemm(Cm, Cn, K, nchw_channels_by_pixels(dy.data(), Cm, P),
                           nchw_pixels_by_channels(x.data(), Cn, P), ref.data(), Cn, false);
          for (size_t i = 0; i < got.size(); ++i)
            if (got[i] != want[i]) CHECK(false, what + " differs from the copies at " + std::to_string(i));
          test::expect_close(got.data(), ref.data(), got.size(), 1e-4f, 1e-4f * K, what + " vs reference");
        }
  }
  set_isa(saved);
  // planes with a non-unit stride inside them are refused, not packed wrongly
  std::vector<float> a(64, 1.f), c(16);
  bool threw = false;
  try {
    sgemm(4, 4, 4, MatRef{a.data(), 4, 2, 2, 8}, row_major(a.data(), 4), c.data(), 4, false, false);
  } catch (const std::invalid_argument&) {
    threw = true;
  }
  CHECK(threw, "sgemm accepted depth planes with a non-unit stride");
}

// The packers' transpose is pure data movement: every ISA must write exactly the scalar form's
// floats (zeros past rows), and nothing past kc x w.
TEST(f32_interleave_matches_scalar_on_every_isa) {
  std::mt19937 rng(3);
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    const f32_interleave_fn fn = f32_gemm_ukernel_for(static_cast<Isa>(isa)).interleave;
    for (size_t w : {4, 6, 8, 12, 16, 32})
      for (size_t rows = 1; rows <= w; rows += (w > 8 ? 3 : 1))
        for (size_t kc : {1, 7, 8, 15, 16, 17, 31, 32, 33, 64, 100})
          for (size_t ld : {kc, kc + 3, size_t(1024)}) {
            if (ld < kc) continue;
            auto src = test::random_vec(rows * ld, rng);
            std::vector<float> got(kc * w + 7, -777.f), want(kc * w + 7, -777.f);
            fn(rows, kc, src.data(), ld, w, got.data());
            f32_interleave__scalar(rows, kc, src.data(), ld, w, want.data());
            for (size_t i = 0; i < got.size(); ++i)
              if (got[i] != want[i])
                CHECK(false, std::string("interleave ") + isa_name(static_cast<Isa>(isa)) +
                                             " rows=" + std::to_string(rows) + " kc=" + std::to_string(kc) +
                                             " ld=" + std::to_string(ld) + " w=" + std::to_string(w) +
                                             " at " + std::to_string(i));
          }
  }
}
