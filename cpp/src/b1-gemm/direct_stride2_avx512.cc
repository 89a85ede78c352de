// The direct binary conv's B1_PLANES_32_STRIDE2 forms (stride 2) (direct_avx512.h), in a file of their own so that the build compiles the layout
// families in parallel.
#include "b1-gemm/direct_avx512.h"

namespace eo {

EO_B1_DIRECT void b1_direct_rows_stride2__avx512(const b1_direct_params* p, size_t o0, size_t o1, size_t r0, size_t r1) {
  rows_shape<B1_PLANES_32_STRIDE2>(p, o0, o1, r0, r1);
}

}  // namespace eo
