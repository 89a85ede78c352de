// How fast this machine's AMX unit is right now. On the Xeon KVM guests the same tile loop ran at
// two speeds about 3x apart, switching every few seconds with no steal time in /proc/stat (a
// neighbour on the host sharing the core's tile unit is the likely cause), so an AMX figure means
// little unless the state it was taken in is known. Run this before and after a benchmark.
//
// Loop: 2 x 2 accumulator tiles, 4 tile loads and 4 TDPBSSD per 64-deep step, 8 steps per block
// (zero, steps, store), from 16 KiB of operands in L1. Prints ns per TDPBSSD for `samples`
// samples spread over about a second: one tile product is 16 cycles, 7.6 ns at 2.1 GHz.
//
//   build/dev/bench_amx_probe [samples=10]
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include "isa/isa.h"

namespace {

struct alignas(64) TileConfig {
  uint8_t palette_id, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
};

alignas(64) int8_t operands[16 << 10];
alignas(64) int32_t out[4][256];

// Only the tile code is compiled for AMX (a target attribute, not the file's flags), so the rest
// of main runs on any x86-64 and can say the CPU has no AMX.
#define EO_AMX __attribute__((target("amx-tile,amx-int8")))

EO_AMX void load_tiles() {
  TileConfig cfg;
  std::memset(&cfg, 0, sizeof cfg);
  cfg.palette_id = 1;
  for (int t = 0; t < 8; ++t) {
    cfg.rows[t] = 16;
    cfg.colsb[t] = 64;
  }
  __asm__ volatile("" ::: "memory");  // GCC's _tile_loadconfig declares a read of 8 bytes only
  _tile_loadconfig(&cfg);
}

EO_AMX void release_tiles() { _tile_release(); }

// ns per tile product over `blocks` blocks.
EO_AMX double sample(int blocks) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int b = 0; b < blocks; ++b) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    for (int s = 0; s < 8; ++s) {
      const int8_t* p = operands + (s % 4) * 4096;
      _tile_loadd(4, p, 64);
      _tile_loadd(5, p + 1024, 64);
      _tile_loadd(6, p + 2048, 64);
      _tile_loadd(7, p + 3072, 64);
      _tile_dpbssd(0, 4, 6);
      _tile_dpbssd(1, 4, 7);
      _tile_dpbssd(2, 5, 6);
      _tile_dpbssd(3, 5, 7);
    }
    _tile_stored(0, out[0], 64);
    _tile_stored(1, out[1], 64);
    _tile_stored(2, out[2], 64);
    _tile_stored(3, out[3], 64);
  }
  const double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - t0).count();
  return ns / (blocks * 32.0);
}

}  // namespace

int main(int argc, char** argv) {
  const int samples = argc > 1 ? std::atoi(argv[1]) : 10;
  if (samples < 1) {
    std::fprintf(stderr, "usage: bench_amx_probe [samples >= 1]\n");
    return 2;
  }
  if (!eo::cpu_has_amx_int8()) {
    std::printf("no AMX-INT8 on this CPU (or the OS refused the tile state)\n");
    return 0;
  }
  for (size_t i = 0; i < sizeof operands; ++i) operands[i] = int8_t(i * 37 % 255 - 127);
  load_tiles();
  sample(2000);  // warm-up
  std::printf("ns per TDPBSSD (16x16x64), %d samples of 20000:", samples);
  for (int i = 0; i < samples; ++i) {
    std::printf(" %.2f", sample(20000 / 32));
    std::fflush(stdout);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::printf("\n");
  release_tiles();
}
