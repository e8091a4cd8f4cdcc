#!/usr/bin/env bash
# Checking runs under sanitizers. Any sanitizer report fails the run.
#   bash scripts/sanitize.sh            AddressSanitizer + UndefinedBehaviorSanitizer: the emulated
#                                       CUDA suite ("emu: " tests, tests/emulation) in build-sanitize
#   bash scripts/sanitize.sh --thread   ThreadSanitizer on the emulator's race tests (build-tsan): the
#                                       emulated threads of a block are OS threads there, so a
#                                       shared-memory race between CUDA threads is a data race
# ccache is used when present. No CUDA toolkit is needed (nvcc-compiled code cannot be
# instrumented anyway: the kernels are compiled as host C++).
set -euo pipefail
cd "$(dirname "$0")/.."
if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}; fi
# The resource table of the launch checks: the one read from this checkout's CUDA build when
# scripts/test.sh made it (build/emu_kernel_resources.txt), else the committed one.
EMU_ARGS=()
if [ -n "${EMBER_EMU_RESOURCES:-}" ]; then EMU_ARGS+=("-DEMBER_EMU_RESOURCES=$EMBER_EMU_RESOURCES"); fi

mode=${1:-address}
case "$mode" in
  address) ;;
  --thread)
    # ---- ThreadSanitizer: only the emulator and its race tests (no ember library, no OpenMP) ----
    BUILD=${TSAN_BUILD_DIR:-build-tsan}
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g" \
      -DEMBER_CUDA=OFF -DEMBER_SANITIZE=thread -DEMBER_EMULATION=ON -DEMBER_EMU_TSAN_ONLY=ON \
      -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF "${EMU_ARGS[@]}" > /dev/null
    cmake --build "$BUILD" --target ember_emu_tsan -j "$(nproc)"
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1"
    cd "$BUILD"
    ctest --output-on-failure -R "^emu-tsan:" --timeout 900
    exit 0 ;;
  *) echo "usage: bash scripts/sanitize.sh [--thread]" >&2; exit 2 ;;
esac

# ---- AddressSanitizer + UndefinedBehaviorSanitizer on the emulated CUDA suite ----------------------
BUILD=${SANITIZE_BUILD_DIR:-build-sanitize}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g" \
  -DEMBER_CUDA=OFF -DEMBER_SANITIZE=address,undefined -DEMBER_EMULATION=ON \
  -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF "${EMU_ARGS[@]}" > /dev/null
cmake --build "$BUILD" --target ember_emu_tests ember_emu_tsan -j "$(nproc)"
# Abort on the first report, with a stack trace; leaks are reports too.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" -R "^emu(-tsan)?:" --timeout 900
