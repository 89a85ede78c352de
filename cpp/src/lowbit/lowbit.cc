#include "lowbit/lowbit.h"

#include <algorithm>
#include <cstring>

namespace eo {
namespace {

// Code t of a packed row: a field of `bits` bits never straddles a byte (bits divides 8).
inline int code(const uint8_t* row, int64_t t, int bits) {
  const unsigned field = (row[(t * bits) >> 3] >> ((t * bits) & 7)) & ((1u << bits) - 1);
  if (bits == 1) return field ? 1 : -1;
  const int half = 1 << (bits - 1);
  return int(field) >= half ? int(field) - 2 * half : int(field);
}

}  // namespace

void lowbit_pack(int64_t rows, int64_t k, int bits, const int8_t* q, uint8_t* packed) {
  const int64_t rb = lowbit_row_bytes(k, bits);
  std::memset(packed, 0, size_t(rows * rb));
  const unsigned mask = (1u << bits) - 1;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < k; ++t) {
      const int v = q[r * k + t];
      const unsigned field = bits == 1 ? unsigned(v > 0) : unsigned(v) & mask;
      packed[r * rb + ((t * bits) >> 3)] |= uint8_t(field << ((t * bits) & 7));
    }
}

void lowbit_unpack_s8(int64_t rows, int64_t k, int bits, const uint8_t* packed, int8_t* q) {
  const int64_t rb = lowbit_row_bytes(k, bits);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < k; ++t) q[r * k + t] = int8_t(code(packed + r * rb, t, bits));
}

void lowbit_unpack_f32(int64_t rows, int64_t k, int bits, const uint8_t* packed,
                       const float* scale, float* out) {
  const int64_t rb = lowbit_row_bytes(k, bits);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t t = 0; t < k; ++t) out[r * k + t] = scale[r] * float(code(packed + r * rb, t, bits));
}

void lowbit_sgemm(int64_t M, int64_t N, int64_t K, int bits, const uint8_t* packed,
                  const float* scale, MatRef B, float* C, int64_t ldc, bool parallel) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i) std::memset(C + i * ldc, 0, size_t(N) * sizeof(float));
    return;
  }
  const PackedA LA = packed_a_layout(M, K);
  const PackedB LB = packed_b_layout(K, N);
  std::vector<float> pa(size_t(LA.size())), pb(size_t(LB.size()));
  // Decode into the packed A layout (gemm.h): pa[k0*mpad + p*kcb*mr + (k-k0)*mr + i].
  const int64_t rb = lowbit_row_bytes(K, bits);
  for (int64_t k0 = 0; k0 < K; k0 += LA.kc) {
    const int64_t kcb = std::min(LA.kc, K - k0);
    for (int64_t p = 0; p < LA.mpad / LA.mr; ++p) {
      float* panel = pa.data() + k0 * LA.mpad + p * kcb * LA.mr;
      for (int64_t i = 0; i < LA.mr; ++i) {
        const int64_t row = p * LA.mr + i;
        if (row >= M) {
          for (int64_t k = 0; k < kcb; ++k) panel[k * LA.mr + i] = 0.f;
          continue;
        }
        const uint8_t* src = packed + row * rb;
        for (int64_t k = 0; k < kcb; ++k)
          panel[k * LA.mr + i] = scale[row] * float(code(src, k0 + k, bits));
      }
    }
  }
  pack_b(LB, B, pb.data());
  sgemm_packed(LA, pa.data(), LB, pb.data(), C, ldc, false, parallel);
}

Qs8PackedB lowbit_qs8_pack_b(int64_t N, int64_t K, int bits, const uint8_t* packed) {
  std::vector<int8_t> q(size_t(std::max<int64_t>(1, N * K)));
  lowbit_unpack_s8(N, K, bits, packed, q.data());
  return qs8_pack_b(K, N, q.data(), 1, K);
}

}  // namespace eo
