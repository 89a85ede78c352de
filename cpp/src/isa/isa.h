// Instruction-set paths. Kernels are compiled once per path (files *_<isa>.cc) and the dispatch
// table (dispatch.cc) picks one at run time from the CPU's features, never from the build machine's.
// EDGEOPT_ISA=scalar|avx2|avx512 (or set_isa) forces a lower path, e.g. to test every path.
#pragma once

namespace eo {

enum class Isa : int { scalar = 0, avx2 = 1, avx512 = 2 };

Isa cpu_isa();             // the best path this CPU (and OS) supports
Isa active_isa();          // the path in use
void set_isa(Isa isa);     // throws std::invalid_argument if the CPU lacks it
const char* isa_name(Isa isa);
bool parse_isa(const char* name, Isa* out);

// Extra CPU features used by the int8 kernels (qs8-gemm); they refine Isa::avx512 without changing
// what the Isa values mean. AMX also needs the kernel's permission to use the tile data state
// (arch_prctl ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA): cpu_has_amx_int8() asks for it once and
// reports false if it is refused, so callers fall back to VNNI.
bool cpu_has_avx512vnni();
bool cpu_has_amx_int8();
// VPOPCNTDQ (64-bit lane popcount, Ice Lake and later), for the binary kernels (b1-gemm).
bool cpu_has_avx512vpopcntdq();
// Ice Lake's whole AVX-512 set: VNNI, VPOPCNTDQ, BITALG, VBMI and GFNI (the binary direct conv).
bool cpu_has_avx512icl();

}  // namespace eo
