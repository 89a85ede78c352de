"""The ISA paths this CPU has (every one of them is tested: DESIGN.md), lowest first."""
from edgeopt import _core

LEVELS = ["scalar", "avx2", "avx512"]
ISAS = LEVELS[: LEVELS.index(_core.runtime.cpu_isa()) + 1]
