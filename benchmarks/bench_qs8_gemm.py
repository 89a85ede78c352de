"""int8 inference GEMM (edgeopt._core.testing.qgemm) throughput per path, against fp32 sgemm on the same
shapes in the same run, and as a fraction of this CPU's int8 peak.

Shapes: 1024^3; CIFAR ResNet-20's 3x3 convolutions as GEMMs at batch 1 (M = H*W output pixels,
N = Cout, K = Cin*9); MobileNet-v2's 1x1 convolutions at 224x224 input (M = H*W, N = Cout, K = Cin); the list is
tests/shapes.py, which tests/kernels/test_qs8_gemm.py runs too.
Operands are random; weights are packed once outside the timed region (as a compiled model does),
activation and output conversion are inside it (qgemm reads u8 and writes u8).

Peak (per core per cycle, multiply-accumulates = 2 ops each), times the measured clock and threads:
  avx2        32 MACs: vpmaddwd ymm = 16 u8*s8 products widened to 16 bit, 2 ports (the exact path)
  avx512vnni 128 MACs: vpdpbusd zmm = 64 MACs, 2 ports (server cores with 2 512-bit FMA units)
  amx       1024 MACs: TDPBUSD 16x16x64 = 16384 MACs per 16 cycles
  scalar       - (no meaningful SIMD peak)
Clock: a tight chain of dependent imul (3 cycles each) compiled with `cc`, timed; falls back to /proc/cpuinfo "cpu MHz" if no C compiler is available. The method is printed.

    PYTHONPATH=python python benchmarks/bench_qs8_gemm.py [--threads 1 2] [--paths amx avx2] [--quick]
"""
import argparse
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

import numpy as np

from edgeopt import _core

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from shapes import QS8_GEMM_SHAPES as SHAPES  # noqa: E402  (shared with tests/kernels/test_qs8_gemm.py)

PEAK_MACS_PER_CYCLE = {"scalar": None, "avx2": 32, "avx512vnni": 128, "amx": 1024}

CLOCK_C = r"""
#include <stdio.h>
#include <time.h>
/* A chain of dependent 64-bit imul (latency 3 cycles on every recent Intel and AMD core). Not a
   chain of add-immediates: Golden Cove's renamer folds those and the loop would report ~15 GHz. */
int main(void) {
  const long n = 60000000;
  long x = 3, y = 1;
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  for (long i = 0; i < n; i += 10)
    __asm__ volatile("imul %1,%0\n\timul %1,%0\n\timul %1,%0\n\timul %1,%0\n\timul %1,%0\n\t"
                     "imul %1,%0\n\timul %1,%0\n\timul %1,%0\n\timul %1,%0\n\timul %1,%0"
                     : "+r"(x) : "r"(y));
  clock_gettime(CLOCK_MONOTONIC, &t1);
  double s = (t1.tv_sec - t0.tv_sec) + 1e-9 * (t1.tv_nsec - t0.tv_nsec);
  printf("%f %ld\n", 3.0 * n / s / 1e9, x);
  return 0;
}
"""


def measure_clock_ghz():
    try:
        with tempfile.TemporaryDirectory() as d:
            src, exe = os.path.join(d, "clock.c"), os.path.join(d, "clock")
            with open(src, "w") as f:
                f.write(CLOCK_C)
            subprocess.run(["cc", "-O2", src, "-o", exe], check=True, capture_output=True)
            runs = [float(subprocess.run([exe], check=True, capture_output=True, text=True)
                          .stdout.split()[0]) for _ in range(5)]
            return max(runs), "dependent-imul loop, 3 cycles each, max of 5 runs"
    except (OSError, subprocess.CalledProcessError):
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        return max(mhz) / 1000.0, "/proc/cpuinfo cpu MHz"


def median_seconds(fn, repeats, min_time):
    fn()
    t = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t, 1e-7)
    inner = max(1, int(min_time / once))
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t) / inner)
    return float(np.median(samples))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--paths", nargs="+", default=_core.testing.qgemm_paths())
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="fewer repeats, shorter samples, no scalar")
    args = ap.parse_args()
    repeats, min_time = (3, 0.01) if args.quick else (args.repeats, 0.05)
    paths = [p for p in args.paths if not (args.quick and p == "scalar")]
    ghz, how = measure_clock_ghz()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"int8 paths available: {_core.testing.qgemm_paths()}")
    print(f"# clock {ghz:.2f} GHz ({how}); GOPS = 2*M*N*K / median time; "
          f"peak = MACs/cycle/core * 2 * GHz * threads")
    rng = np.random.default_rng(0)
    saved = _core.runtime.get_num_threads()
    hdr = f"{'shape':28s} {'M':>6s} {'N':>5s} {'K':>5s} thr " + " ".join(
        f"{p + ' GOPS (%pk)':>22s}" for p in paths) + f" {'fp32 GFLOPS':>12s} {'best int8/fp32':>15s}"
    print(hdr)
    try:
        for threads in args.threads:
            _core.runtime.set_num_threads(threads)
            for name, M, N, K in SHAPES:
                a = rng.integers(0, 256, (M, K), dtype=np.uint8)
                b = rng.integers(-128, 128, (K, N), dtype=np.int8)
                bias = rng.integers(-1000, 1000, N, dtype=np.int32)
                scale = np.full(N, 2.0**-13, np.float32)  # per output channel, float32
                packed = _core.testing.qgemm_pack(b)
                ops = 2.0 * M * N * K
                cells, best = [], 0.0
                for p in paths:
                    t = median_seconds(lambda: _core.testing.qgemm(a, packed, 128, bias, scale, 0, 0, 255,
                                                           path=p), repeats, min_time)
                    gops = ops / t / 1e9
                    best = max(best, gops)
                    peak = PEAK_MACS_PER_CYCLE.get(p)
                    frac = f"({100 * gops / (peak * 2 * ghz * threads):4.1f}%)" if peak else "(  -  )"
                    cells.append(f"{gops:14.1f} {frac}")
                af, bf = a.astype(np.float32), b.astype(np.float32)
                t32 = median_seconds(lambda: _core.testing.sgemm(af, bf), repeats, min_time)
                gflops = ops / t32 / 1e9
                print(f"{name:28s} {M:6d} {N:5d} {K:5d} {threads:3d} " + " ".join(cells) +
                      f" {gflops:12.1f} {best / gflops:14.1f}x", flush=True)
    finally:
        _core.runtime.set_num_threads(saved)


if __name__ == "__main__":
    main()
