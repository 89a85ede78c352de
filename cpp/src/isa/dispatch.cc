#include "isa/dispatch.h"

#include "isa/isa.h"

namespace eo {

const F32GemmUkernel& f32_gemm_ukernel() { return f32_gemm_ukernel_for(active_isa()); }

const F32GemmUkernel& f32_gemm_ukernel_for(Isa isa) {
  static const F32GemmUkernel table[] = {
      {f32_gemm_ukernel_4x8__scalar, 4, 8},
      {f32_gemm_ukernel_6x16__avx2, 6, 16},
      {f32_gemm_ukernel_12x32__avx512, 12, 32},
  };
  return table[static_cast<int>(isa)];
}

const WeightConvertUkernels& weight_convert_ukernels(Isa isa) {
  static const WeightConvertUkernels table[] = {
      {f16_to_f32__scalar, s8_to_f32__scalar},
      {f16_to_f32__avx2, s8_to_f32__avx2},
      {f16_to_f32__avx512, s8_to_f32__avx512},
  };
  return table[static_cast<int>(isa)];
}

bool qs8_gemm_path_supported(Qs8Path path) {
  switch (path) {
    case Qs8Path::scalar: return true;
    case Qs8Path::avx2: return cpu_isa() >= Isa::avx2;
    case Qs8Path::avx512vnni: return cpu_has_avx512vnni();
    case Qs8Path::amx: return cpu_has_amx_int8();
  }
  return false;
}

Qs8Path qs8_gemm_default_path(int64_t K) {
  switch (active_isa()) {
    case Isa::scalar: return Qs8Path::scalar;
    case Isa::avx2: return Qs8Path::avx2;
    case Isa::avx512:
      if (cpu_has_amx_int8() && K >= 64) return Qs8Path::amx;
      if (cpu_has_avx512vnni()) return Qs8Path::avx512vnni;
      return Qs8Path::avx2;
  }
  return Qs8Path::scalar;
}

const Qs8GemmUkernel& qs8_gemm_ukernel(Qs8Path path) {
  static const Qs8GemmUkernel table[kQs8PathCount] = {
      {qs8_gemm_ukernel_4x16c4__scalar, 4, 16, "scalar"},
      {qs8_gemm_ukernel_4x16c4__avx2, 4, 16, "avx2"},
      {qs8_gemm_ukernel_8x32c4__avx512vnni, 8, 32, "avx512vnni"},
      {qs8_gemm_ukernel_32x32c4__amx, 32, 32, "amx"},
  };
  return table[static_cast<int>(path)];
}

const Qs8OpUkernels& qs8_op_ukernels(Isa isa) {
  static const Qs8OpUkernels scalar = {qs8_dwconv_ukernel__scalar, qs8_add_ukernel__scalar,
                                       qs8_channel_scale_ukernel__scalar, "scalar"};
  static const Qs8OpUkernels avx512 = {qs8_dwconv_ukernel__avx512, qs8_add_ukernel__avx512,
                                       qs8_channel_scale_ukernel__avx512, "avx512"};
  return isa == Isa::avx512 ? avx512 : scalar;
}

const Qs8OpUkernels& qs8_op_ukernels() { return qs8_op_ukernels(active_isa()); }

}  // namespace eo
