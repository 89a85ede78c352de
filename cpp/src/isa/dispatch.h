// The one dispatch table: for each kernel family, the variant for the active ISA path.
// Nothing else in edgeopt reads CPU features.
#pragma once
#include <cstddef>
#include <cstdint>

#include "b1-gemm/ukernels.h"
#include "packed-weights/ukernels.h"
#include "f32-batchnorm/ukernels.h"
#include "f32-conv2d/ukernels.h"
#include "f32-dwconv/ukernels.h"
#include "f32-gemm/ukernels.h"
#include "f32-directconv/ukernels.h"
#include "f32-spmm/ukernels.h"
#include "isa/isa.h"
#include "qs8-conv2d/ukernels.h"
#include "qs8-elementwise/ukernels.h"
#include "qs8-gemm/ukernels.h"
#include "qs8-spmm/ukernels.h"
#include "f32-epilogue/ukernels.h"

namespace eo {

struct F32GemmUkernel {
  f32_gemm_ukernel_fn fn;
  int mr, nr;  // register tile: fn computes an mr x nr block of C
  f32_interleave_fn interleave;  // the packers' transpose
};

const F32GemmUkernel& f32_gemm_ukernel();
// The same for a given path (callers that read active_isa() once and must stay consistent).
const F32GemmUkernel& f32_gemm_ukernel_for(Isa isa);

// Stored-weight widening for the runtime's packed-weight GEMM (packed-weights/ukernels.h).
struct WeightConvertUkernels {
  f16_to_f32_fn f16_to_f32;
  s8_to_f32_fn s8_to_f32;
  lowbit_to_f32_fn s4_to_f32, s2_to_f32, s1_to_f32;
};
const WeightConvertUkernels& weight_convert_ukernels(Isa isa);

// int8 GEMM (qs8-gemm) paths. They refine the Isa levels: avx512 gives VNNI and AMX where the CPU
// has them. The default is the best path allowed by active_isa() (so EDGEOPT_ISA / set_isa also
// lower the int8 path); tests and benchmarks may ask for any path the CPU supports.
enum class Qs8Path : int { scalar = 0, avx2 = 1, avx512vnni = 2, amx = 3 };
constexpr int kQs8PathCount = 4;

struct Qs8GemmUkernel {
  qs8_gemm_ukernel_fn fn;
  int mr, nr;        // the block a call works on in one piece (the driver splits C in multiples)
  const char* name;  // path name: "scalar", "avx2", "avx512vnni", "amx"
  qs8_igemm_ukernel_fn igemm;  // the implicit form (VNNI only; others copy an im2col)
  qs8_gemm4_ukernel_fn fn4;    // 4-bit weights (c4x2): VNNI's and AMX's own, the scalar one elsewhere
  qs8_igemm4_ukernel_fn igemm4;
};

bool qs8_gemm_path_supported(Qs8Path path);
// AMX only from K = 64 on (one whole tile deep): below that its fixed per-block costs (tile
// config, C tile store, zero-padded A copy) lose to VNNI on every shape measured.
Qs8Path qs8_gemm_default_path(int64_t K = 1024);
const Qs8GemmUkernel& qs8_gemm_ukernel(Qs8Path path);  // path must be supported

// int8 depthwise conv and elementwise kernels (qs8-conv2d, qs8-elementwise): a scalar and an
// AVX-512 variant each (AVX2 CPUs run the scalar one); AVX-512 CPUs with VNNI get the VNNI
// depthwise kernel (the plain AVX-512 one stays for those without, tested directly).
struct Qs8OpUkernels {
  qs8_dwconv_ukernel_fn dwconv;
  qs8_add_ukernel_fn add;
  qs8_channel_scale_ukernel_fn channel_scale;
  const char* name;
};
const Qs8OpUkernels& qs8_op_ukernels();         // for active_isa()
const Qs8OpUkernels& qs8_op_ukernels(Isa isa);  // a given level <= cpu_isa() (tests)

// f32 sparse x dense (f32-spmm): one kernel per ISA level and block shape (br x bc output x input
// channels: 1x1, 1x4, 4x1, 8x1). nullptr for other block shapes.
struct F32SpmmUkernel {
  f32_spmm_ukernel_fn fn;
  int br, bc;
  int tile;  // pixels per full register tile (the driver splits pixels between threads in these)
};
const F32SpmmUkernel* f32_spmm_ukernel(Isa isa, int br, int bc);

// int8 sparse x dense (qs8-spmm): one kernel per ISA level and block height (1 or 4 output
// channels). nullptr for other heights.
struct Qs8SpmmUkernel {
  qs8_spmm_ukernel_fn fn;
  int br;
  int tile;  // pixels per full register tile
};
const Qs8SpmmUkernel* qs8_spmm_ukernel(Isa isa, int br);

// f32 convolution micro-kernels of the implicit-GEMM path (f32-conv2d/ukernels.h): both work on
// mr x nr tiles; A panels are packed k-major with mr rows.
struct F32Conv2dUkernels {
  f32_conv2d_shifted_ukernel_fn shifted;
  f32_conv2d_strided_ukernel_fn strided;
  int mr, nr;
};
const F32Conv2dUkernels& f32_conv2d_ukernels();  // for active_isa()
const F32Conv2dUkernels& f32_conv2d_ukernels_for(Isa isa);

// Binary XNOR-popcount GEMM (b1-gemm): avx512 uses vpopcntq where the CPU has VPOPCNTDQ and the
// AVX2 nibble-lookup kernel otherwise. The direct conv (stride 1 or 2) and its binarizer exist only with
// Ice Lake's AVX-512 set (cpu_has_avx512icl; null otherwise: the driver uses the GEMM).
struct B1GemmUkernel {
  b1_gemm_ukernel_fn fn;
  const char* name;
  void (*direct)(const b1_direct_params*, size_t, size_t, size_t, size_t);
  void (*binarize)(const float*, size_t, size_t, size_t, size_t, size_t, uint32_t*, size_t, size_t,
                   size_t, size_t, b1_plane_layout, size_t, const float*);
};
const B1GemmUkernel& b1_gemm_ukernel(Isa isa);

// The runtime's clamp epilogue (f32-epilogue/ukernels.h): AVX-512 or scalar.
f32_epilogue_minmax_fn f32_epilogue_minmax_ukernel(Isa isa);

// f32 depthwise conv (f32-dwconv/ukernels.h): the plane kernel, its stride-2 column splitter and
// the training weight gradient: scalar, AVX2 (its split is the scalar one), AVX-512.
struct F32DwconvUkernels {
  f32_dwconv_ukernel_fn conv;
  f32_dwconv_split2_fn split2;
  f32_dwconv_wgrad_fn wgrad;
  f32_dwconv_dgrad2_fn dgrad2;
};
const F32DwconvUkernels& f32_dwconv_ukernels(Isa isa);

// Training batch norm's run loops (f32-batchnorm/ukernels.h): scalar, AVX2, AVX-512.
struct F32BatchnormUkernels {
  f32_bn_sums_fn sums;
  f32_bn_apply_fn apply;
  f32_bn_grad_sums_fn grad_sums;
  f32_bn_grad_apply_fn grad_apply;
  f32_bn_sums_flat_fn sums_flat;
  f32_bn_apply_flat_fn apply_flat;
  f32_bn_grad_sums_flat_fn grad_sums_flat;
  f32_bn_grad_apply_flat_fn grad_apply_flat;
};
const F32BatchnormUkernels& f32_batchnorm_ukernels(Isa isa);

// f32 direct conv for inference (stride 1, same-width rows: 1x1, 3x3/p1, ...;
// f32-directconv/ukernels.h): AVX-512 only; nullptr on other paths, where the runtime runs 1x1
// convs through the packed GEMM and the others through the implicit GEMM of f32-conv2d.
struct F32DirectConvUkernel {
  f32_directconv_ukernel_fn fn;
  int mr, nr;
};
const F32DirectConvUkernel* f32_directconv_ukernel(Isa isa);

}  // namespace eo
