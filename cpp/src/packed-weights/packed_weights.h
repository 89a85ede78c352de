// The weight operand of an inference GEMM kept in its deployed dtype: f32, f16, or s8 / s4 / s2 / s1
// (symmetric, one scale per output channel; s4, s2 and s1 (binary, +-1) bit-packed). The runtime's conv2d / linear ops compute in f32 with the f32
// micro-kernels (f32-gemm/ukernels.h), so only the *storage* differs:
//
//   W (M x K, M = output channels) is reordered once, at load, into the micro-kernel's A-panel
//   order (f32-gemm/gemm.h PackedA: per depth block, MR-row panels, k-major), but kept in its
//   stored dtype. At run time a task widens the panels it is about to use into per-thread scratch
//   with one contiguous conversion (vcvtph2ps / vpmovsxbd / shift-and-mask of packed codes), then
//   the f32 micro-kernel reads them from L1/L2. No wider copy of the weights is ever kept: f16
//   engines hold half, s8 a quarter, s4 an eighth and s2 a sixteenth of the f32 bytes. f32
//   weights are read in place (no conversion). s4 / s2 panels are one bit stream in panel order.
//
//   s8 / s4 / s2: W = diag(scale) Q, so W B = diag(scale) (Q B): the per-row scale is applied to the GEMM
//   result in the epilogue (one multiply per output element instead of one per weight per call).
//   That is the same product as "dequantize the weights, then f32 GEMM" up to f32 rounding.
//
// Why widen per call instead of computing on f16/s8 directly: AVX-512F/AVX2 have no f16 FMA and
// the f32 kernels are the tuned ones; the widening is M*K element conversions per image against
// M*K*P FMAs (P output pixels), i.e. a few percent even for the 4x4 last stages of CIFAR models.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>

#include "isa/isa.h"

namespace eo {

enum class WDtype : uint8_t { f32 = 0, f16 = 1, s8 = 2, s4 = 3, s2 = 4, s1 = 5 };  // s1: {-1, +1}
int wdtype_bits(WDtype t);
// Bytes of one stored row of k weights: k elements, or ceil(k * bits / 8) for s4 / s2 (each row
// starts on a byte, as in lowbit/lowbit.h).
int64_t wdtype_row_bytes(WDtype t, int64_t k);

struct PackedWeights {
  WDtype dtype = WDtype::f32;
  int64_t M = 0, K = 0, kc = 0, mr = 0, mpad = 0;  // as PackedA (f32-gemm/gemm.h)
  std::unique_ptr<uint8_t, void (*)(void*)> data{nullptr, nullptr};

  int64_t panels() const { return mr ? mpad / mr : 0; }
  const uint8_t* bytes() const { return data.get(); }
  size_t size_bytes() const { return static_cast<size_t>((mpad * K * wdtype_bits(dtype) + 7) / 8); }
};

// w: M x K row-major in dtype `dt` (f32: float, f16: uint16_t bits, s8: int8_t, s4 / s2: rows of
// wdtype_row_bytes packed codes), packed for a
// micro-kernel with `mr` rows (depth blocks of kc, default packed_kc(K); rows past M zero). The
// implicit-GEMM conv path asks for kc = K: its A panel (mr x K) stays in L1 and C never leaves
// the registers between depth blocks.
PackedWeights pack_weights(WDtype dt, const void* w, int64_t M, int64_t K, int64_t mr, int64_t kc = 0);

// Row panels [p0, p1) of W, all depth blocks, as f32 ready for the micro-kernel. For f32 weights
// this points into the packed weights (buf unused); otherwise the panels are widened into buf,
// which must hold (p1 - p0) * mr * K floats.
struct PanelView {
  const float* base;
  int64_t kstride;  // floats between depth blocks (per unit of k0)
  int64_t pbase;    // panel index at base
  int64_t mr;
  // The micro-kernel's A panel p of depth block [k0, k0 + kcb).
  const float* at(int64_t k0, int64_t kcb, int64_t p) const {
    return base + k0 * kstride + (p - pbase) * kcb * mr;
  }
};
PanelView weight_panels(const PackedWeights& w, int64_t p0, int64_t p1, float* buf, Isa isa);
// Floats of buf weight_panels needs for panels [p0, p1) (0 for f32 weights).
inline int64_t weight_panels_scratch(const PackedWeights& w, int64_t p0, int64_t p1) {
  return w.dtype == WDtype::f32 ? 0 : (p1 - p0) * w.mr * w.K;
}

}  // namespace eo
