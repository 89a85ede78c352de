// The deploy runtime's building blocks: stored-weight conversion kernels on every ISA path against
// the scalar reference (all 65536 f16 bit patterns, all 256 int8 values, 4- and 2-bit codes at every
// offset), packed-weight panels,
// the memory planner's invariant, CRC32, and the loader on garbage (FormatError, never a crash;
// this file also runs under tools/sanitize.sh). Whole engines are tested from Python.
#include <cstring>
#include <random>
#include <vector>

#include "packed-weights/packed_weights.h"
#include "packed-weights/ukernels.h"
#include "harness.h"
#include "isa/dispatch.h"
#include "isa/isa.h"
#include "lowbit/lowbit.h"
#include "runtime/engine.h"
#include "runtime/format.h"
#include "runtime/plan.h"

using namespace eo;

namespace {
uint32_t bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
}  // namespace

TEST(runtime_f16_to_f32_every_value_every_isa) {
  std::vector<uint16_t> h(65536 + 7);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<uint16_t>(i);
  std::vector<float> ref(h.size()), got(h.size());
  f16_to_f32__scalar(h.data(), ref.data(), h.size());
  // Spot values: 1, -2, 65504, smallest subnormal, inf, NaN.
  CHECK(ref[0x3c00] == 1.f && ref[0xc000] == -2.f && ref[0x7bff] == 65504.f, "normal values");
  CHECK(ref[0x0001] == 5.9604644775390625e-08f && std::isinf(ref[0x7c00]) && std::isnan(ref[0x7e00]), "edges");
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    const auto& cv = weight_convert_ukernels(static_cast<Isa>(isa));
    for (size_t n : {size_t(65536 + 7), size_t(1), size_t(5), size_t(17), size_t(31)}) {
      std::fill(got.begin(), got.end(), -7.f);
      cv.f16_to_f32(h.data(), got.data(), n);
      for (size_t i = 0; i < n; ++i)
        CHECK(bits(got[i]) == bits(ref[i]) || (std::isnan(got[i]) && std::isnan(ref[i])),
              std::string(isa_name(static_cast<Isa>(isa))) + " f16 value " + std::to_string(i));
      if (n < got.size()) CHECK(got[n] == -7.f, "wrote past n");
    }
  }
}

TEST(runtime_s8_to_f32_every_isa) {
  std::vector<int8_t> q(256 + 3);
  for (size_t i = 0; i < q.size(); ++i) q[i] = static_cast<int8_t>(i);
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    std::vector<float> got(q.size() + 1, -7.f);
    weight_convert_ukernels(static_cast<Isa>(isa)).s8_to_f32(q.data(), got.data(), q.size());
    for (size_t i = 0; i < q.size(); ++i) CHECK(got[i] == float(q[i]), "s8 value");
    CHECK(got[q.size()] == -7.f, "wrote past n");
  }
}

TEST(runtime_lowbit_to_f32_every_isa_and_offset) {
  std::mt19937 rng(5);
  for (int b : {4, 2}) {
    const int lo = -(1 << (b - 1)), hi = (1 << (b - 1)) - 1;
    std::vector<int8_t> codes(203);
    for (auto& c : codes) c = static_cast<int8_t>(lo + static_cast<int>(rng() % (hi - lo + 1)));
    codes[0] = static_cast<int8_t>(lo), codes[1] = static_cast<int8_t>(hi);  // both ends of the range
    std::vector<uint8_t> packed(lowbit_row_bytes(203, b) + 8, 0);
    lowbit_pack(1, 203, b, codes.data(), packed.data());
    for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
      const auto& cv = weight_convert_ukernels(static_cast<Isa>(isa));
      for (int64_t first : {0, 1, 2, 3, 5, 16, 33})
        for (size_t n : {size_t(0), size_t(1), size_t(7), size_t(16), size_t(17), size_t(100)}) {
          if (first + int64_t(n) > 203) continue;
          std::vector<float> got(n + 1, -99.f);
          (b == 4 ? cv.s4_to_f32 : cv.s2_to_f32)(packed.data(), first, got.data(), n);
          for (size_t i = 0; i < n; ++i)
            CHECK(got[i] == float(codes[first + i]), std::string(isa_name(static_cast<Isa>(isa))) + " s" +
                                                          std::to_string(b) + " code " + std::to_string(first + i));
          CHECK(got[n] == -99.f, "wrote past n");
        }
    }
  }
}

