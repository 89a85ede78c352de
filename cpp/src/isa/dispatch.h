// The one dispatch table: for each kernel family, the variant for the active ISA path.
// Nothing else in edgeopt reads CPU features.
#pragma once
#include <cstddef>

#include "f32-gemm/ukernels.h"

namespace eo {

struct F32GemmUkernel {
  f32_gemm_ukernel_fn fn;
  int mr, nr;  // register tile: fn computes an mr x nr block of C
};

const F32GemmUkernel& f32_gemm_ukernel();

}  // namespace eo
