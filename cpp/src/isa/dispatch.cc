#include "isa/dispatch.h"

#include "isa/isa.h"

namespace eo {

const F32GemmUkernel& f32_gemm_ukernel() { return f32_gemm_ukernel_for(active_isa()); }

const F32GemmUkernel& f32_gemm_ukernel_for(Isa isa) {
  static const F32GemmUkernel table[] = {
      {f32_gemm_ukernel_4x8__scalar, 4, 8, f32_interleave__scalar},
      {f32_gemm_ukernel_6x16__avx2, 6, 16, f32_interleave__avx2},
      {f32_gemm_ukernel_12x32__avx512, 12, 32, f32_interleave__avx512},
  };
  return table[static_cast<int>(isa)];
}

const WeightConvertUkernels& weight_convert_ukernels(Isa isa) {
  static const WeightConvertUkernels table[] = {
      {f16_to_f32__scalar, s8_to_f32__scalar, s4_to_f32__scalar, s2_to_f32__scalar, s1_to_f32__scalar},
      {f16_to_f32__avx2, s8_to_f32__avx2, s4_to_f32__avx2, s2_to_f32__avx2, s1_to_f32__avx2},
      {f16_to_f32__avx512, s8_to_f32__avx512, s4_to_f32__avx512, s2_to_f32__avx512, s1_to_f32__avx512},
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
      {qs8_gemm_ukernel_4x16c4__scalar, 4, 16, "scalar", nullptr, qs8_gemm4_ukernel_4x16c4x2__scalar,
       nullptr},
      {qs8_gemm_ukernel_4x16c4__avx2, 4, 16, "avx2", nullptr, qs8_gemm4_ukernel_4x16c4x2__scalar, nullptr},
      {qs8_gemm_ukernel_8x32c4__avx512vnni, 8, 32, "avx512vnni", qs8_igemm_ukernel_8x32c4__avx512vnni,
       qs8_gemm4_ukernel_8x32c4x2__avx512vnni, qs8_igemm4_ukernel_8x32c4x2__avx512vnni},
      // 4-bit weights widened block by block into AMX's 8-bit B; convs take im2col as for 8-bit
      {qs8_gemm_ukernel_32x32c4__amx, 32, 32, "amx", nullptr, qs8_gemm4_ukernel_32x32c4x2__amx, nullptr},
  };
  return table[static_cast<int>(path)];
}

const Qs8OpUkernels& qs8_op_ukernels(Isa isa) {
  static const Qs8OpUkernels scalar = {qs8_dwconv_ukernel__scalar, qs8_add_ukernel__scalar,
                                       qs8_channel_scale_ukernel__scalar, "scalar"};
  static const Qs8OpUkernels avx512 = {qs8_dwconv_ukernel__avx512, qs8_add_ukernel__avx512,
                                       qs8_channel_scale_ukernel__avx512, "avx512"};
  static const Qs8OpUkernels vnni = {qs8_dwconv_ukernel__avx512vnni, qs8_add_ukernel__avx512,
                                     qs8_channel_scale_ukernel__avx512, "avx512vnni"};
  if (isa != Isa::avx512) return scalar;
  return cpu_has_avx512vnni() ? vnni : avx512;
}

const Qs8OpUkernels& qs8_op_ukernels() { return qs8_op_ukernels(active_isa()); }

const F32SpmmUkernel* f32_spmm_ukernel(Isa isa, int br, int bc) {
  static const F32SpmmUkernel table[3][3] = {
      {{f32_spmm_ukernel_8x1x1__scalar, 1, 1, 8},
       {f32_spmm_ukernel_8x4x1__scalar, 4, 1, 8},
       {f32_spmm_ukernel_8x8x1__scalar, 8, 1, 8}},
      {{f32_spmm_ukernel_32x1x1__avx2, 1, 1, 32},
       {f32_spmm_ukernel_16x4x1__avx2, 4, 1, 16},
       {f32_spmm_ukernel_8x8x1__avx2, 8, 1, 8}},
      {{f32_spmm_ukernel_64x1x1__avx512, 1, 1, 64},
       {f32_spmm_ukernel_32x4x1__avx512, 4, 1, 32},
       {f32_spmm_ukernel_32x8x1__avx512, 8, 1, 32}},
  };
  for (const F32SpmmUkernel& k : table[static_cast<int>(isa)])
    if (k.br == br && k.bc == bc) return &k;
  return nullptr;
}

const Qs8SpmmUkernel* qs8_spmm_ukernel(Isa isa, int br) {
  static const Qs8SpmmUkernel table[3][2] = {
      {{qs8_spmm_ukernel_8x1__scalar, 1, 8}, {qs8_spmm_ukernel_8x4__scalar, 4, 8}},
      {{qs8_spmm_ukernel_32x1__avx2, 1, 32}, {qs8_spmm_ukernel_16x4__avx2, 4, 16}},
      {{qs8_spmm_ukernel_64x1__avx512, 1, 64}, {qs8_spmm_ukernel_32x4__avx512, 4, 32}},
  };
  for (const Qs8SpmmUkernel& k : table[static_cast<int>(isa)])
    if (k.br == br) return &k;
  return nullptr;
}

const F32Conv2dUkernels& f32_conv2d_ukernels() { return f32_conv2d_ukernels_for(active_isa()); }

const F32Conv2dUkernels& f32_conv2d_ukernels_for(Isa isa) {
  static const F32Conv2dUkernels table[] = {
      {f32_conv2d_shifted_ukernel_4x16__scalar, f32_conv2d_strided_ukernel_4x16__scalar, 4, 16},
      {f32_conv2d_shifted_ukernel_6x16__avx2, f32_conv2d_strided_ukernel_6x16__avx2, 6, 16},
      {f32_conv2d_shifted_ukernel_8x48__avx512, f32_conv2d_strided_ukernel_8x48__avx512, 8, 48},
  };
  return table[static_cast<int>(isa)];
}

const B1GemmUkernel& b1_gemm_ukernel(Isa isa) {
  static const B1GemmUkernel scalar{b1_gemm_ukernel_4x8__scalar, "scalar", nullptr, nullptr};
  static const B1GemmUkernel avx2{b1_gemm_ukernel_4x8__avx2, "avx2", nullptr, nullptr};
  static const B1GemmUkernel vpopcnt{b1_gemm_ukernel_4x16__avx512vpopcntdq, "avx512vpopcntdq", nullptr, nullptr};
  static const B1GemmUkernel direct{b1_gemm_ukernel_4x16__avx512vpopcntdq, "avx512vpopcntdq",
                                    b1_direct_conv_rows__avx512vpopcntdq, b1_binarize_planes__avx512};
  switch (isa) {
    case Isa::scalar: return scalar;
    case Isa::avx2: return avx2;
    case Isa::avx512:
      if (!cpu_has_avx512vpopcntdq()) return avx2;
      return cpu_has_avx512icl() ? direct : vpopcnt;
  }
  return scalar;
}

f32_epilogue_minmax_fn f32_epilogue_minmax_ukernel(Isa isa) {
  return isa == Isa::avx512 ? f32_epilogue_minmax__avx512 : f32_epilogue_minmax__scalar;
}

const F32DwconvUkernels& f32_dwconv_ukernels(Isa isa) {
  static const F32DwconvUkernels scalar{f32_dwconv_ukernel__scalar, f32_dwconv_split2__scalar,
                                         f32_dwconv_wgrad__scalar, f32_dwconv_dgrad2__scalar};
  static const F32DwconvUkernels avx2{f32_dwconv_ukernel__avx2, f32_dwconv_split2__scalar,
                                       f32_dwconv_wgrad__avx2, f32_dwconv_dgrad2__avx2};
  static const F32DwconvUkernels avx512{f32_dwconv_ukernel__avx512, f32_dwconv_split2__avx512,
                                         f32_dwconv_wgrad__avx512, f32_dwconv_dgrad2__avx512};
  return isa == Isa::avx512 ? avx512 : isa == Isa::avx2 ? avx2 : scalar;
}

const F32BatchnormUkernels& f32_batchnorm_ukernels(Isa isa) {
#define EO_BN_UKERNELS(isa)                                                                     \
  F32BatchnormUkernels {                                                                         \
    f32_bn_sums__##isa, f32_bn_apply__##isa, f32_bn_grad_sums__##isa, f32_bn_grad_apply__##isa,  \
        f32_bn_sums_flat__##isa, f32_bn_apply_flat__##isa, f32_bn_grad_sums_flat__##isa,         \
        f32_bn_grad_apply_flat__##isa                                        \
  }
  static const F32BatchnormUkernels scalar = EO_BN_UKERNELS(scalar), avx2 = EO_BN_UKERNELS(avx2),
                                    avx512 = EO_BN_UKERNELS(avx512);
#undef EO_BN_UKERNELS
  return isa == Isa::avx512 ? avx512 : isa == Isa::avx2 ? avx2 : scalar;
}

const F32DirectConvUkernel* f32_directconv_ukernel(Isa isa) {
  static const F32DirectConvUkernel avx512{f32_directconv_ukernel_8x48__avx512, 8, 48};
  return isa == Isa::avx512 ? &avx512 : nullptr;
}

}  // namespace eo