TEST(runtime_binary_to_f32_every_isa_and_offset) {
  std::mt19937 rng(6);
  std::vector<int8_t> codes(203);
  for (auto& c : codes) c = rng() % 2 ? 1 : -1;
  std::vector<uint8_t> packed(lowbit_row_bytes(203, 1) + 8, 0);
  lowbit_pack(1, 203, 1, codes.data(), packed.data());
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa)
    for (int64_t first : {0, 1, 7, 8, 13, 40})
      for (size_t n : {size_t(0), size_t(1), size_t(9), size_t(16), size_t(33), size_t(150)}) {
        if (first + int64_t(n) > 203) continue;
        std::vector<float> got(n + 1, -99.f);
        weight_convert_ukernels(static_cast<Isa>(isa)).s1_to_f32(packed.data(), first, got.data(), n);
        for (size_t i = 0; i < n; ++i)
          CHECK(got[i] == float(codes[first + i]), std::string(isa_name(static_cast<Isa>(isa))) + " s1 code " +
                                                       std::to_string(first + i));
        CHECK(got[n] == -99.f, "wrote past n");
      }
}

TEST(runtime_packed_weight_panels) {
  std::mt19937 rng(3);
  for (int isa = 0; isa <= static_cast<int>(cpu_isa()); ++isa) {
    const int64_t mr = f32_gemm_ukernel_for(static_cast<Isa>(isa)).mr;
    for (int64_t M : {1, 5, 13, 40})
      for (int64_t K : {1, 9, 321, 700}) {
        std::vector<float> w = test::random_vec(M * K, rng);
        std::vector<uint16_t> h(M * K);
        std::vector<int8_t> q(M * K);
        for (int64_t i = 0; i < M * K; ++i) {
          q[i] = static_cast<int8_t>(static_cast<int>(w[i] * 127));
          h[i] = static_cast<uint16_t>(0x3c00 + (i % 1000));  // 1 + i/1024: exact in f32
        }
        // 4- and 2-bit codes of the same weights, rows bit-packed as the file stores them
        std::vector<int8_t> q4(M * K), q2(M * K);
        for (int64_t i = 0; i < M * K; ++i) {
          q4[i] = static_cast<int8_t>(std::max(-8, std::min(7, static_cast<int>(w[i] * 8))));
          q2[i] = static_cast<int8_t>(std::max(-2, std::min(1, static_cast<int>(w[i] * 2))));
        }
        std::vector<int8_t> q1(M * K);
        for (int64_t i = 0; i < M * K; ++i) q1[i] = w[i] >= 0 ? 1 : -1;
        std::vector<uint8_t> p4(M * lowbit_row_bytes(K, 4)), p2(M * lowbit_row_bytes(K, 2)), p1(M * lowbit_row_bytes(K, 1));
        lowbit_pack(M, K, 4, q4.data(), p4.data());
        lowbit_pack(M, K, 2, q2.data(), p2.data());
        lowbit_pack(M, K, 1, q1.data(), p1.data());
        for (WDtype dt : {WDtype::f32, WDtype::f16, WDtype::s8, WDtype::s4, WDtype::s2, WDtype::s1}) {
          const void* src = dt == WDtype::f32   ? static_cast<const void*>(w.data())
                            : dt == WDtype::f16 ? static_cast<const void*>(h.data())
                            : dt == WDtype::s8  ? static_cast<const void*>(q.data())
                            : dt == WDtype::s4  ? static_cast<const void*>(p4.data())
                            : dt == WDtype::s2  ? static_cast<const void*>(p2.data())
                                                : static_cast<const void*>(p1.data());
          const PackedWeights P = pack_weights(dt, src, M, K, mr);
          for (int64_t p0 : {int64_t(0), P.panels() / 2}) {
            const int64_t p1 = P.panels();
            std::vector<float> buf(weight_panels_scratch(P, p0, p1) + 1);
            const PanelView V = weight_panels(P, p0, p1, buf.data(), static_cast<Isa>(isa));
            for (int64_t k0 = 0; k0 < K; k0 += P.kc) {
              const int64_t kcb = std::min(P.kc, K - k0);
              for (int64_t p = p0; p < p1; ++p)
                for (int64_t k = 0; k < kcb; ++k)
                  for (int64_t i = 0; i < mr; ++i) {
                    const int64_t row = p * mr + i;
                    if (row >= M && dt == WDtype::s1) continue;  // no 0 among binary codes: padding rows feed only C rows never stored
                    const float want = row >= M ? 0.f
                                       : dt == WDtype::f32 ? w[row * K + k0 + k]
                                       : dt == WDtype::f16 ? f16_to_f32_value(h[row * K + k0 + k])
                                       : dt == WDtype::s8  ? float(q[row * K + k0 + k])
                                       : dt == WDtype::s4  ? float(q4[row * K + k0 + k])
                                       : dt == WDtype::s2  ? float(q2[row * K + k0 + k])
                                                           : float(q1[row * K + k0 + k]);
                    CHECK(V.at(k0, kcb, p)[k * mr + i] == want, "panel element");
                  }
            }
          }
        }
      }
  }
}

