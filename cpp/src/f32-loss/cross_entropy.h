// logits, dlogits: (N, C)  labels: (N)  loss: scalar
//
// Softmax cross-entropy with label smoothing, PyTorch's definition:
//   log p_c = z_c - logsumexp(z)            (max-shifted, so exp never overflows)
//   q_c     = (1 - eps) * [c == label] + eps / C
//   loss    = mean_n  -sum_c q_c log p_c  =  mean_n [ lse - (1 - eps) z_label - eps/C sum_c z_c ]
//   dlogits = (softmax(z) - q) / N
// Parallel over fixed blocks of rows; per-block partial losses are added in block order, so the
// loss is identical whatever the thread count. Labels must be in [0, C) (the caller checks).
#pragma once
#include <cstdint>

namespace eo {

struct CrossEntropyResult {
  double loss;
  int64_t bad_row;  // -1, or the first row whose logits hold NaN or Inf (then loss is undefined)
};

CrossEntropyResult cross_entropy(const float* logits, const int64_t* labels, float* dlogits,
                                 int64_t N, int64_t C, float label_smoothing);

}  // namespace eo
