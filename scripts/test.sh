#!/usr/bin/env bash
# The README's test command: installs dependencies, configures, builds and runs every test.
# CUDA code is compiled whenever nvcc is present; CUDA tests are reported SKIPPED without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release ${EMBER_CMAKE_ARGS:-}
cmake --build "$BUILD" -j "$(nproc)"
(
  cd "$BUILD"
  if [ -x tests/ember_cuda_tests ]; then tests/ember_cuda_tests --probe; fi
  ctest --output-on-failure -j "$(nproc)" --timeout 900
)
# ASan + UBSan on a subset of the CPU tests, the fuzz corpus replays and the emulated CUDA suite
# (`bash scripts/sanitize.sh --full` runs every CPU test that way).
bash scripts/sanitize.sh
