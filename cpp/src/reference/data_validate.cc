// Plain loops for data/validate.h.
#include <cmath>

#include "reference/reference.h"

namespace eo::reference {

int64_t first_nonfinite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::isnan(x[i]) || std::isinf(x[i])) return i;
  return -1;
}

int64_t first_label_outside(const int64_t* y, int64_t n, int64_t num_classes) {
  for (int64_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] >= num_classes) return i;
  return -1;
}

}  // namespace eo::reference
