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

}  // namespace eo
