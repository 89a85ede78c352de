#!/usr/bin/env bash
# Development build: compiles the core into build/dev and copies _core next to the Python sources,
# so `PYTHONPATH=python pytest` runs against it without pip. Serialized with flock so several
# shells can call it at once. Extra arguments go to cmake (e.g. -DEDGEOPT_BUILD_TESTS=ON).
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p build
exec 9>build/.dev.lock
flock 9
if [ ! -f build/dev/build.ninja ] || [ $# -gt 0 ]; then
  cmake -S . -B build/dev -G Ninja -DEDGEOPT_INPLACE=ON -DEDGEOPT_BUILD_TESTS=ON \
    -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "$@" >/dev/null
fi
cmake --build build/dev
