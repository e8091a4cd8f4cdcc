#!/usr/bin/env bash
# Checking runs under sanitizers (issues 9 and 10). Any sanitizer report fails the run.
#   bash scripts/sanitize.sh           AddressSanitizer + UndefinedBehaviorSanitizer (build-sanitize) on
#                                      the CI subset of the CPU tests (the hostile-input readers:
#                                      safetensors, IDX, images, configs; the data loader's threads,
#                                      tensor views and autograd), the fuzz corpus replays, and the
#                                      emulated CUDA suite ("emu:" tests, docs/emulation.md)
#   bash scripts/sanitize.sh --full    the same, with every CPU test (README: how long)
#   bash scripts/sanitize.sh --thread  ThreadSanitizer on the emulator's race tests (build-tsan): the
#                                      emulated threads of a block are OS threads there, so a
#                                      shared-memory race between CUDA threads is a data race
# ccache is used when present. Only what the run needs is built: no examples, no benchmarks, no
# CUDA (nvcc-compiled code cannot be instrumented; the kernels are compiled as host C++).
set -euo pipefail
cd "$(dirname "$0")/.."

# The CI subset: test files (tests/test_<name>.cpp) chosen for what sanitizers catch: parsing of
# untrusted bytes, threads, index arithmetic of views. Compute-heavy tests (kernels, whole models:
# test_models alone takes 150 s under ASan) run in --full.
SUBSET="safetensors;data_idx;data_image_folder;data_loader;data_png;image_corpus;shape;tensor;autograd"

if command -v ccache >/dev/null; then export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}; fi
# The resource table of the emulator's launch checks: the one read from this checkout's CUDA build
# when scripts/test.sh made it (build/emu_kernel_resources.txt), else the committed one.
EMU_ARGS=()
if [ -n "${EMBER_EMU_RESOURCES:-}" ]; then EMU_ARGS+=("-DEMBER_EMU_RESOURCES=$EMBER_EMU_RESOURCES"); fi

mode=${1:-subset}
case "$mode" in
  subset) files=$SUBSET ;;
  --full) files="" ;;
  --thread)
    # ThreadSanitizer: only the emulator and its race tests (no ember library, no OpenMP).
    BUILD=${TSAN_BUILD_DIR:-build-tsan}
    cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g" \
      -DEMBER_CUDA=OFF -DEMBER_SANITIZE=thread -DEMBER_EMULATION=ON -DEMBER_EMU_TSAN_ONLY=ON \
      -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF "${EMU_ARGS[@]}" > /dev/null
    cmake --build "$BUILD" --target ember_emu_tsan -j "$(nproc)"
    export TSAN_OPTIONS="halt_on_error=0:second_deadlock_stack=1"
    cd "$BUILD"
    ctest --output-on-failure -R "^emu-tsan:" --timeout 900
    exit 0 ;;
  *) echo "usage: bash scripts/sanitize.sh [--full | --thread]" >&2; exit 2 ;;
esac

BUILD=${SANITIZE_BUILD_DIR:-build-sanitize}
# -O1 -g1: every access is still checked, the emulated kernels run at a usable speed, and stack
# traces keep file:line. float-cast-overflow is not part of -fsanitize=undefined: it reports a float
# converted to an integer type that cannot hold it (a NaN pixel, a 1e20 in a config), which C++
# leaves undefined.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Sanitize -DCMAKE_CXX_FLAGS_SANITIZE="-O1 -g1" \
  -DEMBER_CUDA=OFF -DEMBER_SANITIZE=address,undefined,float-cast-overflow -DEMBER_EMULATION=ON \
  -DEMBER_BUILD_EXAMPLES=OFF -DEMBER_BUILD_BENCHMARKS=OFF -DEMBER_TEST_FILES="$files" "${EMU_ARGS[@]}" > /dev/null
# Without examples and benchmarks, everything left is what the tests need.
cmake --build "$BUILD" -j "$(nproc)"

# Abort on the first report of any kind, with a stack trace; leaks are reports too. An allocation
# over 1 GB fails: no test needs one, and hostile input must never cause one.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1:max_allocation_size_mb=1024:allocator_may_return_null=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:report_error_type=1"
# Every test of this build: the chosen CPU test files ("cpu:"), the check of their CTest names
# ("meta:"), the fuzz corpus replays ("fuzz:") and the emulated CUDA suite ("emu:", "emu-tsan:").
# Under ASan the emulated suite runs every kernel family, on the smaller stand-in shapes the tests
# pick in a sanitizer build (test::gpu::kSanitized, tests/cuda/compare.h: every variant, size class
# and branch still reached). Left out: the tests whose time goes to the cuBLAS stand-in's plain
# loops (gemm, parity and the checkpoint round trip, runtime's training steps: library stand-in
# code, not ember's kernels), and spectral norm's grid of shapes, which even shrunk took over
# 10 minutes here (the fused kernels, tickets over several blocks included, run under ASan in the
# convergence, autograd and NaN tests). They run, optimised, in the main build's ctest
# (scripts/test.sh configures it with EMBER_EMULATION=ON); `--full` runs them here too.
skip='^emu:(gemm|cuda|cuda parity|runtime):|^emu:spectral_norm: fused CUDA kernels match the CPU over dims'
if [ "$mode" = "--full" ]; then skip='^$'; fi
cd "$BUILD"
ctest --output-on-failure -j "$(nproc)" --timeout 900 -E "$skip|^emu:"
# The emulated suite without detect_stack_use_after_return: the emulated CUDA threads are fibers,
# and ASan gives each fiber start a fresh fake stack (a map and an unmap per CUDA thread of every
# block), which made this suite 10x slower (one test: 36 s against 3.6 s). Everything else stays
# checked: heap, shared memory (on the heap, exact size), globals, the fibers' stack frames
# themselves, leaks and UBSan. What the check left out finds (a pointer to a returned function's
# local) is rare in kernels, whose data live in registers, shared and global memory; the CPU tests
# above keep it.
ASAN_OPTIONS="${ASAN_OPTIONS/detect_stack_use_after_return=1/detect_stack_use_after_return=0}" \
  ctest --output-on-failure -j "$(nproc)" --timeout 900 -R "^emu:" -E "$skip"
