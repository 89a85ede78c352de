// f32 GEMM: C (M x N) = A (M x K) * B (K x N), or C += A * B.
//
// A and B are strided views, so transposed operands cost nothing extra to describe: element (r, c)
// of a view is p[r*rs + c*cs] (with depth planes, see MatRef::kp, the depth index is split first). The driver packs cache-sized blocks of A and B into register-tile
// panels and runs the active ISA's micro-kernel over them (BLIS-style blocking: a KC x NC block of
// B stays in L2, an MR x KC panel of A and a KC x NR panel of B stream through L1).
//
// Convolution reuses operands across many small products (the weights for every image of a batch)
// and can produce the B operand directly in packed form (im2col), so the packed layouts are public:
// pack once with pack_a / pack_b (or write the PackedB layout yourself) and call sgemm_packed.
#pragma once
#include <cstddef>
#include <cstdint>

namespace eo {

struct MatRef {
  const float* p;
  int64_t rs, cs;  // row and column strides, in elements
  // Optional (kp > 0): the depth index k (A's column, B's row) runs in planes of kp values, with
  // its stride (A.cs, B.rs) inside a plane and ks from one plane to the next: k = q * kp + r is
  // at q * ks + r * stride. The packers take only a unit stride there (A.cs == 1, B.rs == 1) and
  // check it; the plain views below are the only makers.
  int64_t kp = 0, ks = 0;

  // Offset of depth index k, whose stride is `stride` (cs for A, rs for B).
  int64_t k_offset(int64_t k, int64_t stride) const { return kp ? k / kp * ks + k % kp * stride : k * stride; }
  // How many depth indices from k (before `end`) lie in one plane, i.e. evenly spaced in memory.
  int64_t k_run(int64_t k, int64_t end) const {
    const int64_t left = end - k;
    return kp && kp - k % kp < left ? kp - k % kp : left;
  }
};

// A matrix stored row-major with leading dimension ld.
inline MatRef row_major(const float* p, int64_t ld) { return {p, ld, 1}; }
// The transpose of a matrix stored row-major with leading dimension ld.
inline MatRef transposed(const float* p, int64_t ld) { return {p, 1, ld}; }
// A batch of C planes of P values (NCHW, P = H * W) as the C x NP matrix whose columns are the
// batch's pixels (image, pixel), as A; and its transpose (NP x C), as B: a GEMM whose depth runs
// over every pixel of the batch, read in place instead of from a channel-major copy.
// (One-pixel planes are plain strided matrices: no planes, so packing is not split per value.)
inline MatRef nchw_channels_by_pixels(const float* p, int64_t C, int64_t P) {
  return P == 1 ? MatRef{p, 1, C} : MatRef{p, P, 1, P, C * P};
}
inline MatRef nchw_pixels_by_channels(const float* p, int64_t C, int64_t P) {
  return P == 1 ? MatRef{p, C, 1} : MatRef{p, 1, P, P, C * P};
}

// C has row stride ldc (columns contiguous). parallel=false keeps the call on this thread: use it
// inside an outer parallel loop (see the scratch rule in common/parallel.h).
void sgemm(int64_t M, int64_t N, int64_t K, MatRef A, MatRef B, float* C, int64_t ldc,
           bool accumulate, bool parallel);

// Depth of one packed block for a product of depth K: K split into even blocks of at most ~320,
// so a KC x NR panel of B stays in L1 while the micro-kernel sweeps the panels of A.
int64_t packed_kc(int64_t K);

// A (M x K) packed for the active micro-kernel: for each depth block k0 (size kcb), MR-row panels,
// each k-major: pa[k0*mpad + p*kcb*mr + (k-k0)*mr + i], zero rows past M.
struct PackedA {
  int64_t M, K, kc, mr, mpad;
  int64_t size() const { return K * mpad; }
};
// B (K x N) packed the same way in NR-column panels:
//   pb[k0*npad + q*kcb*nr + (k-k0)*nr + j]   for column q*nr + j, zero columns past N.
// Within a panel, a row's nr columns are contiguous, which is what im2col writes.
struct PackedB {
  int64_t K, N, kc, nr, npad;
  int64_t size() const { return K * npad; }
  // Start of depth row k of column panel q (q = column / nr).
  int64_t panel_row(int64_t k, int64_t q) const {
    const int64_t k0 = k / kc * kc, kcb = K - k0 < kc ? K - k0 : kc;
    return k0 * npad + q * kcb * nr + (k - k0) * nr;
  }
};
PackedA packed_a_layout(int64_t M, int64_t K);  // for the active ISA's micro-kernel
PackedB packed_b_layout(int64_t K, int64_t N);
void pack_a(const PackedA& L, MatRef A, float* pa);
void pack_b(const PackedB& L, MatRef B, float* pb);

// C (M x N, row stride ldc) (+)= A B from operands packed with layouts of the same K. Uses no
// scratch memory; parallel=true splits the columns over threads.
void sgemm_packed(const PackedA& LA, const float* pa, const PackedB& LB, const float* pb, float* C,
                  int64_t ldc, bool accumulate, bool parallel);

}  // namespace eo
