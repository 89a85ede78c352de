// Finding bad values before they reach a model: the first NaN / +-Inf of a float32 array and the
// first class label outside [0, num_classes).
//
// fit scans its train and val data with these once, up front, and the gradients, weights and
// optimizer state after every step; deploy scans weights and calibration data. A scan must
// therefore cost one memory pass and nothing more: blocks of kBlock floats are tested branch-free
// (a float is NaN or +-Inf exactly when its 8 exponent bits are all ones, an integer test the
// compiler vectorizes) and only a block that fails is rescanned element by element. Large arrays
// are split over threads; the answer is the smallest bad index whatever the split, so it does not
// depend on the thread count.
//
// Kernels trust their inputs (n >= 0, valid pointers); bindings validate.
#pragma once
#include <cstdint>

namespace eo::data {

// x: (n,)  Index of the first NaN or +-Inf in x, or -1 when every value is finite.
int64_t first_nonfinite(const float* x, int64_t n);

// y: (n,)  Index of the first label outside [0, num_classes), or -1 when all are in range.
int64_t first_label_outside(const int64_t* y, int64_t n, int64_t num_classes);

}  // namespace eo::data
