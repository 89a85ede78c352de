#include "isa/isa.h"

#include <atomic>
#if defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace eo {
namespace {

Isa detect() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  // libgcc's checks include the OS having enabled the register state (XCR0).
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("fma"))
    return Isa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
      __builtin_cpu_supports("f16c"))
    return Isa::avx2;
#endif
  return Isa::scalar;
}

Isa initial() {
  Isa best = detect();
  const char* env = std::getenv("EDGEOPT_ISA");
  Isa forced;
  if (env && *env && parse_isa(env, &forced) && forced < best) return forced;
  return best;
}

std::atomic<int>& active() {
  static std::atomic<int> a{static_cast<int>(initial())};
  return a;
}

#if defined(__x86_64__)
uint64_t xcr0() {
  uint32_t lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  return (uint64_t(hi) << 32) | lo;
}
#endif

bool detect_amx_int8() {
#if defined(__x86_64__) && defined(__linux__)
  if (cpu_isa() != Isa::avx512) return false;
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool amx_tile = d & (1u << 24), amx_int8 = d & (1u << 25);
  if (!amx_tile || !amx_int8) return false;
  if ((xcr0() & (3u << 17)) != (3u << 17)) return false;  // XTILECFG and XTILEDATA enabled by the OS
  constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

}  // namespace

bool cpu_has_avx512vnni() {
#if defined(__x86_64__)
  static const bool has = cpu_isa() == Isa::avx512 && __builtin_cpu_supports("avx512vnni");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512vpopcntdq() {
#if defined(__x86_64__)
  static const bool has = cpu_isa() == Isa::avx512 && __builtin_cpu_supports("avx512vpopcntdq");
  return has;
#else
  return false;
#endif
}

bool cpu_has_avx512icl() {
#if defined(__x86_64__)
  static const bool has = cpu_has_avx512vnni() && cpu_has_avx512vpopcntdq() &&
                          __builtin_cpu_supports("avx512bitalg") && __builtin_cpu_supports("avx512vbmi") &&
                          __builtin_cpu_supports("gfni");
  return has;
#else
  return false;
#endif
}

bool cpu_has_amx_int8() {
  static const bool has = cpu_has_avx512vnni() && detect_amx_int8();
  return has;
}

Isa cpu_isa() {
  static const Isa best = detect();
  return best;
}

Isa active_isa() { return static_cast<Isa>(active().load(std::memory_order_relaxed)); }

void set_isa(Isa isa) {
  if (isa > cpu_isa())
    throw std::invalid_argument(std::string("this CPU does not support ISA path '") + isa_name(isa) +
                                "' (best available: '" + isa_name(cpu_isa()) + "')");
  active().store(static_cast<int>(isa), std::memory_order_relaxed);
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::scalar: return "scalar";
    case Isa::avx2: return "avx2";
    case Isa::avx512: return "avx512";
  }
  return "unknown";
}

bool parse_isa(const char* name, Isa* out) {
  for (Isa i : {Isa::scalar, Isa::avx2, Isa::avx512}) {
    if (std::strcmp(name, isa_name(i)) == 0) {
      *out = i;
      return true;
    }
  }
  return false;
}

}  // namespace eo
