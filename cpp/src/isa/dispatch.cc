#include "isa/dispatch.h"

#include "isa/isa.h"

namespace eo {

const F32GemmUkernel& f32_gemm_ukernel() {
  static const F32GemmUkernel table[] = {
      {f32_gemm_ukernel_4x8__scalar, 4, 8},
      {f32_gemm_ukernel_6x16__avx2, 6, 16},
      {f32_gemm_ukernel_12x32__avx512, 12, 32},
  };
  return table[static_cast<int>(active_isa())];
}

}  // namespace eo
