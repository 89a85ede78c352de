#!/usr/bin/env bash
# Build the .edgeopt loader fuzzer (clang libFuzzer + AddressSanitizer + UBSan) and run it.
#   benchmarks/fuzz/run.sh [seconds=300] [extra libFuzzer flags...]
# Needs clang (apt-get install clang), Eigen and oneTBB. Artifacts (crashing inputs) land in
# build/fuzz/artifacts; the corpus grows in build/fuzz/corpus. Exits non-zero on a crash.
#   FUZZ_JOBS   parallel compiles (default: nproc)
#   FUZZ_CORPUS corpus folder (default build/fuzz/corpus, seeded by make_corpus.py when empty)
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-300}
shift || true
B=build/fuzz
CORPUS=${FUZZ_CORPUS:-$B/corpus}
mkdir -p $B/obj "$CORPUS" $B/artifacts
CXX=${CXX:-clang++}
FLAGS="-std=c++17 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined -Icpp/src -I/usr/include/eigen3"
# Every kernel source (the loader reaches conv, pool, activation... kernels when it runs a model),
# ISA files with their flags as in CMakeLists.txt. An object is rebuilt when its source or any
# header it included (clang's -MMD list) is newer, so a rerun after a one-file change compiles
# that file only.
build_one() {
  src=$1; obj=$B/obj/$(echo "$src" | tr / _).o
  extra=""
  case "$src" in
    *_avx2.cc) extra="-mavx2 -mfma -mf16c";;
    *_avx512.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c";;
    *_avx512vnni.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mavx512vnni";;
    *_amx.cc) extra="-mavx512f -mavx512bw -mavx512dq -mavx512vl -mavx2 -mfma -mf16c -mavx512vnni -mamx-tile -mamx-int8";;
  esac
  stale=0
  if [ ! -f "$obj" ] || [ ! -f "$obj.d" ]; then
    stale=1
  else
    for dep in $(sed -e 's/^[^:]*://' -e 's/\\$//' "$obj.d"); do
      if [ ! -e "$dep" ] || [ "$dep" -nt "$obj" ]; then stale=1; break; fi
    done
  fi
  if [ $stale = 1 ]; then
    rm -f "$obj"  # a failed compile must not leave an old object to be linked
    case "$src" in
      # clang 14 rejects __builtin_cpu_supports("f16c"): this file (it only reads CPU features)
      # is compiled by g++ without instrumentation; every other file must compile with clang.
      cpp/src/isa/isa.cc)
        g++ -std=c++17 -O1 -g -Icpp/src -I/usr/include/eigen3 $extra -MMD -MF "$obj.d" -c "$src" -o "$obj" || exit 1;;
      *)
        $CXX $FLAGS -fsanitize=fuzzer-no-link $extra -MMD -MF "$obj.d" -c "$src" -o "$obj" || exit 1;;
    esac
    echo "compiled $src" >&2
  fi
  echo "$obj"
}
export -f build_one; export B CXX FLAGS
t0=$(date +%s)
OBJS=$(find cpp/src -name '*.cc' | sort | xargs -P "${FUZZ_JOBS:-$(nproc)}" -I{} bash -c 'build_one {}')
if [ ! -f $B/fuzz_load ] || [ benchmarks/fuzz/fuzz_load.cc -nt $B/fuzz_load ] ||
   [ -n "$(find $B/obj -name '*.o' -newer $B/fuzz_load | head -1)" ]; then
  $CXX $FLAGS -fsanitize=fuzzer benchmarks/fuzz/fuzz_load.cc $OBJS -ltbb -o $B/fuzz_load
fi
echo "fuzz_load built in $(( $(date +%s) - t0 )) s" >&2
if [ -z "$(ls -A "$CORPUS")" ]; then
  # the in-place development build if there is one (tools/dev-build.sh), else the installed package
  if compgen -G "python/edgeopt/_core*.so" >/dev/null; then
    PYTHONPATH=python python3 benchmarks/fuzz/make_corpus.py "$CORPUS"
  else
    python3 benchmarks/fuzz/make_corpus.py "$CORPUS"
  fi
fi
# detect_leaks stays on; the rss limit bounds what a hostile file may make the loader allocate.
exec $B/fuzz_load "$CORPUS" -max_total_time="$SECS" -rss_limit_mb=3072 -max_len=65536 -timeout=20 \
  -artifact_prefix=$B/artifacts/ -print_final_stats=1 "$@"
