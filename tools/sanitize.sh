#!/usr/bin/env bash
# Builds the kernel library, its C++ tests and the Python extension with AddressSanitizer +
# UndefinedBehaviorSanitizer (build/asan), runs the C++ tests, then the thread-count stress
# (tests/stress_threads.py: engines and training kernels shared by 8 threads while another changes
# set_num_threads) on every ISA path with the sanitized _core preloaded into Python. Any report
# fails the run. STRESS_SECONDS (default 10) is per ISA path.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEOPT_SANITIZE=ON \
  -DEDGEOPT_BUILD_TESTS=ON -DEDGEOPT_PYTHON=ON -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" >/dev/null
cmake --build build/asan --target kernel_tests _core
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build/asan/kernel_tests "$@"

# The Python sources with the sanitized _core beside them (never the dev or installed one).
py=build/asan/py
rm -rf "$py" && mkdir -p "$py"
cp -r python/edgeopt "$py/"
rm -f "$py"/edgeopt/_core*.so
cp build/asan/_core*.so "$py/edgeopt/"
# CPython itself is not instrumented: ASan's runtime must be loaded first, and the interpreter's
# own allocations at exit are not ours to report (detect_leaks=0).
LD_PRELOAD="$(g++ -print-file-name=libasan.so) $(g++ -print-file-name=libubsan.so)" \
  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  PYTHONPATH="$py" PYTHONMALLOC=malloc \
  python3 tests/stress_threads.py --isa all --seconds "${STRESS_SECONDS:-10}" --train
