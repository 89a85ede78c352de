#!/usr/bin/env bash
# Builds the kernel library and its C++ tests with AddressSanitizer + UndefinedBehaviorSanitizer
# (build/asan) and runs them. Any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/asan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DEDGEOPT_SANITIZE=ON \
  -DEDGEOPT_BUILD_TESTS=ON -DEDGEOPT_PYTHON=OFF >/dev/null
cmake --build build/asan --target kernel_tests
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  build/asan/kernel_tests "$@"
