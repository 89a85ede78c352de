// Integer division helpers for tile, panel and plane arithmetic (b > 0).
#pragma once
#include <cstdint>

namespace eo {

// Rounded up; a may be negative (rounds toward zero then, as the plane-row counts expect).
constexpr int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }
constexpr int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }
// Rounded toward minus infinity (tap offsets before the first row or column).
constexpr int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

}  // namespace eo
