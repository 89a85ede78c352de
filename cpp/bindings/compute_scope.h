// The scope every binding that computes holds around its call into the kernels.
#pragma once
#include <pybind11/pybind11.h>

#include "common/parallel.h"

namespace eo::bind {

// Pins the thread count for the whole call (a set_num_threads from another Python thread takes
// effect at the next call, never inside one whose buffers were sized for the old count; see
// ThreadCountScope), then releases the GIL so other Python threads run meanwhile.
struct ComputeScope {
  ThreadCountScope threads;
  pybind11::gil_scoped_release nogil;
};

}  // namespace eo::bind
