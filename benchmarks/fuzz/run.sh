#!/usr/bin/env bash
# Build the .edgeopt loader fuzzer (clang libFuzzer + AddressSanitizer + UBSan) and run it.
#   benchmarks/fuzz/run.sh [seconds=300] [extra libFuzzer flags...]
# Needs clang (apt-get install clang), Eigen and oneTBB. Artifacts (crashing inputs) land in
# build/fuzz/artifacts; the corpus grows in build/fuzz/corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-300}
shift || true
B=build/fuzz
mkdir -p $B/obj $B/corpus $B/artifacts
CXX=${CXX:-clang++}
FLAGS="-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -Icpp/src -I/usr/include/eigen3"
# Every kernel source (the loader reaches conv, pool, activation... kernels when it runs a model),
# ISA files with their flags as in CMakeLists.txt.
build_one() {
  src=$1; obj=$B/obj/$(echo "$src" | tr / _).o
  extra=""
  case "$src" in
    *_avx2.cc) extra="-mavx2 -mfma -mf16c";;
    *_avx512.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c";;
    *_avx512vnni.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mavx512vnni";;
    *_amx.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mavx512vnni -mamx-tile -mamx-int8";;
  esac
  if [ ! -f "$obj" ] || [ "$src" -nt "$obj" ] || [ cpp/src/runtime/op.h -nt "$obj" ]; then
    # clang 14 rejects __builtin_cpu_supports("f16c") (isa/isa.cc): such a file falls back to
    # g++ without instrumentation (it only reads CPU features).
    $CXX $FLAGS -fsanitize=fuzzer-no-link $extra -c "$src" -o "$obj" 2>/dev/null ||
      g++ -std=c++17 -O1 -g -Icpp/src -I/usr/include/eigen3 $extra -c "$src" -o "$obj"
  fi
  echo "$obj"
}
export -f build_one; export B CXX FLAGS
OBJS=$(find cpp/src -name '*.cc' | sort | xargs -P "$(nproc)" -I{} bash -c 'build_one {}')
$CXX $FLAGS -fsanitize=fuzzer benchmarks/fuzz/fuzz_load.cc $OBJS -ltbb -o $B/fuzz_load
if [ -z "$(ls -A $B/corpus)" ]; then
  PYTHONPATH=python python3 benchmarks/fuzz/make_corpus.py $B/corpus
fi
# detect_leaks stays on; the rss limit bounds what a hostile file may make the loader allocate.
exec $B/fuzz_load $B/corpus -max_total_time="$SECS" -rss_limit_mb=3072 -max_len=65536 -timeout=20 \
  -artifact_prefix=$B/artifacts/ -print_final_stats=1 "$@"
