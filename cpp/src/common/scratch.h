// Per-thread scratch memory that grows and is reused across calls, so hot loops do not pay for
// large mallocs (and their page faults) every time. See the thread_local rule in parallel.h.
#pragma once
#include <cstddef>

namespace eo {

// A 64-byte aligned buffer of at least n floats, private to this thread. `slot` separates buffers
// that are live at the same time (e.g. packed A and packed B).
float* scratch_f32(size_t n, int slot);

}  // namespace eo
