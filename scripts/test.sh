#!/usr/bin/env bash
# The README's test command: installs dependencies, configures, builds and runs every test.
# CUDA code is compiled whenever nvcc is present; CUDA tests are reported SKIPPED without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
BUILD=${BUILD_DIR:-build}
# EMBER_EMULATION: the CUDA kernels and launchers also built as host C++ and run on the CPU against
# the CPU reference (the "emu:" tests, docs/emulation.md), in every run, GPU or not.
cmake -S . -B "$BUILD" -G Ninja -DCMAKE_BUILD_TYPE=Release -DEMBER_EMULATION=ON ${EMBER_CMAKE_ARGS:-}
cmake --build "$BUILD" -j "$(nproc)"
(
  cd "$BUILD"
  if [ -x tests/ember_cuda_tests ]; then tests/ember_cuda_tests --probe; fi
  ctest --output-on-failure -j "$(nproc)" --timeout 900
)
# The CUDA kernels on the CPU (docs/emulation.md). Their launch checks use the register counts of
# the CUDA build just made when there is one (tests/emulation/kernel_resources.sh), else the
# committed table.
if [ -x "$BUILD/tests/ember_cuda_tests" ]; then
  table="$BUILD/emu_kernel_resources.txt"
  if bash tests/emulation/kernel_resources.sh "$BUILD/libember.a" > "$table" &&
     grep -q '^sm_80 ' "$table" && grep -q '^sm_90 ' "$table"; then
    export EMBER_EMU_RESOURCES="$PWD/$table"
    cmp -s "$table" tests/emulation/kernel_resources.txt ||
      echo "note: tests/emulation/kernel_resources.txt differs from this build's kernels; regenerate it (docs/emulation.md)"
  else
    echo "note: no sm_80 and sm_90 resource table from $BUILD/libember.a; the emulator uses the committed one"
  fi
fi
# ASan + UBSan on a subset of the CPU tests, the fuzz corpus replays and the emulated CUDA suite
# (`bash scripts/sanitize.sh --full` runs every CPU test that way); then TSan on the emulator.
bash scripts/sanitize.sh
bash scripts/sanitize.sh --thread
