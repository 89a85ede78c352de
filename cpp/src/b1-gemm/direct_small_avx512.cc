// The direct binary conv's small-layer forms: 16-bit words (B1_PLANES_16) and two rows per
// vector (B1_PLANES_32_ROWS2), 3x3 only (direct_avx512.h), in a file of their own so that the build compiles the layout
// families in parallel.
#include "b1-gemm/direct_avx512.h"

namespace eo {

EO_B1_DIRECT void b1_direct_rows_small__avx512(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  if (p->layout == B1_PLANES_16) rows_out<1, B1_PLANES_16>(p, o0, o1, r0, r1);
  else if (p->nw == 1) rows_out<1, B1_PLANES_32_ROWS2>(p, o0, o1, r0, r1);
  else rows_out<2, B1_PLANES_32_ROWS2>(p, o0, o1, r0, r1);
}

}  // namespace eo
