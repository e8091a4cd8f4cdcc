#!/usr/bin/env bash
# Checking runs of the CPU tests under sanitizers (issue 9). Any sanitizer report fails the run.
#   bash scripts/sanitize.sh          AddressSanitizer + UndefinedBehaviorSanitizer on the CI subset:
#                                     the hostile-input readers (safetensors, IDX, images, configs),
#                                     the data loader's threads, tensor views and autograd, the fuzz
#                                     corpus replays, and the emulated CUDA suite ("emu:" tests)
#   bash scripts/sanitize.sh --full   the same sanitizers on every CPU test (README: how long)
# Builds in build-sanitize (ccache is used when present). Only what the run needs is built: the
# library, the chosen test files and the fuzz replays, no examples, no benchmarks, no CUDA
# (nvcc-compiled code cannot be instrumented).
set -euo pipefail
cd "$(dirname "$0")/.."

# The CI subset: test files (tests/test_<name>.cpp) chosen for what sanitizers catch: parsing of
# untrusted bytes, threads, index arithmetic of views. Compute-heavy tests (kernels, whole models:
# test_models alone takes 150 s under ASan) run in --full.
SUBSET="safetensors;data;image_corpus;shape;tensor;autograd"

mode=${1:-subset}
case "$mode" in
  subset) files=$SUBSET ;;
  --full) files="" ;;
  *) echo "usage: bash scripts/sanitize.sh [--full]" >&2; exit 2 ;;
esac

BUILD=${SANITIZE_BUILD_DIR:-build-sanitize}
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}; fi
# -O0 -g1: compiles in half the time of -O1 -g (the build is most of this script's cost), checks
# every access (nothing optimised away), and stack traces keep file:line.
# EMBER_EMULATION builds the emulated CUDA suite where that option exists (ignored otherwise).
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O0 -g1" \
  -DEMBER_CUDA=OFF -DEMBER_SANITIZE=address,undefined -DEMBER_EMULATION=ON \
  -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF -DEMBER_TEST_FILES="$files" > /dev/null
# Without examples and benchmarks, everything left is what the tests need.
cmake --build "$BUILD" -j "$(nproc)"

# Abort on the first report of any kind, with a stack trace; leaks are reports too. An allocation
# over 1 GB fails: no test needs one, and hostile input must never cause one.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:max_allocation_size_mb=1024:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
# Every test of this build: the chosen CPU test files ("cpu:"), the check of their CTest names
# ("meta:"), the fuzz corpus replays ("fuzz:") and the emulated CUDA suite ("emu:").
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 900
