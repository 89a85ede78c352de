#include "packed-weights/packed_weights.h"

#include <cstdlib>
#include <cstring>
#include <new>

#include <vector>

#include "f32-gemm/gemm.h"
#include "isa/dispatch.h"
#include "lowbit/lowbit.h"

namespace eo {
namespace {

// dst[k0*mpad + p*kcb*mr + (k-k0)*mr + i] = w[(p*mr + i)*K + k], zero rows past M.
template <class T>
void pack_panels(const T* w, int64_t M, int64_t K, int64_t kc, int64_t mr, int64_t mpad, T* dst) {
  for (int64_t k0 = 0; k0 < K; k0 += kc) {
    const int64_t kcb = K - k0 < kc ? K - k0 : kc;
    T* blk = dst + k0 * mpad;
    for (int64_t p = 0; p < mpad / mr; ++p) {
      T* pan = blk + p * kcb * mr;
      for (int64_t i = 0; i < mr; ++i) {
        const int64_t row = p * mr + i;
        if (row >= M) {
          for (int64_t k = 0; k < kcb; ++k) pan[k * mr + i] = T(0);
          continue;
        }
        const T* src = w + row * K + k0;
        for (int64_t k = 0; k < kcb; ++k) pan[k * mr + i] = src[k];
      }
    }
  }
}

}  // namespace

int wdtype_bits(WDtype t) {
  switch (t) {
    case WDtype::f32: return 32;
    case WDtype::f16: return 16;
    case WDtype::s8: return 8;
    case WDtype::s4: return 4;
    case WDtype::s2: return 2;
    case WDtype::s1: return 1;
  }
  return 0;
}

int64_t wdtype_row_bytes(WDtype t, int64_t k) { return (k * wdtype_bits(t) + 7) / 8; }

PackedWeights pack_weights(WDtype dt, const void* w, int64_t M, int64_t K, int64_t mr, int64_t kc) {
  PackedWeights p;
  p.dtype = dt;
  p.M = M;
  p.K = K;
  p.kc = kc > 0 ? kc : packed_kc(K);
  p.mr = mr;
  p.mpad = (M + mr - 1) / mr * mr;
  const size_t bytes = (p.size_bytes() + 63) / 64 * 64;
  void* mem = std::aligned_alloc(64, bytes ? bytes : 64);
  if (!mem) throw std::bad_alloc();
  p.data = std::unique_ptr<uint8_t, void (*)(void*)>(static_cast<uint8_t*>(mem), std::free);
  switch (dt) {
    case WDtype::f32:
      pack_panels(static_cast<const float*>(w), M, K, p.kc, mr, p.mpad, reinterpret_cast<float*>(mem));
      break;
    case WDtype::f16:
      pack_panels(static_cast<const uint16_t*>(w), M, K, p.kc, mr, p.mpad,
                  reinterpret_cast<uint16_t*>(mem));
      break;
    case WDtype::s8:
      pack_panels(static_cast<const int8_t*>(w), M, K, p.kc, mr, p.mpad, reinterpret_cast<int8_t*>(mem));
      break;
    case WDtype::s4:
    case WDtype::s2:
    case WDtype::s1: {
      // codes to int8, into panel order, then back into one bit stream (load time only)
      const int bits = wdtype_bits(dt);
      std::vector<int8_t> q(static_cast<size_t>(M * K)), panels(static_cast<size_t>(p.mpad * K));
      lowbit_unpack_s8(M, K, bits, static_cast<const uint8_t*>(w), q.data());
      pack_panels(q.data(), M, K, p.kc, mr, p.mpad, panels.data());
      lowbit_pack(1, p.mpad * K, bits, panels.data(), static_cast<uint8_t*>(mem));
      break;
    }
  }
  return p;
}

PanelView weight_panels(const PackedWeights& w, int64_t p0, int64_t p1, float* buf, Isa isa) {
  if (w.dtype == WDtype::f32)
    return {reinterpret_cast<const float*>(w.bytes()), w.mpad, 0, w.mr};
  // Depth block k0 of panels [p0, p1) is one contiguous run in the packed order: widen it whole.
  const int64_t rows = (p1 - p0) * w.mr;
  const WeightConvertUkernels& cv = weight_convert_ukernels(isa);
  for (int64_t k0 = 0; k0 < w.K; k0 += w.kc) {
    const int64_t kcb = w.K - k0 < w.kc ? w.K - k0 : w.kc;
    const int64_t src = k0 * w.mpad + p0 * kcb * w.mr, n = rows * kcb;
    float* dst = buf + k0 * rows;
    switch (w.dtype) {
      case WDtype::f16:
        cv.f16_to_f32(reinterpret_cast<const uint16_t*>(w.bytes()) + src, dst, static_cast<size_t>(n));
        break;
      case WDtype::s8:
        cv.s8_to_f32(reinterpret_cast<const int8_t*>(w.bytes()) + src, dst, static_cast<size_t>(n));
        break;
      case WDtype::s4: cv.s4_to_f32(w.bytes(), src, dst, static_cast<size_t>(n)); break;
      case WDtype::s2: cv.s2_to_f32(w.bytes(), src, dst, static_cast<size_t>(n)); break;
      case WDtype::s1: cv.s1_to_f32(w.bytes(), src, dst, static_cast<size_t>(n)); break;
      case WDtype::f32: break;  // read in place above
    }
  }
  return {buf, rows, p0, w.mr};
}

}  // namespace eo