TEST(runtime_memory_plan_never_overlaps_live_tensors) {
  std::mt19937 rng(9);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + static_cast<int>(rng() % 40);
    std::vector<rt::PlanTensor> t(n);
    for (int i = 0; i < n; ++i) {
      t[i].bytes = static_cast<int64_t>(rng() % 5000);
      t[i].first = i;
      t[i].last = i + static_cast<int>(rng() % 6);
      if (i > 0 && rng() % 7 == 0) t[i].alias = static_cast<int32_t>(rng() % i);
    }
    const rt::MemoryPlan p = rt::plan_memory(t);
    // Effective lifetimes and buffers after aliasing.
    std::vector<int> root(n), first(n), last(n);
    for (int i = 0; i < n; ++i) {
      root[i] = t[i].alias >= 0 ? root[t[i].alias] : i;
      first[i] = t[i].first;
      last[i] = t[i].last;
    }
    for (int i = 0; i < n; ++i) {
      first[root[i]] = std::min(first[root[i]], t[i].first);
      last[root[i]] = std::max(last[root[i]], t[i].last);
    }
    for (int i = 0; i < n; ++i) {
      CHECK(p.offset[i] == p.offset[root[i]], "alias shares its root's buffer");
      if (root[i] != i || t[i].bytes == 0) continue;
      CHECK(p.offset[i] % 64 == 0 && p.offset[i] + t[i].bytes <= p.bytes_per_image, "in the arena");
      for (int j = 0; j < i; ++j) {
        if (root[j] != j || t[j].bytes == 0) continue;
        const bool live = first[i] <= last[j] && first[j] <= last[i];
        const bool overlap = p.offset[i] < p.offset[j] + t[j].bytes && p.offset[j] < p.offset[i] + t[i].bytes;
        CHECK(!(live && overlap), "two live tensors share bytes");
      }
    }
  }
}

TEST(runtime_crc32_known_value) {
  const char* s = "123456789";
  CHECK(rt::crc32(reinterpret_cast<const uint8_t*>(s), 9) == 0xCBF43926u, "CRC-32 check value");
}

TEST(runtime_loader_rejects_garbage) {
  std::mt19937 rng(4);
  int rejected = 0;
  for (int trial = 0; trial < 300; ++trial) {
    std::vector<uint8_t> b(64 + rng() % 512);
    for (auto& v : b) v = static_cast<uint8_t>(rng());
    if (trial % 2) std::memcpy(b.data(), rt::kMagic, 8);
    try {
      rt::Engine e(b.data(), b.size());
    } catch (const rt::FormatError&) {
      ++rejected;
    }
  }
  CHECK(rejected == 300, "every garbage buffer is a FormatError");
  try {
    rt::Engine e(nullptr, 0);
    CHECK(false, "empty input loaded");
  } catch (const rt::FormatError&) {
  }
}
