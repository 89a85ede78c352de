// Plain reference for lowbit: decode one code by walking its bits, multiply with double sums.
#include "lowbit/lowbit.h"

namespace eo::reference {

int lowbit_code(const uint8_t* row, int64_t t, int bits) {
  int v = 0;
  for (int b = 0; b < bits; ++b) {
    const int64_t bit = t * bits + b;
    v |= ((row[bit / 8] >> (bit % 8)) & 1) << b;
  }
  if (bits == 1) return v ? 1 : -1;
  return v >= (1 << (bits - 1)) ? v - (1 << bits) : v;  // two's complement
}

void lowbit_sgemm(int64_t M, int64_t N, int64_t K, int bits, const uint8_t* packed,
                  const float* scale, const float* b, float* c) {
  const int64_t rb = (K * bits + 7) / 8;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0;
      for (int64_t k = 0; k < K; ++k)
        acc += double(scale[i] * float(lowbit_code(packed + i * rb, k, bits))) * double(b[k * N + j]);
      c[i * N + j] = float(acc);
    }
}

}  // namespace eo::reference
