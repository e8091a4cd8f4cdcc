#!/usr/bin/env bash
# libFuzzer runs of the fuzz targets in tests/fuzz (issue 9), built by clang with ASan + UBSan.
#   bash scripts/fuzz.sh TARGET [SECONDS [libFuzzer flags...]]     e.g. bash scripts/fuzz.sh image 3600
#   TARGET: safetensors | idx | image | model_config             SECONDS: default 120
# Needs clang 14 and its libFuzzer runtime, which CI does not (CI only replays the corpora):
#   apt-get install clang-14 libclang-rt-14-dev
# Reads the committed seeds in tests/fuzz/corpus/TARGET (never writes them); new coverage goes to
# build-fuzz/corpus/TARGET. A crash, leak, timeout or sanitizer report stops the run and is saved
# under build-fuzz/artifacts/TARGET/: fix the bug, then commit the file as
# tests/fuzz/corpus/TARGET/crash-<what-it-was> so every CI run replays it.
set -euo pipefail
cd "$(dirname "$0")/.."
usage="usage: bash scripts/fuzz.sh safetensors|idx|image|model_config [SECONDS [libFuzzer flags...]]"
target=${1:?$usage}
seconds=${2:-120}
shift $(($# < 2 ? $# : 2))
[ -d "tests/fuzz/corpus/$target" ] || { echo "$usage" >&2; exit 2; }
CXX=${FUZZ_CXX:-clang++-14}
command -v "$CXX" >/dev/null ||
  { echo "scripts/fuzz.sh needs $CXX: apt-get install clang-14 libclang-rt-14-dev" >&2; exit 2; }

BUILD=${FUZZ_BUILD_DIR:-build-fuzz}
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}; fi
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_CXX_COMPILER="$CXX" -DCMAKE_BUILD_TYPE=Fuzz -DCMAKE_CXX_FLAGS_FUZZ="-O1 -g" \
  -DEMBER_CUDA=OFF -DEMBER_SANITIZE=address,undefined -DEMBER_FUZZ=ON \
  -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF > /dev/null
cmake --build "$BUILD" --target "fuzz_$target"

mkdir -p "$BUILD/corpus/$target" "$BUILD/artifacts/$target"
export ASAN_OPTIONS="halt_on_error=1:detect_leaks=1:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=("-dict=tests/fuzz/$target.dict")
# -rss_limit_mb: an input that makes the reader allocate gigabytes is a finding, not a slow run.
"$BUILD/tests/fuzz/fuzz_$target" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
  -artifact_prefix="$BUILD/artifacts/$target/" "${dict[@]}" "$@" "$BUILD/corpus/$target" "tests/fuzz/corpus/$target"
